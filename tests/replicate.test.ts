import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import {
  Hyperlog,
  Identity,
  type ReplicateOptions,
  replicateWebSocket,
  type Replication,
  type ReplicationStats,
} from "../mod.ts";
import { encodeMessage, encodeNodeBody, frame, FrameDecoder, type ReplicationMode } from "../src/wire.ts";
import { connect as tcpConnect, createServer } from "node:net";
import { Readable, Writable } from "node:stream";
import { seeded, startDenoFixture } from "./_helpers.ts";
import { waitFor, within } from "./_wait.ts";

/** The WebSocket bridge (tests/fixtures/ws-bridge.ts, served by Deno): joins two client sockets of one pair id. */
let bridge: ChildProcess | undefined;
let bridgeUrl = "";
let pairs = 0;

before(async () => {
  const started = await startDenoFixture(new URL("./fixtures/ws-bridge.ts", import.meta.url));
  bridge = started.child;
  bridgeUrl = `ws://127.0.0.1:${started.port}/pair/`;
});
after(() => void bridge?.kill());

/** Two real WebSocket clients joined by the bridge. */
function socketPair(): [WebSocket, WebSocket] {
  const id = `p${++pairs}-${Math.random().toString(36).slice(2)}`;
  return [new WebSocket(bridgeUrl + id), new WebSocket(bridgeUrl + id)];
}

/** The same as {@link sync}, each side on a WebSocket client, through the bridge. */
async function syncWebSocket(
  a: Log,
  b: Log,
  oa: ReplicateOptions = {},
  ob: ReplicateOptions = {},
): Promise<[ReplicationStats, ReplicationStats]> {
  const [wa, wb] = socketPair();
  return await Promise.all([replicateWebSocket(a, wa, oa).done, replicateWebSocket(b, wb, ob).done]);
}

type Log = Hyperlog<unknown>;

/** Connects two sessions back to back, as an in-process pipe. */
function connect(ra: Replication, rb: Replication): void {
  ra.readable.pipeTo(rb.writable).catch(() => {});
  rb.readable.pipeTo(ra.writable).catch(() => {});
}

async function sync(
  a: Log,
  b: Log,
  oa: ReplicateOptions = {},
  ob: ReplicateOptions = {},
): Promise<[ReplicationStats, ReplicationStats]> {
  const ra = a.replicate(oa);
  const rb = b.replicate(ob);
  connect(ra, rb);
  return await Promise.all([ra.done, rb.done]);
}

/** The same as {@link sync}, across a real TCP connection on loopback. */
async function syncTcp(
  a: Log,
  b: Log,
  oa: ReplicateOptions = {},
  ob: ReplicateOptions = {},
): Promise<[ReplicationStats, ReplicationStats]> {
  const server = createServer({ allowHalfOpen: true });
  const serverSide = new Promise<ReplicationStats>((resolve, reject) => {
    server.once("connection", (socket) => {
      const session = a.replicate(oa);
      (Readable.toWeb(socket) as unknown as ReadableStream<Uint8Array>).pipeTo(session.writable).catch(() => {});
      session.readable.pipeTo(Writable.toWeb(socket) as WritableStream<Uint8Array>).catch(() => {});
      session.done.then(resolve, reject);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const socket = tcpConnect((server.address() as { port: number }).port, "127.0.0.1");
  socket.setNoDelay(true);
  const session = b.replicate(ob);
  (Readable.toWeb(socket) as unknown as ReadableStream<Uint8Array>).pipeTo(session.writable).catch(() => {});
  session.readable.pipeTo(Writable.toWeb(socket) as WritableStream<Uint8Array>).catch(() => {});
  try {
    return await Promise.all([serverSide, session.done]);
  } finally {
    server.close();
  }
}

async function state(log: Log): Promise<{ keys: string[]; heads: string[] }> {
  const keys: string[] = [];
  for await (const node of log.createReadStream()) keys.push(node.key);
  return { keys: keys.sort(), heads: (await log.heads()).map((n) => n.key) };
}

/** Checks the log's invariants: every link precedes its node, heads are exactly the unlinked nodes. */
async function assertConsistent(log: Log): Promise<void> {
  const seen = new Set<string>();
  const linked = new Set<string>();
  let change = 0;
  for await (const node of log.createReadStream()) {
    assert.equal(node.change, ++change, "change numbers are dense");
    for (const link of node.links) {
      assert.ok(seen.has(link), `link ${link} of ${node.key} comes before it`);
      linked.add(link);
    }
    seen.add(node.key);
  }
  const heads = [...seen].filter((k) => !linked.has(k)).sort();
  assert.deepEqual((await log.heads()).map((n) => n.key), heads);
}

/** The HELLO of an empty peer, framed: protocol version 2's encoding, or the JSON of version 1 for another version. */
function emptyHello(mode: ReplicationMode = "sync", version = 2): Uint8Array {
  const fields = {
    mode,
    live: false,
    id: "f".repeat(32),
    nonce: "e".repeat(32),
    length: 0,
    count: 0,
    xor: new Uint8Array(16),
    maxFrame: 1 << 20,
    window: 1 << 19,
  };
  if (version === 2) return frame(encodeMessage({ type: "hello", hello: fields }));
  const v1 = { protocol: "hyperlog", version, mode, live: false, id: fields.id, nonce: fields.nonce, length: 0 };
  return frame(Uint8Array.of(1, ...new TextEncoder().encode(JSON.stringify(v1))));
}

describe("replicate", () => {
  it("converges two logs both ways and reports what it did", async () => {
    const a = new Hyperlog();
    const b = new Hyperlog();
    for (let i = 0; i < 5; i++) await a.append(`a${i}`);
    for (let i = 0; i < 3; i++) await b.append(`b${i}`);
    const [sa, sb] = await sync(a, b);
    assert.deepEqual(await state(a), await state(b));
    assert.equal(sa.nodesSent, 5);
    assert.equal(sa.nodesReceived, 3);
    assert.equal(sb.nodesSent, 3);
    assert.equal(sb.nodesReceived, 5);
    assert.equal(sa.bytesSent, sb.bytesReceived);
    assert.equal(sb.bytesSent, sa.bytesReceived);
    assert.ok(sa.roundTrips <= 5, `first contact took ${sa.roundTrips} round trips`);
    await assertConsistent(a);
    await assertConsistent(b);
    const [again] = await sync(a, b);
    assert.equal(again.nodesSent + again.nodesReceived, 0, "a second sync moves no node");
    assert.equal(again.roundTrips, 2, "a resync with nothing new takes two round trips: HELLO, then SYNCED and ACK");
    assert.ok(again.bytesSent < 300, `a resync with nothing new costs a few hundred bytes, not ${again.bytesSent}`);
  });

  it("a resync after one entry written offline costs no more than protocol version 1's 558 bytes", async () => {
    const a = new Hyperlog();
    const b = new Hyperlog();
    for (let i = 0; i < 2000; i++) await a.append(`entry ${i}`);
    await b.append("b");
    await sync(a, b);
    await b.append("written offline");
    const [sa, sb] = await sync(a, b);
    assert.equal(sa.nodesReceived, 1);
    assert.equal(sb.nodesSent, 1);
    const bytes = sa.bytesSent + sb.bytesSent;
    // Two HELLOs of about 125 bytes each (the JSON of every field was about 210), two CHECKs, the node, SYNCED, ACK.
    assert.ok(bytes <= 558, `the resync cost ${bytes} bytes; protocol version 1 took 558 and a JSON HELLO 665`);
    const hello = encodeMessage({
      type: "hello",
      hello: {
        mode: "sync",
        live: true,
        id: a.id,
        nonce: "0".repeat(32),
        length: 1_000_000,
        count: 1_000_000,
        xor: new Uint8Array(16).fill(255),
        maxFrame: 1 << 20,
        window: 1 << 19,
        refs: true,
      },
    });
    assert.ok(hello.length <= 128, `a HELLO of a million-node log takes ${hello.length} bytes`);
    // What a version-1 peer reads first (it says "upgrade the older side" on seeing version 2).
    const json = JSON.parse(new TextDecoder().decode(hello.subarray(1)));
    assert.equal(json.protocol, "hyperlog");
    assert.equal(json.version, 2);
  });

  it("sends nodes in NODES messages, several nodes each", async () => {
    const log = new Hyperlog();
    for (let i = 0; i < 5; i++) await log.append(`n${i}`);
    const session = log.replicate({ mode: "push" });
    const types: number[] = [];
    const decoder = new FrameDecoder();
    session.readable.pipeTo(
      new WritableStream({ write: (chunk) => void types.push(...decoder.push(chunk).map((body) => body[0]!)) }),
    ).catch(() => {});
    const writer = session.writable.getWriter();
    await writer.write(emptyHello("pull"));
    await waitFor(() => types.includes(5), 30_000, "the session to send SYNCED");
    assert.deepEqual(types.filter((t) => t === 4 || t === 8), [8], "one NODES message holds the five nodes");
    await writer.abort().catch(() => {});
    await session.done.catch(() => {});
  });

  it("push sends only, pull receives only", async () => {
    const a = new Hyperlog();
    const b = new Hyperlog();
    await a.append("a");
    await b.append("b");
    const [sa, sb] = await sync(a, b, { mode: "push" }, { mode: "pull" });
    assert.equal(sa.nodesSent, 1);
    assert.equal(sb.nodesReceived, 1);
    assert.equal(a.length, 1);
    assert.equal(b.length, 2);
    const [sc] = await sync(a, b, { mode: "pull" }, { mode: "sync" });
    assert.equal(sc.nodesReceived, 1);
    assert.equal(a.length, 2);
  });

  for (const [ma, mb] of [["push", "push"], ["pull", "pull"]] as const) {
    it(`refuses ${ma} with ${mb} on both sides`, async () => {
      const ra = new Hyperlog().replicate({ mode: ma });
      const rb = new Hyperlog().replicate({ mode: mb });
      connect(ra, rb);
      await assert.rejects(ra.done, /Incompatible replication modes/);
      await assert.rejects(rb.done, /Incompatible replication modes/);
    });
  }

  it("refuses a bad mode and a tiny frame limit up front", () => {
    assert.throws(() => new Hyperlog().replicate({ mode: "both" as "sync" }), /Unknown replication mode/);
    assert.throws(() => new Hyperlog().replicate({ maxFrame: 10 }), RangeError);
  });

  it("carries signed nodes and checks their signatures", async () => {
    const id = await Identity.generate();
    const a = new Hyperlog({ identity: id });
    await a.append("signed");
    const b = new Hyperlog({ writers: [id.publicKey] });
    await sync(a, b);
    const [node] = await b.heads();
    assert.equal(node?.identity, id.publicKey);
    const stranger = new Hyperlog({ identity: await Identity.generate() });
    await stranger.append("not a writer");
    const ra = stranger.replicate();
    const rb = b.replicate();
    connect(ra, rb);
    await assert.rejects(rb.done, /not a listed writer/);
    await assert.rejects(ra.done, /not a listed writer/);
    assert.equal(b.length, 1);
  });

  const transports = [[2, "pipe", 15], [3, "pipe", 15], [3, "tcp", 3], [3, "websocket", 3]] as const;
  for (const [peers, transport, rounds] of transports) {
    const pair = transport === "pipe" ? sync : transport === "tcp" ? syncTcp : syncWebSocket;
    it(`converges random DAGs on ${peers} peers in random pairings over ${transport} (property test)`, async () => {
      for (let round = 0; round < rounds; round++) {
        const seed = 1000 * peers + round;
        const rand = seeded(seed);
        const logs: Log[] = Array.from({ length: peers }, () => new Hyperlog());
        try {
          for (let step = 0; step < 12; step++) {
            // Each peer writes as several writers: forks off random known nodes, and merges.
            for (const log of logs) {
              const writes = Math.floor(rand() * 6);
              for (let w = 0; w < writes; w++) {
                const all = await state(log);
                const pick = () => all.keys[Math.floor(rand() * all.keys.length)]!;
                const r = rand();
                if (all.keys.length === 0 || r < 0.2) await log.add(null, { seed, step, w, r });
                else if (r < 0.5) await log.append({ seed, step, w });
                else {
                  const links = [...new Set([pick(), pick()])];
                  await log.add(links, { seed, step, w, links: links.length });
                }
              }
            }
            const i = Math.floor(rand() * peers);
            const j = (i + 1 + Math.floor(rand() * (peers - 1))) % peers;
            const modes: ReplicateOptions["mode"][] = ["sync", "push", "pull"];
            const mode = modes[Math.floor(rand() * 3)]!;
            const other = mode === "push" ? "pull" : mode === "pull" ? "push" : "sync";
            await pair(logs[i]!, logs[j]!, { mode }, { mode: other });
          }
          // Finally everyone syncs with everyone.
          for (let i = 0; i < peers; i++) for (let j = i + 1; j < peers; j++) await pair(logs[i]!, logs[j]!);
          for (let i = 0; i < peers; i++) for (let j = i + 1; j < peers; j++) await pair(logs[i]!, logs[j]!);
          const first = await state(logs[0]!);
          for (const log of logs) {
            assert.deepEqual(await state(log), first);
            await assertConsistent(log);
          }
        } catch (err) {
          throw new Error(`Property failed with seed ${seed}: ${(err as Error).message}`, { cause: err });
        }
      }
    });
  }
});

describe("live replication", () => {
  it("forwards new nodes both ways, never back to the sender, and ends on close", async () => {
    const a = new Hyperlog();
    const b = new Hyperlog();
    await a.append("before");
    const ra = a.replicate({ live: true });
    const rb = b.replicate({ live: true });
    connect(ra, rb);
    const arrived = (log: Log, length: number) =>
      within(
        log.waitForLength(length - 1).then(async () => {
          while (log.length < length) await log.waitForLength(log.length);
        }),
        30_000,
        `log reaches ${length} nodes`,
      );
    await arrived(b, 1);
    await a.append("from a");
    await arrived(b, 2);
    await b.append("from b");
    await arrived(a, 3);
    await Promise.all([a.append("a again"), b.append("b again")]);
    await arrived(a, 5);
    await arrived(b, 5);
    // A sentinel each way: each session sends in order, so an echo of an earlier node would cross before it.
    await a.append("sentinel from a");
    await arrived(b, 6);
    await b.append("sentinel from b");
    await arrived(a, 7);
    const [sa, sb] = await Promise.all([ra.close(), rb.done]);
    assert.deepEqual(await state(a), await state(b));
    // Every node crossed once: a wrote 4, b wrote 3; an echo would show up as extra sends.
    assert.equal(sa.nodesSent, 4);
    assert.equal(sb.nodesSent, 3);
    assert.equal(sa.nodesReceived, 3);
    assert.equal(sb.nodesReceived, 4);
  });

  it("relays through a middle peer live: a -> hub -> c", async () => {
    const [a, hub, c] = [new Hyperlog(), new Hyperlog(), new Hyperlog()];
    const s1 = [a.replicate({ live: true }), hub.replicate({ live: true })] as const;
    const s2 = [hub.replicate({ live: true }), c.replicate({ live: true })] as const;
    connect(...s1);
    connect(...s2);
    await a.append("hi from a");
    await within(c.waitForLength(0), 30_000, "node reaches c");
    await c.append("hi from c");
    await within(a.waitForLength(1), 30_000, "node reaches a");
    assert.deepEqual(await state(a), await state(c));
    const stats = await Promise.all([s1[0].close(), s1[1].done, s2[0].close(), s2[1].done]);
    assert.equal(stats[0].nodesSent, 1);
    assert.equal(stats[3].nodesSent, 1);
  });

  it("ends the session cleanly when the log closes", async () => {
    const a = new Hyperlog();
    const b = new Hyperlog();
    const ra = a.replicate({ live: true });
    const rb = b.replicate({ live: true });
    connect(ra, rb);
    await a.append("x");
    await within(b.waitForLength(0), 30_000, "node reaches b");
    await a.close();
    await within(ra.done, 30_000, "a's session ends");
    await within(rb.done, 30_000, "b's session ends");
  });
});

const TRANSPORT_NAMES = {
  pipe: "an in-process pipe",
  tcp: "a real TCP socket",
  websocket: "a real WebSocket (one frame per message)",
} as const;
for (const transport of ["pipe", "tcp", "websocket"] as const) {
  describe(`hostile input over ${TRANSPORT_NAMES[transport]}`, () => {
    /** Feeds raw bytes to a session; returns its outcome and every byte it sent back. */
    async function feed(log: Log, chunks: Uint8Array[], options: ReplicateOptions = {}, hangUp = false) {
      if (transport === "pipe") return await feedPipe(log, chunks, options);
      if (transport === "tcp") return await feedTcp(log, chunks, options);
      return await feedWebSocket(log, chunks, options, hangUp);
    }

    /**
     * The victim replicates over a WebSocket; the attacker, on the other socket of the pair, sends each frame of the
     * chunks as one message (the bytes that do not make a whole frame, as one last message) and reads until the
     * victim closes. A WebSocket cannot be half-closed, as the pipe and TCP attackers are after their last byte: with
     * `hangUp` the attacker closes its socket after sending instead, and reads nothing.
     */
    async function feedWebSocket(log: Log, chunks: Uint8Array[], options: ReplicateOptions, hangUp: boolean) {
      const [victimSocket, attacker] = socketPair();
      attacker.binaryType = "arraybuffer";
      const session = replicateWebSocket(log, victimSocket, options);
      const outcome = session.done.then(() => undefined, (e: Error) => e);
      const reply: Uint8Array[] = [];
      const ended = new Promise<void>((resolve) => {
        attacker.addEventListener("message", (event) => {
          const data = (event as MessageEvent).data as ArrayBuffer;
          reply.push(frame(new Uint8Array(data)));
        });
        attacker.addEventListener("close", () => resolve());
      });
      await new Promise<void>((resolve) => attacker.addEventListener("open", () => resolve()));
      const bytes = concat(chunks);
      const decoder = new FrameDecoder(1 << 30);
      let rest = bytes;
      try {
        for (const body of decoder.push(bytes)) attacker.send(body as Uint8Array<ArrayBuffer>);
        rest = new Uint8Array(0);
      } catch {
        // Not frames at all (random bytes, a length prefix over any limit): send the bytes as they are.
      }
      if (rest.length > 0) attacker.send(rest as Uint8Array<ArrayBuffer>);
      if (hangUp) attacker.close(1000, "Hanging up");
      const error = await within(outcome, 30_000, "session ends");
      await within(ended, 30_000, "the victim closes the WebSocket");
      return { error, reply: new TextDecoder().decode(concat(reply)) };
    }

    async function feedPipe(log: Log, chunks: Uint8Array[], options: ReplicateOptions) {
      const session = log.replicate(options);
      const reply: Uint8Array[] = [];
      const reading = session.readable.pipeTo(new WritableStream({ write: (c) => void reply.push(c) })).catch(() => {});
      const writer = session.writable.getWriter();
      for (const chunk of chunks) await writer.write(chunk).catch(() => {});
      await writer.close().catch(() => {});
      const outcome = await within(session.done.then(() => undefined, (e: Error) => e), 30_000, "session ends");
      await within(reading, 1000, "reply ends");
      const text = new TextDecoder().decode(concat(reply));
      return { error: outcome, reply: text };
    }

    /** The victim listens on a TCP port; the attacker connects, writes the chunks and reads until the socket ends. */
    async function feedTcp(log: Log, chunks: Uint8Array[], options: ReplicateOptions) {
      const server = createServer({ allowHalfOpen: true });
      const outcome = new Promise<Error | undefined>((resolve) => {
        server.once("connection", (socket) => {
          const session = log.replicate(options);
          (Readable.toWeb(socket) as unknown as ReadableStream<Uint8Array>).pipeTo(session.writable).catch(() => {});
          session.readable.pipeTo(Writable.toWeb(socket) as WritableStream<Uint8Array>).catch(() => {});
          session.done.then(() => resolve(undefined), (e: Error) => resolve(e));
        });
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const { port } = server.address() as { port: number };
      const client = tcpConnect(port, "127.0.0.1");
      const reply: Buffer[] = [];
      const ended = new Promise<void>((resolve) => {
        client.on("data", (d: Buffer) => reply.push(d));
        client.on("close", () => resolve());
        client.on("error", () => resolve());
      });
      await new Promise<void>((resolve) => client.once("connect", () => resolve()));
      for (const chunk of chunks) client.write(chunk);
      client.end();
      const error = await within(outcome, 1000, "session ends");
      await within(ended, 1000, "the victim closes the connection");
      server.close();
      return { error, reply: new TextDecoder().decode(concat(reply)) };
    }

    function concat(chunks: Uint8Array[]): Uint8Array {
      const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        out.set(c, at);
        at += c.length;
      }
      return out;
    }

    // A peer that claims to be empty, so the victim expects nodes at once, without reconciling.
    const hello = (version = 2, mode: ReplicationMode = "sync") => emptyHello(mode, version);

    async function victim(): Promise<{ log: Log; before: { keys: string[]; heads: string[] } }> {
      const log = new Hyperlog();
      await log.append("precious");
      return { log, before: await state(log) };
    }

    const cases: [string, () => Uint8Array[], RegExp][] = [
      ["random bytes", () => {
        const rand = seeded(9);
        return [Uint8Array.from({ length: 200 }, () => Math.floor(rand() * 256))];
      }, /./],
      ["an oversized length prefix", () => [Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x7f)], /over the limit/],
      ["a frame cut short", () => [hello(), Uint8Array.of(50, 4, 1, 2)], /middle of a frame/],
      ["an unknown protocol version", () => [hello(99)], /protocol version 99/],
      ["a version-1 HELLO", () => [hello(1)], /protocol version 1, this peer speaks version 2; upgrade the older side/],
      ["a HELLO whose fields are cut short", () => {
        const json = '{"protocol":"hyperlog","version":2,"h":"EP__"}';
        return [frame(Uint8Array.of(1, ...new TextEncoder().encode(json)))];
      }, /HELLO has no valid log id/],
      ["a HELLO whose fields are not base64url", () => {
        const json = '{"protocol":"hyperlog","version":2,"h":"E+/="}';
        return [frame(Uint8Array.of(1, ...new TextEncoder().encode(json)))];
      }, /HELLO has no valid fields/],
      ["a message before HELLO", () => [frame(Uint8Array.of(3))], /before its HELLO/],
      ["an unknown message type", () => [hello(), frame(Uint8Array.of(42))], /unknown message type 42/],
      ["an empty frame", () => [hello(), frame(new Uint8Array(0))], /empty frame/],
      ["a node whose key does not match", () => {
        const value = new TextEncoder().encode('"evil"');
        return [hello(), frame(encodeNodeBody(4, { key: "ab".repeat(32), links: [], value })), frame(Uint8Array.of(5))];
      }, /does not match its content/],
      ["a node linking to a key never sent", () => {
        const value = new TextEncoder().encode('"orphan"');
        const links = ["cd".repeat(32)];
        return [hello(), frame(encodeNodeBody(4, { key: "00".repeat(32), links, value })), frame(Uint8Array.of(5))];
      }, /./],
      ["a malformed node", () => [hello(), frame(Uint8Array.of(4, 1, 2, 3))], /Malformed node/],
      ["a NODES message cut short", () => [hello(), frame(Uint8Array.of(8, 50, 4, 1))], /NODES message: a node is cut/],
      ["a NODES message holding no node", () => [hello(), frame(Uint8Array.of(8))], /NODES message: it holds no node/],
      ["a NODES message holding something other than a node", () => [
        hello(),
        frame(Uint8Array.of(8, ...frame(Uint8Array.of(5)))),
      ], /holds something other than a node/],
      ["a NODES message with a node whose key does not match", () => {
        const value = new TextEncoder().encode('"evil"');
        const node = encodeNodeBody(4, { key: "ab".repeat(32), links: [], value });
        return [hello(), frame(Uint8Array.of(8, ...frame(node))), frame(Uint8Array.of(5))];
      }, /does not match its content/],
      ["a node that links to the same key twice", () => {
        const link = "ab".repeat(32);
        const value = new TextEncoder().encode('"twice"');
        return [
          hello(),
          frame(encodeNodeBody(4, { key: "cd".repeat(32), links: [link, link], value })),
          frame(Uint8Array.of(5)),
        ];
      }, /twice/],
    ];

    // A WebSocket delimits messages itself: a length prefix or a frame cut short cannot happen there.
    const streamOnly = new Set(["an oversized length prefix", "a frame cut short"]);
    for (const [name, make, message] of cases) {
      if (transport === "websocket" && streamOnly.has(name)) continue;
      it(`ends cleanly on ${name}, tells the peer, and leaves the log unchanged`, async () => {
        const { log, before } = await victim();
        const { error, reply } = await feed(log, make());
        assert.ok(error instanceof Error, "done rejects");
        assert.match(error.message, message);
        assert.ok(reply.includes(JSON.stringify(error.message).slice(1, 20)), "the error frame reaches the peer");
        assert.deepEqual(await state(log), before);
        assert.ok(!log.closed);
      });
    }

    it("a forged signature is refused and nothing of it is stored", async () => {
      const alice = await Identity.generate();
      const mallory = await Identity.generate();
      const source = new Hyperlog({ identity: alice });
      const node = await source.append("pay mallory");
      // Copied field by field: the log's own stored nodes read their value through a getter, which a spread leaves out.
      const stored = (await source.storage.get(node.key))!;
      const forged = {
        key: stored.key,
        links: stored.links,
        value: stored.value,
        identity: stored.identity!,
        signature: (await mallory.sign(new Uint8Array(32))).reduce((s, b) => s + b.toString(16).padStart(2, "0"), ""),
      };
      const { log, before } = await victim();
      const { error } = await feed(log, [hello(), frame(encodeNodeBody(4, forged)), frame(Uint8Array.of(5))]);
      assert.equal(error?.name, "SignatureError");
      assert.deepEqual(await state(log), before);
    });

    it("keeps the good nodes before a bad one", async () => {
      const source = new Hyperlog();
      const good = await source.append("good");
      const stored = (await source.storage.get(good.key))!;
      const { log } = await victim();
      const bad = { key: "ef".repeat(32), links: [good.key], value: new TextEncoder().encode('"bad"') };
      const { error } = await feed(log, [
        hello(),
        frame(encodeNodeBody(4, stored)),
        frame(encodeNodeBody(4, bad)),
        frame(Uint8Array.of(5)),
      ]);
      assert.equal(error?.name, "InvalidNodeError");
      assert.equal(log.length, 2);
      await log.get(good.key);
    });

    it("the honest peer's done rejects with the error when its peer refuses a node", async () => {
      const a = new Hyperlog({ identity: await Identity.generate() });
      await a.append("x");
      const strict = new Hyperlog({ writers: ["12".repeat(32)] });
      const ra = a.replicate();
      const rb = strict.replicate();
      connect(ra, rb);
      const [ea, eb] = await Promise.all([ra.done.catch((e: Error) => e), rb.done.catch((e: Error) => e)]);
      assert.ok(ea instanceof Error && eb instanceof Error);
      assert.match((ea as Error).message, /not a listed writer/);
      assert.match((ea as Error).message, /^Peer stopped the session/);
      assert.equal((ea as Error).name, "SignatureError");
    });

    it("a peer that hangs up early makes done reject instead of hanging", async () => {
      const { log } = await victim();
      const { error } = await feed(log, [hello()], {}, true);
      assert.match(
        error?.message ?? "",
        /(peer closed the connection|The connection closed) before the replication session/,
      );
    });
  });
}
