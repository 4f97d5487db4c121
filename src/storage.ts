/**
 * The storage seam: what the log, the views and the key/value store need from a backend, as three small
 * interfaces. {@link NodeStore} keeps the nodes, {@link MetaStore} a few named strings (the log id),
 * {@link ViewStorage} the views' pairs and checkpoints; {@link Storage} is the three together, which every backend in
 * `storage/` implements (a backend may implement all three on one database, as ours do).
 *
 * The contract, which `storage/conformance.ts` tests for any backend:
 * - `commit(nodes)` is atomic: all of the new nodes, their change order and the heads are stored, or none are.
 * - `commit` reports what was new: for each given node, `true` when this commit stored it, `false` when its key was
 *   already stored or came earlier in the same commit (such a node is skipped, not refused). No call before it is
 *   needed or assumed: a backend must not rely on `has`, `get` or anything else having been called first.
 * - Change numbers are dense. The caller numbers the nodes of a commit as if all were new: from `length() + 1`,
 *   without gaps; a commit that does not is refused with a `StorageConflictError` (another writer moved the store).
 *   The new nodes are stored with dense numbers in commit order: the k-th new node gets change `length() + k`, which
 *   is lower than the number it was given when a node before it was skipped.
 * - A node's fields may be getters: the nodes a log adds keep their bytes in a slab that many values share, and
 *   make the `Uint8Array` view when `value` is read; a json log's read every field from the node it returns. Copy
 *   a node with `withChange` (or field by field); a spread (`{ ...node, change }`) leaves getters out.
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
import { StorageConflictError } from "./errors.ts";
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
 * The node half of a backend: nodes by key and in change order, and the heads.
 *
 * @example Commit two nodes and one again: the report says which were new
 * ```ts
 * import { MemoryStorage } from "./memory-storage.ts";
 * import { encodeNode } from "./node.ts";
 * import type { NodeStore, StoredNode } from "./storage.ts";
 * const node = (value: string, change: number): StoredNode => ({ ...encodeNode([], value), links: [], change });
 * const store: NodeStore = new MemoryStorage();
 * await store.open();
 * console.assert((await store.commit([node("a", 1), node("b", 2)])).join() === "true,true");
 * // "a" is stored already: it is skipped, and "c" takes change 3.
 * console.assert((await store.commit([node("a", 3), node("c", 4)])).join() === "false,true");
 * console.assert((await store.length()) === 3 && (await store.read({ since: 2, until: 3, limit: 1, reverse: false }))[0]!.change === 3);
 * ```
 */
export interface NodeStore {
  /** Opens the store (idempotent). Every other method may assume it has resolved. */
  open(): Promise<void>;
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
  /**
   * Stores the nodes that are new atomically and says, for each given node, whether this commit stored it (see the
   * module doc for the rules: already stored keys and repeats are skipped, new nodes numbered densely).
   */
  commit(nodes: readonly StoredNode[]): Promise<boolean[]>;
  /** Releases the store. Calls after `close` reject with a `ClosedError`. */
  close(): Promise<void>;
  /**
   * Optional, for stores that other writers share and that can tell when they commit (Deno KV): calls `onChange`
   * after a commit that may not be this storage's own; returns a function that stops watching. The log then calls
   * `refresh()`.
   */
  watch?(onChange: () => void): () => void;
}

/**
 * Small named strings beside the nodes (the log keeps its id here).
 *
 * @example
 * ```ts
 * import { MemoryStorage } from "./memory-storage.ts";
 * import type { MetaStore } from "./storage.ts";
 * const meta: MetaStore = new MemoryStorage();
 * await meta.setMeta("id", "one");
 * console.assert((await meta.getMeta("id")) === "one" && (await meta.getMeta("other")) === undefined);
 * ```
 */
export interface MetaStore {
  /** Reads a small metadata value (such as the log id), or `undefined`. */
  getMeta(name: string): Promise<string | undefined>;
  /** Writes a small metadata value atomically. */
  setMeta(name: string, value: string): Promise<void>;
}

/**
 * The views' half of a backend: string pairs in a namespace per view, and a checkpoint per view. (A view's `map`
 * writes to a `ViewStore`, whose batch the view commits here.)
 *
 * @example
 * ```ts
 * import { MemoryStorage } from "./memory-storage.ts";
 * import type { ViewStorage } from "./storage.ts";
 * const views: ViewStorage = new MemoryStorage();
 * await views.viewCommit("v", [{ key: "a", value: "1" }], { version: 1, change: 5 });
 * console.assert((await views.viewGet("v", "a")) === "1" && (await views.viewState("v"))!.change === 5);
 * await views.viewDrop("v");
 * console.assert((await views.viewState("v")) === undefined);
 * ```
 */
export interface ViewStorage {
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
}

/**
 * A storage backend for a log: a {@link NodeStore}, a {@link MetaStore} and a {@link ViewStorage} in one.
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
export interface Storage extends NodeStore, MetaStore, ViewStorage {}

/**
 * Checks the rule every backend's `commit` keeps: the given nodes are numbered `base + 1`, `base + 2`, ... where
 * `base` is the store's length inside the commit's transaction; throws a `StorageConflictError` otherwise (another
 * writer may share the store).
 *
 * @example
 * ```ts
 * import { checkCommitChanges } from "./storage.ts";
 * const node = { key: "ab".repeat(32), links: [], value: new Uint8Array(), change: 3 };
 * checkCommitChanges([node], 2);
 * let refused = false;
 * try {
 *   checkCommitChanges([node], 0);
 * } catch (error) {
 *   refused = (error as Error).name === "StorageConflictError";
 * }
 * console.assert(refused);
 * ```
 */
export function checkCommitChanges(given: readonly StoredNode[], base: number): void {
  for (let i = 0; i < given.length; i++) {
    const node = given[i]!;
    if (node.change !== base + i + 1) {
      throw new StorageConflictError(
        `Commit expected change ${base + i + 1} for node ${node.key} but got ${node.change}; ` +
          "another writer may share this store",
      );
    }
  }
}
