/**
 * The Storage interface: everything the log, and later the views and the key/value store, need from a backend.
 *
 * The contract, which `storage/conformance.ts` tests for any backend:
 * - `commit(nodes)` is atomic: all of the nodes, their change order and the heads are stored, or none are.
 * - Change numbers are dense: the first node has change 1, each commit continues from `length()`; a commit whose
 *   first change is not `length() + 1`, or whose numbers have gaps, is refused with a `StorageConflictError`.
 * - A commit that holds a key the store already has, or the same key twice, is refused with a
 *   `StorageConflictError`. The caller (the log) filters out nodes it already has.
 * - Nodes within a commit come ancestors first. The caller has checked that every link is present in the store or
 *   earlier in the commit. Heads are kept by the store: a committed node becomes a head, and every key it links to
 *   stops being one.
 * - `read` pages through nodes in change order; it never returns a half-committed write.
 *
 * @module
 */
import type { StoredNode } from "../src/node.ts";

export type { StoredNode };

/**
 * Which page of nodes `Storage.read` returns: nodes with `since < change <= until`, at most `limit` of them, in
 * ascending change order, or descending (from `until` down) when `reverse` is true.
 *
 * @example
 * ```ts
 * import type { ReadRange } from "./storage.ts";
 * const firstPage: ReadRange = { since: 0, until: Infinity, limit: 100, reverse: false };
 * console.assert(firstPage.limit === 100);
 * ```
 */
export interface ReadRange {
  /** Exclusive lower bound on change numbers. */
  readonly since: number;
  /** Inclusive upper bound on change numbers (`Infinity` for no bound). */
  readonly until: number;
  /** The most nodes to return. */
  readonly limit: number;
  /** Newest first when true. */
  readonly reverse: boolean;
}

/**
 * A storage backend for a log.
 *
 * @example Open the in-memory backend and read its length
 * ```ts
 * import { MemoryStorage } from "./memory.ts";
 * import type { Storage } from "./storage.ts";
 * const storage: Storage = new MemoryStorage();
 * await storage.open();
 * console.assert((await storage.length()) === 0);
 * ```
 */
export interface Storage {
  /** Opens the store (idempotent). Every other method may assume it has resolved. */
  open(): Promise<void>;
  /** Reads a small metadata value (such as the log id), or `undefined`. */
  getMeta(name: string): Promise<string | undefined>;
  /** Writes a small metadata value atomically. */
  setMeta(name: string, value: string): Promise<void>;
  /** The number of nodes stored, which is also the highest change number. */
  length(): Promise<number>;
  /** The node with this key, or `undefined`. */
  get(key: string): Promise<StoredNode | undefined>;
  /** For each key, whether the store holds it. */
  has(keys: readonly string[]): Promise<boolean[]>;
  /** The keys of the nodes no other node links to, in any order. */
  heads(): Promise<string[]>;
  /** One page of nodes in change order (see {@link ReadRange}). */
  read(range: ReadRange): Promise<StoredNode[]>;
  /** Stores nodes atomically (see the module doc for the rules). */
  commit(nodes: readonly StoredNode[]): Promise<void>;
  /** Releases the store. Calls after `close` reject with a `ClosedError`. */
  close(): Promise<void>;
}
