/**
 * Materialized views through the public API, on memory, on SQLite files and (on Deno) Deno KV files: catching up, following live and
 * replicated nodes, atomic checkpoints, versions, resets, failing maps, and reopening.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Hyperlog, MemoryStorage, type Node, type Storage, type ViewStore } from "../mod.ts";
import { openSqlite } from "../storage/sqlite-open.ts";
import { DenoKvStorage } from "../storage/deno-kv.ts";

const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const dir = mkdtempSync(join(tmpdir(), "hyperlog-view-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

type Doc = { word: string };

/** Counts words; records the changes it saw, in the order it saw them. */
function counter(seen: number[] = []) {
  return async (nodes: readonly Node<Doc>[], store: ViewStore) => {
    for (const node of nodes) {
      seen.push(node.change);
      const count = (await store.get(`w:${node.value.word}`) as number | undefined) ?? 0;
      store.put(`w:${node.value.word}`, count + 1);
    }
  };
}

async function pipe(a: Hyperlog<Doc>, b: Hyperlog<Doc>): Promise<void> {
  const ra = a.replicate();
  const rb = b.replicate();
  ra.readable.pipeTo(rb.writable).catch(() => {});
  rb.readable.pipeTo(ra.writable).catch(() => {});
  await Promise.all([ra.done, rb.done]);
}

const backends: Array<[string, () => Promise<{ storage: Storage; reopen: () => Promise<Storage> }>]> = [
  ["memory", () => {
    const storage = new MemoryStorage();
    return Promise.resolve({ storage, reopen: () => Promise.resolve(storage) });
  }],
  [`SQLite (${runtime})`, async () => {
    const path = join(dir, `view-${files++}.db`);
    return { storage: await openSqlite(path), reopen: () => openSqlite(path) };
  }],
];
// Deno KV exists in Deno only (Deno.openKv); its own tests are storage/deno-kv.test.ts.
if (runtime === "deno") {
  backends.push(["Deno KV", async () => {
    const path = join(dir, `view-${files++}.kv`);
    return { storage: await DenoKvStorage.open(path), reopen: () => DenoKvStorage.open(path) };
  }]);
}

for (const [backend, make] of backends) {
  describe(`views on ${backend}`, () => {
    it("catch up with every node in change order, in batches, then follow new nodes", async () => {
      const { storage } = await make();
      const log = new Hyperlog<Doc>(storage);
      const words = ["a", "b", "a", "c", "a"];
      for (let i = 0; i < 250; i++) await log.append({ word: words[i % words.length]! });
      const seen: number[] = [];
      const sizes: number[] = [];
      const map = counter(seen);
      const view = log.view({
        name: "words",
        batchSize: 64,
        map: (nodes, store) => {
          sizes.push(nodes.length);
          return map(nodes, store);
        },
      });
      await view.ready();
      assert.deepEqual(seen, Array.from({ length: 250 }, (_, i) => i + 1));
      assert.ok(sizes.every((n) => n <= 64), `batches of at most 64, got ${sizes.join()}`);
      assert.equal(await view.get("w:a"), 150);
      assert.equal(await view.get("w:c"), 50);
      assert.equal(view.change, 250);
      await log.batch([{ value: { word: "c" } }, { value: { word: "d" } }]);
      await view.ready();
      assert.equal(await view.get("w:c"), 51);
      assert.equal(await view.get("w:d"), 1);
      assert.deepEqual((await view.range({ prefix: "w:" })).map(([k]) => k), ["w:a", "w:b", "w:c", "w:d"]);
      assert.deepEqual(await view.range({ prefix: "w:", reverse: true, limit: 2 }), [["w:d", 1], ["w:c", 51]]);
      await log.close();
    });

    it("applies nodes that arrive by replication, ancestors first", async () => {
      const { storage } = await make();
      const log = new Hyperlog<Doc>(storage);
      const peer = new Hyperlog<Doc>();
      const seen: Node<Doc>[] = [];
      const view = log.view({
        name: "order",
        map: (nodes, store) => {
          for (const node of nodes) {
            for (const link of node.links) assert.ok(seen.some((n) => n.key === link), "ancestors come first");
            seen.push(node);
            store.put(node.key, node.value.word);
          }
        },
      });
      const a = await peer.add(null, { word: "x" });
      const b = await peer.add([a.key], { word: "y" });
      await peer.add([a.key, b.key], { word: "z" });
      await log.append({ word: "local" });
      await pipe(log, peer);
      await view.ready();
      assert.equal(seen.length, 4);
      assert.equal(await view.get(b.key), "y");
      await log.close();
    });

    it("keeps its checkpoint across a reopen and applies only what is new", async () => {
      const { storage, reopen } = await make();
      let log = new Hyperlog<Doc>(storage);
      for (let i = 0; i < 10; i++) await log.append({ word: "a" });
      const first: number[] = [];
      await log.view({ name: "count", map: counter(first) }).ready();
      await log.close();
      if (backend === "memory") return; // memory does not outlive its log
      log = new Hyperlog<Doc>(await reopen());
      await log.append({ word: "a" });
      const second: number[] = [];
      const view = log.view({ name: "count", map: counter(second) });
      await view.ready();
      assert.deepEqual(second, [11], "only the new node is applied after a reopen");
      assert.equal(await view.get("w:a"), 11);
      await log.close();
    });

    it("rebuilds from the start when the version changes, or after reset", async () => {
      const { storage, reopen } = await make();
      let log = new Hyperlog<Doc>(storage);
      for (const word of ["a", "b", "a"]) await log.append({ word });
      const v1 = log.view({ name: "v", version: 1, map: counter() });
      await v1.ready();
      await v1.close();
      const seen: number[] = [];
      const lengths = (nodes: readonly Node<Doc>[], store: ViewStore) => {
        for (const node of nodes) {
          seen.push(node.change);
          store.put(`len:${node.change}`, node.value.word.length);
        }
      };
      const v2 = log.view({
        name: "v",
        version: 2,
        map: lengths,
      });
      await v2.ready();
      assert.deepEqual(seen, [1, 2, 3], "a new version rebuilds from change 1");
      assert.equal(await v2.get("w:a"), undefined, "the old version's data is gone");
      assert.deepEqual((await v2.range()).map(([k]) => k), ["len:1", "len:2", "len:3"]);
      seen.length = 0;
      await v2.reset();
      await v2.ready();
      assert.deepEqual(seen, [1, 2, 3], "reset rebuilds from change 1");
      await log.close();
      if (backend === "memory") return;
      // The seed's "rm -rf db/index": the view's tables dropped by hand; it rebuilds on the next open.
      const raw = await reopen();
      await raw.open();
      if (raw instanceof DenoKvStorage) {
        // In Deno KV: the keys of the views' checkpoints and pairs deleted.
        for (const space of ["vs", "vd"]) {
          for await (const entry of raw.kv.list({ prefix: [...raw.prefix, space] })) {
            await raw.kv.atomic().delete(entry.key).commit();
          }
        }
      } else {
        const db = (raw as unknown as { driver: { exec(sql: string): void } }).driver;
        db.exec("DROP TABLE hyperlog_view_data");
      }
      await raw.close();
      log = new Hyperlog<Doc>(await reopen());
      seen.length = 0;
      const v3 = log.view({ name: "v", version: 2, map: lengths });
      await v3.ready();
      assert.deepEqual(seen, [1, 2, 3], "dropped tables rebuild the view");
      assert.deepEqual((await v3.range()).map(([k]) => k), ["len:1", "len:2", "len:3"]);
      await log.close();
    });

    it("a view in its own store (a separate file) rebuilds when that store is deleted", async () => {
      const { storage } = await make();
      const log = new Hyperlog<Doc>(storage);
      for (const word of ["a", "b", "a"]) await log.append({ word });
      const path = join(dir, `index-${files++}.db`);
      const index = backend === "memory" ? new MemoryStorage() : await openSqlite(path);
      const view = log.view({ name: "count", map: counter(), storage: index });
      await view.ready();
      assert.equal(await view.get("w:a"), 2);
      assert.equal(await storage.viewState("count"), undefined, "nothing of the view is in the log's storage");
      await view.close();
      await index.close();
      if (backend !== "memory") rmSync(path);
      const fresh = backend === "memory" ? new MemoryStorage() : await openSqlite(path);
      const seen: number[] = [];
      const again = log.view({ name: "count", map: counter(seen), storage: fresh });
      await again.ready();
      assert.deepEqual(seen, [1, 2, 3]);
      assert.equal(await again.get("w:a"), 2);
      await again.close();
      await fresh.close();
      await log.close();
    });

    it("a map that throws stops that view only, surfaces the error, commits nothing of the batch", async () => {
      const { storage, reopen } = await make();
      let log = new Hyperlog<Doc>(storage);
      await log.append({ word: "ok" });
      await log.append({ word: "ok" });
      const good = log.view({ name: "good", map: counter() });
      const errors: unknown[] = [];
      let poison = true;
      const badMap = async (nodes: readonly Node<Doc>[], store: ViewStore) => {
        for (const node of nodes) {
          store.put(`seen:${node.change}`, true);
          if (node.value.word === "boom" && poison) throw new Error("cannot count boom");
        }
      };
      const bad = log.view({ name: "bad", map: badMap, batchSize: 1 });
      bad.addEventListener("error", (event) => errors.push((event as CustomEvent).detail));
      await bad.ready();
      await log.append({ word: "boom" });
      await assert.rejects(
        bad.ready(),
        /View bad stopped: map threw on the batch of changes 3\.\.3: cannot count boom/,
      );
      assert.equal(errors.length, 1);
      assert.equal(bad.change, 2, "the checkpoint stays before the failing node");
      assert.equal(await bad.get("seen:3"), undefined, "nothing of the failed batch is stored");
      await log.append({ word: "ok" });
      await good.ready();
      assert.equal(await good.get("w:ok"), 3, "other views carry on");
      assert.equal((await log.heads()).length, 1, "the log carries on");
      await assert.rejects(bad.ready(), /cannot count boom/, "the view stays stopped");
      await log.close();
      if (backend === "memory") return;
      poison = false;
      log = new Hyperlog<Doc>(await reopen());
      const resumed = log.view({ name: "bad", map: badMap, batchSize: 1 });
      await resumed.ready();
      assert.equal(resumed.change, 4);
      assert.equal(await resumed.get("seen:3"), true, "reopened, it resumes from its checkpoint");
      await log.close();
    });

    it("map reads its own writes within a batch, and range merges them with committed data", async () => {
      const { storage } = await make();
      const log = new Hyperlog<Doc>(storage);
      await log.append({ word: "first" });
      const ranges: Array<Array<[string, unknown]>> = [];
      const view = log.view({
        name: "rw",
        map: async (nodes, store) => {
          for (const node of nodes) {
            store.put(`k${node.change}`, node.value.word);
            if (node.change === 2) store.del("k1");
            ranges.push(await store.range({ gte: "k", lt: "l" }));
          }
        },
      });
      await view.ready();
      await log.append({ word: "second" });
      await view.ready();
      assert.deepEqual(ranges, [[["k1", "first"]], [["k2", "second"]]]);
      await log.close();
    });
  });
}

describe("views: bad input", () => {
  it("refuses bad options, duplicate names, and values JSON cannot hold, storing nothing", async () => {
    const log = new Hyperlog<Doc>();
    assert.throws(() => log.view({ name: "", map: () => {} }), TypeError);
    assert.throws(() => log.view({ name: "x" } as never), /needs a map function/);
    assert.throws(() => log.view({ name: "x", map: () => {}, version: 1.5 }), /version must be an integer/);
    assert.throws(() => log.view({ name: "x", map: () => {}, batchSize: 0 }), /batchSize must be an integer >= 1/);
    const one = log.view({ name: "dup", map: () => {} });
    assert.throws(() => log.view({ name: "dup", map: () => {} }), /already open/);
    await one.close();
    log.view({ name: "dup", map: () => {} }); // the name is free again once closed
    const bad = log.view({
      name: "bad-values",
      map: (nodes, store) => {
        store.put("fine", 1);
        store.put("undefined", undefined);
      },
    });
    await log.append({ word: "x" });
    await assert.rejects(bad.ready(), /JSON cannot hold; use del\(\) to remove a key/);
    assert.equal(await bad.get("fine"), undefined);
    await log.close();
    assert.throws(() => log.view({ name: "late", map: () => {} }), { name: "ClosedError" });
  });

  it("pending ready() calls reject with a ClosedError when the view or its log closes", async () => {
    const log = new Hyperlog<Doc>();
    await log.append({ word: "x" });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const view = log.view({ name: "slow", map: () => gate });
    const pending = view.ready();
    const closing = view.close();
    release();
    await closing;
    await assert.rejects(pending, { name: "ClosedError" });
    const other = log.view({ name: "other", map: () => {} });
    await other.ready();
    await log.close();
    await assert.rejects(other.ready(), { name: "ClosedError" });
  });
});
