import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { answer, decodeRecon, encodeRecon, KeyIndex, LIST_THRESHOLD, type ReconEntry } from "../src/reconcile.ts";
import { sha256Hex } from "../src/sha256.ts";
import { Hyperlog, MemoryStorage } from "../mod.ts";

const key = (n: number) => sha256Hex(new TextEncoder().encode(`key ${n}`));

/** Runs reconciliation to the end between two key sets; returns what each side must send and the cost. */
function reconcile(a: string[], b: string[]) {
  const ia = new KeyIndex([...a]);
  const ib = new KeyIndex([...b]);
  const sendA = new Set<string>();
  const sendB = new Set<string>();
  let message: ReconEntry[] = answer(ia, [{ kind: "fp", prefix: "", fp: ib.fingerprint("") }], sendA);
  let bytes = encodeRecon(3, message).length;
  let messages = 1;
  for (let turn = 0; message.length > 0; turn++) {
    message = turn % 2 === 0 ? answer(ib, message, sendB) : answer(ia, message, sendA);
    bytes += encodeRecon(3, message).length;
    messages++;
  }
  return { sendA, sendB, bytes, messages };
}

describe("set reconciliation", () => {
  it("finds exactly the difference, both ways, for sets of many sizes", () => {
    for (
      const [shared, onlyA, onlyB] of [[0, 0, 0], [0, 5, 0], [10, 0, 3], [1000, 1, 1], [5000, 40, 0], [3000, 200, 300]]
    ) {
      const common = Array.from({ length: shared! }, (_, i) => key(i));
      const extraA = Array.from({ length: onlyA! }, (_, i) => key(1e6 + i));
      const extraB = Array.from({ length: onlyB! }, (_, i) => key(2e6 + i));
      const { sendA, sendB } = reconcile([...common, ...extraA], [...common, ...extraB]);
      assert.deepEqual([...sendA].sort(), extraA.sort(), `a sends its ${onlyA} extras`);
      assert.deepEqual([...sendB].sort(), extraB.sort(), `b sends its ${onlyB} extras`);
    }
  });

  it("costs what the difference costs: 100 000 shared keys, 10 different", () => {
    const common = Array.from({ length: 100_000 }, (_, i) => key(i));
    const { sendA, sendB, bytes, messages } = reconcile([...common, ...[1, 2, 3, 4, 5].map((i) => key(-i))], [
      ...common,
      ...[6, 7, 8, 9, 10].map((i) => key(-i)),
    ]);
    assert.equal(sendA.size + sendB.size, 10);
    assert.ok(bytes < 32_000, `${bytes} bytes, not a key list (3.2 MB)`);
    assert.ok(messages <= 8, `${messages} messages`);
  });

  it("encodes and decodes every kind of entry", () => {
    const entries: ReconEntry[] = [
      { kind: "fp", prefix: "", fp: { count: 0, xor: new Uint8Array(16) } },
      { kind: "fp", prefix: "abc", fp: { count: 300, xor: new Uint8Array(16).fill(9) } },
      { kind: "keys", prefix: "d", keys: ["d" + "0".repeat(63), "d" + "1".repeat(63)] },
      { kind: "need", prefix: "", keys: [key(1)] },
      { kind: "all", prefix: "0123456789abcdef" },
    ];
    assert.deepEqual(decodeRecon(encodeRecon(3, entries), 1), entries);
  });

  it("refuses malformed messages with a ProtocolError", () => {
    const bad = [
      Uint8Array.of(3, 9, 0),
      Uint8Array.of(3, 1, 64),
      Uint8Array.of(3, 1, 1, 0xa0),
      Uint8Array.of(3, 2, 0, 5, 1, 2),
      encodeRecon(3, [{ kind: "keys", prefix: "e", keys: ["d" + "0".repeat(63)] }]),
    ];
    for (const body of bad) assert.throws(() => decodeRecon(body, 1), { name: "ProtocolError" });
  });

  it("lists keys for small ranges instead of splitting them", () => {
    const index = new KeyIndex(Array.from({ length: LIST_THRESHOLD }, (_, i) => key(i)));
    const reply = answer(index, [{ kind: "fp", prefix: "", fp: { count: 1, xor: new Uint8Array(16) } }], new Set());
    assert.equal(reply[0]?.kind, "keys");
  });

  it("refuses a request for a key it never offered", () => {
    const index = new KeyIndex([key(1)]);
    assert.throws(() => answer(index, [{ kind: "need", prefix: "", keys: [key(2)] }], new Set()), /never offered/);
  });
});

async function fill(log: Hyperlog, count: number, tag: string): Promise<void> {
  for (let i = 0; i < count; i += 500) {
    await log.batch(Array.from({ length: Math.min(500, count - i) }, (_, j) => ({ value: `${tag} ${i + j}` })));
  }
}

async function sync(a: Hyperlog, b: Hyperlog) {
  const ra = a.replicate();
  const rb = b.replicate();
  ra.readable.pipeTo(rb.writable).catch(() => {});
  rb.readable.pipeTo(ra.writable).catch(() => {});
  return await Promise.all([ra.done, rb.done]);
}

async function keys(log: Hyperlog): Promise<string[]> {
  const out: string[] = [];
  for await (const node of log.createReadStream()) out.push(node.key);
  return out.sort();
}

describe("the cost of a sync follows the difference", () => {
  it("resync after a checkpoint: only the new nodes and a few hundred bytes, in three round trips", async () => {
    const a = new Hyperlog({ valueEncoding: "utf-8" });
    const b = new Hyperlog({ valueEncoding: "utf-8" });
    await fill(a, 3000, "a");
    await fill(b, 2000, "b");
    await sync(a, b);
    await fill(a, 5, "a new");
    await fill(b, 7, "b new");
    const [sa, sb] = await sync(a, b);
    assert.equal(sa.nodesSent, 5);
    assert.equal(sb.nodesSent, 7);
    assert.equal(sa.roundTrips, 3);
    const overhead = sa.bytesSent + sb.bytesSent - 12 * 50;
    assert.ok(overhead < 1000, `${sa.bytesSent + sb.bytesSent} bytes for 12 small nodes`);
    assert.deepEqual(await keys(a), await keys(b));
  });

  it("first contact: two peers that got the same nodes from a third reconcile instead of listing keys", async () => {
    const source = new Hyperlog({ valueEncoding: "utf-8" });
    await fill(source, 5000, "shared");
    const a = new Hyperlog({ valueEncoding: "utf-8" });
    const b = new Hyperlog({ valueEncoding: "utf-8" });
    await sync(source, a);
    await sync(source, b);
    await fill(a, 3, "a only");
    await fill(b, 2, "b only");
    const [sa, sb] = await sync(a, b);
    assert.equal(sa.nodesSent, 3);
    assert.equal(sb.nodesSent, 2);
    assert.ok(sa.bytesSent + sb.bytesSent < 20_000, `${sa.bytesSent + sb.bytesSent} bytes, not 5000 keys (160 KB)`);
    assert.ok(sa.roundTrips <= 8, `${sa.roundTrips} round trips`);
    assert.deepEqual(await keys(a), await keys(b));
  });

  it("falls back to reconciliation when one side lost its checkpoint", async () => {
    const storage = new MemoryStorage();
    const a = new Hyperlog(storage, { valueEncoding: "utf-8" });
    const b = new Hyperlog({ valueEncoding: "utf-8" });
    await fill(a, 100, "a");
    await sync(a, b);
    await fill(b, 4, "b new");
    await storage.setMeta(`replication:${b.id}`, "not json");
    const [sa, sb] = await sync(a, b);
    assert.equal(sb.nodesSent, 4);
    assert.equal(sa.nodesSent, 0);
    assert.deepEqual(await keys(a), await keys(b));
  });

  it("refuses to replicate a log with itself", async () => {
    const storage = new MemoryStorage();
    const a = new Hyperlog(storage);
    const b = new Hyperlog(storage);
    await Promise.all([a.ready(), b.ready()]);
    assert.equal(a.id, b.id);
    const ra = a.replicate();
    const rb = b.replicate();
    ra.readable.pipeTo(rb.writable).catch(() => {});
    rb.readable.pipeTo(ra.writable).catch(() => {});
    await assert.rejects(ra.done, /cannot replicate with itself/);
    await assert.rejects(rb.done, /cannot replicate with itself/);
  });
});
