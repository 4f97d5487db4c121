/**
 * A Hyperlog on a SQLite file, through the public API: it survives being closed and reopened with its nodes,
 * heads, id and change numbers, on the runtime's own driver.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Hyperlog, type Node } from "../mod.ts";
import { openSqlite } from "../storage/sqlite-open.ts";

const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const dir = mkdtempSync(join(tmpdir(), "hyperlog-sqlite-log-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function readAll<T>(log: Hyperlog<T>): Promise<Node<T>[]> {
  const nodes: Node<T>[] = [];
  for await (const node of log.createReadStream()) nodes.push(node);
  return nodes;
}

describe(`Hyperlog on SQLite (${runtime})`, () => {
  it("keeps nodes, heads, id and change numbers across close and reopen", async () => {
    const path = join(dir, "reopen.db");
    const log = new Hyperlog<{ n: number } | string>(await openSqlite(path), { valueEncoding: "json" });
    await log.ready();
    const id = log.id;
    const a = await log.add(null, { n: 1 });
    const b = await log.add([a.key], "two");
    const fork = await log.add([a.key], { n: 3 });
    const batch = await log.batch([{ value: "x" }, { links: [0, b.key], value: "y" }]);
    const before = await readAll(log);
    await log.close();

    const again = new Hyperlog<{ n: number } | string>(await openSqlite(path), { valueEncoding: "json" });
    await again.ready();
    assert.equal(again.id, id);
    assert.equal(again.length, 5);
    assert.deepEqual(await readAll(again), before);
    assert.deepEqual((await again.heads()).map((node) => node.key), [fork.key, batch[1]!.key].sort());
    assert.deepEqual(await again.get(b.key), b);
    const next = await again.append("after reopen");
    assert.equal(next.change, 6);
    assert.deepEqual([...next.links].sort(), [fork.key, batch[1]!.key].sort());
    await again.close();

    const third = new Hyperlog(await openSqlite(path), { valueEncoding: "json" });
    await third.ready();
    assert.equal(third.length, 6);
    assert.deepEqual((await third.heads()).map((node) => node.key), [next.key]);
    await third.close();
  });

  it("replicates between two SQLite logs and keeps the result", async () => {
    const pathA = join(dir, "a.db");
    const pathB = join(dir, "b.db");
    const a = new Hyperlog<string>(await openSqlite(pathA), { valueEncoding: "utf-8" });
    const b = new Hyperlog<string>(await openSqlite(pathB), { valueEncoding: "utf-8" });
    for (let i = 0; i < 50; i++) await a.append(`a${i}`);
    await b.batch(Array.from({ length: 30 }, (_, i) => ({ value: `b${i}` })));
    const ra = a.replicate();
    const rb = b.replicate();
    void ra.readable.pipeTo(rb.writable).catch(() => {});
    void rb.readable.pipeTo(ra.writable).catch(() => {});
    await Promise.all([ra.done, rb.done]);
    const keysA = (await readAll(a)).map((node) => node.key).sort();
    await a.close();
    await b.close();
    const again = new Hyperlog<string>(await openSqlite(pathB), { valueEncoding: "utf-8" });
    assert.deepEqual((await readAll(again)).map((node) => node.key).sort(), keysA);
    assert.equal(again.length, 80);
    await again.close();
  });

  it("stores a batch that repeats a stored node or a key once each, and an add of a stored node changes nothing", async () => {
    const log = new Hyperlog<{ n: number }>(await openSqlite(join(dir, "repeat.db")), { valueEncoding: "json" });
    const first = await log.batch([{ value: { n: 1 } }, { value: { n: 2 } }]);
    const nodes = await log.batch([{ value: { n: 3 } }, { value: { n: 1 } }, { value: { n: 3 } }, { value: { n: 4 } }]);
    assert.deepEqual(nodes.map((node) => node.change), [3, 1, 3, 4]);
    assert.equal(nodes[1]!.key, first[0]!.key);
    assert.deepEqual(nodes.map((node) => node.value.n), [3, 1, 3, 4]);
    const again = await log.add(null, { n: 2 });
    assert.equal(again.change, 2);
    assert.equal(log.length, 4);
    assert.deepEqual((await readAll(log)).map((node) => node.value.n), [1, 2, 3, 4]);
    assert.equal((await log.heads()).length, 4);
    await log.close();
  });

  it("works in memory too", async () => {
    const log = new Hyperlog<string>(await openSqlite(":memory:"), { valueEncoding: "utf-8" });
    const hello = await log.add(null, "hello");
    assert.equal(hello.key, "8c7efb22472592f561a7a7647f8c5ee93134880b4ca0c92889a61848cd5c4602");
    assert.equal((await log.get(hello.key)).value, "hello");
    await log.close();
  });
});
