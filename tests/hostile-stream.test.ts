/**
 * The byte-stream session (`log.replicate()`) against a hostile peer, over an in-process pipe and over TCP
 * (`node:net`, on Node, Deno and Bun): the victim runs the package's session as any application would, the attacker
 * writes frames by hand. The same cases as `hostile-relay.test.ts` where they apply to two peers: amplification
 * (reply bytes per request byte), a node flood, a paused reader, 20 000 nodes against 1 in both id orders, and the
 * handshake and idle deadlines.
 */
import assert from "node:assert/strict";
import type { Buffer } from "node:buffer";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { after, before, describe, it } from "node:test";
import { decodeMessage, encodeMessage, Hyperlog, type Message, type ReconEntry, type Replication } from "../mod.ts";
import { encodeNodesBodies, frame, FrameDecoder } from "../src/wire.ts";
import { HIGH_ID, hostileHello, splitAll } from "./_hostile.ts";

/** Reply bytes per request byte: a 2 KB message may get 256 KiB back (the target). */
const AMPLIFICATION = 128;

/** Two byte streams, as a peer sees its link. */
interface Link {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
  /** Bytes the victim's side has written to the link. */
  written(): number;
  /** Stops reading on the attacker's side (the victim's writes pile up where the transport keeps them). */
  pause(): void;
  close(): void;
}

/** How a test connects an attacker to a victim session. */
interface Transport {
  /** Runs `session` on one end of a new link and returns the other end. */
  link(session: Replication): Promise<Link>;
}

/** An in-process pipe: the victim's streams are the link (a paused attacker stops pulling). */
const pipe: Transport = {
  link(session) {
    let written = 0;
    let paused = false;
    let resume: (() => void) | undefined;
    const reader = session.readable.getReader();
    const readable = new ReadableStream<Uint8Array>({
      async pull(controller) {
        while (paused) await new Promise<void>((r) => (resume = r));
        const { done, value } = await reader.read();
        if (done) return controller.close();
        written += value.length;
        controller.enqueue(value);
      },
      cancel: () => void reader.cancel().catch(() => {}),
    }, { highWaterMark: 0 });
    return Promise.resolve({
      readable,
      writable: session.writable,
      written: () => written,
      pause: () => void (paused = true),
      close: () => {
        void reader.cancel().catch(() => {});
        void session.writable.abort().catch(() => {});
      },
    });
  },
};

/** A TCP socket as web streams, with the kernel's backpressure: reads pause when the stream is full. */
function socketStreams(socket: Socket): { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> } {
  const readable = new ReadableStream<Uint8Array>({
    start(controller) {
      socket.on("data", (chunk: Buffer) => {
        controller.enqueue(new Uint8Array(chunk));
        if ((controller.desiredSize ?? 1) <= 0) socket.pause();
      });
      socket.on("close", () => {
        try {
          controller.close();
        } catch {
          // Cancelled.
        }
      });
    },
    pull: () => void socket.resume(),
    cancel: () => void socket.destroy(),
  }, { highWaterMark: 64 * 1024, size: (chunk) => chunk.length });
  const writable = new WritableStream<Uint8Array>({
    write: (chunk) =>
      new Promise<void>((resolve, reject) => {
        if (socket.destroyed) return reject(new Error("The socket is closed"));
        if (socket.write(chunk)) resolve();
        else {
          socket.once("drain", resolve);
          socket.once("close", () => reject(new Error("The socket closed")));
        }
      }),
    close: () => void socket.end(),
    abort: () => void socket.destroy(),
  });
  return { readable, writable };
}

/** TCP on 127.0.0.1: the victim's session runs on the server's end of each connection. */
function tcp(): Transport & { start(): Promise<void>; stop(): Promise<void> } {
  let server: Server | undefined;
  let waiting: ((socket: Socket) => void) | undefined;
  return {
    async start() {
      server = createServer((socket) => waiting?.(socket));
      await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    },
    async stop() {
      await new Promise<void>((resolve) => server!.close(() => resolve()));
    },
    async link(session) {
      const accepted = new Promise<Socket>((resolve) => (waiting = resolve));
      const port = (server!.address() as { port: number }).port;
      const client = tcpConnect({ host: "127.0.0.1", port });
      client.on("error", () => {});
      const serverSide = await accepted;
      serverSide.on("error", () => {});
      const victim = socketStreams(serverSide);
      victim.readable.pipeTo(session.writable).catch(() => {});
      session.readable.pipeTo(victim.writable).catch(() => {});
      const attacker = socketStreams(client);
      return {
        ...attacker,
        written: () => serverSide.bytesWritten,
        pause: () => {
          client.removeAllListeners("data");
          client.pause();
        },
        close: () => {
          client.destroy();
          serverSide.destroy();
        },
      };
    },
  };
}

/** The attacker's end: frames out, bodies in. */
class Attacker {
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new FrameDecoder(1 << 30);
  readonly #bodies: Uint8Array[] = [];
  received = 0;
  readonly link: Link;

  constructor(link: Link) {
    this.link = link;
    this.#writer = link.writable.getWriter();
    this.#reader = link.readable.getReader();
  }

  async send(body: Uint8Array): Promise<void> {
    await this.#writer.write(frame(body));
  }

  /** The next message body, or undefined when the link ends. */
  async next(): Promise<Uint8Array | undefined> {
    while (this.#bodies.length === 0) {
      const { done, value } = await this.#reader.read().catch(() => ({ done: true, value: undefined }));
      if (done) return undefined;
      this.received += value!.length;
      this.#bodies.push(...this.#decoder.push(value!));
    }
    return this.#bodies.shift();
  }

  async message(): Promise<Message> {
    const body = await this.next();
    assert.ok(body !== undefined, "the victim ended the link");
    return decodeMessage(body);
  }

  /** Reads to the end of the link; the last message (an ERROR when the victim refused). */
  async drain(): Promise<Message | undefined> {
    let last: Message | undefined;
    for (;;) {
      const body = await this.next();
      if (body === undefined) return last;
      last = decodeMessage(body);
    }
  }
}

/** A log of `count` nodes of about `size` bytes. */
async function filled(count: number, size = 16): Promise<Hyperlog<unknown>> {
  const log = new Hyperlog(undefined, { valueEncoding: "utf-8" });
  const pad = "x".repeat(Math.max(0, size - 16));
  for (let i = 0; i < count; i += 1000) {
    await log.batch(Array.from({ length: Math.min(1000, count - i) }, (_, j) => ({ value: `n ${i + j} ${pad}` })));
  }
  return log as Hyperlog<unknown>;
}

/** A victim session with the attacker (leading) at the start of the reconciliation. */
async function inReconciliation(transport: Transport, log: Hyperlog<unknown>) {
  const session = log.replicate({ idleTimeout: 5000 });
  session.done.catch(() => {});
  const attacker = new Attacker(await transport.link(session));
  await attacker.send(hostileHello({ count: log.length + 1 }));
  assert.equal((await attacker.message()).type, "hello");
  await attacker.send(encodeMessage({ type: "check", checkpoint: null }));
  assert.equal((await attacker.message()).type, "check");
  return { session, attacker };
}

function cases(transport: () => Transport): void {
  it("amplification: the empty prefix repeated gets an error, not a key list", async () => {
    const log = await filled(3000);
    const { session, attacker } = await inReconciliation(transport(), log);
    const entry: ReconEntry = { kind: "fp", prefix: "", fp: { count: 10, xor: new Uint8Array(16) } };
    const request = encodeMessage({ type: "recon", end: true, entries: Array(100).fill(entry) });
    const before = attacker.received;
    await attacker.send(request);
    const last = await attacker.drain();
    assert.equal(last?.type, "error");
    await assert.rejects(session.done, /nothing this side asked|repeated/);
    assert.ok(attacker.received - before < 1024, `${attacker.received - before} bytes back for ${request.length}`);
    attacker.link.close();
  });

  it(`amplification: the deepest split gets <= ${AMPLIFICATION}x its request back, each key once`, async () => {
    const count = 3000;
    const log = await filled(count);
    const { attacker } = await inReconciliation(transport(), log);
    let open = [""];
    let keys = 0;
    let worst = 0;
    for (let turn = 0; open.length > 0; turn++) {
      assert.ok(turn < 70, "the reconciliation ends");
      const entries = splitAll(open, turn);
      open = [];
      let sent = 0;
      for (let i = 0; i < entries.length; i += 60) {
        const request = encodeMessage({ type: "recon", end: i + 60 >= entries.length, entries: entries.slice(i, i + 60) });
        assert.ok(request.length <= 2048);
        sent += request.length;
        await attacker.send(request);
      }
      let back = 0;
      for (;;) {
        const body = await attacker.next();
        assert.ok(body !== undefined);
        back += body.length;
        const message = decodeMessage(body);
        if (message.type !== "recon") continue;
        for (const e of message.entries) {
          if (e.kind === "fp") open.push(e.prefix);
          if (e.kind === "keys") keys += e.keys.length;
        }
        if (message.end) break;
      }
      worst = Math.max(worst, back / sent);
    }
    assert.ok(worst <= AMPLIFICATION, `${worst.toFixed(1)} reply bytes per request byte`);
    assert.equal(keys, count);
    attacker.link.close();
  });

  it("a node flood without waiting for CREDIT is refused or handled as it comes", async () => {
    const log = await filled(10);
    const session = log.replicate({ idleTimeout: 5000 });
    session.done.catch(() => {});
    const attacker = new Attacker(await transport().link(session));
    await attacker.send(hostileHello({ count: 0, length: 0, xor: new Uint8Array(16), id: HIGH_ID }));
    void attacker.drain();
    const other = await filled(200, 1000);
    const page = await other.storage.read({ since: 0, until: 200, limit: 200, reverse: false });
    const bodies = encodeNodesBodies(page, 64 * 1024);
    let sent = 0;
    let ended = false;
    session.done.then(() => (ended = true), () => (ended = true));
    for (let i = 0; !ended && sent < 32 << 20; i++) {
      const body = bodies[i % bodies.length]!;
      await Promise.race([attacker.send(body), session.done.catch(() => {})]);
      sent += body.length;
      if (i % 8 === 7) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    // Refused for not waiting for CREDIT, or every node stored once and each copy dropped as it came.
    if (ended) await assert.rejects(session.done, /CREDIT/);
    else assert.equal(log.length, 210);
    attacker.link.close();
  });

  it("a paused reader: the victim sends no more than the transport and the peer's window let it", async () => {
    const log = await filled(4000, 2048);
    const session = log.replicate({ idleTimeout: 0 });
    session.done.catch(() => {});
    const link = await transport().link(session);
    const attacker = new Attacker(link);
    await attacker.send(hostileHello({ count: 0, length: 0, xor: new Uint8Array(16), id: HIGH_ID, window: 1 << 19 }));
    // Reads the victim's first messages, then stops reading.
    await attacker.next();
    link.pause();
    // Another peer syncs the whole log with the victim meanwhile (the victim is not stuck).
    const other = new Hyperlog();
    const a = log.replicate();
    const b = other.replicate();
    a.readable.pipeTo(b.writable).catch(() => {});
    b.readable.pipeTo(a.writable).catch(() => {});
    await Promise.all([a.done, b.done]);
    assert.equal(other.length, 4000);
    // No CREDIT came: at most the window (512 KiB) and one frame went out, of an 8 MB log.
    const sent = session.stats.bytesSent;
    assert.ok(sent <= (1 << 19) + (1 << 20) + 4096, `${sent} bytes sent to a paused reader`);
    assert.ok(link.written() <= sent);
    link.close();
  });

  for (const order of ["many first", "one first"] as const) {
    it(`20 000 nodes against 1 with 64 KiB frames (${order} in id order)`, async () => {
      let many: Hyperlog<unknown>;
      let one: Hyperlog<unknown>;
      do {
        many = new Hyperlog();
        one = new Hyperlog();
        await Promise.all([many.ready(), one.ready()]);
      } while ((many.id < one.id) !== (order === "many first"));
      for (let i = 0; i < 20_000; i += 2000) {
        await many.batch(Array.from({ length: 2000 }, (_, j) => ({ value: `m ${i + j}` })));
      }
      await one.append("alone");
      const victim = one.replicate({ maxFrame: 64 * 1024 });
      const link = await transport().link(victim);
      const client = many.replicate({ maxFrame: 64 * 1024 });
      link.readable.pipeTo(client.writable).catch(() => {});
      client.readable.pipeTo(link.writable).catch(() => {});
      await Promise.all([victim.done, client.done]);
      assert.equal(one.length, 20_001);
      assert.equal(many.length, 20_001);
      link.close();
    });
  }

  it("the handshake deadline: a peer that sends no HELLO fails the session with a TimeoutError", async () => {
    const log = await filled(5);
    const session = log.replicate({ handshakeTimeout: 300 });
    const attacker = new Attacker(await transport().link(session));
    void attacker.drain();
    await assert.rejects(session.done, (err: Error) => err.name === "TimeoutError" && /HELLO/.test(err.message));
    attacker.link.close();
  });

  it("the idle deadline: a peer that stops in the middle of the reconciliation fails the session", async () => {
    const log = await filled(50);
    const session = log.replicate({ idleTimeout: 300 });
    const attacker = new Attacker(await transport().link(session));
    await attacker.send(hostileHello({ count: 51 }));
    await attacker.send(encodeMessage({ type: "check", checkpoint: null }));
    void attacker.drain();
    await assert.rejects(session.done, (err: Error) => err.name === "TimeoutError" && /reconciliation/.test(err.message));
    attacker.link.close();
  });
}

describe("hostile peers against a session over an in-process pipe", () => {
  cases(() => pipe);
});

describe("hostile peers against a session over TCP", () => {
  const transport = tcp();
  before(() => transport.start());
  after(() => transport.stop());
  cases(() => transport);
});

