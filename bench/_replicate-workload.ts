/**
 * The workload of the replication benchmark, shared by both implementations so that they hold the very same nodes
 * (an unsigned node has the same key in both): `writers` chains of {@link CHAIN} nodes, chain `w` holding the
 * values `benchValue(w * CHAIN)` to `benchValue(w * CHAIN + CHAIN - 1)`, each node linking to the one before it.
 * Nodes added later by a side ("new nodes") extend a chain of that side with values from its own counter.
 *
 * @module
 */
import { type BenchValue, benchValue } from "./_impls.ts";

/** Nodes per writer chain. */
export const CHAIN = 100;
/** Documents per `batch` call when building (10 chains). */
export const BATCH = 1000;
/** The one-way latency injected into the pipe for the timed exchanges, in ms. */
export const LATENCY_MS = 50;
/** Nodes each side adds before a resync. */
export const RESYNC_NEW = 10;
/** Nodes each side adds before a first contact (so the two differ by 10). */
export const FIRST_CONTACT_NEW = 5;
/**
 * Nodes of the warm-up syncs each implementation runs ({@link WARM_UP_SYNCS} of them, into empty logs), and
 * discards, before it measures anything: as many as the small fresh sync, so that its figure is not JIT compilation.
 */
export const WARM_UP = 10_000;
/** How many warm-up syncs each implementation runs. */
export const WARM_UP_SYNCS = 2;
/**
 * The fresh syncs below {@link SHARED} nodes run this many times `reps` for this library (about 0.05 s each, where
 * scheduling noise on a shared machine is of the same order; hyperlog 4's take about a second, `reps` of them).
 */
export const SMALL_FRESH_REPS = 3;
/** Log sizes of the fresh sync. */
export const FRESH_SIZES = [10_000, 100_000] as const;
/** The size of the shared history in the resync and first contact cases. */
export const SHARED = 100_000;

/**
 * The value of node `s` of writer chain `w`.
 *
 * @example
 * ```ts
 * import { chainValue } from "./_replicate-workload.ts";
 * console.assert(chainValue(2, 5).v === 205);
 * ```
 */
export function chainValue(w: number, s: number): BenchValue {
  return benchValue(w * CHAIN + s);
}

/**
 * The value of the `i`-th new node of `side` (0, 1, ...): far above every chain value, and the same length for
 * every `i` below a million, so every new node has the same size.
 *
 * @example
 * ```ts
 * import { newValue } from "./_replicate-workload.ts";
 * console.assert(newValue(1, 3).v === 11_000_003);
 * ```
 */
export function newValue(side: number, i: number): BenchValue {
  return benchValue(10_000_000 + side * 1_000_000 + i);
}

/**
 * A node's own encoded size, as the benchmark counts it: the 32 bytes of its key, 32 bytes per link (raw SHA-256
 * digests) and its encoded value bytes; no framing, no change number, no lengths.
 *
 * @example
 * ```ts
 * import { ownSize } from "./_replicate-workload.ts";
 * console.assert(ownSize(1, 90) === 154);
 * ```
 */
export function ownSize(links: number, valueBytes: number): number {
  return 32 + 32 * links + valueBytes;
}

/**
 * The utf-8 byte length of a value's JSON text (both implementations' `json` encoding).
 *
 * @example
 * ```ts
 * import { jsonBytes } from "./_replicate-workload.ts";
 * console.assert(jsonBytes({ a: "é" }) === 10);
 * ```
 */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value));
}

/**
 * CPU seconds (user + system) of this process since `start` (a `process.cpuUsage()`).
 *
 * @example
 * ```ts
 * import { cpuSecondsSince } from "./_replicate-workload.ts";
 * console.assert(cpuSecondsSince(process.cpuUsage()) >= 0);
 * ```
 */
export function cpuSecondsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

/** One measured session. */
export interface SessionSample {
  /** From the start of the session until both sides were done. */
  seconds: number;
  /**
   * CPU seconds (user + system) of the process in that time: both sides run in it, so this is the session's cost
   * whatever else the machine runs (the wall time waits for the CPU on a shared machine).
   */
  cpuSeconds: number;
  /** Bytes on the wire, both directions. */
  bytes: number;
  /** The own encoded size (see {@link ownSize}) of the nodes that crossed, both directions. */
  own: number;
  /** Nodes that crossed, both directions. */
  nodes: number;
  /** Round trips as the implementation reports them (this library's `stats.roundTrips`), or null. */
  roundTrips: number | null;
  /** One-way flights on the critical path, as the link measured them (see `_latency.ts`). */
  flights: number;
}

/**
 * A session in a few words, for progress lines.
 *
 * @example
 * ```ts
 * import { describeSample } from "./_replicate-workload.ts";
 * const line = describeSample({ seconds: 0.2, cpuSeconds: 0.1, bytes: 3938, own: 3380, nodes: 20, roundTrips: 3, flights: 4 });
 * console.assert(line === "200 ms, 3938 bytes, 4 flights");
 * ```
 */
export function describeSample(sample: SessionSample): string {
  return `${(sample.seconds * 1000).toFixed(0)} ms, ${sample.bytes} bytes, ${sample.flights} flights`;
}

/** The fresh syncs of one log size. */
export interface FreshSamples {
  n: number;
  runs: SessionSample[];
}

/** Exchanges of one kind (resync or first contact): without latency, and with {@link LATENCY_MS} each way. */
export interface ExchangeSamples {
  quiet: SessionSample[];
  delayed: SessionSample[];
}

/** What a `memory` child of the replication benchmark reports for one implementation. */
export interface MemoryResult {
  fresh: FreshSamples[];
  resync: ExchangeSamples;
  firstContact: ExchangeSamples;
  /** The head key of every chain's last node at n = {@link SHARED}, hashed: both implementations must agree. */
  digest: string;
}
