import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { Hyperlog, replicateWebSocket } from "../mod.ts";
import { encodeNodeBody } from "../src/wire.ts";
import { hostileHello } from "./_hostile.ts";
import { startDenoFixture } from "./_helpers.ts";
import { waitFor, within } from "./_wait.ts";

let peer: ChildProcess | undefined;
let base = "";

async function keysOf(log: Hyperlog): Promise<string[]> {
  const keys: string[] = [];
  for await (const node of log.createReadStream()) keys.push(node.key);
  return keys.sort();
}

async function remote(): Promise<{ keys: string[]; errors: string[] }> {
  return await (await fetch(`${base}/keys`)).json() as { keys: string[]; errors: string[] };
}

function open(query = ""): WebSocket {
  return new WebSocket(`${base.replace("http", "ws")}/ws${query}`);
}

describe("replication over a WebSocket", () => {
  before(async () => {
    const started = await startDenoFixture(new URL("./fixtures/ws-peer.ts", import.meta.url));
    peer = started.child;
    const port = started.port;
    base = `http://127.0.0.1:${port}`;
  });

  after(() => {
    peer?.kill("SIGKILL");
  });

  it("converges a local log with the peer, one binary message per frame", async () => {
    await fetch(`${base}/add`, { method: "POST", body: JSON.stringify("from the server") });
    const log = new Hyperlog();
    await log.append("from the client");
    await log.append("and another");
    const stats = await replicateWebSocket(log, open()).done;
    assert.equal(stats.nodesSent, 2);
    assert.equal(stats.nodesReceived, 1);
    assert.deepEqual((await remote()).keys, await keysOf(log));
    const again = await replicateWebSocket(log, open()).done;
    assert.equal(again.nodesSent + again.nodesReceived, 0);
  });

  it("stays live: nodes added on the server reach the client as they are added", async () => {
    const log = new Hyperlog();
    const session = replicateWebSocket(log, open("?live=1"), { live: true });
    await session.synced;
    const before = log.length;
    assert.deepEqual((await remote()).keys, await keysOf(log));
    await fetch(`${base}/add`, { method: "POST", body: JSON.stringify({ live: 1 }) });
    await log.waitForLength(before);
    assert.equal(log.length, before + 1);
    await log.append("live from the client");
    const head = (await log.heads())[0]!.key;
    await waitFor(async () => (await remote()).keys.includes(head), 30_000, "the client's node on the server");
    assert.deepEqual((await remote()).keys, await keysOf(log));
    await session.close();
  });

  it("refuses text messages and garbage, closing the socket instead of hanging", async () => {
    const socket = open();
    const closed = new Promise<number>((resolve) => socket.addEventListener("close", (e) => resolve(e.code)));
    await new Promise((resolve) => socket.addEventListener("open", resolve));
    socket.send(new Uint8Array([0xff, 0x00, 0x13, 0x37]));
    await within(closed, 30_000, "the server to close the socket");
    const { errors } = await remote();
    assert.ok(errors.some((e) => /hyperlog|HELLO|JSON|message type/i.test(e)), errors.join("; "));
  });

  const helloBody = (version: number) =>
    new TextEncoder().encode(
      JSON.stringify({
        protocol: "hyperlog",
        version,
        mode: "sync",
        live: false,
        id: "f".repeat(32),
        nonce: "e".repeat(32),
        length: 0,
        count: 0,
        xor: "0".repeat(32),
        maxFrame: 1 << 20,
        window: 1 << 19,
      }),
    );
  const withType = (type: number, body: Uint8Array) => Uint8Array.of(type, ...body);
  // A well-formed version-2 HELLO of an empty peer (its fields packed as the protocol packs them).
  const hello2 = () => hostileHello({ count: 0, id: "f".repeat(32), xor: new Uint8Array(16) });
  const hostile: [string, () => Uint8Array[], RegExp][] = [
    ["an unknown protocol version", () => [withType(1, helloBody(7))], /protocol version 7/],
    ["a message before HELLO", () => [Uint8Array.of(5)], /before its HELLO/],
    ["a node whose key does not match", () => [
      hello2(),
      encodeNodeBody(4, { key: "ab".repeat(32), links: [], value: new TextEncoder().encode('"evil"') }),
      Uint8Array.of(5),
    ], /does not match its content/],
    [
      "a malformed node",
      () => [hello2(), Uint8Array.of(4, 1, 2, 3), Uint8Array.of(5)],
      /Malformed node/,
    ],
  ];
  for (const [name, messages, expected] of hostile) {
    it(`ends the session on ${name}: the server closes the socket, says why, and stores nothing`, async () => {
      const before = (await remote()).keys;
      const socket = open();
      socket.binaryType = "arraybuffer";
      const replies: string[] = [];
      socket.addEventListener(
        "message",
        (e) => replies.push(new TextDecoder().decode(new Uint8Array(e.data as ArrayBuffer))),
      );
      const closed = new Promise<void>((resolve) => socket.addEventListener("close", () => resolve()));
      await new Promise((resolve) => socket.addEventListener("open", resolve));
      for (const message of messages()) socket.send(message.slice());
      await within(closed, 30_000, "the server to close the socket");
      assert.ok(replies.some((r) => expected.test(r)), `an error frame says why: ${replies.join(" | ")}`);
      const after = await remote();
      assert.deepEqual(after.keys, before);
      assert.ok(after.errors.some((e) => expected.test(e)));
    });
  }

  it("the client's done rejects when the server refuses its mode", async () => {
    const log = new Hyperlog();
    await log.append("x");
    const session = replicateWebSocket(log, open("?mode=push"), { mode: "push" });
    await assert.rejects(session.done, /Incompatible replication modes/);
  });
});
