/**
 * The shapes of a view: its options, the store its `map` writes through, range bounds, and the detail of its
 * `batch` event.
 *
 * @module
 */
import type { Node } from "./node.ts";
import type { Storage } from "./storage.ts";

/**
 * Bounds for {@link ViewStore.range} and {@link View.range}: keys within all the given bounds (and starting with
 * `prefix` when given), in key order.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import type { ViewRangeOptions } from "./view.ts";
 * const log = new Hyperlog<string>();
 * const view = log.view({ name: "names", map: (nodes, store) => nodes.forEach((n) => store.put(n.value, n.change)) });
 * await log.batch([{ value: "user:ann" }, { value: "user:bob" }, { value: "user:cy" }, { value: "team:x" }]);
 * await view.ready();
 * const options: ViewRangeOptions = { prefix: "user:", limit: 2 };
 * const page = await view.range(options);
 * console.assert(page.map(([key]) => key).join() === "user:ann,user:bob");
 * ```
 */
export interface ViewRangeOptions {
  /** Keys greater than this. */
  gt?: string;
  /** Keys greater than or equal to this. */
  gte?: string;
  /** Keys less than this. */
  lt?: string;
  /** Keys less than or equal to this. */
  lte?: string;
  /** Keys that start with this. */
  prefix?: string;
  /** The most pairs to return (all when omitted). */
  limit?: number;
  /** Highest keys first. */
  reverse?: boolean;
}

/**
 * The key/value store a view's `map` writes through. Values are anything JSON can hold; they are stored as JSON
 * text. Reads see the writes made earlier in the same batch. Nothing is stored until `map` returns: then the writes
 * and the view's checkpoint commit together.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * const log = new Hyperlog<{ word: string }>();
 * const counts = log.view({
 *   name: "counts",
 *   map: async (nodes, store) => {
 *     for (const node of nodes) {
 *       const seen = (await store.get(node.value.word) as number | undefined) ?? 0;
 *       store.put(node.value.word, seen + 1);
 *     }
 *   },
 * });
 * await log.append({ word: "hi" });
 * await log.append({ word: "hi" });
 * await counts.ready();
 * console.assert(await counts.get("hi") === 2);
 * ```
 */
export interface ViewStore {
  /** The value of `key`, or `undefined`. */
  get(key: string): Promise<unknown>;
  /** Sets `key` to `value` (anything JSON can hold except `undefined`). */
  put(key: string, value: unknown): void;
  /** Deletes `key`. */
  del(key: string): void;
  /** Pairs `[key, value]` in key order. */
  range(options?: ViewRangeOptions): Promise<Array<[string, unknown]>>;
}

/**
 * How to build a view: see {@link View}.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import type { ViewOptions } from "./view.ts";
 * const log = new Hyperlog<string>();
 * const options: ViewOptions<string> = {
 *   name: "lengths",
 *   version: 2,
 *   map: (nodes, store) => { for (const node of nodes) store.put(node.key, node.value.length); },
 * };
 * const view = log.view(options);
 * const node = await log.append("four");
 * await view.ready();
 * console.assert((await view.get(node.key)) === 4);
 * ```
 */
export interface ViewOptions<T = unknown> {
  /** The view's name, unique per storage: it names the view's data and checkpoint. */
  name: string;
  /** The version of `map`: when it differs from the version the stored data was built with, the view rebuilds. */
  version?: number;
  /** Applies a batch of nodes (in change order) to the view through `store`. */
  map: (nodes: readonly Node<T>[], store: ViewStore) => void | Promise<void>;
  /** The most nodes per call of `map`, and so per atomic commit (default 5000). */
  batchSize?: number;
  /** Where the view's data lives (the log's storage by default): a separate store can be deleted on its own. */
  storage?: Storage;
}

/**
 * What a view's `batch` event carries: the nodes just applied and the checkpoint after them.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import type { ViewBatchDetail } from "./view.ts";
 * const log = new Hyperlog<string>();
 * const view = log.view({ name: "all", map: (nodes, store) => nodes.forEach((n) => store.put(n.key, n.value)) });
 * const seen: number[] = [];
 * view.addEventListener("batch", (e) => seen.push((e as CustomEvent<ViewBatchDetail<string>>).detail.change));
 * await log.append("x");
 * await view.ready();
 * console.assert(seen.at(-1) === 1);
 * ```
 */
export interface ViewBatchDetail<T = unknown> {
  /** The nodes `map` applied, in change order. */
  readonly nodes: readonly Node<T>[];
  /** The view's checkpoint: the change number of the last node applied. */
  readonly change: number;
}
