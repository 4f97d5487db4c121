/**
 * The replication benchmark's cases for this library, on in-memory logs: fresh sync, resync after a sync, first
 * contact of two copies of a third log. Run in a child process by `replicate.ts`.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { Hyperlog } from "../mod.ts";
import type { BatchDoc } from "../src/log.ts";
import type { BenchValue } from "./_impls.ts";
import { Link } from "./_latency.ts";
import {
  BATCH,
  CHAIN,
  chainValue,
  cpuSecondsSince,
  describeSample,
  type ExchangeSamples,
  FIRST_CONTACT_NEW,
  FRESH_SIZES,
  LATENCY_MS,
  type MemoryResult,
  newValue,
  ownSize,
  RESYNC_NEW,
  type SessionSample,
  SHARED,
  SMALL_FRESH_REPS,
  WARM_UP,
  WARM_UP_SYNCS,
} from "./_replicate-workload.ts";
import { secondsSince } from "./_util.ts";

type Log = Hyperlog<BenchValue>;

function newLog(): Log {
  return new Hyperlog<BenchValue>({ valueEncoding: "json" });
}

/** Builds `writers` chains with `batch` in chunks of {@link BATCH} (10 chains each, linked by batch index). */
async function buildChains(log: Log, writers: number): Promise<void> {
  const perBatch = BATCH / CHAIN;
  for (let w0 = 0; w0 < writers; w0 += perBatch) {
    const docs: BatchDoc<BenchValue>[] = [];
    for (let w = w0; w < Math.min(w0 + perBatch, writers); w++) {
      for (let s = 0; s < CHAIN; s++) docs.push({ value: chainValue(w, s), links: s === 0 ? null : [docs.length - 1] });
    }
    await log.batch(docs);
  }
}

/** The own encoded size of the nodes with change numbers in `(since, until]`. */
async function ownBytes(log: Log, since: number, until: number): Promise<number> {
  let total = 0;
  for (let cursor = since; cursor < until;) {
    const page = await log.storage.read({ since: cursor, until, limit: 1000, reverse: false });
    if (page.length === 0) break;
    for (const node of page) total += ownSize(node.links.length, node.value.length);
    cursor = page[page.length - 1]!.change;
  }
  return total;
}

/**
 * One two-way session between `a` and `b` over wires that delay every chunk by `delayMs`. Time runs from the
 * session's start until both `done`s resolve; bytes are both sides' `stats.bytesSent`.
 */
async function session(a: Log, b: Log, delayMs: number): Promise<SessionSample> {
  const lengths = [a.length, b.length] as const;
  const link = new Link(delayMs);
  const start = performance.now();
  const cpu = process.cpuUsage();
  const ra = a.replicate();
  const rb = b.replicate();
  const pipes = Promise.all([
    ra.readable.pipeThrough(link.web(0)).pipeTo(rb.writable),
    rb.readable.pipeThrough(link.web(1)).pipeTo(ra.writable),
  ]);
  const [sa, sb] = await Promise.all([ra.done, rb.done]);
  const seconds = secondsSince(start);
  const cpuSeconds = cpuSecondsSince(cpu);
  await pipes;
  const bytes = sa.bytesSent + sb.bytesSent;
  if (bytes !== link.bytes) throw new Error(`stats.bytesSent (${bytes}) differs from the wire's count (${link.bytes})`);
  if (a.length !== b.length) throw new Error(`The logs did not converge: ${a.length} and ${b.length} nodes`);
  const own = (await ownBytes(a, lengths[0], a.length)) + (await ownBytes(b, lengths[1], b.length));
  const roundTrips = Math.max(sa.roundTrips, sb.roundTrips);
  return { seconds, cpuSeconds, bytes, own, nodes: sa.nodesSent + sb.nodesSent, roundTrips, flights: link.flights };
}

/** A side of an exchange: a log and the tip of the chain its new nodes extend. */
interface Side {
  log: Log;
  /** Which counter its new values come from (see `newValue`). */
  id: number;
  tip: string;
  added: number;
}

/** The last node of writer chain `w` (its key). */
async function chainHead(log: Log, w: number): Promise<string> {
  const [node] = await log.storage.read({
    since: (w + 1) * CHAIN - 1,
    until: (w + 1) * CHAIN,
    limit: 1,
    reverse: false,
  });
  if (node === undefined || node.links.length !== 1) throw new Error(`No chain ${w} in the log`);
  return node.key;
}

/** Adds `count` new nodes to the side's chain, in one batch. */
async function addNew(side: Side, count: number): Promise<void> {
  const docs: BatchDoc<BenchValue>[] = [];
  for (let i = 0; i < count; i++) {
    docs.push({ value: newValue(side.id, side.added++), links: i === 0 ? [side.tip] : [i - 1] });
  }
  const nodes = await side.log.batch(docs);
  side.tip = nodes[nodes.length - 1]!.key;
}

/** A copy of `source` made by a fresh sync into an empty log. */
async function copyOf(source: Log): Promise<Log> {
  const copy = newLog();
  await session(source, copy, 0);
  return copy;
}

/**
 * Runs every in-memory case for this library, `reps` times each, and reports the samples.
 *
 * @example
 * ```ts ignore
 * import { measureOurs } from "./_replicate-ours.ts";
 * const result = await measureOurs(1, console.error);
 * ```
 */
export async function measureOurs(reps: number, progress: (message: string) => void): Promise<MemoryResult> {
  const warmUp = newLog();
  await buildChains(warmUp, WARM_UP / CHAIN);
  for (let i = 0; i < WARM_UP_SYNCS; i++) await copyOf(warmUp);
  const fresh: MemoryResult["fresh"] = [];
  let shared: [Log, Log] | undefined;
  for (const n of FRESH_SIZES) {
    const source = newLog();
    await buildChains(source, n / CHAIN);
    const runs: SessionSample[] = [];
    const count = n < SHARED ? reps * SMALL_FRESH_REPS : reps;
    for (let rep = 0; rep < count; rep++) {
      const copy = newLog();
      const sample = await session(source, copy, 0);
      runs.push(sample);
      progress(`replicate [ours] fresh sync n=${n} [${rep + 1}/${count}]: ${sample.seconds.toFixed(3)} s`);
      if (n === SHARED && rep === 0) shared = [source, copy];
    }
    fresh.push({ n, runs });
  }
  if (shared === undefined) throw new Error(`No fresh sync at n=${SHARED}`);
  const [source, peer] = shared;
  const heads = (await source.heads()).map((node) => node.key).sort();
  const digest = createHash("sha256").update(heads.join()).digest("hex");

  // Resync: the source and its first copy synced before, so each holds a checkpoint for the other.
  const resync: ExchangeSamples = { quiet: [], delayed: [] };
  const a: Side = { log: source, id: 0, tip: await chainHead(source, 0), added: 0 };
  const b: Side = { log: peer, id: 1, tip: await chainHead(peer, 1), added: 0 };
  for (let rep = 0; rep < reps; rep++) {
    for (const [kind, delay] of [["quiet", 0], ["delayed", LATENCY_MS]] as const) {
      await addNew(a, RESYNC_NEW);
      await addNew(b, RESYNC_NEW);
      const sample = await session(a.log, b.log, delay);
      resync[kind].push(sample);
      progress(`replicate [ours] resync, latency ${delay} ms [${rep + 1}/${reps}]: ${describeSample(sample)}`);
    }
  }

  // First contact: two fresh copies of the source (each synced with it, never with each other), one pair per run.
  const firstContact: ExchangeSamples = { quiet: [], delayed: [] };
  for (let rep = 0; rep < reps; rep++) {
    for (const [kind, delay] of [["quiet", 0], ["delayed", LATENCY_MS]] as const) {
      const x: Side = { log: await copyOf(source), id: 2, tip: await chainHead(source, 2), added: 0 };
      const y: Side = { log: await copyOf(source), id: 3, tip: await chainHead(source, 3), added: 0 };
      await addNew(x, FIRST_CONTACT_NEW);
      await addNew(y, FIRST_CONTACT_NEW);
      const sample = await session(x.log, y.log, delay);
      firstContact[kind].push(sample);
      progress(`replicate [ours] first contact, latency ${delay} ms [${rep + 1}/${reps}]: ${describeSample(sample)}`);
    }
  }
  return { fresh, resync, firstContact, digest };
}
