/**
 * The public types of replication: options, stats, and the session a driver returns.
 *
 * @module
 */
import type { ReplicationMode } from "./wire.ts";

export type { ReplicationMode };

/**
 * Options for {@link replicate} and `Hyperlog.replicate`.
 *
 * @example
 * ```ts
 * import { Hyperlog, replicate } from "../mod.ts";
 * import type { ReplicateOptions } from "./replicate-types.ts";
 * const [a, b] = [new Hyperlog(), new Hyperlog()];
 * await a.append("from a");
 * await b.append("from b");
 * const push: ReplicateOptions = { mode: "push" }; // a only sends
 * const [ra, rb] = [replicate(a, push), replicate(b, { mode: "pull" })];
 * await Promise.all([ra.readable.pipeTo(rb.writable), rb.readable.pipeTo(ra.writable), ra.done, rb.done]);
 * console.assert(a.length === 1 && b.length === 2);
 * ```
 */
export interface ReplicateOptions {
  /** `sync` (the default), `push` or `pull`. */
  mode?: ReplicationMode;
  /** Stay open after the initial exchange and forward new nodes both ways. */
  live?: boolean;
  /** The largest frame accepted from the peer, in bytes (default 16 MiB). */
  maxFrame?: number;
  /**
   * Bytes of node messages the peer may send before this side grants more with CREDIT (default 512 KiB): what a
   * peer can make this side hold, whatever it sends.
   */
  window?: number;
  /** Milliseconds to wait for the peer's HELLO before giving up (default 10 000). */
  handshakeTimeout?: number;
  /** Milliseconds an initial exchange may wait for a reply it needs before giving up (default 30 000). */
  idleTimeout?: number;
}

/**
 * What a finished session did.
 *
 * @example
 * ```ts
 * import { Hyperlog, replicate } from "../mod.ts";
 * import type { ReplicationStats } from "./replicate-types.ts";
 * const [a, b] = [new Hyperlog(), new Hyperlog()];
 * await a.append("hello");
 * const [ra, rb] = [replicate(a), replicate(b)];
 * const pipes = [ra.readable.pipeTo(rb.writable), rb.readable.pipeTo(ra.writable)];
 * const [sent, got]: ReplicationStats[] = await Promise.all([ra.done, rb.done, ...pipes]) as ReplicationStats[];
 * console.assert(sent!.nodesSent === 1 && got!.nodesReceived === 1 && got!.bytesReceived === sent!.bytesSent);
 * ```
 */
export interface ReplicationStats {
  /** Nodes this side sent. */
  nodesSent: number;
  /** New nodes this side received and stored. */
  nodesReceived: number;
  /** Bytes this side wrote to the readable side. */
  bytesSent: number;
  /** Bytes this side read from the writable side. */
  bytesReceived: number;
  /** Round trips the initial exchange took. */
  roundTrips: number;
}

/**
 * One side of a replication session: pipe `readable` to the peer and the peer's bytes into `writable`.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * const a = new Hyperlog();
 * const b = new Hyperlog();
 * await a.append("from a");
 * const ra = a.replicate();
 * const rb = b.replicate();
 * await Promise.all([ra.readable.pipeTo(rb.writable), rb.readable.pipeTo(ra.writable)]);
 * console.assert((await rb.done).nodesReceived === 1);
 * ```
 */
export interface Replication {
  /** Bytes to send to the peer. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes received from the peer. */
  readonly writable: WritableStream<Uint8Array>;
  /** Resolves with the stats when the session ends cleanly; rejects with the reason when it fails. */
  readonly done: Promise<ReplicationStats>;
  /** The stats so far (a copy), for progress reports. */
  readonly stats: ReplicationStats;
  /**
   * Resolves when the initial exchange is complete: each side has every node the other had when the session began.
   * A live session stays open after that; for a non-live one it comes just before `done`.
   */
  readonly synced: Promise<void>;
  /** Ends the session from this side (for live sessions); resolves like `done`. */
  close(): Promise<ReplicationStats>;
}
