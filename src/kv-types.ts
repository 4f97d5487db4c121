/**
 * The shapes of HyperKV: the value of a kv node in the log (hyperkv 2's), the store's options, its batch
 * operations and the entries of its read stream.
 *
 * @module
 */
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
