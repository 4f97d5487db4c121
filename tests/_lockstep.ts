/**
 * Set-ups of the replication tests that count flights and bytes (`reconcile.test.ts`, `first-contact.test.ts`): logs
 * filled in batches, a plain sync over byte streams, two copies of the same nodes, the sorted keys of a log, and two
 * sessions run in lock step.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Hyperlog, type ReplicationStats } from "../mod.ts";
import { Session } from "../src/session.ts";

/** Adds `count` nodes (`"TAG i"`) to `log`, 500 a batch. */
export async function fill(log: Hyperlog, count: number, tag: string): Promise<void> {
  for (let i = 0; i < count; i += 500) {
    await log.batch(Array.from({ length: Math.min(500, count - i) }, (_, j) => ({ value: `${tag} ${i + j}` })));
  }
}

/** One sync of `a` and `b` over byte streams piped to each other; the stats of each side. */
export async function sync(a: Hyperlog, b: Hyperlog): Promise<[ReplicationStats, ReplicationStats]> {
  const ra = a.replicate();
  const rb = b.replicate();
  ra.readable.pipeTo(rb.writable).catch(() => {});
  rb.readable.pipeTo(ra.writable).catch(() => {});
  return await Promise.all([ra.done, rb.done]);
}

/** The keys of `log`, sorted. */
export async function keys(log: Hyperlog): Promise<string[]> {
  const out: string[] = [];
  for await (const node of log.createReadStream()) out.push(node.key);
  return out.sort();
}

/** Two copies of the same `shared` nodes (each synced from a third log, never with each other). */
export async function copies(shared: number): Promise<[Hyperlog, Hyperlog]> {
  const source = new Hyperlog({ valueEncoding: "utf-8" });
  await fill(source, shared, "shared");
  const a = new Hyperlog({ valueEncoding: "utf-8" });
  const b = new Hyperlog({ valueEncoding: "utf-8" });
  await sync(source, a);
  await sync(source, b);
  return [a, b];
}

const TYPES: Record<number, string> = { 1: "HELLO", 2: "CHECK", 3: "RECON", 5: "SYNCED", 6: "ACK", 9: "CREDIT" };

/**
 * Runs two sessions in lock step, every message of one flight delivered at once (each side sends all it can between
 * flights), optionally changing each message on the way (`tamper`); returns the one-way flights delivered until both
 * are done, the sessions, and the message types of each flight (node messages as "NODES").
 */
export async function lockstep(
  a: Hyperlog,
  b: Hyperlog,
  tamper = (body: Uint8Array): Uint8Array => body,
): Promise<{ flights: number; sa: Session; sb: Session; log: string[][] }> {
  const sa = new Session(a as Hyperlog<unknown>);
  const sb = new Session(b as Hyperlog<unknown>);
  const drain = async (session: Session, out: Uint8Array[]) => {
    for (let more = await session.produce(1 << 20); more.length > 0; more = await session.produce(1 << 20)) {
      out.push(...more);
    }
    return out.map(tamper);
  };
  let [toB, toA] = [(await sa.start()).map(tamper), (await sb.start()).map(tamper)];
  const log: string[][] = [];
  let flights = 0;
  while (!(sa.finished && sb.finished)) {
    assert.ok(flights < 50, "the sessions never finished");
    log.push([...toB, ...toA].map((body) => TYPES[body[0]!] ?? "NODES"));
    const [fromB, fromA] = [await sa.receive(toA), await sb.receive(toB)];
    flights++;
    [toB, toA] = [await drain(sa, fromB), await drain(sb, fromA)];
  }
  assert.equal(sa.error ?? sb.error, undefined);
  return { flights, sa, sb, log };
}
