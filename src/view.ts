/**
 * Materialized views (the successor of hyperlog-index): indexes derived from a log, that can be thrown away and
 * rebuilt at any time. A view's `map` receives the log's nodes in change order (ancestors first), in batches, and
 * writes through a {@link ViewStore}; what it wrote and the view's checkpoint commit in one atomic step, so a crash
 * never applies a node twice or skips one.
 *
 * @module
 */
import { ClosedError, HyperlogError } from "./errors.ts";
import { internalsOf } from "./internal.ts";
import type { LogHandle } from "./log-handle.ts";
import type { Node } from "./node.ts";
import type { Storage, ViewRange, ViewWrite } from "./storage.ts";
import { inViewRange } from "./view-keys.ts";

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

const DEFAULT_BATCH = 5000;

/** Views open on each storage object, by name: two views of one name on one storage would corrupt each other. */
const OPEN_VIEWS = new WeakMap<Storage, Set<string>>();

function checkKey(key: unknown, where: string): string {
  if (typeof key !== "string") {
    throw new TypeError(`${where} takes a string key, got ${key === null ? "null" : typeof key}`);
  }
  return key;
}

function jsonOf(key: string, value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new TypeError(`The value of view key ${JSON.stringify(key)} has no JSON form: ${(err as Error).message}`);
  }
  if (text === undefined) {
    throw new TypeError(
      `The value of view key ${
        JSON.stringify(key)
      } is ${typeof value}, which JSON cannot hold; use del() to remove a key`,
    );
  }
  return text;
}

/** Turns the public range options into a storage range (prefix folded into the bounds). */
function toRange(options: ViewRangeOptions = {}): ViewRange {
  let { gt, gte, lt, lte } = options;
  for (const [name, bound] of Object.entries({ gt, gte, lt, lte, prefix: options.prefix })) {
    if (bound !== undefined && typeof bound !== "string") throw new TypeError(`Range bound ${name} must be a string`);
  }
  const limit = options.limit ?? Infinity;
  if (!(limit >= 0)) throw new RangeError(`Range limit must be a number >= 0, got ${String(options.limit)}`);
  if (options.prefix !== undefined && options.prefix !== "") {
    const prefix = options.prefix;
    if (gte === undefined || gte < prefix) gte = prefix;
    const end = prefixEnd(prefix);
    if (end !== undefined && (lt === undefined || lt > end)) lt = end;
  }
  const range: { -readonly [K in keyof ViewRange]: ViewRange[K] } = { limit, reverse: options.reverse === true };
  if (gt !== undefined) range.gt = gt;
  if (gte !== undefined) range.gte = gte;
  if (lt !== undefined) range.lt = lt;
  if (lte !== undefined) range.lte = lte;
  return range;
}

/** The least string above every string that starts with `prefix`, or `undefined` if there is none. */
function prefixEnd(prefix: string): string | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const code = prefix.charCodeAt(i);
    if (code < 0xffff) return prefix.slice(0, i) + String.fromCharCode(code + 1);
  }
  return undefined;
}

function parse(text: string | undefined): unknown {
  return text === undefined ? undefined : JSON.parse(text);
}

/** The most committed values a view keeps in memory (it is their only writer, so they stay true). */
const CACHE_LIMIT = 65536;

/** The writes of one batch over the committed data: reads see them, and they commit with the checkpoint. */
class BatchStore implements ViewStore {
  readonly writes: ViewWrite[] = [];
  readonly #overlay = new Map<string, string | undefined>();
  readonly #storage: Storage;
  readonly #name: string;
  readonly #cache: Map<string, string | undefined>;

  constructor(storage: Storage, name: string, cache: Map<string, string | undefined>) {
    this.#storage = storage;
    this.#name = name;
    this.#cache = cache;
  }

  async get(key: string): Promise<unknown> {
    checkKey(key, "get");
    if (this.#overlay.has(key)) return parse(this.#overlay.get(key));
    if (this.#cache.has(key)) return parse(this.#cache.get(key));
    const text = await this.#storage.viewGet(this.#name, key);
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
    this.#cache.set(key, text);
    return parse(text);
  }

  /** After the commit: what this batch wrote is what the store now holds. */
  committed(): void {
    if (this.#cache.size + this.#overlay.size > CACHE_LIMIT) this.#cache.clear();
    for (const [key, text] of this.#overlay) this.#cache.set(key, text);
  }

  put(key: string, value: unknown): void {
    checkKey(key, "put");
    const text = jsonOf(key, value);
    this.#overlay.set(key, text);
    this.writes.push({ key, value: text });
  }

  del(key: string): void {
    checkKey(key, "del");
    this.#overlay.set(key, undefined);
    this.writes.push({ key, value: undefined });
  }

  async range(options?: ViewRangeOptions): Promise<Array<[string, unknown]>> {
    const range = toRange(options);
    if (this.#overlay.size === 0) {
      return (await this.#storage.viewRange(this.#name, range)).map(([key, text]) => [key, JSON.parse(text)]);
    }
    const merged = new Map(await this.#storage.viewRange(this.#name, { ...range, limit: Infinity }));
    for (const [key, text] of this.#overlay) {
      if (!inViewRange(key, range)) continue;
      if (text === undefined) merged.delete(key);
      else merged.set(key, text);
    }
    const keys = [...merged.keys()].sort();
    if (range.reverse) keys.reverse();
    return keys.slice(0, range.limit).map((key) => [key, JSON.parse(merged.get(key)!)]);
  }
}

/**
 * A materialized view of a log; make one with `log.view(options)`. It applies every node of the log, in change
 * order, through `map`, and then follows new nodes live, local or replicated. Its data and checkpoint live in the
 * log's storage (or `options.storage`) and survive a reopen; a new `version`, `reset()`, or deleting the data
 * rebuilds it from the log. A `map` that throws stops the view: `ready()` rejects with the error and an `error`
 * event fires; the log and other views carry on; reopening the view resumes from its checkpoint.
 *
 * Events: `batch` (detail {@link ViewBatchDetail}) after each commit, `error` (detail: the error) when `map` fails.
 *
 * @example A view of the latest value per author
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * const log = new Hyperlog<{ author: string; text: string }>();
 * const latest = log.view({
 *   name: "latest",
 *   map: (nodes, store) => { for (const node of nodes) store.put(node.value.author, node.value.text); },
 * });
 * await log.append({ author: "ann", text: "hi" });
 * await log.append({ author: "ann", text: "bye" });
 * await latest.ready();
 * console.assert(await latest.get("ann") === "bye");
 * ```
 */
export class View<T = unknown> extends EventTarget {
  /** The view's name. */
  readonly name: string;
  /** The version of `map` the view is built with. */
  readonly version: number;
  /** Where the view's data lives. */
  readonly storage: Storage;
  readonly #log: LogHandle;
  readonly #map: ViewOptions<T>["map"];
  readonly #batchSize: number;
  #change = 0;
  /** Committed values (JSON text, or `undefined` for absent) that `map` read or wrote lately. */
  #cache = new Map<string, string | undefined>();
  /** Whether `#change` holds the stored checkpoint yet. */
  #loaded = false;
  #error: Error | undefined;
  #closed = false;
  #running: Promise<void> | undefined;
  #stop: AbortController | undefined;
  #waiters: Array<{ change: number; resolve: () => void; reject: (error: Error) => void }> = [];

  /**
   * Use `log.view(options)`; the constructor is public for subclasses and tests.
   *
   * @example
   * ```ts
   * import { Hyperlog, View } from "../mod.ts";
   * const log = new Hyperlog();
   * const view = new View(log, { name: "noop", map: () => {} });
   * await view.ready();
   * await view.close();
   * ```
   */
  constructor(log: LogHandle, options: ViewOptions<T>) {
    super();
    if (typeof options !== "object" || options === null) throw new TypeError("View options must be an object");
    if (typeof options.name !== "string" || options.name === "") {
      throw new TypeError("A view needs a name: a non-empty string, unique among the views of its storage");
    }
    if (typeof options.map !== "function") throw new TypeError(`View ${options.name} needs a map function`);
    const version = options.version ?? 1;
    if (!Number.isSafeInteger(version)) {
      throw new TypeError(`View ${options.name}: version must be an integer, got ${String(options.version)}`);
    }
    const batchSize = options.batchSize ?? DEFAULT_BATCH;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`View ${options.name}: batchSize must be an integer >= 1, got ${String(options.batchSize)}`);
    }
    this.name = options.name;
    this.version = version;
    this.storage = options.storage ?? log.storage;
    this.#log = log;
    this.#map = options.map;
    this.#batchSize = batchSize;
    let open = OPEN_VIEWS.get(this.storage);
    if (open === undefined) OPEN_VIEWS.set(this.storage, open = new Set());
    if (open.has(this.name)) {
      throw new HyperlogError(
        `A view named ${JSON.stringify(this.name)} is already open on this storage; close it first or use another name`,
      );
    }
    open.add(this.name);
    this.#start();
  }

  /** The change number of the last node the view has applied (its checkpoint). */
  get change(): number {
    return this.#change;
  }

  /** The error that stopped the view, if any. */
  get error(): Error | undefined {
    return this.#error;
  }

  #start(): void {
    const stop = new AbortController();
    this.#stop = stop;
    this.#running = this.#run(stop.signal).then(() => {
      if (this.#log.closed) this.#rejectWaiters(new ClosedError(`The view ${this.name} is closed with its log`));
    }, (err: unknown) => {
      if (stop.signal.aborted) return;
      if (this.#log.closed || err instanceof ClosedError) {
        this.#rejectWaiters(new ClosedError(`The view ${this.name} is closed with its log`));
      } else {
        this.#fail(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  async #run(signal: AbortSignal): Promise<void> {
    const log = this.#log;
    await log.ready();
    await this.storage.open();
    const state = await this.storage.viewState(this.name);
    this.#cache.clear();
    if (state !== undefined && state.version !== this.version) await this.storage.viewDrop(this.name);
    this.#change = state !== undefined && state.version === this.version ? state.change : 0;
    this.#loaded = true;
    this.#settle();
    for (;;) {
      if (signal.aborted || log.closed) return;
      const nodes = await internalsOf<T>(log).readNodes(this.#change, this.#batchSize);
      if (signal.aborted) return;
      if (nodes.length === 0) {
        await log.waitForLength(this.#change, signal);
        continue;
      }
      const store = new BatchStore(this.storage, this.name, this.#cache);
      try {
        await this.#map(nodes, store);
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        const error = new HyperlogError(
          `View ${this.name} stopped: map threw on the batch of changes ${nodes[0]!.change}..${
            nodes[nodes.length - 1]!.change
          }: ${reason}`,
          { cause: err },
        );
        this.#fail(error);
        return;
      }
      if (signal.aborted) return;
      const change = nodes[nodes.length - 1]!.change;
      try {
        await this.storage.viewCommit(this.name, store.writes, { version: this.version, change });
      } catch (err) {
        this.#cache.clear();
        throw err;
      }
      store.committed();
      this.#change = change;
      this.#settle();
      this.dispatchEvent(new CustomEvent<ViewBatchDetail<T>>("batch", { detail: { nodes, change } }));
    }
  }

  #fail(error: Error): void {
    this.#error = error;
    this.#rejectWaiters(error);
    this.dispatchEvent(new CustomEvent("error", { detail: error }));
  }

  #rejectWaiters(error: Error): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  /** Resolves the `ready()` calls the checkpoint has reached. */
  #settle(): void {
    if (!this.#loaded || this.#waiters.length === 0) return;
    const still = [];
    for (const waiter of this.#waiters) {
      if (this.#change >= waiter.change) waiter.resolve();
      else still.push(waiter);
    }
    this.#waiters = still;
  }

  /**
   * Resolves once the view has applied every node the log held when `ready` was called; rejects with the error
   * if `map` failed, or with a `ClosedError` if the view is closed first.
   *
   * @example
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * const log = new Hyperlog<number>();
   * const sum = log.view({
   *   name: "sum",
   *   map: async (nodes, store) => {
   *     let total = (await store.get("total") as number | undefined) ?? 0;
   *     for (const node of nodes) total += node.value;
   *     store.put("total", total);
   *   },
   * });
   * await log.batch([{ value: 1 }, { value: 2 }]);
   * await sum.ready();
   * console.assert(await sum.get("total") === 3);
   * ```
   */
  async ready(): Promise<void> {
    await this.#log.ready().catch((err) => {
      throw this.#log.closed ? new ClosedError(`The view ${this.name} is closed with its log`) : err;
    });
    if (this.#error !== undefined) throw this.#error;
    if (this.#closed) throw new ClosedError(`The view ${this.name} is closed`);
    const change = this.#log.length;
    if (this.#loaded && this.#change >= change) return;
    await new Promise<void>((resolve, reject) => {
      this.#waiters.push({ change, resolve, reject });
      this.#settle();
    });
  }

  /**
   * The value of `key` in the view as committed (not waiting for `ready`), or `undefined`.
   *
   * @example
   * ```ts ignore
   * const value = await view.get("some key");
   * ```
   */
  async get(key: string): Promise<unknown> {
    checkKey(key, "get");
    await this.storage.open();
    return parse(await this.storage.viewGet(this.name, key));
  }

  /**
   * Pairs `[key, value]` of the view as committed, in key order.
   *
   * @example
   * ```ts ignore
   * for (const [key, value] of await view.range({ prefix: "user:" })) console.log(key, value);
   * ```
   */
  async range(options?: ViewRangeOptions): Promise<Array<[string, unknown]>> {
    const range = toRange(options);
    await this.storage.open();
    return (await this.storage.viewRange(this.name, range)).map(([key, text]) => [key, JSON.parse(text)]);
  }

  /**
   * Deletes the view's data and checkpoint and rebuilds it from the start of the log (clears a stopping error).
   *
   * @example
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * const log = new Hyperlog<string>();
   * const view = log.view({ name: "all", map: (nodes, store) => nodes.forEach((n) => store.put(n.key, n.value)) });
   * await log.append("x");
   * await view.reset();
   * await view.ready();
   * console.assert((await view.range()).length === 1);
   * ```
   */
  async reset(): Promise<void> {
    if (this.#closed) throw new ClosedError(`The view ${this.name} is closed`);
    await this.#halt();
    await this.storage.viewDrop(this.name);
    this.#error = undefined;
    this.#change = 0;
    this.#loaded = false;
    this.#start();
  }

  async #halt(): Promise<void> {
    this.#stop?.abort();
    await this.#running;
  }

  /**
   * Stops following the log (after the batch in progress commits). Pending `ready()` calls reject with a
   * `ClosedError`. The data stays; a view opened again with the same name resumes from its checkpoint.
   *
   * @example
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * const log = new Hyperlog();
   * const view = log.view({ name: "v", map: () => {} });
   * await view.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#halt();
    OPEN_VIEWS.get(this.storage)?.delete(this.name);
    this.#rejectWaiters(new ClosedError(`The view ${this.name} is closed`));
  }
}
