/**
 * DenoKvStorage: the conformance suite on a Deno KV file and in memory (several logs in one database, by prefix),
 * and what Deno KV adds: commits past its limits stay atomic, logs share a database, two processes share a file.
 * Deno only: `Deno.openKv` (with `--unstable-kv`, which the test harness passes).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, it } from "node:test";
import { denoOnly } from "../tests/_helpers.ts";
import { chain, makeStoredNode } from "./conformance.ts";
import { runStorageConformance } from "./conformance-node-test.ts";
import { type DenoKvLike, DenoKvStorage } from "./deno-kv.ts";
import type { Storage } from "../src/storage.ts";

type DenoKvNamespace = { openKv(path?: string): Promise<DenoKvLike> };
const deno = (globalThis as unknown as { Deno?: DenoKvNamespace }).Deno;
const DENO = fileURLToPath(new URL("../node_modules/.bin/deno", import.meta.url));
const CHILD = fileURLToPath(new URL("../tests/fixtures/deno-kv-child.ts", import.meta.url));

/** Runs the child fixture on `path` with `args`; resolves with its stdout. */
function child(path: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const proc = spawn(DENO, ["run", "-A", "--unstable-kv", CHILD, path, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    proc.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    proc.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
    proc.on("error", reject);
    proc.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`The child failed (${code}):\n${err}`))));
  });
}

denoOnly("DenoKvStorage", "Deno KV (Deno.openKv) exists in Deno only", () => {
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-denokv-"));
  let files = 0;
  const newFile = (name: string): string => join(dir, `${name}-${++files}.kv`);
  after(() => rmSync(dir, { recursive: true, force: true }));

  runStorageConformance("DenoKvStorage (file)", {
    create: () => DenoKvStorage.open(newFile("conformance")),
    reopen: async (storage) => {
      const { path } = storage as DenoKvStorage;
      await storage.close();
      return await DenoKvStorage.open(path);
    },
  });

  // One in-memory database for every case: each log under its own prefix, as logs share a database on Deploy.
  let shared: Promise<DenoKvLike> | undefined;
  let logs = 0;
  after(async () => (await shared)?.close());
  runStorageConformance("DenoKvStorage (:memory:, one database, a prefix per log)", {
    create: async () => new DenoKvStorage(await (shared ??= deno!.openKv(":memory:")), { prefix: ["logs", ++logs] }),
    reopen: async (storage) => {
      await storage.close();
      const { kv, prefix } = storage as DenoKvStorage;
      return new DenoKvStorage(kv, { prefix });
    },
  });

  it("keeps logs that share a database apart, even when one's name starts with the other's", async () => {
    const kv = await deno!.openKv(":memory:");
    const a = new DenoKvStorage(kv, { prefix: ["logs", "chat"] });
    const b = new DenoKvStorage(kv, { prefix: ["logs", "chat2"] });
    await a.open();
    await b.open();
    const nodes = chain(3);
    await a.commit(nodes);
    await a.setMeta("id", "a");
    assert.equal(await b.length(), 0);
    assert.equal(await b.getMeta("id"), undefined);
    assert.deepEqual(await b.has([nodes[0]!.key]), [false]);
    await b.commit(chain(2, 1, undefined, "b"));
    await b.viewCommit("v", [{ key: "k", value: "b" }], { version: 1, change: 2 });
    assert.equal(await a.length(), 3);
    assert.equal(await a.viewState("v"), undefined);
    assert.deepEqual(await a.heads(), [nodes[2]!.key]);
    await a.close();
    await b.close();
    kv.close();
  });

  it("commits past Deno KV's limits (20 000 nodes, signed, and a 3 MB value) in one atomic step", async () => {
    const storage = await DenoKvStorage.open(newFile("large"));
    const nodes = chain(20000).map((
      node,
      i,
    ) => (i % 7 === 0 ? { ...node, identity: "ab".repeat(32), signature: "cd".repeat(64) } : node));
    await storage.commit(nodes);
    const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 13) & 255);
    const bigNode = makeStoredNode([nodes[19999]!.key], big, 20001);
    await storage.commit([bigNode]);
    assert.equal(await storage.length(), 20001);
    const all = await storage.read({ since: 0, until: Infinity, limit: Infinity, reverse: false });
    assert.equal(all.length, 20001);
    assert.equal(all[7]!.identity, "ab".repeat(32));
    assert.deepEqual(all[20000]!.value, big);
    // No journal is left behind once a commit is in place.
    const journals = [];
    for await (const entry of storage.kv.list({ prefix: [...storage.prefix, "j"] })) journals.push(entry.key);
    assert.deepEqual(journals, []);
    // A refused large commit (a wrong change number at the end) stores none of it.
    const more = chain(3000, 20002, bigNode.key);
    await assert.rejects(storage.commit([...more, { ...nodes[3]!, change: 23003 }]), { name: "StorageConflictError" });
    assert.equal(await storage.length(), 20001);
    assert.deepEqual(await storage.has([more[0]!.key, more[2999]!.key]), [false, false]);
    // A stored node at the end of a large commit is skipped; the rest is stored.
    const report = await storage.commit([...more, { ...nodes[3]!, change: 23002 }]);
    assert.equal(report.filter((fresh) => fresh).length, 3000);
    assert.equal(report[3000], false);
    assert.equal(await storage.length(), 23001);
    await storage.close();
  });

  it("finishes a commit whose writer died after the atomic step, on the next read by anyone", async () => {
    const path = newFile("interrupted");
    await child(path, "interrupt", "20000");
    const storage = await DenoKvStorage.open(path);
    assert.equal(await storage.length(), 20000);
    const all = await storage.read({ since: 0, until: Infinity, limit: Infinity, reverse: false });
    assert.equal(all.length, 20000);
    assert.deepEqual(await storage.has([all[12345]!.key, all[19999]!.key]), [true, true]);
    assert.deepEqual(await storage.heads(), [all[19999]!.key]);
    await storage.close();
  });

  it("shares a file with another process: each sees the other's commits, a stale commit is refused", async () => {
    const path = newFile("two-processes");
    const storage: Storage = await DenoKvStorage.open(path);
    const nodes = chain(4);
    await storage.commit(nodes.slice(0, 2));
    // The child reads ours and adds two.
    assert.equal((await child(path, "append", "2")).trim(), "2 4");
    assert.equal(await storage.length(), 4);
    const theirs = await storage.read({ since: 2, until: Infinity, limit: Infinity, reverse: false });
    assert.deepEqual(await storage.heads(), [theirs[1]!.key]);
    // Our commit of change 3 is stale now: refused, nothing stored.
    await assert.rejects(storage.commit([makeStoredNode([nodes[1]!.key], "ours", 3)]), {
      name: "StorageConflictError",
    });
    assert.equal(await storage.length(), 4);
    await storage.close();
  });

  it("refuses a commit that raced another writer's, whichever wins, and stores nothing of the loser", async () => {
    const path = newFile("race");
    const a = await DenoKvStorage.open(path);
    const b = await DenoKvStorage.open(path);
    const base = chain(1);
    await a.commit(base);
    const fromA = chain(1200, 2, base[0]!.key, "a");
    const fromB = chain(3, 2, base[0]!.key, "b");
    const results = await Promise.allSettled([a.commit(fromA), b.commit(fromB)]);
    const won = results.filter((r) => r.status === "fulfilled").length;
    assert.equal(won, 1, `one commit wins: ${results.map((r) => r.status)}`);
    for (const r of results) {
      if (r.status === "rejected") assert.equal((r.reason as Error).name, "StorageConflictError");
    }
    const length = await a.length();
    const winner = length === 1201 ? fromA : fromB;
    const loser = winner === fromA ? fromB : fromA;
    assert.equal(length, 1 + winner.length);
    assert.deepEqual(await b.has([loser[0]!.key, loser[loser.length - 1]!.key]), [false, false]);
    assert.deepEqual(await b.heads(), [winner[winner.length - 1]!.key]);
    await a.close();
    await b.close();
  });

  it("refuses view keys too long for Deno KV with a clear error, and changes nothing", async () => {
    const storage = await DenoKvStorage.open(":memory:");
    await storage.viewCommit("v", [{ key: "a", value: "1" }], { version: 1, change: 1 });
    await assert.rejects(
      storage.viewCommit("v", [{ key: "b", value: "2" }, { key: "k".repeat(3000), value: "x" }], {
        version: 1,
        change: 2,
      }),
      { name: "StorageError", message: /too long for Deno KV/ },
    );
    assert.deepEqual(await storage.viewRange("v", { limit: Infinity, reverse: false }), [["a", "1"]]);
    assert.deepEqual(await storage.viewState("v"), { version: 1, change: 1 });
    await storage.close();
  });

  it("turns Deno KV's own failures into a StorageError, and refuses malformed nodes with a TypeError", async () => {
    const kv = await deno!.openKv(":memory:");
    const failing: DenoKvLike = {
      ...kv,
      get: () => Promise.reject(new TypeError("Simulated failure of Deno KV")),
      getMany: (keys) => kv.getMany(keys),
      list: (selector, options) => kv.list(selector, options),
      atomic: () => kv.atomic(),
      close: () => kv.close(),
    };
    const storage = new DenoKvStorage(failing);
    await assert.rejects(storage.length(), { name: "StorageError", message: /Deno KV failed: Simulated failure/ });
    const good = new DenoKvStorage(kv);
    await assert.rejects(good.commit([{ ...makeStoredNode([], "x", 1), links: ["nope"] }]), TypeError);
    assert.equal(await good.length(), 0);
    kv.close();
  });

  it("tells a missing --unstable-kv or runtime apart from a bad path", async () => {
    await assert.rejects(DenoKvStorage.open(join(dir, "missing", "dir", "x.kv")), { name: "StorageError" });
  });
});
