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
import type { Storage } from "./storage.ts";
import { BatchStore, checkKey, parse, toRange } from "./view-batch.ts";
import type { ViewBatchDetail, ViewOptions, ViewRangeOptions } from "./view-types.ts";

export type { ViewBatchDetail, ViewOptions, ViewRangeOptions, ViewStore } from "./view-types.ts";

const DEFAULT_BATCH = 5000;

/** Views open on each storage object, by name: two views of one name on one storage would corrupt each other. */
const OPEN_VIEWS = new WeakMap<Storage, Set<string>>();

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

  /** The `ClosedError` of a call on this view once it (or, `why` says, its log) is closed. */
  #closedError(why: string): ClosedError {
    return new ClosedError(`The view ${this.name} is closed${why}`);
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
      if (this.#log.closed) this.#rejectWaiters(this.#closedError(" with its log"));
    }, (err: unknown) => {
      if (stop.signal.aborted) return;
      if (this.#log.closed || err instanceof ClosedError) {
        this.#rejectWaiters(this.#closedError(" with its log"));
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
      throw this.#log.closed ? this.#closedError(" with its log") : err;
    });
    if (this.#error !== undefined) throw this.#error;
    if (this.#closed) throw this.#closedError("");
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
    if (this.#closed) throw this.#closedError("");
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
    this.#rejectWaiters(this.#closedError(""));
  }
}
