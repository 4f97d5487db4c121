/**
 * The relay's live nodes framed once for every session (issue 21, src/live-frames.ts, src/live-decode.ts): a node
 * fanned out to many live sessions costs one framing, each session copies the same bytes (`NODES_LIVE`, links by the
 * relay's change numbers); the peer's own nodes go as short "yours" entries; a session that went live after the
 * nodes a frame links gets their keys; a reference to a change the receiver did not learn is a ProtocolError; and
 * through `hyperlog serve`, concurrent writers converge with every live node arriving in NODES_LIVE.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hyperlog, InvalidNodeError, ProtocolError } from "../mod.ts";
import { serve } from "../worker/serve.ts";
import { Ranges } from "../src/checkpoint.ts";
import { readVarint } from "../src/frame.ts";
import { LinkRefs } from "../src/link-refs.ts";
import { decodeLive, LIVE_RING, NODES_LIVE } from "../src/live-decode.ts";
import { LiveFrames, type LiveOutbox } from "../src/live-frames.ts";
import { computeKey, type StoredNode } from "../src/node.ts";
import { connect, waitFor } from "./_relay-clients.ts";

const noRead = () => Promise.reject(new Error("Not expected to read the log"));
const stats = () => ({ nodesSent: 0, nodesReceived: 0, bytesSent: 0, bytesReceived: 0, roundTrips: 0 });

/** A relay's log as the frames see it: nodes stored at consecutive changes, each linking to `links` earlier ones. */
class Relay {
  readonly nodes: StoredNode[] = [];
  readonly frames = new LiveFrames();
  add(links: number[], tag = 0): StoredNode {
    const change = this.nodes.length + 1;
    const value = new Uint8Array([change & 255, change >> 8, tag]);
    const linked = links.map((c) => this.nodes[c - 1]!.key);
    const node = { key: computeKey(linked, value), links: linked, value, change };
    this.nodes.push(node);
    this.frames.follow(node);
    return node;
  }
}

/** A session's outbox on the relay, live from `cursor`. */
function outbox(cursor = 0, refs = new LinkRefs()): LiveOutbox & { refs: LinkRefs } {
  return { refs, buffer: [], liveCursor: cursor, sentBytes: 0, unacked: [] };
}

/** The entries of NODES_LIVE messages by change (their bytes). */
function entries(messages: readonly Uint8Array[]): Map<number, string> {
  const out = new Map<number, string>();
  for (const message of messages) {
    assert.equal(message[0], NODES_LIVE);
    let [change, at] = readVarint(message, 1)!;
    while (at < message.length) {
      const [length, body] = readVarint(message, at)!;
      out.set(change++, message.subarray(body, body + length).join());
      at = body + length;
    }
  }
  return out;
}

describe("LiveFrames and NODES_LIVE", () => {
  it("frames each node once: every session live from the start gets the same bytes, and decodes the same nodes", async () => {
    const relay = new Relay();
    const sessions = [outbox(), outbox(), outbox()];
    const receivers = sessions.map(() => new LinkRefs());
    const got: StoredNode[][] = sessions.map(() => []);
    const wire: Uint8Array[][] = sessions.map(() => []);
    // A storm: each node links the 1 to 12 latest (up to 3 000 changes back, past a message's worth).
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 25; i++) {
        const n = relay.nodes.length;
        const links = n === 0 ? [] : [n, ...(n > 3000 && i === 0 ? [n - 3000] : []), ...[2, 5, 9].filter((d) => d < n).map((d) => n - d)];
        relay.add([...new Set(links)]);
      }
      for (const [s, out] of sessions.entries()) {
        const messages = relay.frames.live(out, 1 << 16, new Ranges(), 1 << 16, stats())!;
        wire[s]!.push(...messages);
        for (const message of messages) got[s]!.push(...(await decodeLive(receivers[s]!, message, noRead)) as StoredNode[]);
      }
    }
    const keys = relay.nodes.map((n) => n.key);
    for (const [s, nodes] of got.entries()) {
      assert.deepEqual(nodes.map((n) => n.key), keys, `session ${s} decodes every node, keys from content`);
      assert.deepEqual(nodes.map((n) => n.links), relay.nodes.map((n) => n.links));
      assert.equal(sessions[s]!.liveCursor, relay.nodes.length);
      assert.deepEqual(entries(wire[s]!), entries(wire[0]!), "the same bytes for every session");
    }
    // A link costs a byte or two, not 32: the whole stream is about the values and the tags.
    const bytes = wire[0]!.reduce((n, m) => n + m.length, 0);
    const links = relay.nodes.reduce((n, node) => n + node.links.length, 0);
    assert.ok(bytes < relay.nodes.length * 8 + links * 2 + 200, `${bytes} bytes for ${relay.nodes.length} nodes`);
  });

  it("sends the peer's own nodes as 'yours' entries, held back until another node comes, and links to them by change", async () => {
    const relay = new Relay();
    const relayRefs = new LinkRefs();
    const out = outbox(0, relayRefs);
    const peer = new LinkRefs();
    const fromPeer = new Ranges();
    relay.add([]);
    const first = relay.frames.live(out, 1 << 16, fromPeer, 1 << 16, stats())!;
    assert.deepEqual((await decodeLive(peer, first[0]!, noRead)).map((n) => n.key), [relay.nodes[0]!.key]);
    // The peer sends two nodes (its changes 5 and 6); the relay stores them at its changes 2 and 3.
    const mine = [relay.add([1], 1), relay.add([2], 1)];
    peer.sent(mine.map((n, i) => ({ ...n, change: 5 + i })));
    relayRefs.received(mine);
    fromPeer.add(2, 3);
    assert.deepEqual(relay.frames.live(out, 1 << 16, fromPeer, 1 << 16, stats()), [], "nothing but the peer's own");
    assert.equal(out.liveCursor, 3, "skipped, and held back until a node comes");
    // Another writer's node links the peer's latest: its entry refers to change 3, learned from a "yours" entry.
    relay.add([3, 1]);
    const [message] = relay.frames.live(out, 1 << 16, fromPeer, 1 << 16, stats())!;
    assert.deepEqual([...entries([message!]).keys()], [2, 3, 4]);
    assert.ok(message!.length < 24, `${message!.length} bytes: two short entries and a node of 3-byte value`);
    const [node] = await decodeLive(peer, message!, noRead);
    assert.deepEqual(node!.links, [mine[1]!.key, relay.nodes[0]!.key]);
    assert.equal(node!.key, relay.nodes[3]!.key);
    // The relay's next NODES_REFS reference to what it sent counts the NODES_LIVE nodes as the peer does.
    assert.equal(relayRefs.sentAt(1), relay.nodes[3]!.key);
  });

  it("gives a session that went live later the keys of links before its start, and the same bytes after", async () => {
    const relay = new Relay();
    for (let i = 0; i < 10; i++) relay.add(i === 0 ? [] : [i]);
    const early = outbox(0);
    const earlyIn = new LinkRefs();
    for (const m of relay.frames.live(early, 1 << 16, new Ranges(), 1 << 16, stats())!) await decodeLive(earlyIn, m, noRead);
    const late = outbox(10);
    relay.add([10, 3]);
    relay.add([11]);
    const a = relay.frames.live(early, 1 << 16, new Ranges(), 1 << 16, stats())!;
    const b = relay.frames.live(late, 1 << 16, new Ranges(), 1 << 16, stats())!;
    const [ea, eb] = [entries(a), entries(b)];
    assert.ok(eb.get(11)!.length > ea.get(11)!.length + 60, "two keys instead of two references");
    assert.equal(eb.get(12), ea.get(12), "node 12 links only node 11, which both learned");
    const nodes = await decodeLive(new LinkRefs(), b[0]!, noRead);
    assert.deepEqual(nodes.map((n) => n.key), [relay.nodes[10]!.key, relay.nodes[11]!.key]);
  });

  it("cuts messages to the peer's size, stays within the budget, and goes the ordinary way for what it does not hold", async () => {
    const relay = new Relay();
    for (let i = 0; i < 300; i++) relay.add(i === 0 ? [] : [i]);
    const out = outbox(0);
    const messages = relay.frames.live(out, 2000, new Ranges(), 1000, stats())!;
    assert.ok(messages.length > 1);
    assert.ok(out.liveCursor < 300 && out.liveCursor > 10, "about 2 000 bytes of nodes as plain NODES");
    assert.equal(out.sentBytes, messages.reduce((n, m) => n + m.length, 0));
    assert.deepEqual(out.unacked, [[out.sentBytes, out.liveCursor]]);
    const refs = new LinkRefs();
    let n = 0;
    for (const m of messages) n += (await decodeLive(refs, m, noRead, 1000)).length;
    assert.equal(n, out.liveCursor);
    // A session whose next change is not framed (never followed) is left to the ordinary path.
    assert.equal(new LiveFrames().live(outbox(0), 1 << 16, new Ranges(), 1 << 16, stats()), undefined);
    // A peer that does not take references gets none.
    assert.equal(relay.frames.live(outbox(0, new LinkRefs(false)), 1 << 16, new Ranges(), 1 << 16, stats()), undefined);
  });

  it("keeps its frames within its byte bound", () => {
    const frames = new LiveFrames(10_000);
    let prev: StoredNode | undefined;
    for (let change = 1; change <= 100; change++) {
      const value = new Uint8Array(1000).fill(change);
      const links = prev === undefined ? [] : [prev.key];
      prev = { key: computeKey(links, value), links, value, change };
      frames.follow(prev);
      assert.ok(frames.bytes <= 12_000, `${frames.bytes} bytes held`);
    }
    assert.equal(frames.live(outbox(0), 1 << 16, new Ranges(), 1 << 16, stats()), undefined, "change 1 is gone");
    assert.equal(frames.live(outbox(95), 1 << 16, new Ranges(), 1 << 16, stats())!.length, 1);
  });

  it("refuses a reference to a change the session did not learn, a 'yours' entry for nothing sent, and oversized messages", async () => {
    const reject = (message: number[], error: typeof ProtocolError | typeof InvalidNodeError, maxFrame?: number) =>
      assert.rejects(decodeLive(new LinkRefs(), new Uint8Array(message), noRead, maxFrame), error);
    // Change 7 links 1 back: change 6, never sent.
    await reject([NODES_LIVE, 7, 6, 4, 1, 1, 0, 1, 2], ProtocolError);
    // A link LIVE_RING back.
    await reject([NODES_LIVE, 7, 5, 4, 0, 0, 1, 1, 7, 4, 1, 128, LIVE_RING >> 7, 0, 1, 2], ProtocolError);
    // "Yours": the peer's node 0, but this side sent none; an odd tag.
    await reject([NODES_LIVE, 7, 2, 0, 2], ProtocolError);
    await reject([NODES_LIVE, 7, 2, 0, 1], ProtocolError);
    // Cut short, empty, an entry of another kind, a value longer than its frame.
    await reject([NODES_LIVE, 7, 5, 4, 0, 0, 1], ProtocolError);
    await reject([NODES_LIVE, 7], ProtocolError);
    await reject([NODES_LIVE, 0, 5, 4, 0, 0, 1, 1], ProtocolError);
    await reject([NODES_LIVE, 7, 2, 9, 0], ProtocolError);
    await reject([NODES_LIVE, 7, 5, 4, 0, 0, 5, 1], InvalidNodeError);
    // 3 one-byte references weigh 3 x 32 bytes as plain NODES: over a 100-byte limit.
    const relay = new Relay();
    relay.add([]);
    relay.add([1]);
    relay.add([1, 2]);
    const [message] = relay.frames.live(outbox(0), 1 << 16, new Ranges(), 1 << 16, stats())!;
    assert.ok(message!.length < 40);
    await assert.rejects(decodeLive(new LinkRefs(), message!, noRead, 100), /over 100 bytes/);
    assert.equal((await decodeLive(new LinkRefs(), message!, noRead, 1000)).length, 3);
    // "Yours" entries weigh as keys (each may cost a read of the log): 10 of 3 bytes are over 100 bytes as plain NODES.
    const sender = new LinkRefs();
    sender.sent(relay.nodes);
    const yours = [NODES_LIVE, 7, ...[0, 1, 2].flatMap((i) => [2, 0, 2 * (i + 1)])];
    await assert.rejects(decodeLive(sender, new Uint8Array([...yours, ...yours.slice(2)]), noRead, 100), /over 100 bytes/);
    assert.equal((await decodeLive(sender, new Uint8Array(yours), noRead, 200)).length, 0);
  });
});

describe("hyperlog serve fans live nodes out framed once", () => {
  it("concurrent writers converge, every live node arriving in NODES_LIVE, the same bytes at every writer", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hyperlog-live-frames-"));
    const server = await serve({ dir, port: 0 });
    const writers = Array.from({ length: 4 }, () => connect(server.url, "storm"));
    const received = writers.map(() => [] as Uint8Array[]);
    const types = new Set<number>();
    for (const [i, w] of writers.entries()) {
      w.socket.addEventListener("message", (event) => {
        if (typeof event.data === "string") return;
        const body = new Uint8Array(event.data as ArrayBuffer);
        if (body[0] === NODES_LIVE) received[i]!.push(body.slice());
        types.add(body[0]!);
      });
    }
    try {
      await Promise.all(writers.map((w) => w.session.synced));
      const per = 40;
      await Promise.all(writers.map(async (w, c) => {
        for (let i = 0; i < per; i++) {
          await w.log.append({ c, i });
          await new Promise((resolve) => setTimeout(resolve, 0));
        }
      }));
      const total = writers.length * per;
      await waitFor(() => writers.every((w) => w.log.length === total), 60_000, "every writer to hold every entry");
      const heads = await Promise.all(writers.map(async (w) => (await w.log.heads()).map((h) => h.key).sort()));
      for (const h of heads) assert.deepEqual(h, heads[0]);
      assert.ok(!types.has(8) && !types.has(10), `only NODES_LIVE carried nodes (types ${[...types]})`);
      // The relay's change of each node is the same for every writer: the entries that are nodes match byte for byte.
      const maps = received.map(entries);
      let shared = 0;
      for (const [change, bytes] of maps[0]!) {
        for (const other of maps.slice(1)) {
          const theirs = other.get(change);
          if (theirs === undefined || bytes.startsWith("0,") || theirs.startsWith("0,")) continue;
          assert.equal(theirs, bytes, `change ${change}`);
          shared++;
        }
      }
      assert.ok(shared > total, `${shared} node entries compared`);
    } finally {
      for (const w of writers) w.socket.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
