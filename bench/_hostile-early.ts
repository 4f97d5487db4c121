/**
 * The early-node attacks of `bench/hostile.ts` (first contact: nodes that go with a reconciliation turn): the
 * relay's RSS growth while attackers, one after another, each lead a reconciliation and send nodes with their turn
 * whose links the relay does not hold (each refused with 4008), and while one attacker floods valid early nodes (the
 * same 200 nodes of 1 KB again and again, never waiting for CREDIT) in the middle of its reconciliation. Smaller
 * versions run as tests (`tests/hostile-early.test.ts`).
 *
 * @module
 */
import { encodeMessage, Hyperlog, type StoredNode } from "../mod.ts";
import { encodeNodesBodies } from "../src/wire.ts";
import { flood, hostileHello, rawSocket } from "../tests/_hostile.ts";
import type { Figure } from "./_util.ts";

const MB = 1 << 20;

/** What the attacks need of the relay (`Relay` of bench/hostile.ts). */
export interface EarlyRelay {
  url: string;
}

/** Nodes of a new log: a chain of `count` (`chain`) or `count` nodes that link to nothing, about `size` bytes each. */
async function nodes(count: number, size: number, tag: string, chain: boolean): Promise<StoredNode[]> {
  const log = new Hyperlog(undefined, { valueEncoding: "utf-8" });
  const pad = "x".repeat(Math.max(0, size - 16));
  for (let i = 0; i < count; i++) await (chain ? log.append(`${tag} ${i} ${pad}`) : log.add([], `${tag} ${i} ${pad}`));
  return await log.storage.read({ since: 0, until: count, limit: count, reverse: false });
}

/** An attacker that leads a reconciliation with the relay's log `name` of `count` nodes (HELLO and CHECK said). */
async function leader(relay: EarlyRelay, name: string, count: number) {
  const ws = await rawSocket(`${relay.url}/logs/${name}/ws`);
  await ws.send(hostileHello({ count: count + 1 }));
  await ws.next();
  await ws.send(encodeMessage({ type: "check", checkpoint: null }));
  await ws.next();
  return ws;
}

/**
 * Runs the attacks on the relay's log `name` (of `count` nodes), `attackers` refused ones then a flood of `floodBytes`,
 * within `measure` (the relay's peak RSS growth in MB while its work runs); returns the figure.
 */
export async function earlyNodeAttacks(
  relay: EarlyRelay,
  name: string,
  count: number,
  attackers: number,
  floodBytes: number,
  measure: (work: () => Promise<unknown>) => Promise<number>,
): Promise<Omit<Figure, "hyperlog" | "ratio">> {
  // The chain without its first node: every node's links are missing at the relay.
  const dangling = encodeNodesBodies((await nodes(51, 100, "dangling", true)).slice(1), 64 * 1024);
  const valid = encodeNodesBodies(await nodes(200, 1000, "early", false), 64 * 1024);
  const turn = encodeMessage({ type: "recon", end: true, entries: [{ kind: "all", prefix: "" }] });
  let refused = 0;
  let flooded = 0;
  const growth = await measure(async () => {
    for (let i = 0; i < attackers; i++) {
      const ws = await leader(relay, name, count);
      await ws.sendAll([...dangling, turn]);
      if ((await ws.closed).code === 4008) refused++;
    }
    const ws = await leader(relay, name, count);
    flooded = await flood(ws, (i) => valid[i % valid.length]!, floodBytes);
    ws.destroy();
  });
  return {
    bench: "early nodes",
    case: `relay RSS growth (${refused} of ${attackers} refused with 4008, then ${Math.round(flooded / MB)} MB)`,
    n: floodBytes / MB,
    unit: "MB",
    ours: growth,
    target: "<= 50 MB",
    met: growth <= 50 && refused === attackers,
  };
}
