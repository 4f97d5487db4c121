import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import {
  type Codec,
  computeKey,
  Hyperlog,
  Identity,
  MemoryStorage,
  NotFoundError,
  type Node,
  type Storage,
  withChange,
} from "../mod.ts";

const HELLO = "8c7efb22472592f561a7a7647f8c5ee93134880b4ca0c92889a61848cd5c4602";
const WORLD = "5f5e63be98841981a12b6041e4200677851714ec4305d13a3ee30197439ff193";
const JSON_HELLO_WORLD = "9b1a08b2d7aec6b863f6fae7515a8c421b2bcd2834547704cb736548333445dc";

async function collect<T>(stream: ReadableStream<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

async function snapshot(log: Hyperlog): Promise<{ length: number; heads: string[]; keys: string[] }> {
  const nodes = await collect(log.createReadStream());
  return { length: log.length, heads: (await log.heads()).map((n) => n.key), keys: nodes.map((n) => n.key) };
}

describe("keys are hyperlog 4.x keys", () => {
  it("matches the vectors computed with hyperlog 4.12.1", async () => {
    const log = new Hyperlog({ valueEncoding: "utf-8" });
    const hello = await log.add(null, "hello");
    assert.equal(hello.key, HELLO);
    const world = await log.add([HELLO], "world");
    assert.equal(world.key, WORLD);
    assert.deepEqual(world.links, [HELLO]);
    const json = new Hyperlog({ valueEncoding: "json" });
    assert.equal((await json.add(null, { hello: "world" })).key, JSON_HELLO_WORLD);
  });

  it("uses json by default, and binary keys equal utf-8 keys for the same bytes", async () => {
    const log = new Hyperlog();
    assert.equal((await log.add(null, { hello: "world" })).key, JSON_HELLO_WORLD);
    const bin = new Hyperlog({ valueEncoding: "binary" });
    const node = await bin.add(null, new TextEncoder().encode("hello"));
    assert.equal(node.key, HELLO);
    assert.ok(node.value instanceof Uint8Array);
    assert.deepEqual([...(node.value as Uint8Array)], [...new TextEncoder().encode("hello")]);
  });
});

describe("add, get, heads", () => {
  it("numbers changes 1, 2, 3 and returns stored nodes from get", async () => {
    const log = new Hyperlog<string>({ valueEncoding: "utf-8" });
    const a = await log.add(null, "a");
    const b = await log.add([a.key], "b");
    const c = await log.add(null, "c");
    assert.deepEqual([a.change, b.change, c.change], [1, 2, 3]);
    const got = await log.get(b.key);
    assert.deepEqual(got, b);
    assert.deepEqual((await log.heads()).map((n) => n.key), [b.key, c.key].sort());
    assert.equal(log.length, 3);
  });

  it("gets and lists heads through a MemoryStorage's get when a subclass or the caller replaced it", async () => {
    // The log reads what a MemoryStorage keeps without asking its get, unless get was replaced: then it asks get.
    class Tagging extends MemoryStorage {
      override async get(key: string) {
        const stored = await super.get(key);
        return stored === undefined ? undefined : withChange(stored, 7);
      }
    }
    const subclassed = new Hyperlog<{ n: number }>(new Tagging());
    const [node] = await subclassed.batch([{ value: { n: 1 } }]);
    const got = await subclassed.get(node!.key);
    assert.equal(got.change, 7, "the subclass's get was asked");
    assert.deepEqual(got.value, { n: 1 });
    assert.deepEqual((await subclassed.heads()).map((head) => head.change), [7], "and by heads");

    const storage = new MemoryStorage();
    const log = new Hyperlog<{ n: number }>(storage);
    const [other] = await log.batch([{ value: { n: 2 } }]);
    assert.equal(await log.get(other!.key), other, "the node batch returned, as kept");
    assert.equal((await log.heads())[0], other);
    const asked: string[] = [];
    const get = storage.get.bind(storage);
    storage.get = (key) => {
      asked.push(key);
      return get(key);
    };
    assert.deepEqual((await log.get(other!.key)).value, { n: 2 });
    assert.deepEqual((await log.heads()).map((head) => head.value), [{ n: 2 }]);
    assert.deepEqual(asked, [other!.key, other!.key], "the replaced get was asked, by get and by heads");
    await assert.rejects(log.get("ab".repeat(32)), NotFoundError);
  });

  it("rejects a missing key with NotFoundError and a malformed key with TypeError", async () => {
    const log = new Hyperlog();
    await assert.rejects(log.get("ab".repeat(32)), (err: Error) => {
      assert.equal(err.name, "NotFoundError");
      assert.match(err.message, /abab/);
      return true;
    });
    await assert.rejects(log.get("nope"), TypeError);
  });

  it("refuses a link to a missing node, naming it, and stores nothing", async () => {
    const log = new Hyperlog();
    const a = await log.add(null, 1);
    const missing = "12".repeat(32);
    await assert.rejects(log.add([a.key, missing], 2), (err: Error & { missing?: string[] }) => {
      assert.equal(err.name, "MissingLinksError");
      assert.ok(err.message.includes(missing));
      assert.deepEqual(err.missing, [missing]);
      return true;
    });
    assert.equal(log.length, 1);
    assert.deepEqual((await log.heads()).map((n) => n.key), [a.key]);
  });

  it("refuses malformed links with a TypeError", async () => {
    const log = new Hyperlog();
    await assert.rejects(log.add(["AB".repeat(32)], 1), TypeError);
    await assert.rejects(log.add(["xyz"], 1), /link 0 is not a node key/);
    await assert.rejects(log.add("abc" as unknown as string[], 1), /links must be an array/);
    const a = await log.add(null, 1);
    await assert.rejects(log.add([a.key, a.key], 2), /given twice/);
    assert.equal(log.length, 1);
  });

  it("returns the stored node when the same node is added again, changing nothing", async () => {
    const log = new Hyperlog();
    const first = await log.add(null, { x: 1 });
    const again = await log.add(null, { x: 1 });
    assert.deepEqual(again, first);
    assert.equal(log.length, 1);
    const [dup] = await log.batch([{ value: { x: 1 } }]);
    assert.equal(dup!.change, 1);
    assert.equal(log.length, 1);
  });

  it("append links every current head, in key order", async () => {
    const log = new Hyperlog();
    const a = await log.add(null, "a");
    const b = await log.add(null, "b");
    const c = await log.append("c");
    assert.deepEqual(c.links, [a.key, b.key].sort());
    const d = await log.append("d");
    assert.deepEqual(d.links, [c.key]);
    assert.deepEqual((await log.heads()).map((n) => n.key), [d.key]);
  });

  it("takes options without a storage, or a storage without options", async () => {
    const storage = new MemoryStorage();
    const log = new Hyperlog(storage);
    await log.add(null, "x");
    assert.equal(await storage.length(), 1);
    assert.throws(() => new Hyperlog({ valueEncoding: "latin1" as "json" }), /Unknown valueEncoding/);
  });
});

describe("batch", () => {
  it("stores all documents in one go, in order, linking to earlier ones by key or index", async () => {
    const log = new Hyperlog<string>({ valueEncoding: "utf-8" });
    const [a, b, c] = await log.batch([{ value: "hello" }, { links: [HELLO], value: "world" }, {
      links: [0, 1],
      value: "both",
    }]);
    assert.equal(a!.key, HELLO);
    assert.equal(b!.key, WORLD);
    assert.deepEqual(c!.links, [HELLO, WORLD]);
    assert.deepEqual([a!.change, b!.change, c!.change], [1, 2, 3]);
    assert.deepEqual((await log.heads()).map((n) => n.key), [c!.key]);
  });

  it("is atomic: one bad document stores nothing", async () => {
    const log = new Hyperlog();
    const before = await log.add(null, "before");
    const events: string[] = [];
    log.addEventListener("add", () => events.push("add"));
    await assert.rejects(
      log.batch([{ value: "ok" }, { links: ["34".repeat(32)], value: "orphan" }, { value: "also ok" }]),
      { name: "MissingLinksError" },
    );
    await assert.rejects(log.batch([{ value: "ok" }, { value: undefined }]), { name: "EncodingError" });
    await assert.rejects(log.batch([{ value: "ok" }, { links: [1], value: "self" }]), /not an earlier document/);
    await assert.rejects(log.batch([{ value: "x" }, null as unknown as { value: string }]), TypeError);
    assert.equal(log.length, 1);
    assert.deepEqual(events, []);
    assert.deepEqual((await log.heads()).map((n) => n.key), [before.key]);
  });

  it("refuses a document that links to a later document of the batch", async () => {
    const log = new Hyperlog<string>({ valueEncoding: "utf-8" });
    await assert.rejects(log.batch([{ links: [HELLO], value: "world" }, { value: "hello" }]), {
      name: "MissingLinksError",
    });
    assert.equal(log.length, 0);
  });

  it("gives one node for a document repeated in a batch or already stored", async () => {
    const log = new Hyperlog();
    const old = await log.add(null, "old");
    const nodes = await log.batch([{ value: "new" }, { value: "old" }, { value: "new" }]);
    assert.equal(nodes[0]!.key, nodes[2]!.key);
    assert.equal(nodes[1]!.change, old.change);
    assert.equal(log.length, 2);
  });

  it("handles an empty batch", async () => {
    const log = new Hyperlog();
    assert.deepEqual(await log.batch([]), []);
    assert.equal(log.length, 0);
  });

  it("scales linearly: 20 000 linked documents in one batch", async () => {
    const log = new Hyperlog();
    const docs = [{ value: 0 }, ...Array.from({ length: 19_999 }, (_, i) => ({ links: [i], value: i + 1 }))];
    const nodes = await log.batch(docs);
    assert.equal(nodes.length, 20_000);
    assert.equal(log.length, 20_000);
    assert.deepEqual((await log.heads()).map((n) => n.key), [nodes[19_999]!.key]);
  });
});

describe("concurrency", () => {
  it("never loses a head or reuses a change number under concurrent add and append", async () => {
    const log = new Hyperlog();
    const root = await log.add(null, "root");
    const work: Promise<Node>[] = [];
    for (let i = 0; i < 200; i++) {
      work.push(i % 3 === 0 ? log.append(`append ${i}`) : log.add([root.key], `fork ${i}`));
    }
    const nodes = await Promise.all(work);
    const changes = nodes.map((n) => n.change).sort((a, b) => a - b);
    assert.deepEqual(changes, Array.from({ length: 200 }, (_, i) => i + 2));
    // The heads are exactly the nodes nothing links to.
    const all = await collect(log.createReadStream());
    const linked = new Set(all.flatMap((n) => n.links));
    const expected = all.filter((n) => !linked.has(n.key)).map((n) => n.key).sort();
    assert.deepEqual((await log.heads()).map((n) => n.key), expected);
  });
});

describe("value encodings", () => {
  it("refuses values the encoding cannot encode, storing nothing", async () => {
    const json = new Hyperlog();
    await assert.rejects(json.add(null, undefined), { name: "EncodingError" });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await assert.rejects(json.add(null, circular), /cannot be encoded as json/);
    await assert.rejects(json.add(null, 10n), /cannot be encoded as json/);
    const text = new Hyperlog({ valueEncoding: "utf-8" });
    await assert.rejects(text.add(null, 5 as unknown as string), /expected a string, got a number/);
    const bin = new Hyperlog({ valueEncoding: "binary" });
    await assert.rejects(bin.add(null, { a: 1 } as unknown as Uint8Array), /expected a Uint8Array/);
    assert.equal(json.length + text.length + bin.length, 0);
  });

  it("round-trips unicode, empty values and custom codecs", async () => {
    const text = new Hyperlog<string>({ valueEncoding: "utf-8" });
    const node = await text.add(null, "héllo wörld ✓ 𝄞");
    assert.equal((await text.get(node.key)).value, "héllo wörld ✓ 𝄞");
    assert.equal((await text.add(null, "")).value, "");
    const decimal: Codec<number> = {
      encode: (n) => new TextEncoder().encode(n.toFixed(2)),
      decode: (b) => Number(new TextDecoder().decode(b)),
    };
    const custom = new Hyperlog<number>({ valueEncoding: decimal });
    const n = await custom.add(null, 3.14159);
    assert.equal((await custom.get(n.key)).value, 3.14);
    const broken = new Hyperlog<number>({
      valueEncoding: { encode: () => "nope" as unknown as Uint8Array, decode: () => 0 },
    });
    await assert.rejects(broken.add(null, 1), /must return a Uint8Array/);
  });

  it("copies binary values so later changes to the caller's bytes do not reach the log", async () => {
    const log = new Hyperlog({ valueEncoding: "binary" });
    const bytes = new Uint8Array([1, 2, 3]);
    const node = await log.add(null, bytes);
    bytes[0] = 9;
    assert.deepEqual([...((await log.get(node.key)).value as Uint8Array)], [1, 2, 3]);
  });
});

describe("events", () => {
  it("emits preadd before and add after storing, and reject for refused nodes", async () => {
    const log = new Hyperlog();
    const seen: string[] = [];
    log.addEventListener("preadd", (e) => {
      const node = (e as CustomEvent<Node>).detail;
      seen.push(`preadd ${node.value} stored=${log.length >= node.change}`);
    });
    log.addEventListener("add", (e) => {
      const node = (e as CustomEvent<Node>).detail;
      seen.push(`add ${node.value} stored=${log.length >= node.change}`);
    });
    log.addEventListener(
      "reject",
      (e) => seen.push(`reject ${(e as CustomEvent<{ error: Error }>).detail.error.name}`),
    );
    await log.add(null, "a");
    await log.add(null, "a");
    await log.add(["56".repeat(32)], "b").catch(() => {});
    assert.deepEqual(seen, ["preadd a stored=false", "add a stored=true", "reject MissingLinksError"]);
  });

  it("stops calling a removed listener", async () => {
    const log = new Hyperlog();
    let calls = 0;
    const listener = () => calls++;
    log.addEventListener("add", listener);
    await log.append(1);
    log.removeEventListener("add", listener);
    await log.append(2);
    assert.equal(calls, 1);
  });
});

describe("createReadStream", () => {
  async function fill(count: number): Promise<Hyperlog<number>> {
    const log = new Hyperlog<number>();
    await log.batch(Array.from({ length: count }, (_, i) => ({ value: i + 1 })));
    return log;
  }

  it("streams in change order, with since, until, limit and reverse", async () => {
    const log = await fill(2500);
    const values = async (options: Parameters<typeof log.createReadStream>[0]) =>
      (await collect(log.createReadStream(options))).map((n) => n.value);
    const all = await values({});
    assert.equal(all.length, 2500);
    assert.ok(all.every((v, i) => v === i + 1));
    assert.deepEqual(await values({ since: 2497 }), [2498, 2499, 2500]);
    assert.deepEqual(await values({ since: 10, until: 13 }), [11, 12, 13]);
    assert.deepEqual(await values({ limit: 3 }), [1, 2, 3]);
    assert.deepEqual(await values({ reverse: true, limit: 3 }), [2500, 2499, 2498]);
    assert.deepEqual(await values({ reverse: true, since: 1, until: 4 }), [4, 3, 2]);
    assert.equal((await values({ reverse: true })).length, 2500);
    assert.deepEqual(await values({ limit: 0 }), []);
  });

  it("refuses bad options with a RangeError", () => {
    const log = new Hyperlog();
    assert.throws(() => log.createReadStream({ since: -1 }), RangeError);
    assert.throws(() => log.createReadStream({ limit: 1.5 }), RangeError);
    assert.throws(() => log.createReadStream({ reverse: true, live: true }), /both reverse and live/);
  });

  it("live: delivers existing nodes, then new ones as they are added, until cancelled", async () => {
    const log = await fill(3);
    const reader = log.createReadStream({ live: true }).getReader();
    const got: unknown[] = [];
    for (let i = 0; i < 3; i++) got.push((await reader.read()).value?.value);
    const pending = reader.read();
    await log.append(4);
    got.push((await pending).value?.value);
    await log.batch([{ value: 5 }, { value: 6 }]);
    got.push((await reader.read()).value?.value, (await reader.read()).value?.value);
    assert.deepEqual(got, [1, 2, 3, 4, 5, 6]);
    const waiting = reader.read();
    await reader.cancel();
    assert.deepEqual(await waiting, { done: true, value: undefined });
  });

  it("live: a close that lands while the stream reads an empty page still ends it, and close resolves", async () => {
    // The stream's read resolves (empty: the reader has everything) only after the close has woken its waiters.
    class GatedStorage extends MemoryStorage {
      gate: Promise<void> | undefined;
      entered: (() => void) | undefined;
      override async read(range: Parameters<Storage["read"]>[0]): ReturnType<Storage["read"]> {
        const page = await super.read(range);
        if (this.gate !== undefined) {
          this.entered?.();
          await this.gate;
        }
        return page;
      }
    }
    const storage = new GatedStorage();
    const log = new Hyperlog<number>(storage);
    await log.append(1);
    const reader = log.createReadStream({ live: true }).getReader();
    assert.equal((await reader.read()).value?.value, 1);
    let open!: () => void;
    storage.gate = new Promise((resolve) => open = resolve);
    const entered = new Promise<void>((resolve) => storage.entered = resolve);
    const next = reader.read();
    await entered;
    const closing = log.close();
    // The store closes (and wakes whoever waits for the log to grow) before the close reaches the live streams.
    while (!log.closed) await Promise.resolve();
    open();
    assert.equal((await next).done, true);
    await closing;
  });

  it("live: ends cleanly when the log closes, and respects until", async () => {
    const log = await fill(1);
    const stream = log.createReadStream({ live: true });
    const done = collect(stream);
    await log.append(2);
    await log.close();
    assert.deepEqual((await done).map((n) => n.value), [1, 2]);

    // Nodes committed before the close that the reader had not pulled yet are still delivered, then the stream ends.
    const unread = await fill(1);
    const reader = unread.createReadStream({ live: true }).getReader();
    assert.equal((await reader.read()).value?.value, 1);
    const waiting = reader.read();
    await unread.batch(Array.from({ length: 1200 }, (_, i) => ({ value: i + 2 })));
    await unread.close();
    const rest = [(await waiting).value?.value];
    for (let next = await reader.read(); !next.done; next = await reader.read()) rest.push(next.value.value);
    assert.deepEqual(rest, Array.from({ length: 1200 }, (_, i) => i + 2));

    const other = await fill(1);
    const bounded = collect(other.createReadStream({ live: true, until: 2 }));
    await other.append(2);
    await other.append(3);
    assert.deepEqual((await bounded).map((n) => n.value), [1, 2]);
  });
});

describe("ready, id and close", () => {
  it("keeps the id in storage, so a log reopened on the same storage has the same id", async () => {
    const storage = new MemoryStorage();
    const log = new Hyperlog(storage);
    await log.ready();
    assert.match(log.id, /^[0-9a-f]{32}$/);
    const again = new Hyperlog(storage);
    await again.ready();
    assert.equal(again.id, log.id);
    assert.throws(() => new Hyperlog().id, /await log.ready\(\)/);
  });

  it("gives logs opened at once on the same storage the same id", async () => {
    const storage = new MemoryStorage();
    const logs = [new Hyperlog(storage), new Hyperlog(storage), new Hyperlog(storage)];
    await Promise.all(logs.map((log) => log.ready()));
    assert.equal(new Set(logs.map((log) => log.id)).size, 1);
    assert.equal(await storage.getMeta("id"), logs[0]!.id);
  });

  it("refuses calls after close, and close twice is harmless", async () => {
    const log = new Hyperlog();
    await log.append(1);
    await log.close();
    await log.close();
    await assert.rejects(log.append(2), { name: "ClosedError" });
    await assert.rejects(log.get("ab".repeat(32)), { name: "ClosedError" });
  });

  it("finishes writes in flight before closing", async () => {
    const log = new Hyperlog();
    const writes = [log.append(1), log.append(2)];
    const closed = log.close();
    assert.equal((await Promise.all(writes)).length, 2);
    await closed;
  });

  it("surfaces a storage that fails to open on every call", async () => {
    const failing = new MemoryStorage();
    failing.open = () => Promise.reject(new Error("Disk on fire"));
    const log = new Hyperlog(failing as Storage);
    await assert.rejects(log.ready(), /Disk on fire/);
    await assert.rejects(log.append(1), /Disk on fire/);
  });

  it("reports a change the storage refused and recovers its change counter", async () => {
    const storage = new MemoryStorage();
    const a = new Hyperlog(storage);
    const b = new Hyperlog(storage);
    await a.ready();
    await b.ready();
    await a.append("from a");
    await assert.rejects(b.add(null, "from b"), { name: "StorageConflictError" });
    const retry = await b.add(null, "from b");
    assert.equal(retry.change, 2);
    assert.deepEqual((await snapshot(b)).length, 2);
  });
});

describe("immutable nodes", () => {
  it("hands out frozen nodes with deeply frozen json values, decoded once", async () => {
    const log = new Hyperlog();
    const added = await log.add(null, { list: [1, { deep: true }], name: "x" });
    const got = await log.get(added.key);
    assert.ok(Object.isFrozen(got));
    assert.ok(Object.isFrozen(got.links));
    const value = got.value as { list: [number, { deep: boolean }]; name: string };
    assert.ok(Object.isFrozen(value) && Object.isFrozen(value.list) && Object.isFrozen(value.list[1]));
    assert.throws(() => {
      value.list[1].deep = false;
    }, TypeError);
    assert.equal((await log.get(added.key)).value, value, "the decoded value is shared, not decoded again");
    const [streamed] = await collect(log.createReadStream());
    assert.equal(streamed, got);
  });

  it("does not share decoded nodes between logs of different encodings on one storage", async () => {
    const storage = new MemoryStorage();
    const json = new Hyperlog(storage, { valueEncoding: "json" });
    const node = await json.add(null, "hi");
    const text = new Hyperlog(storage, { valueEncoding: "utf-8" });
    assert.equal((await text.get(node.key)).value, '"hi"');
    assert.equal((await json.get(node.key)).value, "hi");
  });

  it("gives binary values as fresh copies that the caller may change", async () => {
    const log = new Hyperlog({ valueEncoding: "binary" });
    const node = await log.add(null, new Uint8Array([1, 2]));
    const first = (await log.get(node.key)).value as Uint8Array;
    first[0] = 99;
    assert.equal(((await log.get(node.key)).value as Uint8Array)[0], 1);
  });

  it("decodes a json value added locally when it is first read, and the node still looks and compares as plain", async () => {
    const log = new Hyperlog();
    const value = { list: [1, { deep: true }], name: "x" };
    const [node] = await log.batch([{ value }, { value: "second" }]);
    const plain = { key: node!.key, links: [], value, change: 1 };
    assert.ok(Object.isFrozen(node));
    assert.deepEqual(Object.keys(node!), ["key", "links", "value", "change"]);
    assert.deepEqual(node, plain);
    assert.deepEqual({ ...node }, plain);
    assert.deepEqual(JSON.parse(JSON.stringify(node)), plain);
    assert.deepEqual(structuredClone(node), plain);
    assert.doesNotMatch(inspect(node, { depth: 5 }), /Getter/);
    assert.match(inspect(node, { depth: 5 }), /deep: true/);
    const got = node!.value as typeof value;
    assert.notEqual(got, value, "the caller's object is not handed back");
    assert.ok(Object.isFrozen(got) && Object.isFrozen(got.list) && Object.isFrozen(got.list[1]));
    assert.equal(node!.value, got, "decoded once");
    assert.equal((await log.get(node!.key)).value, got);
    value.name = "changed later by the caller";
    assert.equal(got.name, "x");
    const signed = await new Hyperlog({ identity: await Identity.generate() }).add(null, { a: 1 });
    assert.deepEqual(Object.keys(signed), ["key", "links", "value", "change", "identity", "signature"]);
    assert.deepEqual(signed.value, { a: 1 });
  });

  it("keeps one node per json node it adds, which the stored node reads every field from, on any json log", async () => {
    const storage = new MemoryStorage();
    const log = new Hyperlog(storage);
    const [a, b] = await log.batch([{ value: { n: 1 } }, { links: [0], value: { n: 2 } }]);
    const stored = (await storage.get(b!.key))!;
    assert.equal(Object.keys(stored).length, 0, "every field is a getter: copy with withChange, not a spread");
    assert.deepEqual(withChange(stored, 2), {
      key: b!.key,
      links: [a!.key],
      value: new TextEncoder().encode('{"n":2}'),
      change: 2,
    });
    assert.notEqual(await storage.get(b!.key), stored, "made anew when handed out");
    assert.equal(await log.get(b!.key), b, "the node batch returned, not decoded again");
    assert.deepEqual(await collect(log.createReadStream()), [a, b]);
    assert.equal((await collect(log.createReadStream()))[1], b);
    assert.equal(await new Hyperlog(storage).get(b!.key), b, "another json log on the storage reads the same node");
    assert.deepEqual((await new Hyperlog(storage, { valueEncoding: "utf-8" }).get(b!.key)).value, '{"n":2}');
    const [page] = await collect(new Hyperlog(storage, { valueEncoding: "utf-8" }).createReadStream({ limit: 1 }));
    assert.equal(page!.value, '{"n":1}');
    // A node after one the commit skips takes a lower change number: in a node of its own.
    const [again, c] = await log.batch([{ value: { n: 1 } }, { value: { n: 3 } }]);
    assert.equal(again, a);
    assert.equal(c!.change, 3);
    assert.deepEqual(c!.value, { n: 3 });
    assert.equal((await storage.get(c!.key))!.change, 3);
    assert.deepEqual(await log.get(c!.key), c);
    // Signed: the identity and signature too.
    const identity = await Identity.generate();
    const signedStorage = new MemoryStorage();
    const signed = await new Hyperlog(signedStorage, { identity }).add(null, { s: 1 });
    const signedStored = (await signedStorage.get(signed.key))!;
    assert.equal(signedStored.identity, signed.identity);
    assert.equal(signedStored.signature, signed.signature);
    assert.equal((await storage.get(a!.key))!.identity, undefined);
  });

  it("decodes a re-added json document from what the storage returns, even a frozen copy", async () => {
    // A storage that hands out frozen copies of its nodes: the log must not try to keep a decoded node, or a lazily
    // decoded value, in them.
    class CopyingStorage extends MemoryStorage {
      override async get(key: string) {
        const stored = await super.get(key);
        if (stored === undefined) return undefined;
        return Object.freeze({ key: stored.key, links: stored.links, value: stored.value, change: stored.change });
      }
    }
    const log = new Hyperlog(new CopyingStorage());
    const [first] = await log.batch([{ value: { a: [1, 2] } }]);
    const [again, other] = await log.batch([{ value: { a: [1, 2] } }, { value: { b: 3 } }]);
    assert.equal(again!.key, first!.key);
    assert.equal(again!.change, 1);
    assert.deepEqual(again!.value, { a: [1, 2] });
    assert.ok(Object.isFrozen(again!.value));
    assert.deepEqual(other!.value, { b: 3 });
    assert.deepEqual((await log.get(first!.key)).value, { a: [1, 2] });
  });

  it("keeps every value intact while many later values are written", async () => {
    const log = new Hyperlog<string>({ valueEncoding: "utf-8" });
    const texts = Array.from({ length: 3000 }, (_, i) => `${i}:` + "é€x".repeat((i * 37) % 1500));
    const added = await log.batch(texts.slice(0, 2000).map((value) => ({ value })));
    for (const value of texts.slice(2000)) added.push(await log.append(value));
    const stored = await log.storage.read({ since: 0, until: Infinity, limit: Infinity, reverse: false });
    assert.equal(stored.length, 3000);
    const encoder = new TextEncoder();
    for (let i = 0; i < 3000; i++) {
      const node = stored[i]!;
      assert.deepEqual(node.value, encoder.encode(texts[i]!), `value ${i}`);
      assert.equal(node.key, computeKey(node.links, encoder.encode(texts[i]!)));
      assert.equal(added[i]!.key, node.key);
    }
  });
});
