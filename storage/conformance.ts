/**
 * The storage conformance suite: the behaviour every {@link Storage} backend must have, as cases that any backend
 * (ours or a third party's) can run. The cases need only `node:assert` (which Node, Deno, Bun and Workers with
 * `nodejs_compat` have); `conformance-node-test.ts` registers them with `node:test`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { lazyStoredObject, renumbered, storedObject } from "../src/log-values.ts";
import { encodeNode, type StoredNode } from "../src/node.ts";
import type { Storage, ViewRange, ViewState, ViewWrite } from "../src/storage.ts";

/**
 * How to make (and, for persistent backends, reopen) the storage under test.
 *
 * @example
 * ```ts
 * import type { ConformanceTarget } from "./conformance.ts";
 * import { MemoryStorage } from "../src/memory-storage.ts";
 * const target: ConformanceTarget = { create: () => new MemoryStorage() };
 * console.assert(typeof target.create === "function");
 * ```
 */
export interface ConformanceTarget {
  /** Makes a new, empty store. */
  create(): Storage | Promise<Storage>;
  /** For persistent backends: closes `storage` and opens the same data again. */
  reopen?(storage: Storage): Storage | Promise<Storage>;
}

/**
 * Builds a node for tests: key computed from links and value, change given.
 *
 * @example
 * ```ts
 * import { makeStoredNode } from "./conformance.ts";
 * const node = makeStoredNode([], "hello", 1);
 * console.assert(node.key.startsWith("8c7efb22"));
 * ```
 */
export function makeStoredNode(links: readonly string[], value: string | Uint8Array, change: number): StoredNode {
  const encoded = encodeNode(links, value);
  return { key: encoded.key, links, value: encoded.value, change };
}

/**
 * Builds a chain of `count` nodes with changes from `from`, the first linking to `link` when given.
 *
 * @example
 * ```ts
 * import { chain } from "./conformance.ts";
 * const [a, b] = chain(2);
 * console.assert(b!.links[0] === a!.key && b!.change === 2);
 * ```
 */
export function chain(count: number, from = 1, link?: string, tag = "n"): StoredNode[] {
  const nodes: StoredNode[] = [];
  let prev = link;
  for (let i = 0; i < count; i++) {
    const node = makeStoredNode(prev === undefined ? [] : [prev], `${tag}${from + i}`, from + i);
    nodes.push(node);
    prev = node.key;
  }
  return nodes;
}

async function readAll(storage: Storage, reverse = false): Promise<StoredNode[]> {
  return await storage.read({ since: 0, until: Infinity, limit: Infinity, reverse });
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (!(a instanceof Uint8Array) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameNode(actual: StoredNode | undefined, expected: StoredNode): void {
  assert.ok(actual, `node ${expected.key} is stored`);
  assert.equal(actual.key, expected.key);
  assert.deepEqual([...actual.links], [...expected.links]);
  // Bytes are compared in a loop first: node:assert's deepEqual on megabytes takes seconds in workerd.
  if (!sameBytes(actual.value, expected.value)) {
    assert.deepEqual(new Uint8Array(actual.value), new Uint8Array(expected.value));
  }
  assert.equal(actual.change, expected.change);
  assert.equal(actual.identity, expected.identity);
  assert.equal(actual.signature, expected.signature);
}

/**
 * One conformance case: a name and a function that rejects if the backend misbehaves.
 *
 * @example
 * ```ts
 * import { type ConformanceCase, storageConformanceCases } from "./conformance.ts";
 * import { MemoryStorage } from "../src/memory-storage.ts";
 * const cases: ConformanceCase[] = storageConformanceCases({ create: () => new MemoryStorage() });
 * const names = new Set(cases.map((c) => c.name));
 * console.assert(cases.length > 10 && names.size === cases.length, "many cases, each named once");
 * await cases[0]!.run();
 * ```
 */
export interface ConformanceCase {
  /** What the case checks. */
  readonly name: string;
  /** Runs the case against a fresh store. */
  run(): Promise<void>;
}

/**
 * The conformance cases for a backend. Run each one (in any harness); a rejection is a failure.
 *
 * @example
 * ```ts
 * import { storageConformanceCases } from "./conformance.ts";
 * import { MemoryStorage } from "../src/memory-storage.ts";
 * for (const c of storageConformanceCases({ create: () => new MemoryStorage() })) await c.run();
 * ```
 */
export function storageConformanceCases(target: ConformanceTarget): ConformanceCase[] {
  const cases: ConformanceCase[] = [];
  const it = (name: string, run: () => Promise<void>) => void cases.push({ name, run });
  const open = async (): Promise<Storage> => {
    const storage = await target.create();
    await storage.open();
    return storage;
  };

  it("starts empty", async () => {
    const s = await open();
    assert.equal(await s.length(), 0);
    assert.deepEqual(await s.heads(), []);
    assert.deepEqual(await readAll(s), []);
    assert.equal(await s.get("00".repeat(32)), undefined);
    assert.equal(await s.getMeta("id"), undefined);
    await s.close();
  });

  it("stores and reads back nodes, links, values and signatures exactly", async () => {
    const s = await open();
    const a = makeStoredNode([], "a", 1);
    const signed: StoredNode = {
      ...makeStoredNode([a.key], "b", 2),
      identity: "ab".repeat(32),
      signature: "cd".repeat(64),
    };
    await s.commit([a, signed]);
    sameNode(await s.get(a.key), a);
    sameNode(await s.get(signed.key), signed);
    assert.equal(await s.length(), 2);
    assert.deepEqual(await s.has([a.key, "00".repeat(32), signed.key]), [true, false, true]);
    await s.close();
  });

  it("keeps heads: a node stops being a head once something links to it", async () => {
    const s = await open();
    const [a, b] = chain(2);
    const c = makeStoredNode([], "c", 3);
    await s.commit([a!, b!]);
    assert.deepEqual(await s.heads(), [b!.key]);
    await s.commit([c]);
    assert.deepEqual((await s.heads()).sort(), [b!.key, c.key].sort());
    const merge = makeStoredNode([b!.key, c.key], "merge", 4);
    await s.commit([merge]);
    assert.deepEqual(await s.heads(), [merge.key]);
    await s.close();
  });

  it("reads pages in change order, both ways, with since, until and limit", async () => {
    const s = await open();
    const nodes = chain(10);
    await s.commit(nodes.slice(0, 4));
    await s.commit(nodes.slice(4));
    const changes = (list: StoredNode[]) => list.map((n) => n.change);
    assert.deepEqual(changes(await readAll(s)), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(changes(await readAll(s, true)), [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    assert.deepEqual(changes(await s.read({ since: 3, until: 6, limit: 100, reverse: false })), [4, 5, 6]);
    assert.deepEqual(changes(await s.read({ since: 3, until: 6, limit: 2, reverse: false })), [4, 5]);
    assert.deepEqual(changes(await s.read({ since: 3, until: 6, limit: 2, reverse: true })), [6, 5]);
    assert.deepEqual(changes(await s.read({ since: 10, until: Infinity, limit: 5, reverse: false })), []);
    assert.deepEqual(changes(await s.read({ since: 0, until: 0, limit: 5, reverse: true })), []);
    assert.deepEqual(changes(await s.read({ since: 8, until: 100, limit: 5, reverse: true })), [10, 9]);
    await s.close();
  });

  it("reads pages of mixed nodes byte for byte, both ways, at every limit: every byte value, empty, signed, chunked", async () => {
    const s = await open();
    const bytes = (...values: number[]) => new Uint8Array(values);
    const every = new Uint8Array(256).map((_, i) => i);
    // Over a Durable Object's 1 MiB blob limit: stored in chunks there.
    const big = new Uint8Array(1536 * 1024).map((_, i) => (i * 13 + 7) & 255);
    const sign = (node: StoredNode, byte: string): StoredNode => ({
      ...node,
      identity: byte.repeat(32),
      signature: `${byte[1]}${byte[0]}`.repeat(64),
    });
    const a = makeStoredNode([], every, 1);
    const b = makeStoredNode([a.key], new Uint8Array(0), 2);
    // Not UTF-8, NUL bytes, and a dangling link (stored as its key).
    const c = sign(makeStoredNode([b.key, "ee".repeat(32)], bytes(0xff, 0xfe, 0, 0xc3, 0x28, 0), 3), "a1");
    const d = makeStoredNode([], big, 4);
    const e = sign(makeStoredNode([d.key, a.key], bytes(0, 0, 0), 5), "b2");
    const f = makeStoredNode([e.key, c.key], bytes(0xed, 0xa0, 0x80), 6);
    const g = sign(makeStoredNode([f.key], new Uint8Array(0), 7), "c3");
    const nodes = [a, b, c, d, e, f, g];
    await s.commit(nodes.slice(0, 3));
    await s.commit(nodes.slice(3));
    const same = (page: StoredNode[], expected: StoredNode[]) => {
      assert.deepEqual(page.map((n) => n.change), expected.map((n) => n.change));
      for (let i = 0; i < page.length; i++) sameNode(page[i], expected[i]!);
    };
    same(await readAll(s), nodes);
    same(await readAll(s, true), [...nodes].reverse());
    for (let limit = 1; limit <= nodes.length; limit++) {
      for (let since = 0; since < nodes.length; since += limit) {
        same(await s.read({ since, until: Infinity, limit, reverse: false }), nodes.slice(since, since + limit));
        const until = nodes.length - since;
        const down = nodes.slice(Math.max(0, until - limit), until).reverse();
        same(await s.read({ since: 0, until, limit, reverse: true }), down);
      }
    }
    same(await s.read({ since: 2, until: 5, limit: 10, reverse: true }), [e, d, c]);
    await s.close();
  });

  it("refuses a commit with a gap or a wrong start in change numbers, and stores none of it", async () => {
    const s = await open();
    const nodes = chain(3);
    await s.commit([nodes[0]!]);
    await assert.rejects(s.commit([nodes[1]!, { ...nodes[2]!, change: 4 }]), { name: "StorageConflictError" });
    await assert.rejects(s.commit([{ ...nodes[1]!, change: 5 }]), { name: "StorageConflictError" });
    assert.equal(await s.length(), 1);
    assert.equal(await s.get(nodes[1]!.key), undefined);
    assert.deepEqual(await s.heads(), [nodes[0]!.key]);
    await s.close();
  });

  it("commit reports what was new: new, already stored, repeated within the commit", async () => {
    const s = await open();
    const [a, b] = chain(2);
    assert.deepEqual(await s.commit([a!, b!]), [true, true]);
    const c = makeStoredNode([], "c", 4);
    const d = makeStoredNode([c.key], "d", 6);
    // Numbered as if all were new (3 to 6); b is stored and the second c repeats the first: both are skipped, and
    // the new nodes take the next numbers in order.
    const report = await s.commit([{ ...b!, change: 3 }, c, { ...c, change: 5 }, d]);
    assert.deepEqual(report, [false, true, false, true]);
    assert.equal(await s.length(), 4);
    assert.equal((await s.get(c.key))?.change, 3);
    assert.equal((await s.get(d.key))?.change, 4);
    assert.equal((await s.get(b!.key))?.change, 2, "the stored node stays as it was");
    assert.deepEqual((await readAll(s)).map((n) => n.key), [a!.key, b!.key, c.key, d.key]);
    assert.deepEqual((await s.heads()).sort(), [b!.key, d.key].sort());
    assert.deepEqual(await s.commit([{ ...a!, change: 5 }, { ...d, change: 6 }]), [false, false], "nothing new");
    assert.equal(await s.length(), 4);
    assert.deepEqual(await s.commit([]), []);
    const e = makeStoredNode([d.key], "e", 5);
    assert.deepEqual(await s.commit([e]), [true]);
    assert.deepEqual((await s.heads()).sort(), [b!.key, e.key].sort());
    await s.close();
  });

  for (
    const [kind, make] of [["", storedObject], [" (a json log's: every field a getter)", lazyStoredObject]] as const
  ) {
    it(`commits the log's own nodes${kind}, whose value is a getter over a shared slab, and renumbers them whole`, async () => {
      const s = await open();
      // As a log makes them (see `placeNode`): three values side by side in one buffer, each node reading its own.
      const slab = new TextEncoder().encode("aa|bbb|cccc");
      const placed = (links: readonly string[], offset: number, size: number, change: number) => {
        const { key } = encodeNode(links, slab.subarray(offset, offset + size));
        return make(key, links, slab, offset, size, change);
      };
      const a = placed([], 0, 2, 1);
      const b = placed([a.key], 3, 3, 2);
      const c = placed([b.key], 7, 4, 3);
      assert.equal(Object.hasOwn(a, "value"), false, "the value is the prototype's getter, as the log makes it");
      assert.deepEqual(await s.commit([a]), [true]);
      // Numbered 2 to 4 as if all were new: a is stored, so b and c are stored as 2 and 3, in copies that keep values.
      const report = await s.commit([renumbered(a, 2), renumbered(b, 3), renumbered(c, 4)]);
      assert.deepEqual(report, [false, true, true]);
      const text = (node: StoredNode | undefined) => new TextDecoder().decode(node!.value);
      assert.deepEqual([await s.get(b.key), await s.get(c.key)].map((n) => [n?.change, text(n)]), [[2, "bbb"], [
        3,
        "cccc",
      ]]);
      assert.deepEqual((await readAll(s)).map(text), ["aa", "bbb", "cccc"]);
      if (target.reopen !== undefined) {
        const again = await target.reopen(s);
        await again.open();
        assert.deepEqual((await readAll(again)).map(text), ["aa", "bbb", "cccc"]);
        await again.close();
      } else await s.close();
    });
  }

  it("commit needs no call before it: nodes found stored only inside the commit are skipped", async () => {
    const s = await open();
    const [a, b, c] = chain(3);
    // A `has` that found nothing, then a commit that stored the key since: the next commit must not trust the has.
    assert.deepEqual(await s.has([a!.key, b!.key]), [false, false]);
    assert.deepEqual(await s.commit([a!]), [true]);
    assert.deepEqual(await s.commit([{ ...a!, change: 2 }, { ...b!, change: 3 }]), [false, true]);
    assert.equal((await s.get(b!.key))?.change, 2);
    // A `has` of other keys, then a commit of keys never asked about.
    assert.deepEqual(await s.has(["00".repeat(32)]), [false]);
    assert.deepEqual(await s.commit([{ ...b!, change: 3 }, { ...c!, change: 4 }]), [false, true]);
    assert.equal(await s.length(), 3);
    assert.deepEqual(await s.has([a!.key, b!.key, c!.key]), [true, true, true]);
    assert.deepEqual(await s.heads(), [c!.key]);
    // A larger commit (more keys than a backend may look up one by one), stored nodes among the new ones.
    const many = chain(40, 4, c!.key, "m");
    const mixed = [a!, ...many.slice(0, 20), b!, ...many.slice(20)].map((n, i) => ({ ...n, change: 4 + i }));
    const report = await s.commit(mixed);
    assert.deepEqual(report, mixed.map((_, i) => i !== 0 && i !== 21));
    assert.equal(await s.length(), 43);
    assert.equal((await s.get(many[39]!.key))?.change, 43);
    assert.deepEqual((await s.read({ since: 3, until: 5, limit: 2, reverse: false })).map((n) => n.key), [
      many[0]!.key,
      many[1]!.key,
    ]);
    assert.deepEqual(await s.heads(), [many[39]!.key]);
    await s.close();
  });

  it("is atomic: a commit that fails midway leaves no node, change or head behind", async () => {
    const s = await open();
    const nodes = chain(50);
    const broken = nodes.map((n, i) => (i === 40 ? { ...n, change: 99 } : n));
    await assert.rejects(s.commit(broken), { name: "StorageConflictError" });
    assert.equal(await s.length(), 0);
    assert.deepEqual(await s.heads(), []);
    assert.deepEqual(await readAll(s), []);
    for (const n of nodes.slice(0, 40)) assert.equal(await s.get(n.key), undefined);
    await s.commit(nodes);
    assert.equal(await s.length(), 50);
    await s.close();
  });

  it("tells keys that share a prefix apart", async () => {
    const s = await open();
    const a = makeStoredNode([], "prefix", 1);
    await s.commit([a]);
    const sibling = a.key.slice(0, 63) + (a.key[63] === "0" ? "1" : "0");
    const shorter = a.key.slice(0, 32);
    assert.deepEqual(await s.has([a.key, sibling, shorter, a.key + "0"]), [true, false, false, false]);
    assert.equal(await s.get(sibling), undefined);
    assert.equal(await s.get(shorter), undefined);
    await s.setMeta("view", "1");
    await s.setMeta("view:x", "2");
    assert.equal(await s.getMeta("view"), "1");
    assert.equal(await s.getMeta("view:x"), "2");
    assert.equal(await s.getMeta("vie"), undefined);
    await s.close();
  });

  it("stores big values and empty values byte for byte", async () => {
    const s = await open();
    const big = new Uint8Array(4 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 8)) & 255;
    const a = makeStoredNode([], big, 1);
    const empty = makeStoredNode([a.key], new Uint8Array(0), 2);
    await s.commit([a, empty]);
    sameNode(await s.get(a.key), a);
    sameNode(await s.get(empty.key), empty);
    await s.close();
  });

  it("keeps metadata and overwrites it", async () => {
    const s = await open();
    await s.setMeta("id", "one");
    await s.setMeta("id", "two");
    assert.equal(await s.getMeta("id"), "two");
    await s.close();
  });

  it("refuses calls after close", async () => {
    const s = await open();
    await s.close();
    await assert.rejects(async () => await s.length(), { name: "ClosedError" });
    await assert.rejects(async () => await s.commit([makeStoredNode([], "x", 1)]), { name: "ClosedError" });
  });

  it("handles a long history in one commit and in many", async () => {
    const s = await open();
    const nodes = chain(5000);
    await s.commit(nodes.slice(0, 2500));
    for (let i = 2500; i < 5000; i += 250) await s.commit(nodes.slice(i, i + 250));
    assert.equal(await s.length(), 5000);
    assert.deepEqual(await s.heads(), [nodes[4999]!.key]);
    const all = await readAll(s);
    assert.equal(all.length, 5000);
    assert.ok(all.every((n, i) => n.key === nodes[i]!.key));
    await s.close();
  });

  it("views: commits pairs and the checkpoint together, reads them back, ranges in key order", async () => {
    const s = await open();
    assert.equal(await s.viewState("v"), undefined);
    assert.equal(await s.viewGet("v", "a"), undefined);
    assert.deepEqual(await s.viewRange("v", { limit: Infinity, reverse: false }), []);
    const keys = ["b", "a", "c", "a\u0000x", "ab", "", "Z", "\u00e9t\u00e9", "k\u4e2d", "__proto__", "0"];
    await s.viewCommit("v", keys.map((key, i) => ({ key, value: `value ${i}` })), { version: 3, change: 7 });
    assert.deepEqual(await s.viewState("v"), { version: 3, change: 7 });
    for (const [i, key] of keys.entries()) assert.equal(await s.viewGet("v", key), `value ${i}`);
    const sorted = [...keys].sort();
    const all = await s.viewRange("v", { limit: Infinity, reverse: false });
    assert.deepEqual(all.map(([key]) => key), sorted);
    assert.deepEqual(all.map(([, value]) => value), sorted.map((key) => `value ${keys.indexOf(key)}`));
    const down = await s.viewRange("v", { limit: Infinity, reverse: true });
    assert.deepEqual(down.map(([key]) => key), [...sorted].reverse());
    const keysOf = async (range: Omit<ViewRange, "limit" | "reverse">, limit = Infinity, reverse = false) =>
      (await s.viewRange("v", { ...range, limit, reverse })).map(([key]) => key);
    assert.deepEqual(await keysOf({ gte: "a", lt: "b" }), ["a", "a\u0000x", "ab"]);
    assert.deepEqual(await keysOf({ gt: "a", lte: "b" }), ["a\u0000x", "ab", "b"]);
    assert.deepEqual(await keysOf({ gt: "a", lte: "b" }, 2), ["a\u0000x", "ab"]);
    assert.deepEqual(await keysOf({ gt: "a", lte: "b" }, 2, true), ["b", "ab"]);
    assert.deepEqual(await keysOf({ gt: "c", lt: "a" }), []);
    assert.deepEqual(await keysOf({}, 0), []);
    await s.close();
  });

  it("views: overwrites and deletes in write order, keeps views apart, drops one whole", async () => {
    const s = await open();
    await s.viewCommit("one", [{ key: "x", value: "1" }, { key: "y", value: "2" }], { version: 1, change: 2 });
    await s.viewCommit("two", [{ key: "x", value: "other" }], { version: 5, change: 9 });
    await s.viewCommit("one", [
      { key: "x", value: "first" },
      { key: "x", value: "second" },
      { key: "y", value: undefined },
      { key: "z", value: "3" },
      { key: "z", value: undefined },
      { key: "w", value: undefined },
      { key: "w", value: "4" },
    ], { version: 1, change: 4 });
    assert.deepEqual(await s.viewRange("one", { limit: Infinity, reverse: false }), [["w", "4"], ["x", "second"]]);
    assert.deepEqual(await s.viewState("one"), { version: 1, change: 4 });
    assert.equal(await s.viewGet("one", "y"), undefined);
    assert.equal(await s.viewGet("two", "x"), "other");
    await s.viewCommit("one", [], { version: 2, change: 0 });
    assert.deepEqual(await s.viewState("one"), { version: 2, change: 0 }, "an empty commit moves the checkpoint");
    await s.viewDrop("one");
    assert.equal(await s.viewState("one"), undefined);
    assert.deepEqual(await s.viewRange("one", { limit: Infinity, reverse: false }), []);
    assert.deepEqual(await s.viewState("two"), { version: 5, change: 9 }, "dropping one view leaves the others");
    assert.equal(await s.viewGet("two", "x"), "other");
    await s.viewDrop("never made");
    await s.close();
  });

  it("views: refuses a malformed commit and changes nothing", async () => {
    const s = await open();
    await s.viewCommit("v", [{ key: "a", value: "1" }], { version: 1, change: 1 });
    const bad: unknown[] = [
      [[{ key: "b", value: "2" }, { key: 5, value: "x" }], { version: 1, change: 2 }],
      [[{ key: "b", value: "2" }, { key: "c", value: 7 }], { version: 1, change: 2 }],
      [[{ key: "b", value: "2" }], { version: 1, change: -1 }],
      [[{ key: "b", value: "2" }], { version: 1.5, change: 2 }],
    ];
    for (const [writes, state] of bad as Array<[ViewWrite[], ViewState]>) {
      await assert.rejects(async () => await s.viewCommit("v", writes, state), { name: "HyperlogError" });
    }
    await assert.rejects(async () => await s.viewCommit("", [], { version: 1, change: 1 }), { name: "HyperlogError" });
    assert.deepEqual(await s.viewRange("v", { limit: Infinity, reverse: false }), [["a", "1"]]);
    assert.deepEqual(await s.viewState("v"), { version: 1, change: 1 });
    await s.close();
  });

  it("views: a large commit (20 000 pairs, a value of 1 MB) is whole", async () => {
    const s = await open();
    const writes: ViewWrite[] = [];
    for (let i = 0; i < 20000; i++) writes.push({ key: `k${String(i).padStart(6, "0")}`, value: "v".repeat(i % 97) });
    writes.push({ key: "long", value: "x".repeat(1024 * 1024) });
    await s.viewCommit("big", writes, { version: 1, change: 20000 });
    const all = await s.viewRange("big", { limit: Infinity, reverse: false });
    assert.equal(all.length, 20001);
    assert.equal(all[0]![0], "k000000");
    assert.equal(all[123]![1], "v".repeat(123 % 97));
    assert.equal((await s.viewGet("big", "long"))!.length, 1024 * 1024);
    await s.close();
  });

  if (target.reopen !== undefined) {
    const reopen = target.reopen;
    it("views: keep pairs and checkpoints across a reopen", async () => {
      const s = await open();
      await s.viewCommit("v", [{ key: "a", value: "1" }, { key: "b", value: "2" }], { version: 4, change: 2 });
      const again = await reopen(s);
      await again.open();
      assert.deepEqual(await again.viewState("v"), { version: 4, change: 2 });
      assert.deepEqual(await again.viewRange("v", { limit: Infinity, reverse: false }), [["a", "1"], ["b", "2"]]);
      await again.close();
    });
    it("keeps everything across a reopen", async () => {
      const s = await open();
      const nodes = chain(20);
      const other = makeStoredNode([], "other", 21);
      await s.commit(nodes);
      await s.commit([other]);
      await s.setMeta("id", "kept");
      const again = await reopen(s);
      await again.open();
      // A new handle has looked nothing up: the commit itself finds what is stored.
      assert.deepEqual(await again.commit([{ ...nodes[3]!, change: 22 }]), [false]);
      assert.equal(await again.length(), 21);
      assert.equal(await again.getMeta("id"), "kept");
      assert.deepEqual((await again.heads()).sort(), [nodes[19]!.key, other.key].sort());
      sameNode(await again.get(nodes[7]!.key), nodes[7]!);
      const next = makeStoredNode([other.key], "next", 22);
      await again.commit([next]);
      assert.equal(await again.length(), 22);
      await again.close();
    });
  }
  return cases;
}
