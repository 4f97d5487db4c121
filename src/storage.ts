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
 * - Views (materialized indexes, see `src/view.ts`) keep string key/value pairs in a namespace per view name, and a
 *   checkpoint per view. `viewCommit` writes a batch of pairs and the checkpoint in one atomic step; `viewDrop`
 *   removes a view's pairs and checkpoint in one atomic step. View keys are ordered by UTF-16 code units, as
 *   JavaScript compares strings (backends whose native order differs sort the rare keys that differ the JS way or
 *   document it).
 *
 * @module
 */
import type { StoredNode } from "./node.ts";

export type { StoredNode };

/**
 * Which page of nodes `Storage.read` returns: nodes with `since < change <= until`, at most `limit` of them, in
 * ascending change order, or descending (from `until` down) when `reverse` is true.
 *
 * @example
 * ```ts
 * import { Hyperlog, MemoryStorage } from "../mod.ts";
 * import type { ReadRange } from "./storage.ts";
 * const storage = new MemoryStorage();
 * await new Hyperlog<string>(storage).batch([{ value: "a" }, { value: "b" }, { value: "c" }]);
 * const newest: ReadRange = { since: 0, until: Infinity, limit: 2, reverse: true };
 * console.assert((await storage.read(newest)).map((n) => n.change).join() === "3,2");
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
 * The checkpoint of a view: the view `version` it was built with and the last log `change` it has applied.
 *
 * @example
 * ```ts
 * import { Hyperlog, MemoryStorage } from "../mod.ts";
 * import type { ViewState } from "./storage.ts";
 * const storage = new MemoryStorage();
 * const log = new Hyperlog<string>(storage);
 * const view = log.view({ name: "all", version: 3, map: (nodes, store) => nodes.forEach((n) => store.put(n.key, 1)) });
 * await log.append("x");
 * await view.ready();
 * const state: ViewState | undefined = await storage.viewState("all");
 * console.assert(state!.version === 3 && state!.change === 1);
 * ```
 */
export interface ViewState {
  /** The view's version, chosen by its author; a different version rebuilds the view. */
  readonly version: number;
  /** The highest log change number whose node the view has applied (0 before any). */
  readonly change: number;
}

/**
 * One write of a view: set `key` to `value`, or delete `key` when `value` is `undefined`.
 *
 * @example
 * ```ts
 * import { MemoryStorage } from "../mod.ts";
 * import type { ViewWrite } from "./storage.ts";
 * const storage = new MemoryStorage();
 * await storage.open();
 * await storage.viewCommit("v", [{ key: "a", value: "1" }, { key: "b", value: "2" }], { version: 1, change: 1 });
 * const writes: ViewWrite[] = [{ key: "a", value: "3" }, { key: "b", value: undefined }];
 * await storage.viewCommit("v", writes, { version: 1, change: 2 });
 * console.assert((await storage.viewGet("v", "a")) === "3" && (await storage.viewGet("v", "b")) === undefined);
 * ```
 */
export interface ViewWrite {
  /** The key within the view. */
  readonly key: string;
  /** The new value, or `undefined` to delete the key. */
  readonly value: string | undefined;
}

/**
 * Which keys of a view `Storage.viewRange` returns: keys within the optional bounds, at most `limit` of them, in
 * ascending key order, or descending when `reverse` is true.
 *
 * @example
 * ```ts
 * import { MemoryStorage } from "../mod.ts";
 * import type { ViewRange } from "./storage.ts";
 * const storage = new MemoryStorage();
 * await storage.open();
 * const writes = ["a1", "a2", "b1"].map((key) => ({ key, value: "1" }));
 * await storage.viewCommit("v", writes, { version: 1, change: 1 });
 * const prefixA: ViewRange = { gte: "a", lt: "b", limit: Infinity, reverse: true };
 * console.assert((await storage.viewRange("v", prefixA)).map(([k]) => k).join() === "a2,a1");
 * ```
 */
export interface ViewRange {
  /** Keys greater than this. */
  readonly gt?: string;
  /** Keys greater than or equal to this. */
  readonly gte?: string;
  /** Keys less than this. */
  readonly lt?: string;
  /** Keys less than or equal to this. */
  readonly lte?: string;
  /** The most pairs to return. */
  readonly limit: number;
  /** Highest keys first when true. */
  readonly reverse: boolean;
}

/**
 * A storage backend for a log.
 *
 * @example Open the in-memory backend and read its length
 * ```ts
 * import { MemoryStorage } from "./memory-storage.ts";
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
  /** The checkpoint of the view `name`, or `undefined` when the view has none (never built, or dropped). */
  viewState(name: string): Promise<ViewState | undefined>;
  /** The value of `key` in the view `name`, or `undefined`. */
  viewGet(name: string, key: string): Promise<string | undefined>;
  /** Pairs `[key, value]` of the view `name` in key order (see {@link ViewRange}). */
  viewRange(name: string, range: ViewRange): Promise<Array<[string, string]>>;
  /** Applies `writes` in order to the view `name` and sets its checkpoint to `state`, all in one atomic step. */
  viewCommit(name: string, writes: readonly ViewWrite[], state: ViewState): Promise<void>;
  /** Removes every pair and the checkpoint of the view `name` in one atomic step. */
  viewDrop(name: string): Promise<void>;
  /** Releases the store. Calls after `close` reject with a `ClosedError`. */
  close(): Promise<void>;
  /**
   * Optional, for stores that other writers share and that can tell when they commit (Deno KV): calls `onChange`
   * after a commit that may not be this storage's own; returns a function that stops watching. The log then calls
   * `refresh()`.
   */
  watch?(onChange: () => void): () => void;
}
