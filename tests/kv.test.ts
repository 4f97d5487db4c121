/**
 * HyperKV through the public API: multi-value register semantics over real replication between two and three
 * peers, deletes and revivals, history, read streams (live too), rebuilds that give the same answers, bad input.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { HyperKV, Hyperlog, type KVEntry } from "../mod.ts";
import { openSqlite } from "../storage/sqlite-open.ts";
import { seeded } from "./_helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "hyperlog-kv-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function sync(a: Hyperlog<unknown>, b: Hyperlog<unknown>): Promise<void> {
  const ra = a.replicate();
  const rb = b.replicate();
  ra.readable.pipeTo(rb.writable).catch(() => {});
  rb.readable.pipeTo(ra.writable).catch(() => {});
  await Promise.all([ra.done, rb.done]);
}

function values(record: Record<string, unknown>): unknown[] {
  return Object.values(record).map((v) => JSON.stringify(v)).sort().map((v) => JSON.parse(v));
}

function peers(n: number): Array<{ log: Hyperlog<unknown>; kv: HyperKV<unknown> }> {
  return Array.from({ length: n }, () => {
    const log = new Hyperlog();
    return { log, kv: new HyperKV(log) };
  });
}

describe("HyperKV", () => {
  it("put, get, overwrite, del and revive on one peer", async () => {
    const [{ log, kv }] = peers(1) as [{ log: Hyperlog<unknown>; kv: HyperKV<unknown> }];
    assert.deepEqual(await kv.get("k"), {});
    const a = await kv.put("k", { n: 1 });
    assert.deepEqual(a.value, { k: "k", v: { n: 1 } });
    assert.deepEqual(await kv.get("k"), { [a.key]: { n: 1 } });
    const b = await kv.put("k", "two");
    assert.deepEqual(b.links, [a.key], "a put links to the key's current heads");
    assert.deepEqual(await kv.get("k"), { [b.key]: "two" });
    const d = await kv.del("k");
    assert.deepEqual(d.links, [b.key]);
    assert.deepEqual(await kv.get("k"), {});
    assert.deepEqual(await kv.heads("k"), [d.key], "the deletion is the head");
    const c = await kv.put("k", 3);
    assert.deepEqual(c.links, [d.key], "a put after a delete links to the deletion");
    assert.deepEqual(await kv.get("k"), { [c.key]: 3 });
    const history = await kv.history("k");
    assert.deepEqual(history.map((n) => n.key), [a.key, b.key, d.key, c.key]);
    await log.close();
  });

  it("concurrent puts on two peers both survive a sync; a later put that links to both leaves one", async () => {
    const [p, q] = peers(2) as Array<{ log: Hyperlog<unknown>; kv: HyperKV<unknown> }>;
    await p!.kv.put("color", "blue");
    await sync(p!.log, q!.log);
    await p!.kv.put("color", "red");
    await q!.kv.put("color", "green");
    await sync(p!.log, q!.log);
    for (const peer of [p!, q!]) assert.deepEqual(values(await peer.kv.get("color")), ["green", "red"]);
    assert.deepEqual(await p!.kv.get("color"), await q!.kv.get("color"));
    const resolved = await q!.kv.put("color", "teal");
    assert.equal(resolved.links.length, 2, "the resolving put links to both values");
    await sync(p!.log, q!.log);
    for (const peer of [p!, q!]) assert.deepEqual(values(await peer.kv.get("color")), ["teal"]);
    await p!.log.close();
    await q!.log.close();
  });

  it("a delete concurrent with a put leaves the put's value; a put after both revives cleanly", async () => {
    const [p, q] = peers(2) as Array<{ log: Hyperlog<unknown>; kv: HyperKV<unknown> }>;
    await p!.kv.put("x", 1);
    await sync(p!.log, q!.log);
    await p!.kv.del("x");
    await q!.kv.put("x", 2);
    await sync(p!.log, q!.log);
    for (const peer of [p!, q!]) {
      assert.deepEqual(values(await peer.kv.get("x")), [2]);
      assert.equal((await peer.kv.heads("x")).length, 2, "the deletion and the put are both heads");
    }
    await p!.kv.del("x");
    await sync(p!.log, q!.log);
    for (const peer of [p!, q!]) assert.deepEqual(await peer.kv.get("x"), {});
    await q!.kv.put("x", 3);
    await sync(p!.log, q!.log);
    for (const peer of [p!, q!]) assert.deepEqual(values(await peer.kv.get("x")), [3]);
    await p!.log.close();
    await q!.log.close();
  });

  it("three peers with random puts, deletes and random pairwise syncs converge on the same answers", async () => {
    const seed = Math.floor(Math.random() * 2 ** 31);
    const random = seeded(seed);
    const group = peers(3);
    const keys = ["a", "b", "c", "d"];
    try {
      for (let round = 0; round < 60; round++) {
        const peer = group[Math.floor(random() * 3)]!;
        const key = keys[Math.floor(random() * keys.length)]!;
        const roll = random();
        if (roll < 0.6) await peer.kv.put(key, { round });
        else if (roll < 0.8) await peer.kv.del(key);
        else {
          const i = Math.floor(random() * 3);
          const j = (i + 1 + Math.floor(random() * 2)) % 3;
          await sync(group[i]!.log, group[j]!.log);
        }
      }
      await sync(group[0]!.log, group[1]!.log);
      await sync(group[1]!.log, group[2]!.log);
      await sync(group[0]!.log, group[1]!.log);
      for (const key of keys) {
        const answers = await Promise.all(group.map((p) => p.kv.get(key)));
        assert.deepEqual(answers[1], answers[0], `key ${key}`);
        assert.deepEqual(answers[2], answers[0], `key ${key}`);
        const histories = await Promise.all(group.map(async (p) => (await p.kv.history(key)).map((n) => n.key).sort()));
        assert.deepEqual(histories[1], histories[0]);
        assert.deepEqual(histories[2], histories[0]);
      }
      // The heads of a key are its writes that no later write of the key links to.
      for (const key of keys) {
        const history = await group[0]!.kv.history(key);
        const linked = new Set(history.flatMap((n) => n.links));
        const expected = history.filter((n) => !linked.has(n.key)).map((n) => n.key).sort();
        assert.deepEqual((await group[0]!.kv.heads(key)).sort(), expected);
      }
    } catch (err) {
      throw new Error(`kv convergence failed with seed ${seed}: ${(err as Error).message}`, { cause: err });
    } finally {
      for (const p of group) await p.log.close();
    }
  });

  it("rebuilds its index from the log after the index is deleted, with exactly the same answers", async () => {
    const path = join(dir, "rebuild.db");
    let log = new Hyperlog(await openSqlite(path));
    let kv = new HyperKV(log);
    const other = new Hyperlog();
    const otherKv = new HyperKV(other);
    for (let i = 0; i < 30; i++) await kv.put(`key${i % 7}`, i);
    await kv.del("key3");
    await otherKv.put("key1", "concurrent");
    await sync(log, other);
    const keys = [...Array(7).keys()].map((i) => `key${i}`);
    const before = await Promise.all(keys.map(async (k) => [await kv.get(k), await kv.history(k)]));
    const listed: KVEntry[] = [];
    for await (const entry of kv.createReadStream()) listed.push(entry);
    await log.close();
    await other.close();
    const raw = await openSqlite(path);
    await raw.open();
    (raw as unknown as { driver: { exec(sql: string): void } }).driver.exec("DROP TABLE hyperlog_view_data");
    await raw.close();
    log = new Hyperlog(await openSqlite(path));
    kv = new HyperKV(log);
    const after = await Promise.all(keys.map(async (k) => [await kv.get(k), await kv.history(k)]));
    assert.deepEqual(after, before);
    const relisted: KVEntry[] = [];
    for await (const entry of kv.createReadStream()) relisted.push(entry);
    assert.deepEqual(relisted, listed);
    assert.ok(!relisted.some((e) => e.key === "key3"), "a deleted key is not listed");
    await kv.view.reset();
    assert.deepEqual(await Promise.all(keys.map(async (k) => [await kv.get(k), await kv.history(k)])), before);
    await log.close();
  });

  it("read streams: key order, bounds and prefix, and live changes (a deletion has no values)", async () => {
    const [{ log, kv }] = peers(1) as [{ log: Hyperlog<unknown>; kv: HyperKV<unknown> }];
    await kv.batch(["b", "a", "user:2", "user:1", "c", "user:10"].map((key) => ({ type: "put", key, value: key })));
    await kv.del("c");
    const read = async (options = {}) => {
      const keys: string[] = [];
      for await (const entry of kv.createReadStream(options)) keys.push(entry.key);
      return keys;
    };
    assert.deepEqual(await read(), ["a", "b", "user:1", "user:10", "user:2"]);
    assert.deepEqual(await read({ prefix: "user:" }), ["user:1", "user:10", "user:2"]);
    assert.deepEqual(await read({ gt: "a", lt: "user:10" }), ["b", "user:1"]);
    assert.deepEqual(await read({ gte: "a", lte: "b" }), ["a", "b"]);
    const stream = kv.createReadStream({ prefix: "user:", live: true });
    const reader = stream.getReader();
    const got: KVEntry[] = [];
    for (let i = 0; i < 3; i++) got.push((await reader.read()).value!);
    assert.deepEqual(got.map((e) => e.key), ["user:1", "user:10", "user:2"]);
    await kv.put("other", 1);
    const put = await kv.put("user:3", "three");
    assert.deepEqual(await reader.read(), { done: false, value: { key: "user:3", values: { [put.key]: "three" } } });
    await kv.del("user:1");
    assert.deepEqual(await reader.read(), { done: false, value: { key: "user:1", values: {} } });
    await reader.cancel();
    await log.close();
  });

  it("a batch is atomic and links writes of the same key in order", async () => {
    const [{ log, kv }] = peers(1) as [{ log: Hyperlog<unknown>; kv: HyperKV<unknown> }];
    const [a, b, c] = await kv.batch([
      { type: "put", key: "k", value: 1 },
      { type: "put", key: "j", value: 2 },
      { type: "del", key: "k" },
    ]);
    assert.deepEqual(c!.links, [a!.key]);
    assert.deepEqual(b!.links, []);
    assert.deepEqual(await kv.get("k"), {});
    await assert.rejects(
      kv.batch([{ type: "put", key: "m", value: 1 }, { type: "put", key: "n", value: 10n }]),
      { name: "EncodingError" },
    );
    assert.deepEqual(await kv.get("m"), {}, "nothing of a failed batch is stored");
    assert.equal(log.length, 3);
    await log.close();
  });

  it("refuses bad input with clear errors and stores nothing", async () => {
    const [{ log, kv }] = peers(1) as [{ log: Hyperlog<unknown>; kv: HyperKV<unknown> }];
    const a = await kv.put("a", 1);
    const plain = await log.append("not a kv node");
    await assert.rejects(kv.put(5 as unknown as string, 1), /kv.put takes a string key, got number/);
    await assert.rejects(kv.put("a", undefined), /has no value; use del to remove a key/);
    await assert.rejects(kv.put("a", 10n), { name: "EncodingError" });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await assert.rejects(kv.put("a", cyclic), { name: "EncodingError" });
    await assert.rejects(kv.put("b", 1, { links: [a.key] }), /is not a kv node of key "b" \(it is a node of key "a"\)/);
    await assert.rejects(kv.put("a", 1, { links: [plain.key] }), /is not a kv node of key "a" \(it is not a kv node\)/);
    await assert.rejects(kv.put("a", 1, { links: ["00".repeat(32)] }), /is not in the log/);
    await assert.rejects(kv.put("a", 1, { links: ["nope"] }), /is not a node key/);
    await assert.rejects(kv.batch([{ type: "set", key: "a" } as never]), /use "put" or "del"/);
    await assert.rejects(kv.get(null as unknown as string), /kv.get takes a string key, got null/);
    for (const valueEncoding of ["utf-8", "binary"] as const) {
      assert.throws(() => new HyperKV(new Hyperlog({ valueEncoding })), /open the log with valueEncoding json/);
    }
    assert.equal(log.length, 2, "nothing was stored");
    assert.deepEqual(await kv.get("a"), { [a.key]: 1 });
    await log.close();
  });

  it("explicit links: supersede only the named write", async () => {
    const [{ log, kv }] = peers(1) as [{ log: Hyperlog<unknown>; kv: HyperKV<unknown> }];
    const one = await kv.put("k", 1);
    const two = await kv.put("k", 2, { links: [] });
    assert.deepEqual(values(await kv.get("k")), [1, 2]);
    await kv.put("k", 3, { links: [one.key] });
    assert.deepEqual(values(await kv.get("k")), [2, 3]);
    await kv.del("k", { links: [two.key] });
    assert.deepEqual(values(await kv.get("k")), [3]);
    await log.close();
  });
});
