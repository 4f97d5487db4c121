/**
 * Link references on the wire (issue 21, src/link-refs.ts): a link to a node already sent or received in the session
 * travels as a varint, both ways; keys and hashes do not change; a reference to no node is a ProtocolError; a side
 * that does not offer references gets plain NODES messages.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, Hyperlog, MemoryStorage, ProtocolError } from "../mod.ts";
import { serve } from "../worker/serve.ts";
import { Driver, type MessageTransport } from "../src/driver.ts";
import { LinkRefs, NODES_REFS, REF_RING } from "../src/link-refs.ts";
import { keyedFromContent } from "../src/keyed-nodes.ts";
import { internalsOf } from "../src/internal.ts";
import { computeKey, SIZE, type StoredNode, valueSize } from "../src/node.ts";
import { Session } from "../src/session.ts";
import type { SessionOptions } from "../src/session-types.ts";
import { NODES } from "../src/wire.ts";
import { seeded } from "./_helpers.ts";

/** Node `i`'s key once made by `node(i, ...)` (a made-up one before: a link to a node the receiver lacks). */
const keys = new Map<number, string>();
const key = (i: number) => keys.get(i) ?? i.toString(16).padStart(64, "0");
/** Node `i` linking to nodes `links`, its key computed from its content, stored at change `i`. */
function node(i: number, links: number[]): StoredNode {
  const value = new Uint8Array([i & 255, i >> 8]);
  const linked = links.map(key);
  const made = { key: computeKey(linked, value), links: linked, value, change: i };
  keys.set(i, made.key);
  return made;
}
const noRead = () => Promise.reject(new Error("Not expected to read the log"));

describe("LinkRefs codec", () => {
  it("a link to a node sent before costs a byte, no key travels, and the keys come out the same", async () => {
    const a = new LinkRefs();
    const b = new LinkRefs();
    const nodes = [node(1, []), node(2, [1]), node(3, [1, 2, 99])];
    const [message] = a.encode(nodes, 1 << 16);
    assert.equal(message![0], NODES_REFS);
    // 3 nodes: frame length + type + link count + flags + value length + 2-byte value = 7 each; then the links:
    // 1 byte, and 1 + 1 + (1 + 32) for the node the receiver has not seen.
    assert.equal(message!.length, 1 + 3 * 7 + 1 + 2 + 33);
    const decoded = await b.decode(message!, noRead);
    assert.deepEqual(
      decoded.map((n) => [n.key, n.links, [...n.value]]),
      nodes.map((n) => [n.key, n.links, [...n.value]]),
    );
  });

  it("reads each node's value once to frame it, its size from the slot a log's own node keeps", async () => {
    // A log's own node makes a view each time its value is read (see StoredNode); sizing and writing a node must not
    // read it again and again.
    let reads = 0;
    const nodes = [node(1, []), node(2, [1]), node(3, [1, 2])];
    const counted = nodes.map((n) => {
      const o = { key: n.key, links: n.links, change: n.change, [SIZE]: n.value.length };
      return Object.defineProperty(o, "value", { get: () => (reads++, n.value) }) as typeof o & StoredNode;
    });
    const [message] = new LinkRefs().encode(counted, 1 << 16);
    assert.equal(reads, nodes.length);
    const expected = new LinkRefs().encode(nodes, 1 << 16)[0]!;
    assert.deepEqual([...message!], [...expected], "the same bytes as nodes whose value is a field");
    const decoded = await new LinkRefs().decode(message!, noRead);
    assert.deepEqual(decoded.map((n) => [...n.value]), nodes.map((n) => [...n.value]));
  });

  it("a decoded node reads its value from its message's one buffer of values, and a log stores it so", async () => {
    const nodes = [node(1, []), node(2, [1]), node(3, [1, 2])];
    const [message] = new LinkRefs().encode(nodes, 1 << 16);
    const decoded = await new LinkRefs().decode(message!, noRead);
    assert.equal(Object.hasOwn(decoded[0]!, "value"), false, "no view kept per node");
    assert.equal(decoded[0]!.value.buffer, decoded[2]!.value.buffer, "one buffer for the message's values");
    assert.deepEqual(decoded.map((n) => valueSize(n)), nodes.map((n) => n.value.length));
    // Through a whole sync: the receiver stores such nodes, and reads back the sender's bytes.
    const source = new Hyperlog<string>();
    await source.batch(Array.from({ length: 300 }, (_, i) => ({ value: `node ${i} ${"x".repeat(i % 90)}` })));
    const storage = new MemoryStorage();
    const copy = new Hyperlog<string>(storage);
    const a = source.replicate();
    const b = copy.replicate();
    await Promise.all([a.readable.pipeTo(b.writable), b.readable.pipeTo(a.writable), a.done, b.done]);
    const read = await storage.read({ since: 0, until: 300, limit: 300, reverse: false });
    assert.equal(read.length, 300);
    for (const stored of read) {
      assert.equal(Object.hasOwn(stored, "value"), false);
      const original = (await source.storage.get(stored.key))!;
      assert.deepEqual([...stored.value], [...original.value]);
      assert.equal((await copy.get(stored.key)).value, (await source.get(stored.key)).value);
    }
  });

  it("over several rings of nodes, a link inside the ring costs a reference, one just past it its key", async () => {
    const a = new LinkRefs();
    const b = new LinkRefs();
    const n = 3 * REF_RING + 5;
    const base = 100_000;
    // Node i links to i - 1 (one back) and, from the ring's length on, to i - REF_RING (the oldest still in the
    // ring) and i - REF_RING - 1 (just out of it): the first two travel as references, the last as its key.
    const sent: StoredNode[] = [];
    for (let i = 0; i < n; i++) {
      const back = i <= REF_RING ? [] : [base + i - REF_RING, base + i - REF_RING - 1];
      sent.push(node(base + i, i === 0 ? [] : [base + i - 1, ...back]));
    }
    // The first node is sent again: a link to it then refers to that latest sending, one back.
    sent.push(sent[0]!, node(base + n, [base]), node(base + n + 1, [base + n - 1]));
    let bytes = 0;
    let messages = 0;
    const decoded = [];
    for (let at = 0; at < sent.length; at += 1000) {
      for (const message of a.encode(sent.slice(at, at + 1000), 1 << 16)) {
        bytes += message.length;
        messages++;
        decoded.push(...await b.decode(message, noRead));
      }
    }
    assert.deepEqual(decoded.map((d) => [d.key, d.links]), sent.map((d) => [d.key, d.links]));
    // 7 bytes a node without links (frame length, type, link count, flags, value length, 2-byte value); then a
    // byte per reference 1 back, 2 bytes for REF_RING back, 33 for a key; the last two nodes refer 1 and 3 back.
    const expected = 7 + REF_RING * 8 + (n - 1 - REF_RING) * (7 + 1 + 2 + 33) + 7 + 8 + 8;
    assert.equal(bytes - messages, expected);
  });

  it("a link to a node the receiver sent travels as its index, both ways", async () => {
    const a = new LinkRefs();
    const b = new LinkRefs();
    const fromB = b.encode([node(10, []), node(11, [10])], 1 << 16);
    for (const m of fromB) await a.decode(m, noRead);
    const twenty = node(20, [11, 10]);
    const [m] = a.encode([twenty], 1 << 16);
    assert.equal(m!.length, 1 + 7 + 2, "two one-byte references");
    const [back] = await b.decode(m!, noRead);
    assert.deepEqual(back!.links, [key(11), key(10)]);
    assert.equal(back!.key, twenty.key);
  });

  it("a reference to a node of its own older than the ring is read back from the log by its change", async () => {
    const a = new LinkRefs();
    const b = new LinkRefs();
    for (const m of b.encode(Array.from({ length: 100 }, (_, i) => node(i + 1, [])), 1 << 16)) {
      await a.decode(m, noRead);
    }
    // a links to b's first and last nodes, while b sends a ring's worth more that a has not seen yet.
    const [m] = a.encode([node(50_000, [1, 100])], 1 << 16);
    b.encode(Array.from({ length: REF_RING }, (_, i) => node(101 + i, [])), 1 << 16);
    const reads: number[] = [];
    const [back] = await b.decode(m!, (change) => {
      reads.push(change);
      return Promise.resolve(key(change));
    });
    assert.deepEqual(back!.links, [key(1), key(100)]);
    assert.equal(back!.key, key(50_000));
    assert.deepEqual(reads, [1, 100], "both out of b's ring: read back by their changes");
  });

  it("a message that would be over the receiver's largest message as plain NODES is refused before any hashing", async () => {
    const a = new LinkRefs();
    const b = new LinkRefs();
    for (const m of a.encode([node(1, [])], 1 << 16)) await b.decode(m, noRead);
    // One node with 5 000 one-byte references to a's latest node: 5 KB here, 160 KB as plain NODES.
    const body = [4, 0x88, 0x27, ...new Array(5000).fill(1), 0, 1, 7];
    assert.equal(body.length, 5006);
    const message = Uint8Array.of(NODES_REFS, 0x8e, 0x27, ...body);
    await assert.rejects(b.decode(message, noRead, 1 << 16), /over 65536 bytes, the largest message this side takes/);
    const [decoded] = await b.decode(message, noRead, 1 << 20);
    assert.equal(decoded!.links.length, 5000);
  });

  it("decoded nodes are hashed once (their keys come from their content), and ingest still checks their links", async () => {
    const a = new LinkRefs();
    const b = new LinkRefs();
    const log = new Hyperlog<Uint8Array>(undefined, { valueEncoding: "binary" });
    const first = node(1, []);
    const twice = { ...node(2, [1]), links: [key(1), key(1)] };
    twice.key = computeKey(twice.links, twice.value);
    const decoded = (await Promise.all(a.encode([first, twice], 1 << 16).map((m) => b.decode(m, noRead)))).flat();
    assert.ok(decoded.every((n) => keyedFromContent(n)));
    assert.ok(!keyedFromContent({ ...decoded[0]! }), "a copy is not taken as checked");
    const wire = internalsOf(log);
    await wire.ingestWire(decoded.slice(0, 1));
    await assert.rejects(wire.ingestWire(decoded.slice(1)), { name: "InvalidNodeError", message: /twice/ });
    // A copy with a key that is not its content's is refused: only the decoder's own nodes skip the hash.
    // (Copied field by field: a decoded node reads its value through a getter, which a spread leaves out.)
    const forged = { key: "ab".repeat(32), links: decoded[0]!.links, value: decoded[0]!.value };
    await assert.rejects(wire.ingestWire([forged]), { name: "InvalidNodeError", message: /does not match/ });
    assert.equal(log.length, 1);
  });

  it("a reference to no node is a ProtocolError, a cut node an InvalidNodeError", async () => {
    const a = new LinkRefs();
    const forge = (tag: number) => Uint8Array.of(NODES_REFS, 6, 4, 1, tag, 0, 1, 7);
    await assert.rejects(new LinkRefs().decode(forge(1), noRead), ProtocolError, "the sender's latest node: none");
    await assert.rejects(new LinkRefs().decode(forge(2), noRead), ProtocolError, "the receiver's node 0: none");
    for (const m of a.encode([node(1, [])], 1 << 16)) await new LinkRefs().decode(m, noRead);
    await assert.rejects(a.decode(forge(4), noRead), /node 1 this side sent, but it sent 1 in this session/);
    await assert.rejects(
      new LinkRefs().decode(Uint8Array.of(NODES_REFS, 4, 4, 1, 0, 3), noRead),
      (err: Error) => err.name === "InvalidNodeError",
    );
  });
});

/** Two sessions back to back in memory, counting the bytes of each message type. */
async function pair(a: Hyperlog, b: Hyperlog, oa: SessionOptions = {}, ob: SessionOptions = {}) {
  const bytes = new Map<number, number>();
  const drivers: Driver[] = [];
  const to = (peer: () => Driver): MessageTransport => ({
    send: (body) => {
      bytes.set(body[0]!, (bytes.get(body[0]!) ?? 0) + body.length);
      queueMicrotask(() => peer().deliver(body));
    },
    room: () => 1 << 20,
    drained: () => Promise.resolve(),
    close: () => queueMicrotask(() => peer().ended()),
  });
  drivers.push(new Driver(new Session(a, oa), to(() => drivers[1]!)));
  drivers.push(new Driver(new Session(b, ob), to(() => drivers[0]!)));
  const [da, db] = drivers as [Driver, Driver];
  const stats = await Promise.all([da.done, db.done]);
  return { bytes, stats };
}

/** Two live sessions back to back in memory; `stop` closes both. */
function livePair(a: Hyperlog, b: Hyperlog) {
  const bytes = new Map<number, number>();
  const drivers: Driver[] = [];
  const to = (peer: () => Driver): MessageTransport => ({
    send: (body) => {
      bytes.set(body[0]!, (bytes.get(body[0]!) ?? 0) + body.length);
      queueMicrotask(() => peer().deliver(body));
    },
    room: () => 1 << 20,
    drained: () => Promise.resolve(),
    close: () => queueMicrotask(() => peer().ended()),
  });
  drivers.push(new Driver(new Session(a, { live: true }), to(() => drivers[1]!)));
  drivers.push(new Driver(new Session(b, { live: true }), to(() => drivers[0]!)));
  const [da, db] = drivers as [Driver, Driver];
  return { bytes, synced: Promise.all([da.synced, db.synced]), stop: () => Promise.all([da.close(), db.close()]) };
}

/** A log whose nodes each link to up to `width` nodes before them (a write storm's shape). */
async function storm(n: number, width: number): Promise<Hyperlog> {
  const log = new Hyperlog();
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const links = keys.slice(Math.max(0, keys.length - width));
    keys.push((await log.batch([{ value: { i, text: `entry ${i}` }, links }]))[0]!.key);
  }
  return log;
}

describe("sessions with link references", () => {
  it("a fresh sync of a storm-shaped log sends a byte or two per link, and both sides hold the same nodes", async () => {
    const a = await storm(300, 20);
    const withRefs = new Hyperlog();
    const plain = new Hyperlog();
    const on = await pair(a, withRefs);
    const off = await pair(a, plain, {}, { linkRefs: false });
    assert.equal(on.bytes.get(NODES) ?? 0, 0, "nodes went as NODES_REFS");
    assert.equal(off.bytes.get(NODES_REFS) ?? 0, 0, "a side without refs gets plain NODES");
    const refsBytes = on.bytes.get(NODES_REFS)!;
    const plainBytes = off.bytes.get(NODES)!;
    const links = 20 * 300 - (20 * 21) / 2;
    assert.ok(plainBytes - refsBytes >= links * 30, `${plainBytes} - ${refsBytes} saves ~31 bytes per link`);
    for (const log of [withRefs, plain]) {
      assert.equal(log.length, 300);
      assert.deepEqual((await log.heads()).map((h) => h.key), (await a.heads()).map((h) => h.key));
    }
  });

  it("with a small largest message on the receiver, the sender cuts its messages as plain NODES would be cut", async () => {
    const a = await storm(200, 30);
    const b = new Hyperlog();
    const { bytes } = await pair(a, b, {}, { maxFrame: 4096 });
    assert.ok((bytes.get(NODES_REFS) ?? 0) > 0);
    assert.equal(b.length, 200);
  });

  it("both sides write concurrently, each linking the other's nodes: they converge with the same keys", async () => {
    const a = await storm(50, 5);
    const b = new Hyperlog();
    await pair(a, b);
    // Now each side appends nodes linking to every head, the other's included, and they sync again.
    for (let i = 0; i < 40; i++) {
      await a.append({ side: "a", i });
      await b.append({ side: "b", i });
    }
    const { bytes } = await pair(a, b, { live: false }, { live: false });
    assert.ok((bytes.get(NODES_REFS) ?? 0) > 0);
    assert.equal(a.length, b.length);
    assert.deepEqual((await a.heads()).map((h) => h.key), (await b.heads()).map((h) => h.key));
  });

  it("live, each side links the node it just received: a reference to the receiver's own node, both ways", async () => {
    const a = new Hyperlog();
    const b = new Hyperlog();
    const live = livePair(a, b);
    await live.synced;
    for (let i = 0; i < 100; i++) {
      const [writer, reader] = i % 2 === 0 ? [a, b] : [b, a];
      const node = await writer.append({ i });
      assert.equal(node.links.length, i === 0 ? 0 : 1);
      await reader.waitForLength(i + 1);
    }
    await live.stop();
    assert.equal(live.bytes.get(NODES) ?? 0, 0);
    // 100 nodes of a value of at most 8 bytes ({"i":99}), each in a message of its own: message type, frame length,
    // node type, link count, a one-byte reference, flags, value length, value. No key, no 32-byte link.
    assert.ok(live.bytes.get(NODES_REFS)! <= 100 * (7 + 8), `${live.bytes.get(NODES_REFS)} bytes`);
    assert.deepEqual((await nodesOf(a)).map((n) => n.key), (await nodesOf(b)).map((n) => n.key));
  });

  it("a NODES_REFS message to a side that did not offer references ends the session with a ProtocolError", async () => {
    const a = new Hyperlog();
    await a.append("x");
    const b = new Hyperlog();
    const session = new Session(b, { linkRefs: false });
    const peer = new Session(a);
    const [helloB] = await session.start();
    const [helloA] = await peer.start();
    await peer.receive([helloB!]);
    await session.receive([helloA!]);
    const forged = Uint8Array.of(NODES_REFS, 6, 4, 1, 1, 0, 1, 7);
    await assert.rejects(session.receive([forged]), /did not offer/);
    assert.equal(b.length, 0);
  });
});

/** Every node of a log, in change order. */
async function nodesOf(log: Hyperlog): Promise<StoredNode[]> {
  const out: StoredNode[] = [];
  for (;;) {
    const since = out.length === 0 ? 0 : out[out.length - 1]!.change;
    const page = await log.storage.read({ since, until: log.length, limit: 500, reverse: false });
    if (page.length === 0) return out;
    out.push(...page);
  }
}

describe("property: concurrent writers and syncs with link references", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`seed ${seed}: every append links exactly the writer's heads, and all peers converge`, async () => {
      const random = seeded(seed);
      const peers = Array.from({ length: 4 }, () => new Hyperlog());
      for (let step = 0; step < 80; step++) {
        const a = Math.floor(random() * peers.length);
        if (random() < 0.7) {
          const log = peers[a]!;
          const heads = (await log.heads()).map((h) => h.key).sort();
          const added = await log.append({ step, a });
          assert.deepEqual([...added.links].sort(), heads, "append links every current head");
        } else {
          const b = (a + 1 + Math.floor(random() * (peers.length - 1))) % peers.length;
          // Sometimes one side does not take references: the other still reads what it sends.
          const off = random() < 0.3 ? { linkRefs: false } : {};
          await pair(peers[a]!, peers[b]!, off, {});
        }
      }
      for (let round = 0; round < 2; round++) for (const log of peers.slice(1)) await pair(peers[0]!, log);
      const all = await nodesOf(peers[0]!);
      for (const log of peers) {
        const nodes = await nodesOf(log);
        assert.deepEqual(nodes.map((n) => n.key).sort(), all.map((n) => n.key).sort(), "the same nodes");
        assert.deepEqual(
          (await log.heads()).map((h) => h.key).sort(),
          (await peers[0]!.heads()).map((h) => h.key).sort(),
          "the same heads",
        );
        // Causality: every node came after the nodes it links to, with the links as written.
        const seen = new Set<string>();
        for (const node of nodes) {
          for (const link of node.links) assert.ok(seen.has(link), `${node.key} arrived after its link ${link}`);
          seen.add(node.key);
        }
      }
    });
  }
});

describe("hyperlog serve with link references", () => {
  it("a reader gets linked nodes from the relay, and /metrics counts the nodes inside NODES_REFS", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hyperlog-refs-"));
    const server = await serve({ dir, port: 0, settings: { METRICS_TOKEN: "m" } });
    const writer = new Hyperlog();
    const reader = new Hyperlog();
    const url = `${server.url.replace(/^http/, "ws")}/logs/refs/ws`;
    const a = connect(writer, url);
    try {
      for (let i = 0; i < 20; i++) await writer.append({ i });
      await a.when("live");
      const b = connect(reader, url);
      await reader.waitForLength(20);
      await b.close();
      assert.deepEqual((await nodesOf(reader)).map((n) => n.key), (await nodesOf(writer)).map((n) => n.key));
      const text = await (await fetch(`${server.url}/metrics`, { headers: { authorization: "Bearer m" } })).text();
      assert.match(text, /^hyperlog_nodes_out_total 20$/m);
    } finally {
      await a.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
