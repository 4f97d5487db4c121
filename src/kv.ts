/**
 * HyperKV: a peer-to-peer key/value store on a log (the successor of hyperkv). Each write is a node of the log,
 * `{ k: key, v: value }` for a put and `{ d: key }` for a delete (hyperkv 2's format, so logs written by either
 * read the same), linking to the key's current heads; a view indexes the heads of each key. A key is a multi-value register: writes made concurrently (on peers that
 * had not seen each other's) all stay visible until a later write links to them.
 *
 * @module
 */
import { resolveEncoding } from "./encoding.ts";
import { internalsOf } from "./internal.ts";
import {
  apply,
  checkKey,
  checkKvLinks,
  checkOp,
  HEADS,
  type HeadsRecord,
  kvValue,
  linksOf,
  valuesOf,
} from "./kv-index.ts";
import { kvReadStream } from "./kv-read-stream.ts";
import type {
  HyperKVOptions,
  KVBatchOp,
  KVEntry,
  KVNodeValue,
  KVReadStreamOptions,
  KVWriteOptions,
} from "./kv-types.ts";
import type { BatchDoc } from "./log-types.ts";
import type { Hyperlog } from "./log.ts";
import { Mutex } from "./mutex.ts";
import type { Node } from "./node.ts";
import type { View } from "./view.ts";

export type {
  HyperKVOptions,
  KVBatchOp,
  KVEntry,
  KVNodeValue,
  KVReadStreamOptions,
  KVWriteOptions,
} from "./kv-types.ts";

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
          await checkKvLinks(this.log, op.key, op.links, i);
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
    return await valuesOf<V>(this.log, await this.#record(key));
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
    return kvReadStream<V>(this, options);
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
