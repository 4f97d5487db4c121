/**
 * HyperKV reads logs written by hyperkv 2.1.1 exactly: the original (on hyperlog 4.12.1 and memdb, from the
 * devDependencies) writes a log, including writes hyperkv 2 accepts but our typed API does not make (keys that are
 * numbers, booleans, arrays, objects, null or empty; puts without a value); the nodes are copied into a new log
 * (same keys: unsigned keys are hyperlog 4's), and for every key our HyperKV must give what the original gives.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import { HyperKV, Hyperlog, type RawNode } from "../mod.ts";

const require = createRequire(import.meta.url);

type Callback<R> = (err: Error | null, result: R) => void;
interface OldNode {
  key: string;
  links: string[];
  value: Uint8Array;
}
interface OldLog {
  add(links: string[] | null, value: unknown, cb: Callback<OldNode>): void;
  createReadStream(options: { valueEncoding: string }): NodeJS.ReadableStream;
}
interface OldKV {
  put(key: unknown, value: unknown, cb: Callback<OldNode>): void;
  del(key: unknown, cb: Callback<OldNode>): void;
  get(key: unknown, cb: Callback<Record<string, { value?: unknown; deleted?: boolean }>>): void;
  createReadStream(): NodeJS.ReadableStream;
  on(event: string, listener: (err: Error) => void): void;
}

function call<R>(fn: (cb: Callback<R>) => void): Promise<R> {
  return new Promise((resolve, reject) => fn((err, result) => (err ? reject(err) : resolve(result))));
}

function collect<R>(stream: NodeJS.ReadableStream): Promise<R[]> {
  return new Promise((resolve, reject) => {
    const out: R[] = [];
    stream.on("data", (row: R) => out.push(row)).on("error", reject).on("end", () => resolve(out));
  });
}

/** What the original's get gives, in our shape: deletions left out, `{ value }` unwrapped. */
function ours(values: Record<string, { value?: unknown; deleted?: boolean }>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [node, entry] of Object.entries(values)) if (entry.deleted !== true) out[node] = entry.value;
  return out;
}

describe("HyperKV on a hyperkv 2 log", () => {
  it("reads every key and value the original reads, non-string keys and missing values included", async () => {
    const hyperlog = require("hyperlog4") as (db: unknown, options: object) => OldLog;
    const memdb = require("memdb") as () => unknown;
    const hyperkv = require("hyperkv") as (options: { log: OldLog; db: unknown }) => OldKV;
    const old = hyperlog(memdb(), { valueEncoding: "json" });
    const oldKv = hyperkv({ log: old, db: memdb() });
    const errors: string[] = [];
    oldKv.on("error", (err) => errors.push(err.message));

    // Through hyperkv 2's own API.
    await call((cb) => oldKv.put(5, "five", cb));
    await call((cb) => oldKv.put("5", "five again", cb)); // the same key as 5 for hyperkv 2
    await call((cb) => oldKv.put(true, { t: 1 }, cb));
    await call((cb) => oldKv.put([1, 2], "array key", cb));
    await call((cb) => oldKv.put({ a: 1 }, "object key", cb));
    await call((cb) => oldKv.put(1.5, "float key", cb));
    await call((cb) => oldKv.put("no-value", undefined, cb)); // stored as { k } without v
    await call((cb) => oldKv.put("gone", 1, cb));
    await call((cb) => oldKv.del("gone", cb));
    await call((cb) => oldKv.put(7, "seven", cb));
    await call((cb) => oldKv.del(7, cb));
    await call((cb) => oldKv.put("plain", "text", cb));
    // Straight into the log: writes hyperkv 2 skips, and odd shapes it reads.
    await call((cb) => old.add(null, { k: null, v: "null key" }, cb));
    await call((cb) => old.add(null, { d: null }, cb));
    await call((cb) => old.add(null, { k: "both", d: "both", v: "put wins" }, cb));
    await call((cb) => old.add(null, { d: "both" }, cb));
    await call((cb) => old.add(null, ["k", "not a write"], cb));
    await call((cb) => old.add(null, "just a string", cb));
    await call((cb) => old.add(null, { v: "no key" }, cb));

    // The same nodes, bytes as stored, into a new log.
    const rows = await collect<OldNode>(old.createReadStream({ valueEncoding: "binary" }));
    const log = new Hyperlog();
    const raw: RawNode[] = rows.map((row) => ({ key: row.key, links: row.links, value: new Uint8Array(row.value) }));
    const stored = await log.ingest(raw);
    assert.equal(stored.length, rows.length, "every node of the hyperkv 2 log is stored with its key");
    const kv = new HyperKV(log);

    // The original's view of every key it indexed.
    const oldRows = await collect<{ key: string; values: Record<string, { value?: unknown; deleted?: boolean }> }>(
      oldKv.createReadStream(),
    );
    const oldKeys = oldRows.map((row) => row.key).sort();
    assert.deepEqual(oldKeys, ["1,2", "1.5", "5", "7", "[object Object]", "both", "gone", "no-value", "plain", "true"]);
    for (const key of oldKeys) {
      const expected = ours(await call((cb) => oldKv.get(key, cb)));
      assert.deepEqual(await kv.get(key), expected, `key ${JSON.stringify(key)}`);
    }
    const noValue = await kv.get("no-value");
    assert.equal(Object.keys(noValue).length, 1, "a put without a value is a value (undefined), as in hyperkv 2");
    assert.equal(Object.values(noValue)[0], undefined);
    assert.equal(Object.keys(await kv.get("5")).length, 1, '5 and "5" are one key; the second put superseded');

    // Our read stream lists the keys that have values, as the original's does (its deleted keys show no values).
    const ourKeys: string[] = [];
    for await (const entry of kv.createReadStream()) ourKeys.push(entry.key);
    const oldWithValues = oldRows.filter((row) => Object.keys(ours(row.values)).length > 0).map((row) => row.key);
    assert.deepEqual(ourKeys.sort(), oldWithValues.sort());
    assert.ok(errors.length > 0, "hyperkv 2 refused the null keys (and we skip them too)");
    await kv.close();
    await log.close();
  });
});
