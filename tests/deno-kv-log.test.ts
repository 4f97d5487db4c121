/**
 * Hyperlog and HyperKV on Deno KV through the public API: a log in a Deno KV file (appends, batches past Deno KV's
 * limits, reopen), several logs in one database, replication with a peer on another backend, and HyperKV's
 * multi-value register with its view in Deno KV. Deno only (Deno.openKv).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { HyperKV, Hyperlog } from "../mod.ts";
import { DenoKvStorage } from "../storage/deno-kv.ts";
import { denoOnly } from "./_helpers.ts";

async function sync(a: Hyperlog<unknown>, b: Hyperlog<unknown>): Promise<void> {
  const ra = a.replicate();
  const rb = b.replicate();
  ra.readable.pipeTo(rb.writable).catch(() => {});
  rb.readable.pipeTo(ra.writable).catch(() => {});
  await Promise.all([ra.done, rb.done]);
}

denoOnly("Hyperlog on Deno KV", "Deno KV (Deno.openKv) exists in Deno only", () => {
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-denokv-log-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps a log across a reopen: id, nodes, heads, a batch of 3 000 in one atomic step", async () => {
    const path = join(dir, "log.kv");
    const log = new Hyperlog<{ n: number }>(await DenoKvStorage.open(path), { valueEncoding: "json" });
    const first = await log.append({ n: 0 });
    const batch = await log.batch(Array.from({ length: 3000 }, (_, i) => ({ value: { n: i + 1 } })));
    const id = log.id;
    await log.close();
    const again = new Hyperlog<{ n: number }>(await DenoKvStorage.open(path), { valueEncoding: "json" });
    await again.ready();
    assert.equal(again.id, id);
    assert.equal(again.length, 3001);
    assert.deepEqual((await again.get(batch[2999]!.key)).value, { n: 3000 });
    assert.deepEqual((await again.get(first.key)).value, { n: 0 });
    const values: number[] = [];
    for await (const node of again.createReadStream({ since: 2990 })) values.push(node.value.n);
    assert.deepEqual(values, Array.from({ length: 11 }, (_, i) => 2990 + i));
    await again.close();
  });

  it("keeps several logs in one database, and syncs one with a peer on another backend", async () => {
    const kv = await (globalThis as unknown as { Deno: { openKv(p: string): Promise<DenoKvStorage["kv"]> } }).Deno
      .openKv(":memory:");
    const chat = new Hyperlog<string>(new DenoKvStorage(kv, { prefix: ["logs", "chat"] }), { valueEncoding: "utf-8" });
    const notes = new Hyperlog<string>(new DenoKvStorage(kv, { prefix: ["logs", "notes"] }), {
      valueEncoding: "utf-8",
    });
    await chat.append("hello");
    await notes.append("a note");
    await notes.append("another");
    const peer = new Hyperlog<string>(undefined, { valueEncoding: "utf-8" });
    await peer.append("from the peer");
    await sync(chat as Hyperlog<unknown>, peer as Hyperlog<unknown>);
    assert.equal(chat.length, 2);
    assert.equal(peer.length, 2);
    assert.equal(notes.length, 2);
    assert.deepEqual((await chat.heads()).map((n) => n.value).sort(), ["from the peer", "hello"]);
    assert.notEqual(chat.id, notes.id);
    await chat.close();
    await notes.close();
    await peer.close();
    kv.close();
  });

  it("two logs on one database (two isolates on Deploy) see each other's commits as they happen", async () => {
    const kv = await (globalThis as unknown as { Deno: { openKv(p: string): Promise<DenoKvStorage["kv"]> } }).Deno
      .openKv(":memory:");
    const a = new Hyperlog<string>(new DenoKvStorage(kv, { prefix: ["logs", "shared"] }), { valueEncoding: "utf-8" });
    const b = new Hyperlog<string>(new DenoKvStorage(kv, { prefix: ["logs", "shared"] }), { valueEncoding: "utf-8" });
    await a.ready();
    await b.ready();
    const heard: string[] = [];
    b.addEventListener("add", (event) => void heard.push((event as CustomEvent<{ value: string }>).detail.value));
    const grown = b.waitForLength(0);
    const first = await a.append("from a");
    await grown;
    assert.equal(b.length, 1);
    assert.deepEqual(heard, ["from a"], "b fires add for a's node");
    // b writes on top without a conflict: it already knows a's node.
    const second = await b.append("from b");
    assert.deepEqual(second.links, [first.key]);
    await a.waitForLength(1);
    assert.equal(a.length, 2);
    assert.deepEqual((await a.heads()).map((node) => node.value), ["from b"]);
    await a.close();
    await b.close();
    kv.close();
  });

  it("HyperKV: concurrent puts survive a sync, a later put resolves them, the index is in Deno KV", async () => {
    const path = join(dir, "kv.kv");
    let log = new Hyperlog(await DenoKvStorage.open(path));
    let kv = new HyperKV(log);
    const other = new Hyperlog();
    const otherKv = new HyperKV(other);
    await kv.put("color", "blue");
    await sync(log, other);
    await kv.put("color", "red");
    await otherKv.put("color", "green");
    for (let i = 0; i < 40; i++) await kv.put(`key${i % 9}`, i);
    await kv.del("key3");
    await sync(log, other);
    assert.deepEqual(Object.values(await kv.get("color")).sort(), ["green", "red"]);
    const resolved = await kv.put("color", "teal");
    assert.equal(resolved.links.length, 2);
    const listed = [];
    for await (const entry of kv.createReadStream()) listed.push(entry.key);
    assert.deepEqual(listed, ["color", ...[0, 1, 2, 4, 5, 6, 7, 8].map((i) => `key${i}`)]);
    await log.close();
    // Reopened, the index answers from Deno KV without replaying the log.
    log = new Hyperlog(await DenoKvStorage.open(path));
    kv = new HyperKV(log);
    assert.deepEqual(Object.values(await kv.get("color")), ["teal"]);
    assert.deepEqual(Object.values(await kv.get("key8")), [35]);
    assert.deepEqual(await kv.get("key3"), {});
    assert.equal((await kv.history("key3")).length, 6, "five puts and the deletion");
    await log.close();
    await other.close();
  });
});
