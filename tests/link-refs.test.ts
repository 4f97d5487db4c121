/**
 * Link references on the wire (issue 21, src/link-refs.ts): a link to a node already sent or received in the session
 * travels as a varint, both ways; keys and hashes do not change; a reference to no node is a ProtocolError; a side
 * that does not offer references gets plain NODES messages.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Hyperlog, ProtocolError } from "../mod.ts";
import { Driver, type MessageTransport } from "../src/driver.ts";
import { LinkRefs, NODES_REFS, REF_RING } from "../src/link-refs.ts";
import type { StoredNode } from "../src/node.ts";
import { Session } from "../src/session.ts";
import type { SessionOptions } from "../src/session-types.ts";
import { NODES } from "../src/wire.ts";

const key = (i: number) => i.toString(16).padStart(64, "0");
function node(i: number, links: string[]): StoredNode {
  return { key: key(i), links, value: new Uint8Array([i & 255]), change: i };
}
const noRead = () => Promise.reject(new Error("Not expected to read the log"));

describe("LinkRefs codec", () => {
  it("a link to a node sent before costs a byte, and decodes to the same key", async () => {
    const a = new LinkRefs();
    const b = new LinkRefs();
    const nodes = [node(1, []), node(2, [key(1)]), node(3, [key(1), key(2), key(99)])];
    const [message] = a.encode(nodes, 1 << 16);
    assert.equal(message![0], NODES_REFS);
    // 3 nodes: type + key + count + flags + value length + value = 37 each, framed (+1); links 1 + 1 + 1 + 33.
    assert.equal(message!.length, 1 + 3 * 37 + 3 + 1 + 2 + 33);
    const decoded = await b.decode(message!, noRead);
    assert.deepEqual(
      decoded.map((n) => [n.key, n.links, [...n.value]]),
      nodes.map((n) => [n.key, n.links, [...n.value]]),
    );
  });

  it("a link to a node the receiver sent travels as its index, both ways", async () => {
    const a = new LinkRefs();
    const b = new LinkRefs();
    const fromB = b.encode([node(10, []), node(11, [key(10)])], 1 << 16);
    for (const m of fromB) await a.decode(m, noRead);
    const [m] = a.encode([node(20, [key(11), key(10)])], 1 << 16);
    assert.equal(m!.length, 1 + 1 + 37 + 2, "two one-byte references");
    const [back] = await b.decode(m!, noRead);
    assert.deepEqual(back!.links, [key(11), key(10)]);
  });

  it("a reference to a node of its own older than the ring is read back from the log by its change", async () => {
    const a = new LinkRefs();
    const b = new LinkRefs();
    for (const m of b.encode(Array.from({ length: 100 }, (_, i) => node(i + 1, [])), 1 << 16)) {
      await a.decode(m, noRead);
    }
    // a links to b's first and last nodes, while b sends a ring's worth more that a has not seen yet.
    const [m] = a.encode([node(5000, [key(1), key(100)])], 1 << 16);
    b.encode(Array.from({ length: REF_RING }, (_, i) => node(101 + i, [])), 1 << 16);
    const reads: number[] = [];
    const [back] = await b.decode(m!, (change) => {
      reads.push(change);
      return Promise.resolve(key(change));
    });
    assert.deepEqual(back!.links, [key(1), key(100)]);
    assert.deepEqual(reads, [1, 100], "both out of b's ring: read back by their changes");
  });

  it("a reference to no node is a ProtocolError, a cut node an InvalidNodeError", async () => {
    const a = new LinkRefs();
    const forge = (tag: number) => Uint8Array.of(NODES_REFS, 38, 4, ...new Uint8Array(32), 1, tag, 0, 1, 7);
    await assert.rejects(new LinkRefs().decode(forge(1), noRead), ProtocolError, "the sender's latest node: none");
    await assert.rejects(new LinkRefs().decode(forge(2), noRead), ProtocolError, "the receiver's node 0: none");
    for (const m of a.encode([node(1, [])], 1 << 16)) await new LinkRefs().decode(m, noRead);
    await assert.rejects(a.decode(forge(4), noRead), /node 1 this side sent, but it sent 1 in this session/);
    await assert.rejects(
      new LinkRefs().decode(Uint8Array.of(NODES_REFS, 4, 4, 1, 2, 3), noRead),
      (err: Error) => err.name === "InvalidNodeError",
    );
  });
});

/** Two sessions back to back in memory, counting the bytes of each message type. */
async function pair(a: Hyperlog, b: Hyperlog, oa: SessionOptions = {}, ob: SessionOptions = {}) {
  const bytes = new Map<number, number>();
  let da!: Driver;
  let db!: Driver;
  const to = (peer: () => Driver): MessageTransport => ({
    send: (body) => {
      bytes.set(body[0]!, (bytes.get(body[0]!) ?? 0) + body.length);
      queueMicrotask(() => peer().deliver(body));
    },
    room: () => 1 << 20,
    drained: () => Promise.resolve(),
    close: () => queueMicrotask(() => peer().ended()),
  });
  da = new Driver(new Session(a, oa), to(() => db));
  db = new Driver(new Session(b, ob), to(() => da));
  const stats = await Promise.all([da.done, db.done]);
  return { bytes, stats };
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
    const forged = Uint8Array.of(NODES_REFS, 38, 4, ...new Uint8Array(32), 1, 1, 0, 1, 7);
    await assert.rejects(session.receive([forged]), /did not offer/);
    assert.equal(b.length, 0);
  });
});
