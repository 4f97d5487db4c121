/**
 * The log's write path over the storage seam: which drafts are new is what `Storage.commit` answers, so a write
 * looks up only the links that no earlier node of the call satisfies, and stored or repeated nodes are skipped by
 * the commit (no `has` before it, no retry).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Hyperlog, MemoryStorage, type Node, type Storage } from "../mod.ts";

/** A MemoryStorage that counts the calls of each method. */
function counting(): { storage: Storage; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const inner = new MemoryStorage();
  const storage = new Proxy(inner, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== "function" || typeof name !== "string") return value;
      return (...args: unknown[]) => {
        calls.set(name, (calls.get(name) ?? 0) + 1);
        return (value as (...args: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { storage, calls };
}

describe("the log's writes use commit's answer", () => {
  it("a batch of new documents linking among themselves is one commit and no lookup", async () => {
    const { storage, calls } = counting();
    const log = new Hyperlog<string>(storage, { valueEncoding: "utf-8" });
    await log.ready();
    calls.clear();
    const nodes = await log.batch([{ value: "a" }, { value: "b", links: [0] }, { value: "c", links: [0, 1] }]);
    assert.deepEqual(nodes.map((n) => n.change), [1, 2, 3]);
    assert.equal(calls.get("commit"), 1);
    assert.equal(calls.get("has"), undefined, "no has round trip before the commit");
  });

  it("a batch that repeats stored documents skips them: dense changes, one add event per new node", async () => {
    const { storage, calls } = counting();
    const log = new Hyperlog<string>(storage, { valueEncoding: "utf-8" });
    const [a, b] = await log.batch([{ value: "a" }, { value: "b" }]);
    const added: Node<string>[] = [];
    log.addEventListener("add", (event) => added.push((event as CustomEvent<Node<string>>).detail));
    calls.clear();
    const nodes = await log.batch([{ value: "b" }, { value: "c" }, { value: "a" }, { value: "c" }, { value: "d" }]);
    assert.equal(calls.get("has"), undefined);
    assert.equal(calls.get("commit"), 1);
    assert.deepEqual(nodes.map((n) => [n.value, n.change]), [["b", 2], ["c", 3], ["a", 1], ["c", 3], ["d", 4]]);
    assert.equal(nodes[0]!.key, b!.key);
    assert.equal(nodes[2]!.key, a!.key);
    assert.deepEqual(added.map((n) => [n.value, n.change]), [["c", 3], ["d", 4]]);
    assert.equal(log.length, 4);
    assert.deepEqual(
      (await storage.read({ since: 0, until: Infinity, limit: 10, reverse: false })).map((n) => n.change),
      [
        1,
        2,
        3,
        4,
      ],
    );
    // The length and the nodes agree: the next append continues at 5 and links every head.
    const next = await log.append("e");
    assert.equal(next.change, 5);
    assert.equal(next.links.length, 4);
  });

  it("a json batch that repeats documents: a repeat is the node of its first, a renumbered node decodes its own value", async () => {
    const { storage, calls } = counting();
    const log = new Hyperlog<{ n: number }>(storage, { valueEncoding: "json" });
    const [a] = await log.batch([{ value: { n: 1 } }]);
    calls.clear();
    const nodes = await log.batch([{ value: { n: 2 } }, { value: { n: 1 } }, { value: { n: 3 } }, { value: { n: 2 } }]);
    assert.equal(calls.get("commit"), 1);
    assert.equal(calls.get("has"), undefined);
    // { n: 3 } was proposed as change 4 and stored as 3, after the stored { n: 1 } was skipped.
    assert.deepEqual(nodes.map((node) => [node.value.n, node.change]), [[2, 2], [1, 1], [3, 3], [2, 2]]);
    assert.equal(nodes[1], a, "a document stored before gives the node returned when it was added");
    assert.equal(nodes[3], nodes[0], "a document repeated in the call gives the node of its first");
    for (const node of nodes) {
      assert.ok(Object.isFrozen(node) && Object.isFrozen(node.value));
      // The renumbered node is a copy the log made beside the storage's own copy: get decodes that one afresh.
      if (node === nodes[2]) assert.deepEqual(await log.get(node.key), node);
      else assert.equal(await log.get(node.key), node, "get gives the node the batch returned");
    }
    assert.deepEqual(nodes[2], { key: nodes[2]!.key, links: [], value: { n: 3 }, change: 3 });
  });

  it("ingesting pages ancestors first looks up only links from outside them not stored just before, reports only new nodes", async () => {
    const source = new Hyperlog<string>({ valueEncoding: "utf-8" });
    const root = await source.append("root");
    for (const value of ["x", "y", "z"]) await source.append(value);
    const page = await source.storage.read({ since: 0, until: Infinity, limit: 10, reverse: false });
    const { storage, calls } = counting();
    const log = new Hyperlog<string>(storage, { valueEncoding: "utf-8" });
    await log.ingest(page.slice(0, 2));
    calls.clear();
    // The first two are stored; the page links to nothing outside itself, so nothing is looked up.
    const fresh = await log.ingest(page);
    assert.equal(calls.get("has"), undefined);
    assert.equal(calls.get("commit"), 1);
    assert.deepEqual(fresh.map((n) => n.change), [3, 4]);
    assert.equal(log.length, 4);
    // The same page again (a resync): one commit that stores nothing, and no read of the stored nodes.
    calls.clear();
    assert.deepEqual(await log.ingest(page), []);
    assert.deepEqual(Object.fromEntries(calls), { commit: 1 });
    // A page that links to what the last commit stored looks nothing up either (pages of a sync come in order).
    const more = await source.append("w");
    calls.clear();
    const [one] = await log.ingest(await source.storage.read({ since: 4, until: 5, limit: 1, reverse: false }));
    assert.equal(calls.get("has"), undefined);
    assert.equal(one!.key, more.key);
    // A node that links further back looks its link up, once.
    const late = await source.add([root.key], "late");
    calls.clear();
    const [again] = await log.ingest([(await source.storage.get(late.key))!]);
    assert.equal(calls.get("has"), 1);
    assert.equal(again!.key, late.key);
    // A missing link is refused, having looked it up.
    const other = new Hyperlog<string>({ valueEncoding: "utf-8" });
    await other.append("elsewhere");
    const orphan = await other.append("orphan");
    calls.clear();
    await assert.rejects(log.ingest([(await other.storage.get(orphan.key))!]), { name: "MissingLinksError" });
    assert.equal(calls.get("has"), 1);
    assert.equal(calls.get("commit"), undefined);
    assert.equal((await log.get(root.key)).change, 1);
  });

  it("with preadd listeners, keys are looked up first, so preadd hears of new nodes only", async () => {
    const log = new Hyperlog<string>({ valueEncoding: "utf-8" });
    await log.append("a");
    const heard: string[] = [];
    log.addEventListener("preadd", (event) => heard.push((event as CustomEvent<Node<string>>).detail.value));
    await log.batch([{ value: "a" }, { value: "b" }]);
    assert.deepEqual(heard, ["b"]);
    assert.equal(log.length, 2);
  });

  it("a json node is one object in preadd, add, the write's result and get, with or without preadd listeners", async () => {
    for (const announce of [false, true]) {
      const log = new Hyperlog<{ n: number }>({ valueEncoding: "json" });
      const heard = new Map<string, Node<{ n: number }>[]>();
      const hear = (event: Event) => {
        const node = (event as CustomEvent<Node<{ n: number }>>).detail;
        heard.set(node.key, [...(heard.get(node.key) ?? []), node]);
      };
      if (announce) log.addEventListener("preadd", hear);
      log.addEventListener("add", hear);
      // A repeat within the call and a node linking to an earlier one: both kinds of write (with and without a plan).
      const nodes = await log.batch([{ value: { n: 1 } }, { value: { n: 2 } }, { value: { n: 1 } }]);
      const linked = await log.batch([{ links: [nodes[0]!.key], value: { n: 3 } }]);
      const appended = await log.append({ n: 4 });
      assert.equal(nodes[2], nodes[0]);
      for (const node of [...nodes, ...linked, appended]) {
        const events = heard.get(node.key)!;
        assert.equal(events.length, announce ? 2 : 1);
        for (const other of events) assert.equal(other, node);
        assert.equal(await log.get(node.key), node);
      }
      assert.deepEqual([...nodes, ...linked, appended].map((node) => node.value.n), [1, 2, 1, 3, 4]);
    }
  });
});
