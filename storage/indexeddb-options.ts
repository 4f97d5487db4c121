/**
 * The options of an IndexedDB storage (`indexeddb.ts`): which IndexedDB factory, and how durable a resolved write is.
 *
 * @module
 */

/**
 * Options for `IndexedDBStorage` (`indexeddb.ts`).
 *
 * @example
 * ```ts
 * import { IndexedDBStorage, type IndexedDBStorageOptions } from "./indexeddb.ts";
 * const options: IndexedDBStorageOptions = { durability: "strict" };
 * new IndexedDBStorage("notes", options); // describes the store: opens nothing yet
 * let refused: unknown;
 * try {
 *   new IndexedDBStorage("notes", { durability: "lazy" as IndexedDBStorageOptions["durability"] });
 * } catch (error) {
 *   refused = error;
 * }
 * console.assert(refused instanceof TypeError);
 * ```
 */
export interface IndexedDBStorageOptions {
  /** The IndexedDB factory to use (default: the global `indexedDB`). */
  indexedDB?: IDBFactory;
  /**
   * How a resolved write is made durable. `"relaxed"` (the default): the browser may resolve a commit before the
   * data reaches the disk; a resolved write survives the page or the browser crashing, and the database stays
   * consistent through a power loss, which may take back the last writes (like SQLite's WAL with
   * `synchronous=NORMAL`). `"strict"`: a resolved write has been flushed to disk, at the cost of a flush per
   * commit.
   */
  durability?: "relaxed" | "strict";
}
