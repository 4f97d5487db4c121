/**
 * HyperKV's index and its conflict rules: the record of each key's heads (the writes no later write of the key links
 * to: its current values and deletions), how a node of the log reads as a kv write (as hyperkv 2 read it), the
 * view's map that moves the heads past what a write supersedes, and the checks of what a write is given.
 *
 * @module
 */
import { HyperlogError, NotFoundError } from "./errors.ts";
import { isKey } from "./keys.ts";
import type { KVBatchOp, KVWriteOptions } from "./kv-types.ts";
import type { Node } from "./node.ts";

/** What the index machinery reads of the log: its nodes by key. */
export interface KVLog {
  get(key: string): Promise<Node<unknown>>;
}

/** The index record of a key: its heads that hold values, and its heads that are deletions, in change order. */
export interface HeadsRecord {
  v: string[];
  d: string[];
}

/** The prefix of the index's record of each key. */
export const HEADS = "h";

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
export function kvValue(
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

/** A key given to the store: a string; throws a `TypeError` naming the method otherwise. */
export function checkKey(key: unknown, where: string): string {
  if (typeof key !== "string") {
    throw new TypeError(`kv.${where} takes a string key, got ${key === null ? "null" : typeof key}`);
  }
  return key;
}

/**
 * Checks the `links` of kv operation `op` on `key`: node keys of kv writes of the same key that the log holds;
 * throws a `TypeError` or a `HyperlogError` saying which link is wrong and why.
 */
export async function checkKvLinks(
  log: KVLog,
  key: string,
  links: readonly string[],
  op: number,
): Promise<void> {
  if (!Array.isArray(links)) throw new TypeError(`kv operation ${op}: links must be an array of node keys`);
  for (const link of links) {
    if (!isKey(link)) {
      throw new TypeError(`kv operation ${op}: link ${JSON.stringify(link)} is not a node key (64 hex characters)`);
    }
    let node: Node<unknown>;
    try {
      node = await log.get(link);
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

/** The current values of a key's record, by the key of the node that wrote each. */
export async function valuesOf<V>(log: KVLog, record: HeadsRecord | undefined): Promise<Record<string, V>> {
  const values: Record<string, V> = {};
  if (record === undefined) return values;
  for (const nodeKey of record.v) {
    const write = kvValue((await log.get(nodeKey)).value);
    if (write !== undefined && !write.deleted) values[nodeKey] = write.value as V;
  }
  return values;
}

/** The `links` of a write's options, if given (checked as an object). */
export function linksOf(options: KVWriteOptions): { links?: readonly string[] } {
  if (typeof options !== "object" || options === null) throw new TypeError("kv write options must be an object");
  return options.links === undefined ? {} : { links: options.links };
}

/** Checks one operation of a batch (its type, key, and a put's value); throws a `TypeError` saying what is wrong. */
export function checkOp<V>(op: KVBatchOp<V>, i: number): KVBatchOp<V> {
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
export async function apply(
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
