/**
 * The receive side of `hyperlog serve` against a peer that sends faster than the relay stores: the bytes a socket
 * has sent and the relay has not yet handled are bounded by `RECEIVE_BUFFER_BYTES` (past it the runtime's socket
 * is paused, where it can be: Node), received buffers reach the relay uncopied, and under a node flood the relay's
 * peak of bytes held per socket (`hyperlog_receiving_bytes_peak`) stays within that bound and one message. The
 * relay's RSS under a 256 MB flood, in a process of its own, is measured by `npm run bench -- --only hostile`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Hyperlog, replicateWebSocket } from "../mod.ts";
import { encodeNodesBodies } from "../src/wire.ts";
import { HostedSocket, MESSAGE_OVERHEAD } from "../worker/hosted-socket.ts";
import { flood, HIGH_ID, hostileHello, rawSocket } from "./_hostile.ts";
import { runtime } from "./_helpers.ts";
import { json } from "./_relay-clients.ts";
import { servedRelay } from "./_served.ts";
import { waitFor } from "./_wait.ts";

describe("HostedSocket: what a client sent and the relay has not handled", () => {
  it("pauses the runtime's socket past receiveLimit, resumes once handled, and hands buffers over uncopied", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const got: unknown[] = [];
    const calls: string[] = [];
    const socket = new HostedSocket({
      message: (_ws, data) => void got.push(data),
      closed() {},
      handled: () => gate,
    });
    socket.attach({ send() {}, close() {}, pause: () => calls.push("pause"), resume: () => calls.push("resume") });
    socket.receiveLimit = 100_000;
    const message = new Uint8Array(40_000);
    socket.received(message);
    socket.received(message);
    assert.deepEqual(calls, [], "80 000 bytes pending: under the limit, the socket is read");
    socket.received(message);
    assert.deepEqual(calls, ["pause"], "120 000 bytes pending: over the limit, the socket is paused");
    assert.equal(socket.receiving, 3 * (40_000 + MESSAGE_OVERHEAD));
    assert.ok(socket.paused);
    // What the runtime had read before the pause still arrives: counted, and no second pause.
    socket.received(message);
    assert.deepEqual(calls, ["pause"]);
    assert.equal(socket.receivingPeak, 4 * (40_000 + MESSAGE_OVERHEAD));
    assert.equal(got[0], message, "the relay gets the runtime's buffer itself, not a copy");
    release();
    await waitFor(() => calls.length === 2, 5000, "the socket to be read again");
    assert.deepEqual(calls, ["pause", "resume"]);
    assert.equal(socket.receiving, 0);
    assert.ok(!socket.paused);
  });

  it("a flood of tiny messages is paused too: each counts what holding it costs", () => {
    const socket = new HostedSocket({ message() {}, closed() {}, handled: () => new Promise(() => {}) });
    const calls: string[] = [];
    socket.attach({ send() {}, close() {}, pause: () => calls.push("pause"), resume: () => calls.push("resume") });
    socket.receiveLimit = 64 * 1024;
    let sent = 0;
    while (calls.length === 0 && sent < 100_000) {
      socket.received(Uint8Array.of(9, 1));
      sent++;
    }
    assert.deepEqual(calls, ["pause"]);
    assert.ok(sent <= (64 * 1024) / MESSAGE_OVERHEAD + 1, `paused after ${sent} messages of 2 bytes`);
  });

  it("a runtime that cannot pause is never asked to, and the bytes are still counted", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const socket = new HostedSocket({ message() {}, closed() {}, handled: () => gate });
    socket.attach({ send() {}, close() {} });
    socket.receiveLimit = 10;
    socket.received(new Uint8Array(100));
    assert.equal(socket.receiving, 100 + MESSAGE_OVERHEAD);
    assert.ok(!socket.paused, "nothing to pause");
    release();
    await waitFor(() => socket.receiving === 0, 5000, "the message to be handled");
  });
});

/** The relay's settings: a write budget no flood reaches, 256 KiB frames, 128 KiB of receive buffer. */
const RECEIVE = 128 * 1024;
const FRAME = 256 * 1024;
const SETTINGS: Record<string, string> = {
  MAX_NODES_PER_SECOND: "1000000",
  MAX_NODES_BURST: "1000000",
  MAX_BYTES_PER_SECOND: "1000000000",
  MAX_BYTES_BURST: "1000000000",
  MAX_FRAME_BYTES: String(FRAME),
  RECEIVE_BUFFER_BYTES: String(RECEIVE),
};

describe(`the node flood against hyperlog serve (${runtime})`, () => {
  const relay = servedRelay("hyperlog-receive-", SETTINGS);
  const metric = (name: string): number => relay.metric(name);

  it("holds at most RECEIVE_BUFFER_BYTES and one message per socket (Node pauses it), and stores each node once", async () => {
    const seed = new Hyperlog(undefined, { valueEncoding: "utf-8" });
    await seed.batch(Array.from({ length: 10 }, (_, i) => ({ value: `seed ${i}` })));
    const url = relay.url();
    const pusher = new WebSocket(`${url.replace(/^http/, "ws")}/logs/flood/ws`);
    await replicateWebSocket(seed as Hyperlog<unknown>, pusher, { maxFrame: FRAME }).done;
    pusher.close();
    const other = new Hyperlog(undefined, { valueEncoding: "utf-8" });
    await other.batch(Array.from({ length: 200 }, (_, i) => ({ value: `flood ${i} ${"x".repeat(1000)}` })));
    const page = await other.storage.read({ since: 0, until: 200, limit: 200, reverse: false });
    // Messages of 64 KiB, sent without waiting for CREDIT, as fast as the kernel takes them.
    const bodies = encodeNodesBodies(page, 64 * 1024);
    const pausesBefore = metric("receive_pauses_total");
    const ws = await rawSocket(`${url}/logs/flood/ws`);
    await ws.send(hostileHello({ count: 0, length: 0, xor: new Uint8Array(16), id: HIGH_ID, window: 1 << 19 }));
    const total = 32 << 20;
    const sent = await flood(ws, (i) => bodies[i % bodies.length]!, total);
    ws.destroy();
    await waitFor(() => metric("sockets") === 0, 10_000, "the flood's socket to be gone");
    const peak = metric("receiving_bytes_peak");
    const pauses = metric("receive_pauses_total") - pausesBefore;
    assert.equal(metric("receiving_bytes"), 0, "nothing held once the socket is gone");
    if (runtime === "node") {
      // ws.pause() stops the reads; what the runtime had read by then (one message over the bound, the rest of its
      // TCP read) still arrives. Without the pause the relay holds up to its window and two frames, 1 MiB here.
      const bound = RECEIVE + 2 * 64 * 1024 + 4 * MESSAGE_OVERHEAD;
      assert.ok(peak <= bound, `the relay held ${peak} bytes of one socket at once`);
      assert.ok(sent >= total, `the relay kept reading (paused and resumed), it never refused (${sent} bytes sent)`);
      if (peak > RECEIVE) assert.ok(pauses > 0, "past the bound the socket was paused");
    } else {
      // Deno's and Bun's server sockets cannot pause: past the driver's bound (window + 2 frames) the relay refuses;
      // the few messages the runtime delivered meanwhile are dropped as they come.
      const bound = (1 << 19) + 2 * FRAME + 4 * 64 * 1024 + 32 * MESSAGE_OVERHEAD;
      assert.ok(peak <= bound, `the relay held ${peak} bytes of one socket at once`);
      assert.equal(pauses, 0);
    }
    const stored = (await json(await fetch(`${url}/logs/flood`))).length as number;
    assert.ok(stored >= 10 && stored <= 210, `${stored} nodes stored: the 10, and each flood node at most once`);
    if (sent >= total) assert.equal(stored, 210);
  });
});
