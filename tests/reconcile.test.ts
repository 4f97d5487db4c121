import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { answerFingerprint, DEEP_FIRST_SPLIT, KeyIndex, LIST_THRESHOLD, Reconciler } from "../src/reconcile.ts";
import { NODES_REFS } from "../src/link-refs.ts";
import { decodeMessage, encodeMessage, type ReconEntry } from "../src/wire.ts";
import { sha256Hex } from "../src/sha256.ts";
import { Hyperlog, MemoryStorage } from "../mod.ts";
import { keyIndexOf } from "../src/session-plan.ts";
import { EAGER_KEYS } from "../src/key-index.ts";
import { copies, fill, keys, lockstep, sync } from "./_lockstep.ts";

const key = (n: number) => sha256Hex(new TextEncoder().encode(`key ${n}`));
const recon = (entries: ReconEntry[]) => encodeMessage({ type: "recon", end: true, entries });

/** Runs reconciliation to the end between two key sets, b's fingerprint of everything first (as its HELLO has). */
function reconcile(a: string[], b: string[]) {
  const ra = new Reconciler(new KeyIndex(a));
  const rb = new Reconciler(new KeyIndex(b));
  rb.opened(rb.index.fingerprint(""), ra.index.size);
  let turn = ra.first(rb.index.fingerprint(""));
  let bytes = recon(turn).length;
  let messages = 1;
  for (let i = 0; turn.length > 0; i++) {
    const side = i % 2 === 0 ? rb : ra;
    side.take(turn);
    turn = side.endTurn();
    bytes += recon(turn).length;
    messages++;
  }
  return { sendA: ra.toSend, sendB: rb.toSend, bytes, messages };
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

  it("settles 40 000 keys against 1 with no message over 64 KiB, whichever side leads", () => {
    const many = Array.from({ length: 40_000 }, (_, i) => key(i));
    for (const [a, b] of [[many, [key(-1)]], [[key(-1)], many]] as const) {
      const ra = new Reconciler(new KeyIndex(a));
      const rb = new Reconciler(new KeyIndex(b));
      rb.opened(rb.index.fingerprint(""), ra.index.size);
      let turn = ra.first(rb.index.fingerprint(""));
      for (let i = 0; turn.length > 0; i++) {
        assert.ok(turn.every((entry) => entry.kind !== "keys" || entry.keys.length <= LIST_THRESHOLD));
        const side = i % 2 === 0 ? rb : ra;
        side.take(turn);
        turn = side.endTurn();
      }
      assert.equal(ra.toSend.size + rb.toSend.size, 40_001);
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
    // The first turn (256 fingerprints); B's: a range that is A's but for one key of B's settles at once, the others
    // split; A's: the children that are B's but for one key of A's settle too, one range with an extra on each side
    // lists its keys; B's answer. Without settling lone keys at once it took 5.
    assert.ok(messages <= 4, `${messages} messages`);
  });

  it("a key index fed by appends answers as one built in order: keys sorted, fingerprints, has, no key twice", () => {
    const keys = Array.from({ length: 20_000 }, (_, i) => key(i));
    const built = new KeyIndex(keys);
    const appended = new KeyIndex();
    // Appends and checked adds interleaved, as commits and an index being built from storage pages do.
    for (let i = 0; i < keys.length; i++) {
      if (i % 7 === 0) assert.equal(appended.add(keys[i]!), true);
      else appended.addNew(keys[i]!);
      if (i % 1000 === 0) assert.equal(appended.has(keys[i]!), true);
    }
    assert.equal(appended.add(keys[5]!), false, "a key appended is found by a checked add");
    assert.equal(appended.size, built.size);
    for (const prefix of ["", "a", "3f", "c07", keys[123]!.slice(0, 5)]) {
      assert.deepEqual(appended.keys(prefix), built.keys(prefix));
      assert.deepEqual(appended.fingerprint(prefix), built.fingerprint(prefix));
    }
    assert.deepEqual(appended.keys(""), [...keys].sort());
    assert.equal(appended.has(key(-1)), false);
  });

  it("keys noted by addNew count at once and answer every kind of query first", () => {
    const keys = Array.from({ length: 3000 }, (_, i) => key(i));
    const built = new KeyIndex(keys);
    // Each query is the first read after the appends, so each must take the noted keys in itself.
    const queries: ((index: KeyIndex) => unknown)[] = [
      (index) => index.size,
      (index) => index.count("a"),
      (index) => index.count(keys[9]!.slice(0, 5)),
      (index) => index.keys("7"),
      (index) => index.fingerprint(""),
      (index) => index.fingerprint(keys[9]!.slice(0, 4)),
      (index) => index.has(keys[2999]!),
      (index) => index.add(keys[0]!),
    ];
    for (const query of queries) {
      const appended = new KeyIndex();
      for (const k of keys) appended.addNew(k);
      assert.deepEqual(query(appended), query(new KeyIndex(keys)));
      assert.deepEqual(appended.keys(""), built.keys(""));
      assert.equal(appended.size, 3000);
    }
  });

  it("settles a range the peer holds but for one key of ours in one turn, at any size, and only then", () => {
    const keys = Array.from({ length: 1000 }, (_, i) => key(i));
    const index = new KeyIndex(keys);
    const lone = keys[417]!;
    const toSend = new Set<string>();
    assert.deepEqual(
      answerFingerprint(index, "", new KeyIndex(keys.filter((k) => k !== lone)).fingerprint(""), toSend),
      [],
    );
    assert.deepEqual([...toSend], [lone]);
    // Under a prefix too: the key must be under it.
    const prefix = lone.slice(0, 1);
    const under = keys.filter((k) => k.startsWith(prefix) && k !== lone);
    const sub = new Set<string>();
    assert.deepEqual(answerFingerprint(index, prefix, new KeyIndex(under).fingerprint(prefix), sub), []);
    assert.deepEqual([...sub], [lone]);
    // One key fewer but another set (a key of ours swapped for one we lack, and one dropped): split, nothing sent.
    const swapped = [...keys.slice(2), key(-1)];
    const none = new Set<string>();
    const reply = answerFingerprint(index, "", new KeyIndex(swapped).fingerprint(""), none);
    assert.equal(reply.length, 16);
    assert.equal(none.size, 0);
    // A HELLO's fingerprint of everything with an XOR of zeros names none, even when our XOR is one of our keys.
    const others = keys.slice(0, 999);
    const hex16 = (xor: Uint8Array) => [...xor].map((b) => b.toString(16).padStart(2, "0")).join("");
    const canceller = hex16(new KeyIndex(others).fingerprint("").xor) + "0".repeat(32);
    const crafted = new KeyIndex([...others, canceller, keys[999]!]);
    assert.equal(hex16(crafted.fingerprint("").xor), keys[999]!.slice(0, 32));
    const named = new Set<string>();
    assert.ok(answerFingerprint(crafted, "", { count: 1000, xor: new Uint8Array(16) }, named).length > 0);
    assert.equal(named.size, 0);
    // A made-up fingerprint whose XOR names a key of ours under another prefix: not taken.
    const other = keys.find((k) => k[0] !== lone[0])!;
    const fp = index.fingerprint(prefix);
    const xor = fp.xor.map((b, j) => b ^ parseInt(other.slice(2 * j, 2 * j + 2), 16));
    const fake = new Set<string>();
    assert.ok(answerFingerprint(index, prefix, { count: fp.count - 1, xor }, fake).length > 0);
    assert.equal(fake.size, 0);
  });

  it("encodes and decodes every kind of entry", () => {
    const entries: ReconEntry[] = [
      { kind: "fp", prefix: "", fp: { count: 0, xor: new Uint8Array(16) } },
      { kind: "fp", prefix: "abc", fp: { count: 300, xor: new Uint8Array(16).fill(9) } },
      { kind: "keys", prefix: "d", keys: ["d" + "0".repeat(63), "d" + "1".repeat(63)] },
      { kind: "need", prefix: "", keys: [key(1)] },
      { kind: "all", prefix: "0123456789abcdef" },
    ];
    assert.deepEqual(decodeMessage(recon(entries)), { type: "recon", end: true, entries });
  });

  it("refuses malformed messages with a ProtocolError", () => {
    const bad = [
      Uint8Array.of(3, 1, 9, 0),
      Uint8Array.of(3, 1, 1, 64),
      Uint8Array.of(3, 1, 1, 1, 0xa0),
      Uint8Array.of(3, 1, 2, 0, 5, 1, 2),
      Uint8Array.of(3, 2),
      Uint8Array.of(3, 1, 4, 1, 0xa1),
      recon([{ kind: "keys", prefix: "e", keys: ["d" + "0".repeat(63)] }]),
    ];
    for (const body of bad) assert.throws(() => decodeMessage(body), { name: "ProtocolError" });
  });

  it("lists keys for small ranges, and splits a big one even when the peer holds few", () => {
    const index = new KeyIndex(Array.from({ length: LIST_THRESHOLD }, (_, i) => key(i)));
    const one = { count: 1, xor: new Uint8Array(16) };
    assert.equal(answerFingerprint(index, "", one, new Set())[0]?.kind, "keys");
    const big = new KeyIndex(Array.from({ length: 1000 }, (_, i) => key(i)));
    const reply = answerFingerprint(big, "", one, new Set());
    assert.equal(reply.length, 16);
    assert.ok(reply.every((entry) => entry.kind === "fp"));
  });

  it("refuses a request for a key it never offered", () => {
    const listed = new Reconciler(new KeyIndex([key(1)]));
    const turn = listed.first({ count: 5, xor: new Uint8Array(16).fill(1) });
    assert.equal(turn[0]?.kind, "keys");
    assert.throws(() => listed.take([{ kind: "need", prefix: "", keys: [key(2)] }]), /never offered/);
  });

  it("refuses an entry repeated, an entry that answers nothing asked, and a list over the threshold", () => {
    const index = new KeyIndex(Array.from({ length: 1000 }, (_, i) => key(i)));
    const fresh = () => {
      const r = new Reconciler(index);
      r.opened(index.fingerprint(""));
      return r;
    };
    const fp = (prefix: string) => ({ kind: "fp" as const, prefix, fp: { count: 40, xor: new Uint8Array(16) } });
    // The amplification attack: the empty prefix answered again and again.
    assert.throws(() => fresh().take([fp("0"), fp("0")]), /repeated/);
    assert.throws(() => fresh().take([fp(""), fp("")]), /answers nothing/);
    assert.throws(() => fresh().take([fp("01")]), /answers nothing/);
    assert.throws(() => fresh().take([{ kind: "all", prefix: "" }, fp("0")]), /answers nothing/);
    const keys = Array.from({ length: LIST_THRESHOLD + 1 }, (_, i) => key(5000 + i));
    assert.throws(() => fresh().take([{ kind: "keys", prefix: "", keys }]), /at most 32/);
    // A first turn two digits deep only when both sides hold many keys, and then all of it.
    const big = new KeyIndex(Array.from({ length: DEEP_FIRST_SPLIT }, (_, i) => key(i)));
    const deep = (peerCount: number) => {
      const r = new Reconciler(big);
      r.opened(big.fingerprint(""), peerCount);
      return r;
    };
    assert.throws(() => deep(DEEP_FIRST_SPLIT - 1).take([fp("01")]), /answers nothing/);
    assert.doesNotThrow(() => deep(DEEP_FIRST_SPLIT).take([fp("01"), fp("02")]));
    assert.throws(() => deep(DEEP_FIRST_SPLIT).take([fp("01"), fp("0")]), /answers nothing/);
    assert.throws(() => deep(DEEP_FIRST_SPLIT).take([fp("0"), fp("01")]), /answers nothing/);
    assert.throws(() => deep(DEEP_FIRST_SPLIT).take([fp("01"), fp("01")]), /repeated/);
    // The next turn may only go one level deeper.
    const r = fresh();
    r.take([fp("0")]);
    assert.ok(r.endTurn().length > 0);
    assert.throws(() => r.take([fp("1")]), /answers nothing/);
  });
});

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
    const [a, b] = await copies(5000);
    await fill(a, 3, "a only");
    await fill(b, 2, "b only");
    const [sa, sb] = await sync(a, b);
    assert.equal(sa.nodesSent, 3);
    assert.equal(sb.nodesSent, 2);
    assert.ok(sa.bytesSent + sb.bytesSent < 20_000, `${sa.bytesSent + sb.bytesSent} bytes, not 5000 keys (160 KB)`);
    assert.ok(sa.roundTrips <= 8, `${sa.roundTrips} round trips`);
    assert.deepEqual(await keys(a), await keys(b));
  });

  it("first contact of two 5000-node logs: done in 5 one-way flights, the reconciliation started with CHECK", async () => {
    const [a, b] = await copies(5000);
    await fill(a, 3, "a only");
    await fill(b, 2, "b only");
    const { flights, sa, sb } = await lockstep(a, b);
    assert.equal(sa.stats.nodesSent + sb.stats.nodesSent, 5);
    // HELLO; CHECK and the first turn (256 fingerprints); the follower's nodes (found with a lone key) and its turn;
    // CREDIT, the leader's last turn, its nodes, SYNCED; ACK and SYNCED (every node credited: no ACK back).
    assert.ok(flights <= 5, `${flights} flights`);
    assert.deepEqual(await keys(a), await keys(b));
  });

  it("first contact of two 20 000-node logs (ranges split three digits deep): done in 5 one-way flights", async () => {
    const [a, b] = await copies(20_000);
    await fill(a, 5, "a only");
    await fill(b, 5, "b only");
    const { flights, sa, sb } = await lockstep(a, b);
    assert.equal(sa.stats.nodesSent + sb.stats.nodesSent, 10);
    // HELLO; CHECK and the first turn; the follower's nodes (the ranges that lack one of its keys settled: it sends
    // them at once) and its turn (the rest split); CREDIT for them, the leader's turn, empty (the children that lack
    // one of its keys settled), its nodes, SYNCED; ACK and SYNCED (every node of the follower credited: no ACK back).
    assert.ok(flights <= 5, `${flights} flights`);
    assert.deepEqual(await keys(a), await keys(b));
  });

  it("a HELLO that names no fingerprint (a large log's) is never taken for an equal set", async () => {
    const a = new Hyperlog({ valueEncoding: "utf-8" });
    const b = new Hyperlog({ valueEncoding: "utf-8" });
    await fill(a, 50, "a");
    await fill(b, 50, "b");
    // Both HELLOs with an XOR of zeros, the same count: only a reconciliation finds what differs.
    const { sa, sb } = await lockstep(a, b, (body) => {
      if (body[0] === NODES_REFS) return body; // nodes with link references: not touched
      const message = decodeMessage(body);
      if (message.type !== "hello") return body;
      return encodeMessage({ type: "hello", hello: { ...message.hello, xor: new Uint8Array(16) } });
    });
    assert.equal(sa.stats.nodesSent, 50);
    assert.equal(sb.stats.nodesSent, 50);
    assert.deepEqual(await keys(a), await keys(b));
  });

  it("a log drops an unused key index that grows past EAGER_KEYS, and keeps one a reconciliation used", async () => {
    const grow = async (keep: boolean) => {
      const log = new Hyperlog({ valueEncoding: "utf-8" });
      await log.append("first");
      const index = (await keyIndexOf(log as Hyperlog<unknown>, true))!;
      index.keep = keep;
      for (let i = 0; i <= EAGER_KEYS; i += 4096) {
        await log.batch(Array.from({ length: 4096 }, (_, j) => ({ value: String(i + j) })));
      }
      return { log, index: await keyIndexOf(log as Hyperlog<unknown>, false) };
    };
    const dropped = await grow(false);
    assert.equal(dropped.index, undefined);
    const kept = await grow(true);
    assert.equal(kept.index?.size, kept.log.length);
    assert.ok(kept.log.length > EAGER_KEYS);
  });

  it("an empty log that a peer's HELLO says will outgrow EAGER_KEYS drops its key index at its first commit", async () => {
    const fresh = async (claim: number | undefined) => {
      const a = new Hyperlog({ valueEncoding: "utf-8" });
      const b = new Hyperlog({ valueEncoding: "utf-8" });
      await fill(a, 3, "a");
      await lockstep(a, b, (body) => {
        if (body[0] === NODES_REFS) return body; // nodes with link references: not touched
        const message = decodeMessage(body);
        if (message.type !== "hello" || message.hello.id !== a.id || claim === undefined) return body;
        return encodeMessage({ type: "hello", hello: { ...message.hello, length: claim } });
      });
      assert.equal(b.length, 3);
      return await keyIndexOf(b as Hyperlog<unknown>, false);
    };
    assert.equal((await fresh(undefined))?.size, 3);
    assert.equal(await fresh(EAGER_KEYS + 1), undefined);
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
