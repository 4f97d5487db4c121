/**
 * HyperKV: a peer-to-peer key/value store on a log (the successor of hyperkv). Each write is a node of the log,
 * `{ k: key, v: value }` for a put and `{ d: key }` for a delete (hyperkv 2's format, so logs written by either
 * read the same), linking to the key's current heads; a view indexes the heads of each key. A key is a multi-value register: writes made concurrently (on peers that
 * had not seen each other's) all stay visible until a later write links to them.
 *
 * @module
 */
import { resolveEncoding } from "./encoding.ts";
import { HyperlogError, NotFoundError } from "./errors.ts";
import { internalsOf } from "./internal.ts";
import { isKey } from "./keys.ts";
import type { BatchDoc, Hyperlog } from "./log.ts";
import { Mutex } from "./mutex.ts";
import type { Node } from "./node.ts";
import type { View, ViewBatchDetail } from "./view.ts";
import type { Storage } from "./storage.ts";

/**
 * The value of a kv node in the log, as hyperkv 2 writes it: a put of `v` to the key `k`, or a delete of the key `d`.
 *
 * @example
 * ```ts
 * import { HyperKV, Hyperlog } from "../mod.ts";
 * import type { KVNodeValue } from "./kv.ts";
 * const log = new Hyperlog<KVNodeValue<string>>();
 * const kv = new HyperKV<string>(log);
 * await kv.put("color", "blue");
 * await kv.del("color");
 * const [put, del] = await kv.history("color");
 * console.assert(JSON.stringify(put!.value) === '{"k":"color","v":"blue"}', JSON.stringify(put?.value));
 * console.assert(JSON.stringify(del!.value) === '{"d":"color"}');
 * ```
 */
export type KVNodeValue<V = unknown> = { k: string; v: V } | { d: string };

/**
 * Options for {@link HyperKV}.
 *
 * @example
 * ```ts
 * import { HyperKV, Hyperlog } from "../mod.ts";
 * import type { HyperKVOptions } from "./kv.ts";
 * const log = new Hyperlog();
 * const options: HyperKVOptions = { name: "settings" };
 * const settings = new HyperKV<string>(log, options);
 * const other = new HyperKV<string>(log, { name: "other" });
 * await settings.put("theme", "dark");
 * console.assert(Object.values(await settings.get("theme"))[0] === "dark");
 * console.assert(Object.values(await other.get("theme")).length === 1, "one log, any index reads every kv node");
 * ```
 */
export interface HyperKVOptions {
  /** The name of the index view (default "kv"); two stores on one log need two names only if they differ. */
  name?: string;
  /** Where the index lives (the log's storage by default). */
  storage?: Storage;
}

/**
 * Options of a write: the kv nodes of the same key it supersedes. Without `links` a write supersedes the key's
 * current heads.
 *
 * @example
 * ```ts
 * import { HyperKV, Hyperlog } from "../mod.ts";
 * import type { KVWriteOptions } from "./kv.ts";
 * const kv = new HyperKV<string>(new Hyperlog());
 * await kv.put("color", "blue");
 * const options: KVWriteOptions = { links: [] }; // supersede nothing: a concurrent value
 * await kv.put("color", "green", options);
 * console.assert(Object.values(await kv.get("color")).sort().join() === "blue,green");
 * ```
 */
export interface KVWriteOptions {
  /** Keys of kv nodes of the same key that this write supersedes. */
  links?: readonly string[];
}

/**
 * One operation of {@link HyperKV.batch}.
 *
 * @example
 * ```ts
 * import { HyperKV, Hyperlog } from "../mod.ts";
 * import type { KVBatchOp } from "./kv.ts";
 * const kv = new HyperKV<number>(new Hyperlog());
 * await kv.put("b", 0);
 * const ops: KVBatchOp<number>[] = [{ type: "put", key: "a", value: 1 }, { type: "del", key: "b" }];
 * const nodes = await kv.batch(ops);
 * console.assert(nodes.length === 2 && Object.values(await kv.get("a"))[0] === 1);
 * console.assert(Object.keys(await kv.get("b")).length === 0);
 * ```
 */
export type KVBatchOp<V = unknown> =
  | { type: "put"; key: string; value: V; links?: readonly string[] }
  | { type: "del"; key: string; links?: readonly string[] };

/**
 * A key and its current values (by node key), as {@link HyperKV.createReadStream} gives them. A deleted key has no
 * values (live streams report deletions that way).
 *
 * @example
 * ```ts
 * import { HyperKV, Hyperlog } from "../mod.ts";
 * import type { KVEntry } from "./kv.ts";
 * const kv = new HyperKV<string>(new Hyperlog());
 * const node = await kv.put("color", "blue");
 * const entries: KVEntry<string>[] = [];
 * for await (const entry of kv.createReadStream()) entries.push(entry);
 * console.assert(entries.length === 1 && entries[0]!.key === "color" && entries[0]!.values[node.key] === "blue");
 * ```
 */
export interface KVEntry<V = unknown> {
  /** The key. */
  key: string;
  /** Every current value, by the key of the node that wrote it. */
  values: Record<string, V>;
}

/**
 * Options for {@link HyperKV.createReadStream}: keys within all the given bounds (and starting with `prefix`), in
 * key order; `live` keeps the stream open and reports every later change of a key in range.
 *
 * @example
 * ```ts
 * import { HyperKV, Hyperlog } from "../mod.ts";
 * import type { KVReadStreamOptions } from "./kv.ts";
 * const kv = new HyperKV<number>(new Hyperlog());
 * await kv.batch([{ type: "put", key: "user:ann", value: 1 }, { type: "put", key: "team:x", value: 2 }]);
 * const options: KVReadStreamOptions = { prefix: "user:" };
 * const keys: string[] = [];
 * for await (const entry of kv.createReadStream(options)) keys.push(entry.key);
 * console.assert(keys.join() === "user:ann");
 * ```
 */
export interface KVReadStreamOptions {
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
  /** After the current entries, report each change of a key in range (deletions with no values). */
  live?: boolean;
}

/** The index record of a key: its heads that hold values, and its heads that are deletions, in change order. */
interface HeadsRecord {
  v: string[];
  d: string[];
}

const HEADS = "h";

/**
 * The key a kv write is indexed under, as hyperkv 2 stored it in LevelDB: a string as it is, any other value as
 * `String(value)` (`5` is "5", `[1, 2]` is "1,2"); `undefined` for `null` (LevelDB refused it, so hyperkv 2 never
 * indexed the write).
 */
function kvKey(key: unknown): string | undefined {
  if (key === undefined || key === null) return undefined;
  return typeof key === "string" ? key : String(key);
}

/**
 * A node's value as a kv write: its key, and its value (absent for a delete); `undefined` if not a kv write. Reads
 * what hyperkv 2 reads: any object with a `k` is a put (of `v`, `undefined` when the writer stored none), else any
 * with a `d` is a delete; keys that are not strings are indexed by their string form (see `kvKey`).
 */
function kvValue(
  value: unknown,
): { key: string; deleted: false; value: unknown } | { key: string; deleted: true } | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const record = value as Record<string, unknown>;
  if (record.k !== undefined) {
    const key = kvKey(record.k);
    return key === undefined ? undefined : { key, deleted: false, value: record.v };
  }
  if (record.d !== undefined) {
    const key = kvKey(record.d);
    return key === undefined ? undefined : { key, deleted: true };
  }
  return undefined;
}

function checkKey(key: unknown, where: string): string {
  if (typeof key !== "string") {
    throw new TypeError(`kv.${where} takes a string key, got ${key === null ? "null" : typeof key}`);
  }
  return key;
}

/**
 * A multi-value key/value store on a log, which replicates with the log. Open one per log (and name); the log
 * needs an encoding that holds objects (`json`, the default).
 *
 * @example Two peers write the same key at once, sync, and see both values until one write supersedes them
 * ```ts
 * import { HyperKV, Hyperlog } from "../mod.ts";
 * const a = new Hyperlog();
 * const b = new Hyperlog();
 * const kva = new HyperKV(a);
 * const kvb = new HyperKV(b);
 * await kva.put("color", "blue");
 * await kvb.put("color", "green");
 * const ra = a.replicate();
 * const rb = b.replicate();
 * ra.readable.pipeTo(rb.writable);
 * rb.readable.pipeTo(ra.writable);
 * await Promise.all([ra.done, rb.done]);
 * console.assert(Object.values(await kva.get("color")).sort().join() === "blue,green");
 * await kva.put("color", "teal");
 * console.assert(Object.values(await kva.get("color")).join() === "teal");
 * ```
 */
export class HyperKV<V = unknown> {
  /** The log the store writes to. */
  // deno-lint-ignore no-explicit-any
  readonly log: Hyperlog<any>;
  /** The index of the current heads and the history of each key. */
  readonly view: View<unknown>;
  readonly #mutex = new Mutex();

  /**
   * Opens the store on `log`, building (or resuming) its index.
   *
   * @example
   * ```ts
   * import { HyperKV, Hyperlog } from "../mod.ts";
   * const kv = new HyperKV(new Hyperlog(), { name: "settings" });
   * await kv.put("theme", "dark");
   * console.assert(Object.values(await kv.get("theme"))[0] === "dark");
   * ```
   */
  // deno-lint-ignore no-explicit-any
  constructor(log: Hyperlog<any>, options: HyperKVOptions = {}) {
    if (typeof options !== "object" || options === null) throw new TypeError("HyperKV options must be an object");
    const codec = internalsOf<unknown>(log).codec;
    if (codec === resolveEncoding("utf-8") || codec === resolveEncoding("binary")) {
      throw new TypeError(
        "HyperKV stores objects ({ k, v } and { d }) in the log, whose values are strings or bytes; " +
          "open the log with valueEncoding json (the default) or a codec that holds objects",
      );
    }
    this.log = log;
    const name = options.name ?? "kv";
    this.view = (log as Hyperlog<unknown>).view({
      name,
      version: 1,
      map: (nodes, store) => apply(nodes, store),
      ...(options.storage === undefined ? {} : { storage: options.storage }),
    });
  }

  /**
   * Resolves once the index holds every node the log held when called.
   *
   * @example
   * ```ts
   * import { HyperKV, Hyperlog } from "../mod.ts";
   * const kv = new HyperKV(new Hyperlog());
   * await kv.ready();
   * ```
   */
  ready(): Promise<void> {
    return this.view.ready();
  }

  /**
   * Sets `key` to `value`. Without `links` the write supersedes the key's current values (and deletion); with
   * `links` it supersedes just those kv nodes of the key. Resolves with the node written.
   *
   * @example
   * ```ts
   * import { HyperKV, Hyperlog } from "../mod.ts";
   * const kv = new HyperKV(new Hyperlog());
   * const first = await kv.put("n", 1);
   * await kv.put("n", 2, { links: [] }); // a second, concurrent value
   * console.assert(Object.keys(await kv.get("n")).length === 2);
   * await kv.put("n", 3, { links: [first.key] }); // supersedes only the first
   * console.assert(Object.values(await kv.get("n")).sort().join() === "2,3");
   * ```
   */
  async put(key: string, value: V, options: KVWriteOptions = {}): Promise<Node<KVNodeValue<V>>> {
    return (await this.batch([{ type: "put", key, value, ...linksOf(options) }]))[0]!;
  }

  /**
   * Deletes `key`: writes a deletion that supersedes the key's current values (or just `links`). `get` then
   * shows no value until a later put.
   *
   * @example
   * ```ts
   * import { HyperKV, Hyperlog } from "../mod.ts";
   * const kv = new HyperKV(new Hyperlog());
   * await kv.put("gone", "soon");
   * await kv.del("gone");
   * console.assert(Object.keys(await kv.get("gone")).length === 0);
   * ```
   */
  async del(key: string, options: KVWriteOptions = {}): Promise<Node<KVNodeValue<V>>> {
    return (await this.batch([{ type: "del", key, ...linksOf(options) }]))[0]!;
  }

  /**
   * Applies puts and deletes atomically (one log batch: all or none). A write without `links` supersedes the
   * key's current heads, including earlier writes of the same key in the batch.
   *
   * @example
   * ```ts
   * import { HyperKV, Hyperlog } from "../mod.ts";
   * const kv = new HyperKV(new Hyperlog());
   * await kv.batch([{ type: "put", key: "a", value: 1 }, { type: "put", key: "a", value: 2 }]);
   * console.assert(Object.values(await kv.get("a")).join() === "2");
   * ```
   */
  async batch(ops: readonly KVBatchOp<V>[]): Promise<Node<KVNodeValue<V>>[]> {
    if (!Array.isArray(ops)) throw new TypeError("kv.batch takes an array of { type, key, value, links } operations");
    const checked = ops.map((op, i) => checkOp(op, i));
    return await this.#mutex.run(async () => {
      await this.view.ready();
      const docs: BatchDoc<KVNodeValue<V>>[] = [];
      const latest = new Map<string, number>();
      for (const [i, op] of checked.entries()) {
        let links: (string | number)[];
        if (op.links !== undefined) {
          await this.#checkLinks(op.key, op.links, i);
          links = [...op.links];
        } else {
          const previous = latest.get(op.key);
          links = previous !== undefined ? [previous] : await this.heads(op.key);
        }
        latest.set(op.key, i);
        const value: KVNodeValue<V> = op.type === "put" ? { k: op.key, v: op.value as V } : { d: op.key };
        docs.push({ links, value });
      }
      const nodes = await this.log.batch(docs) as Node<KVNodeValue<V>>[];
      await this.view.ready();
      return nodes;
    });
  }

  async #checkLinks(key: string, links: readonly string[], op: number): Promise<void> {
    if (!Array.isArray(links)) throw new TypeError(`kv operation ${op}: links must be an array of node keys`);
    for (const link of links) {
      if (!isKey(link)) {
        throw new TypeError(`kv operation ${op}: link ${JSON.stringify(link)} is not a node key (64 hex characters)`);
      }
      let node: Node<unknown>;
      try {
        node = await this.log.get(link);
      } catch (err) {
        if (err instanceof NotFoundError) {
          throw new HyperlogError(
            `kv operation ${op}: link ${link} is not in the log; link to nodes of key ${
              JSON.stringify(key)
            } that the log holds`,
          );
        }
        throw err;
      }
      const value = kvValue(node.value);
      if (value === undefined || value.key !== key) {
        throw new HyperlogError(
          `kv operation ${op}: link ${link} is not a kv node of key ${JSON.stringify(key)} (it is ${
            value === undefined ? "not a kv node" : `a node of key ${JSON.stringify(value.key)}`
          }); link only to writes of the same key`,
        );
      }
    }
  }

  async #record(key: string): Promise<HeadsRecord | undefined> {
    return await this.view.get(HEADS + key) as HeadsRecord | undefined;
  }

  /**
   * The keys of the kv nodes that are the current heads of `key`: its current values and deletions.
   *
   * @example
   * ```ts
   * import { HyperKV, Hyperlog } from "../mod.ts";
   * const kv = new HyperKV(new Hyperlog());
   * const node = await kv.put("k", "v");
   * console.assert((await kv.heads("k"))[0] === node.key);
   * ```
   */
  async heads(key: string): Promise<string[]> {
    checkKey(key, "heads");
    await this.view.ready();
    const record = await this.#record(key);
    return record === undefined ? [] : [...record.v, ...record.d];
  }

  /**
   * Every current value of `key`, by the key of the node that wrote it: `{}` for a key never written or deleted,
   * several entries while concurrent writes are unresolved.
   *
   * @example
   * ```ts
   * import { HyperKV, Hyperlog } from "../mod.ts";
   * const kv = new HyperKV(new Hyperlog());
   * const node = await kv.put("greeting", "hello");
   * console.assert((await kv.get("greeting"))[node.key] === "hello");
   * ```
   */
  async get(key: string): Promise<Record<string, V>> {
    checkKey(key, "get");
    await this.view.ready();
    return await this.#values(await this.#record(key));
  }

  async #values(record: HeadsRecord | undefined): Promise<Record<string, V>> {
    const values: Record<string, V> = {};
    if (record === undefined) return values;
    for (const nodeKey of record.v) {
      const write = kvValue((await this.log.get(nodeKey)).value);
      if (write !== undefined && !write.deleted) values[nodeKey] = write.value as V;
    }
    return values;
  }

  /**
   * Every write (puts and deletes) of `key`, in causal order (a write comes after those it supersedes). Found by
   * walking back from the key's heads along the links between its writes, so it costs one read per write.
   *
   * @example
   * ```ts
   * import { HyperKV, Hyperlog } from "../mod.ts";
   * const kv = new HyperKV(new Hyperlog());
   * await kv.put("k", 1);
   * await kv.del("k");
   * await kv.put("k", 2);
   * const history = await kv.history("k");
   * console.assert(history.map((n) => "k" in n.value ? n.value.v : "deleted").join() === "1,deleted,2");
   * ```
   */
  async history(key: string): Promise<Node<KVNodeValue<V>>[]> {
    checkKey(key, "history");
    await this.view.ready();
    // Every write of the key is a head of it or is linked to by a later write of it: walk back from the heads.
    const found = new Map<string, Node<KVNodeValue<V>>>();
    const queue = await this.heads(key);
    while (queue.length > 0) {
      const nodeKey = queue.pop()!;
      if (found.has(nodeKey)) continue;
      const node = await this.log.get(nodeKey).catch(() => undefined);
      if (node === undefined || kvValue(node.value)?.key !== key) continue;
      found.set(nodeKey, node as Node<KVNodeValue<V>>);
      for (const link of node.links) if (!found.has(link)) queue.push(link);
    }
    return [...found.values()].sort((a, b) => a.change - b.change);
  }

  /**
   * The keys that have values, with their values, in key order; `live: true` then reports each later change of
   * a key in range (a deleted key comes with no values).
   *
   * @example
   * ```ts
   * import { HyperKV, Hyperlog } from "../mod.ts";
   * const kv = new HyperKV(new Hyperlog());
   * await kv.batch([{ type: "put", key: "b", value: 2 }, { type: "put", key: "a", value: 1 }]);
   * const keys = [];
   * for await (const entry of kv.createReadStream()) keys.push(entry.key);
   * console.assert(keys.join() === "a,b");
   * ```
   */
  createReadStream(options: KVReadStreamOptions = {}): ReadableStream<KVEntry<V>> {
    if (typeof options !== "object" || options === null) throw new TypeError("Read stream options must be an object");
    const bounds: Record<string, string> = {};
    for (const name of ["gt", "gte", "lt", "lte", "prefix"] as const) {
      const bound = options[name];
      if (bound === undefined) continue;
      if (typeof bound !== "string") throw new TypeError(`Read stream bound ${name} must be a string`);
      bounds[name] = HEADS + bound;
    }
    if (bounds.prefix === undefined) bounds.prefix = HEADS;
    const inRange = (key: string) =>
      (options.gt === undefined || key > options.gt) && (options.gte === undefined || key >= options.gte) &&
      (options.lt === undefined || key < options.lt) && (options.lte === undefined || key <= options.lte) &&
      (options.prefix === undefined || key.startsWith(options.prefix));
    const live = options.live === true;
    const PAGE = 256;
    let cursor: string | undefined;
    let snapshotDone = false;
    let changed = new Set<string>();
    let wake: (() => void) | undefined;
    const onBatch = (event: Event) => {
      for (const node of (event as CustomEvent<ViewBatchDetail>).detail.nodes) {
        const write = kvValue(node.value);
        if (write !== undefined && inRange(write.key)) changed.add(write.key);
      }
      wake?.();
    };
    const onError = () => wake?.();
    const stop = () => {
      this.view.removeEventListener("batch", onBatch);
      this.view.removeEventListener("error", onError);
      wake?.();
    };
    if (live) {
      this.view.addEventListener("batch", onBatch);
      this.view.addEventListener("error", onError);
    }
    return new ReadableStream<KVEntry<V>>({
      pull: async (controller) => {
        try {
          if (!snapshotDone) {
            await this.view.ready();
            for (;;) {
              const page = await this.view.range({
                ...bounds,
                ...(cursor === undefined ? {} : { gt: cursor }),
                limit: PAGE,
              });
              if (page.length === 0) break;
              cursor = page[page.length - 1]![0];
              let sent = false;
              for (const [viewKey, record] of page) {
                const values = await this.#values(record as HeadsRecord);
                if (Object.keys(values).length === 0) continue;
                controller.enqueue({ key: viewKey.slice(HEADS.length), values });
                sent = true;
              }
              if (sent) return;
            }
            snapshotDone = true;
            if (!live) return controller.close();
          }
          for (;;) {
            if (changed.size > 0) {
              const keys = [...changed].sort();
              changed = new Set();
              for (const key of keys) controller.enqueue({ key, values: await this.#values(await this.#record(key)) });
              return;
            }
            if (this.log.closed || this.view.error !== undefined) {
              stop();
              return controller.close();
            }
            // Woken by the index's next batch, by any commit of the log, or by its close.
            await new Promise<void>((resolve) => {
              wake = resolve;
              this.log.waitForLength(this.log.length).then(resolve, resolve);
            });
            wake = undefined;
          }
        } catch (err) {
          stop();
          if (this.log.closed) controller.close();
          else controller.error(err);
        }
      },
      cancel: stop,
    }, { highWaterMark: 0 });
  }

  /**
   * Stops the index (the log stays open). The index's data stays and is resumed by the next `HyperKV`.
   *
   * @example
   * ```ts
   * import { HyperKV, Hyperlog } from "../mod.ts";
   * const kv = new HyperKV(new Hyperlog());
   * await kv.close();
   * ```
   */
  async close(): Promise<void> {
    await this.#mutex.idle();
    await this.view.close();
  }
}

function linksOf(options: KVWriteOptions): { links?: readonly string[] } {
  if (typeof options !== "object" || options === null) throw new TypeError("kv write options must be an object");
  return options.links === undefined ? {} : { links: options.links };
}

function checkOp<V>(op: KVBatchOp<V>, i: number): KVBatchOp<V> {
  if (typeof op !== "object" || op === null) throw new TypeError(`kv operation ${i} must be an object`);
  if (op.type !== "put" && op.type !== "del") {
    const type = (op as { type?: unknown }).type;
    throw new TypeError(`kv operation ${i} has type ${JSON.stringify(type)}; use "put" or "del"`);
  }
  checkKey(op.key, op.type);
  if (op.type === "put" && op.value === undefined) {
    throw new TypeError(`kv operation ${i}: put of ${JSON.stringify(op.key)} has no value; use del to remove a key`);
  }
  return op;
}

/** The index's map: moves each key's heads past the nodes a write links to. */
async function apply(
  nodes: readonly Node<unknown>[],
  store: { get(key: string): Promise<unknown>; put(key: string, value: unknown): void },
): Promise<void> {
  const records = new Map<string, HeadsRecord>();
  for (const node of nodes) {
    const write = kvValue(node.value);
    if (write === undefined) continue;
    let record = records.get(write.key);
    if (record === undefined) {
      record = (await store.get(HEADS + write.key) as HeadsRecord | undefined) ?? { v: [], d: [] };
      records.set(write.key, record);
    }
    if (node.links.length > 0) {
      const links = node.links;
      record.v = record.v.filter((head) => !links.includes(head));
      record.d = record.d.filter((head) => !links.includes(head));
    }
    (write.deleted ? record.d : record.v).push(node.key);
  }
  for (const [key, record] of records) store.put(HEADS + key, record);
}
