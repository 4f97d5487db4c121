/**
 * The part of a log that replication sessions, checkpoints and views use: an interface, so that they name the log
 * without importing the `Hyperlog` class (which imports them).
 *
 * @module
 */
import type { RawNode, StoredNode } from "./node.ts";
import type { Storage } from "./storage.ts";

/**
 * What a replication {@link Session}, its checkpoints and a {@link View} use of a log. `Hyperlog` is the one
 * implementation: they also reach its internals (its key index, decoded reads: `internal.ts`), so pass a `Hyperlog`.
 *
 * @example
 * ```ts
 * import { Hyperlog, type LogHandle } from "../mod.ts";
 * const log: LogHandle = new Hyperlog();
 * await log.ready();
 * const grown = log.waitForLength(0);
 * await (log as Hyperlog).append("x");
 * await grown;
 * console.assert(log.length === 1 && log.id.length === 32 && !log.closed);
 * ```
 */
export interface LogHandle {
  /** The log's stable id (32 hex characters), known once it is ready. */
  readonly id: string;
  /** The number of nodes in the log (the highest change number). */
  readonly length: number;
  /** True once the log has closed. */
  readonly closed: boolean;
  /** The storage the log lives in. */
  readonly storage: Storage;
  /** Resolves once the log is open; rejects once it is closed. */
  ready(): Promise<void>;
  /** Resolves once the log holds more than `length` nodes, or closes, or `signal` aborts. */
  waitForLength(length: number, signal?: AbortSignal): Promise<void>;
  /** Adds nodes made elsewhere, checked (see `Hyperlog.ingest`). */
  ingest(nodes: readonly RawNode[]): Promise<StoredNode[]>;
}
