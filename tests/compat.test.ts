/**
 * The compat entry and the hyperlog 4 protocol beyond the originals' own suites: old peers (the real hyperlog
 * 4.12.1 from the devDependencies) and new ones converge both ways, live too, through the compat API and through
 * `log.replicate({ protocol: "hyperlog4" })`; a peer that sends a node whose key does not match its content is
 * refused; read-stream options read as hyperlog 4 reads them (compared with the original on the same writes); the
 * log lives in the level database it was given; options not carried fail clearly.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duplex, type Readable } from "node:stream";
import { after, describe, it } from "node:test";
import { hyperlog } from "../compat/mod.ts";
import { Hyperlog, Identity } from "../mod.ts";
import { LevelStorage } from "../storage/level.ts";

const require = createRequire(import.meta.url);
const dir = mkdtempSync(join(tmpdir(), "hyperlog-compat-"));
after(() => rmSync(dir, { recursive: true, force: true }));

// deno-lint-ignore no-explicit-any
type Any = any;
const original = require("hyperlog4") as (db: unknown, opts?: object) => Any;
const memdb = require("memdb") as () => unknown;
const pump = require("pump") as (...streams: Any[]) => void;

function call<R>(fn: (cb: (err?: Error | null, result?: R) => void) => void): Promise<R> {
  return new Promise((resolve, reject) => fn((err, result) => (err ? reject(err) : resolve(result as R))));
}

function collect(stream: Readable): Promise<Any[]> {
  return new Promise((resolve, reject) => {
    const out: Any[] = [];
    stream.on("data", (row: Any) => out.push(row)).on("error", reject).on("end", () => resolve(out));
  });
}

async function values(log: Any, opts: object = {}): Promise<string[]> {
  return (await collect(log.createReadStream(opts))).map((node) => String(node.value)).sort();
}

function syncNode(a: Any, b: Any): Promise<void> {
  return new Promise((resolve, reject) => {
    const ra = a.replicate();
    pump(ra, b.replicate(), ra, (err: Error | undefined) => (err ? reject(err) : resolve()));
  });
}

/** Pipes a Web-streams replication and a Node duplex (an old peer) into each other. */
function bridge(web: { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> }, node: Duplex) {
  const nodeSide = Duplex.fromWeb({ readable: web.readable as Any, writable: web.writable as Any });
  nodeSide.pipe(node).pipe(nodeSide);
  nodeSide.on("error", () => {});
  node.on("error", () => {});
}

describe("compat entry and hyperlog 4 peers", () => {
  it("a compat log and a hyperlog 4.12.1 log converge both ways, keeping each node's log and seq", async () => {
    const old = original(memdb(), { valueEncoding: "utf-8" });
    const neu = hyperlog(memdb(), { valueEncoding: "utf-8" });
    const o1 = await call<Any>((cb) => old.add(null, "old 1", cb));
    await call((cb) => old.add([o1.key], "old 2", cb));
    const n1 = await call<Any>((cb) => neu.add(null, "new 1", cb));
    await call((cb) => neu.add([n1.key, o1.key].slice(0, 1), "new 2", cb));
    await syncNode(old, neu);
    const all = ["new 1", "new 2", "old 1", "old 2"];
    assert.deepEqual(await values(old), all);
    assert.deepEqual(await values(neu), all);
    const got = await call<Any>((cb) => neu.get(o1.key, cb));
    assert.equal(got.log, o1.log, "the node keeps its writer's log id");
    assert.equal(got.seq, 1);
    const back = await call<Any>((cb) => old.get(n1.key, cb));
    assert.equal(back.log, neu.id);
    // A second sync has nothing to do and still ends.
    await syncNode(neu, old);
    assert.equal(neu.changes, 4);
    assert.equal(old.changes, 4);
  });

  it("live: nodes added on either side after the sync reach the other", async () => {
    const old = original(memdb(), { valueEncoding: "utf-8" });
    const neu = hyperlog(memdb(), { valueEncoding: "utf-8" });
    await call((cb) => old.add(null, "before", cb));
    const ro = old.replicate({ live: true });
    const rn = neu.replicate({ live: true });
    ro.pipe(rn).pipe(ro);
    const seen = (log: Any, value: string) =>
      new Promise<void>((resolve) => {
        log.createReadStream({ live: true }).on("data", (node: Any) => String(node.value) === value && resolve());
      });
    await seen(neu, "before");
    await call((cb) => neu.append("from new", cb));
    await seen(old, "from new");
    await call((cb) => old.append("from old", cb));
    await seen(neu, "from old");
    ro.destroy();
    rn.destroy();
    assert.deepEqual(await values(neu), ["before", "from new", "from old"]);
    assert.equal(neu.changes, 3, "no node was echoed back and stored twice");
  });

  it("a new log speaks hyperlog 4's protocol: log.replicate({ protocol: 'hyperlog4' }) with an old peer", async () => {
    const old = original(memdb(), { valueEncoding: "json" });
    const log = new Hyperlog({ valueEncoding: "json" });
    const a = await log.add(null, { from: "new" });
    await log.add([a.key], { from: "new", n: 2 });
    await call((cb) => old.add(null, { from: "old" }, cb));
    const web = log.replicate({ protocol: "hyperlog4" });
    bridge(web, old.replicate());
    const stats = await web.done;
    assert.equal(stats.nodesSent, 2);
    assert.equal(stats.nodesReceived, 1);
    assert.equal(log.length, 3);
    const oldValues = (await collect(old.createReadStream())).map((n: Any) => JSON.stringify(n.value)).sort();
    assert.deepEqual(oldValues, ['{"from":"new","n":2}', '{"from":"new"}', '{"from":"old"}']);
    // The old peer's keys are the new log's keys (unsigned keys are hyperlog 4's).
    for (const node of await collect(old.createReadStream())) assert.equal((await log.get(node.key)).key, node.key);
  });

  it("refuses a node whose key does not match its content, storing nothing of it", async () => {
    const sha1 = require("framed-hash") as (alg: string) => Any;
    const forger = original(memdb(), {
      hash: (links: string[], value: Uint8Array) => {
        const hash = sha1("sha256");
        for (const link of links) hash.update(link);
        hash.update(value);
        return hash.digest("hex").replace(/^./, (c: string) => (c === "0" ? "1" : "0"));
      },
    });
    await call((cb) => forger.add(null, "forged", cb));
    const log = new Hyperlog();
    const web = log.replicate({ protocol: "hyperlog4" });
    bridge(web, forger.replicate());
    await assert.rejects(web.done, /Checksum mismatch|does not match its content/);
    assert.equal(log.length, 0);
  });

  it("read streams take since, until, limit, reverse and tail as hyperlog 4 does", async () => {
    const old = original(memdb(), { valueEncoding: "utf-8" });
    const neu = hyperlog(memdb(), { valueEncoding: "utf-8" });
    for (const v of ["a", "b", "c", "d", "e"]) {
      await call((cb) => old.add(null, v, cb));
      await call((cb) => neu.add(null, v, cb));
    }
    const cases: Record<string, unknown>[] = [
      {},
      { since: 2 },
      { since: "2" },
      { until: 4 },
      { since: 1, until: 4 },
      { limit: 2 },
      { reverse: true },
      { reverse: true, limit: 2 },
      { since: 1, until: 5, reverse: true },
      { tail: true },
    ];
    for (const opts of cases) {
      const a = (await collect(old.createReadStream(opts))).map((n: Any) => `${n.change}:${n.value}`);
      const b = (await collect(neu.createReadStream(opts))).map((n: Any) => `${n.change}:${n.value}`);
      assert.deepEqual(b, a, JSON.stringify(opts));
    }
    assert.deepEqual(await values(neu, { valueEncoding: "binary" }), ["a", "b", "c", "d", "e"]);
  });

  it("appends made at once form a chain, as with hyperlog 4's lock", async () => {
    for (const log of [original(memdb(), { valueEncoding: "utf-8" }), hyperlog(memdb(), { valueEncoding: "utf-8" })]) {
      const nodes = await Promise.all(["a", "b", "c"].map((v) => call<Any>((cb) => log.append(v, cb))));
      assert.deepEqual(nodes.map((n) => n.links.length), [0, 1, 1]);
      assert.deepEqual([nodes[1].links[0], nodes[2].links[0]], [nodes[0].key, nodes[1].key]);
      const heads = await call<Any[]>((cb) => log.heads(cb));
      assert.deepEqual(heads.map((n) => n.key), [nodes[2].key]);
    }
  });

  it("a compat stream waits for a silent peer as hyperlog 4 did, unless given an idleTimeout", async () => {
    const log = hyperlog(memdb());
    const stream = log.replicate({ idleTimeout: 200 });
    stream.resume(); // the peer reads what we send, and says nothing
    const keepAlive = setInterval(() => {}, 1000); // the deadline does not keep the event loop alive by itself
    try {
      const err = await new Promise<Error>((resolve) => stream.on("error", resolve));
      assert.match(err.message, /sent nothing for 200 ms before the sync finished/);
    } finally {
      clearInterval(keepAlive);
    }
  });

  it("keeps the log in the level database it was given, readable by the new API", async () => {
    const level = require("level") as (path: string) => Any;
    const path = join(dir, "log.db");
    const db = level(path);
    const log = hyperlog(db, { valueEncoding: "json" });
    const a = await call<Any>((cb) => log.add(null, { n: 1 }, cb));
    await call((cb) => log.add([a.key], { n: 2 }, cb));
    await call((cb) => log.close(cb));
    await call((cb) => db.close(cb));
    const again = level(path);
    const reopened = hyperlog(again, { valueEncoding: "json" });
    const nodes = await collect(reopened.createReadStream());
    assert.deepEqual(nodes.map((n: Any) => [n.value.n, n.seq, n.log]), [[1, 1, a.log], [2, 2, a.log]]);
    await call((cb) => reopened.close(cb));
    const core = new Hyperlog(new LevelStorage(again), { valueEncoding: "json" });
    assert.deepEqual((await core.heads()).map((n) => n.value), [{ n: 2 }]);
    await core.close();
  });

  it("opens a path as a SQLite file, and fails clearly on options it does not carry", async () => {
    const log = hyperlog(join(dir, "log.sqlite"), { valueEncoding: "utf-8" });
    const node = await call<Any>((cb) => log.add(null, "hello", cb));
    assert.equal(node.key, "8c7efb22472592f561a7a7647f8c5ee93134880b4ca0c92889a61848cd5c4602");
    const missing: Any = await call((cb) => log.get("nope", cb)).catch((err) => err);
    assert.equal(missing.notFound, true, "a missing node is an error with notFound, as hyperlog 4 callers test");
    await call((cb) => log.close(cb));
    assert.throws(() => hyperlog(memdb(), { hash: () => "x" }), /hash and asyncHash options are not supported/);
    assert.throws(() => hyperlog(memdb(), { asyncHash: () => {} }), TypeError);
  });

  it("a log signed with an Ed25519 identity cannot go to a hyperlog 4 peer: the session says why", async () => {
    const log = new Hyperlog({ identity: await Identity.generate() });
    await log.append("signed");
    const old = original(memdb());
    const web = log.replicate({ protocol: "hyperlog4" });
    bridge(web, old.replicate());
    await assert.rejects(web.done, /signed with an Ed25519 identity, which hyperlog 4 peers cannot check/);
  });
});
