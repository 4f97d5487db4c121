/**
 * The replication benchmark's cases for hyperlog 4.12.1 on memdb, the same workload as `_replicate-ours.ts`.
 *
 * hyperlog 4 replicates per writer log (scuttlebutt: each side announces the newest sequence number it holds of
 * every log it has, then asks for what it lacks), and keeps nothing about the peers it met. So two logs holding
 * the same nodes under the same writer logs and sequence numbers behave the same whether they synced with each
 * other, with a third log, or never: the resync and the first contact run on the pair the fresh sync produced.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import type { Duplex } from "node:stream";
import { Link } from "./_latency.ts";
import {
  CHAIN,
  chainValue,
  cpuSecondsSince,
  describeSample,
  type ExchangeSamples,
  FIRST_CONTACT_NEW,
  FRESH_SIZES,
  jsonBytes,
  LATENCY_MS,
  type MemoryResult,
  newValue,
  ownSize,
  RESYNC_NEW,
  type SessionSample,
  SHARED,
  WARM_UP,
  WARM_UP_SYNCS,
} from "./_replicate-workload.ts";
import { secondsSince } from "./_util.ts";

/** hyperlog 4 at 100 000 nodes syncs at ~3 000 nodes/s: one run there takes ~35 s, so it is measured once. */
export const HYPERLOG_SINGLE_RUN_FROM = 100_000;

/** A Node-style callback. */
type Callback<R> = (err: Error | null, result: R) => void;

/** A node as hyperlog 4 returns it. */
interface Node4 {
  key: string;
  links: string[];
  value: unknown;
}

/** The part of hyperlog 4's API this benchmark uses. */
interface Hyperlog4 {
  ready(cb: () => void): void;
  /** `opts.log` files the node under that writer log instead of this log's own id (used by its replication). */
  add(links: string[], value: unknown, opts: { log?: string }, cb: Callback<Node4>): void;
  heads(cb: Callback<Node4[]>): void;
  replicate(): Duplex;
  /** The number of nodes. */
  changes: number;
}

const require = createRequire(import.meta.url);

async function newLog(): Promise<Hyperlog4> {
  const hyperlog = require("hyperlog4") as (db: unknown, options: { valueEncoding: "json" }) => Hyperlog4;
  const memdb = require("memdb") as () => unknown;
  const log = hyperlog(memdb(), { valueEncoding: "json" });
  await new Promise<void>((resolve) => log.ready(resolve));
  return log;
}

function add(log: Hyperlog4, links: string[], value: unknown, opts: { log?: string } = {}): Promise<Node4> {
  return new Promise((resolve, reject) =>
    log.add(links, value, opts, (err, node) => (err ? reject(err) : resolve(node)))
  );
}

/**
 * Builds `writers` chains, chain `w` filed under writer log `writer<w>`. hyperlog 4's `batch` checks links
 * against the stored log only, so a chain cannot be one batch: every node is its own `add`.
 */
async function buildChains(log: Hyperlog4, writers: number): Promise<void> {
  for (let w = 0; w < writers; w++) {
    let links: string[] = [];
    for (let s = 0; s < CHAIN; s++) links = [(await add(log, links, chainValue(w, s), { log: `writer${w}` })).key];
  }
}

/** The own encoded size of nodes `s` of every chain of `writers`. */
function chainsOwnBytes(writers: number): number {
  let total = 0;
  for (let w = 0; w < writers; w++) {
    for (let s = 0; s < CHAIN; s++) total += ownSize(s === 0 ? 0 : 1, jsonBytes(chainValue(w, s)));
  }
  return total;
}

/**
 * One session `a.replicate().pipe(wire).pipe(b.replicate()).pipe(wire).pipe(...)` over a {@link Link} with this
 * latency; time runs until both replication streams end. `own` is the own size of the nodes that will cross.
 */
async function session(a: Hyperlog4, b: Hyperlog4, delayMs: number, own: number): Promise<SessionSample> {
  const before = a.changes + b.changes;
  const link = new Link(delayMs);
  const start = performance.now();
  const cpu = process.cpuUsage();
  const ra = a.replicate();
  const rb = b.replicate();
  const ended = (stream: Duplex) =>
    new Promise<void>((resolve, reject) => stream.on("end", resolve).on("error", reject));
  const both = Promise.all([ended(ra), ended(rb)]);
  ra.pipe(link.node(0)).pipe(rb).pipe(link.node(1)).pipe(ra);
  await both;
  const seconds = secondsSince(start);
  const cpuSeconds = cpuSecondsSince(cpu);
  if (a.changes !== b.changes) throw new Error(`hyperlog 4 did not converge: ${a.changes} and ${b.changes} nodes`);
  const nodes = 2 * a.changes - before;
  return { seconds, cpuSeconds, bytes: link.bytes, own, nodes, roundTrips: null, flights: link.flights };
}

/** A side of an exchange: a log and the tip of the chain its new nodes extend. */
interface Side {
  log: Hyperlog4;
  id: number;
  tip: string;
  added: number;
}

/** Adds `count` new nodes to the side's chain (under the log's own writer id); resolves with their own size. */
async function addNew(side: Side, count: number): Promise<number> {
  let own = 0;
  for (let i = 0; i < count; i++) {
    const value = newValue(side.id, side.added++);
    side.tip = (await add(side.log, [side.tip], value)).key;
    own += ownSize(1, jsonBytes(value));
  }
  return own;
}

/** The key of the last node of chain `w`, in the same order as the build. */
function chainHeadOf(heads: readonly Node4[], w: number): string {
  const value = JSON.stringify(chainValue(w, CHAIN - 1));
  const head = heads.find((node) => JSON.stringify(node.value) === value);
  if (head === undefined) throw new Error(`No head for chain ${w}`);
  return head.key;
}

/** Runs `count` exchanges of each kind on the pair, each after both sides add `perSide` nodes. */
async function exchanges(
  a: Side,
  b: Side,
  perSide: number,
  reps: number,
  label: string,
  progress: (message: string) => void,
): Promise<ExchangeSamples> {
  const samples: ExchangeSamples = { quiet: [], delayed: [] };
  for (let rep = 0; rep < reps; rep++) {
    for (const [kind, delay] of [["quiet", 0], ["delayed", LATENCY_MS]] as const) {
      const own = (await addNew(a, perSide)) + (await addNew(b, perSide));
      const sample = await session(a.log, b.log, delay, own);
      samples[kind].push(sample);
      progress(`replicate [hyperlog 4] ${label}, latency ${delay} ms [${rep + 1}/${reps}]: ${describeSample(sample)}`);
    }
  }
  return samples;
}

/**
 * Runs every in-memory case for hyperlog 4.12.1 and reports the samples: `reps` runs each, except the fresh sync
 * from {@link HYPERLOG_SINGLE_RUN_FROM} nodes, run once.
 *
 * @example
 * ```ts ignore
 * import { measureHyperlog4 } from "./_replicate-hyperlog4.ts";
 * const result = await measureHyperlog4(1, console.error);
 * ```
 */
export async function measureHyperlog4(reps: number, progress: (message: string) => void): Promise<MemoryResult> {
  const warmUp = await newLog();
  await buildChains(warmUp, WARM_UP / CHAIN);
  for (let i = 0; i < WARM_UP_SYNCS; i++) await session(warmUp, await newLog(), 0, 0);
  const fresh: MemoryResult["fresh"] = [];
  let shared: [Hyperlog4, Hyperlog4] | undefined;
  for (const n of FRESH_SIZES) {
    const source = await newLog();
    await buildChains(source, n / CHAIN);
    const own = chainsOwnBytes(n / CHAIN);
    const runs: SessionSample[] = [];
    const count = n >= HYPERLOG_SINGLE_RUN_FROM ? 1 : reps;
    for (let rep = 0; rep < count; rep++) {
      const copy = await newLog();
      const sample = await session(source, copy, 0, own);
      runs.push(sample);
      progress(`replicate [hyperlog 4] fresh sync n=${n} [${rep + 1}/${count}]: ${sample.seconds.toFixed(2)} s`);
      if (n === SHARED && rep === 0) shared = [source, copy];
    }
    fresh.push({ n, runs });
  }
  if (shared === undefined) throw new Error(`No fresh sync at n=${SHARED}`);
  const [source, peer] = shared;
  const heads = await new Promise<Node4[]>((resolve, reject) =>
    source.heads((err, nodes) => (err ? reject(err) : resolve(nodes)))
  );
  const digest = createHash("sha256").update(heads.map((node) => node.key).sort().join()).digest("hex");

  const a: Side = { log: source, id: 0, tip: chainHeadOf(heads, 0), added: 0 };
  const b: Side = { log: peer, id: 1, tip: chainHeadOf(heads, 1), added: 0 };
  const resync = await exchanges(a, b, RESYNC_NEW, reps, "resync", progress);
  const x: Side = { log: source, id: 2, tip: chainHeadOf(heads, 2), added: 0 };
  const y: Side = { log: peer, id: 3, tip: chainHeadOf(heads, 3), added: 0 };
  const firstContact = await exchanges(x, y, FIRST_CONTACT_NEW, reps, "first contact", progress);
  return { fresh, resync, firstContact, digest };
}
