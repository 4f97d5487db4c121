/**
 * A hostile peer for the relay tests and the hostile bench: a WebSocket client written on a bare TCP socket
 * (`node:net`, on Node, Deno and Bun), so that it can send whatever it likes, stop reading (a paused reader leaves
 * the bytes in the kernel and the relay's buffers), and count every byte that comes back.
 *
 * @module
 */
import { connect as tcpConnect, type Socket } from "node:net";
import { Buffer } from "node:buffer";
import { decodeMessage, encodeMessage, type Hello, type Message, type ReconEntry } from "../mod.ts";

/** The id a hostile peer uses to sort first (it leads the reconciliation). */
export const LOW_ID = "0".repeat(32);
/** The id a hostile peer uses to sort last. */
export const HIGH_ID = "f".repeat(32);

/** A HELLO as a hostile peer sends it: claims `count` keys and a fingerprint that matches nothing. */
export function hostileHello(fields: Partial<Hello> & { count: number }): Uint8Array {
  return encodeMessage({
    type: "hello",
    hello: {
      mode: "sync",
      live: false,
      id: LOW_ID,
      nonce: "e".repeat(32),
      length: fields.count,
      xor: new Uint8Array(16).fill(7),
      maxFrame: 1 << 20,
      window: 1 << 19,
      ...fields,
    },
  });
}

/** A raw WebSocket client. */
export interface RawSocket {
  /** Sends one binary message (a text one with `text`; masked, as a client must); resolves when the kernel took it. */
  send(body: Uint8Array, text?: boolean): Promise<void>;
  /** Sends binary messages in one write (so that the relay reads them together); resolves when the kernel took it. */
  sendAll(bodies: readonly Uint8Array[]): Promise<void>;
  /** The next whole message from the relay (binary or text, as bytes); rejects if the socket closes first. */
  next(): Promise<Uint8Array>;
  /** The next message decoded. */
  nextMessage(): Promise<Message>;
  /** Stops reading from the socket (the relay's sends pile up). */
  pause(): void;
  /** Reads again. */
  resume(): void;
  /** Payload bytes received so far (binary and text messages). */
  readonly received: number;
  /** Resolves with the close code and reason the relay sent (1006 if the connection ended without one). */
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Whether the connection is gone. */
  readonly gone: boolean;
  /** Ends the connection. */
  destroy(): void;
}

/** Opens a WebSocket to `url` (`http://host:port/path`) on a bare TCP socket. */
export async function rawSocket(url: string): Promise<RawSocket> {
  const target = new URL(url);
  const socket: Socket = tcpConnect({ host: target.hostname, port: Number(target.port) });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.on("error", () => {});
  const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
  socket.write(
    `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  let buffer: Buffer = Buffer.alloc(0);
  let upgraded = false;
  let received = 0;
  let gone = false;
  const messages: Uint8Array[] = [];
  const waiters: { resolve: (m: Uint8Array) => void; reject: (e: Error) => void }[] = [];
  let fragments: Buffer[] = [];
  let closeInfo: { code: number; reason: string } | undefined;
  let resolveClosed!: (info: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (resolveClosed = resolve));
  let resolveUpgrade!: () => void;
  let rejectUpgrade!: (error: Error) => void;
  const upgrade = new Promise<void>((resolve, reject) => {
    resolveUpgrade = resolve;
    rejectUpgrade = reject;
  });

  const end = () => {
    if (gone) return;
    gone = true;
    const info = closeInfo ?? { code: 1006, reason: "" };
    resolveClosed(info);
    rejectUpgrade(new Error(`The connection ended before the upgrade`));
    for (const w of waiters.splice(0)) w.reject(new Error(`The socket closed with ${info.code} ${info.reason}`));
  };
  const deliver = (message: Uint8Array) => {
    received += message.length;
    const waiter = waiters.shift();
    if (waiter !== undefined) waiter.resolve(message);
    else messages.push(message);
  };
  const parse = () => {
    if (!upgraded) {
      const at = buffer.indexOf("\r\n\r\n");
      if (at < 0) return;
      const head = buffer.subarray(0, at).toString("latin1");
      if (!/^HTTP\/1\.1 101/.test(head)) {
        rejectUpgrade(new Error(`The upgrade was refused: ${head.split("\r\n")[0]}`));
        socket.destroy();
        return;
      }
      upgraded = true;
      buffer = buffer.subarray(at + 4);
      resolveUpgrade();
    }
    for (;;) {
      if (buffer.length < 2) return;
      const fin = (buffer[0]! & 0x80) !== 0;
      const opcode = buffer[0]! & 0x0f;
      let length = buffer[1]! & 0x7f;
      let at = 2;
      if (length === 126) {
        if (buffer.length < 4) return;
        length = buffer.readUInt16BE(2);
        at = 4;
      } else if (length === 127) {
        if (buffer.length < 10) return;
        length = Number(buffer.readBigUInt64BE(2));
        at = 10;
      }
      if (buffer.length < at + length) return;
      const payload = buffer.subarray(at, at + length);
      buffer = buffer.subarray(at + length);
      if (opcode === 8) {
        closeInfo = {
          code: payload.length >= 2 ? payload.readUInt16BE(0) : 1005,
          reason: payload.subarray(2).toString("utf8"),
        };
        resolveClosed(closeInfo);
        socket.end();
        continue;
      }
      if (opcode === 9 || opcode === 10) continue;
      fragments.push(Buffer.from(payload));
      if (fin) {
        deliver(new Uint8Array(Buffer.concat(fragments)));
        fragments = [];
      }
    }
  };
  socket.on("data", (chunk: Buffer) => {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    parse();
  });
  socket.on("close", end);
  await upgrade;

  const frame = (body: Uint8Array, text = false): Buffer => {
    const n = body.length;
    const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
    const out = Buffer.alloc(head + 4 + n);
    out[0] = text ? 0x81 : 0x82;
    if (n < 126) out[1] = 0x80 | n;
    else if (n < 65536) {
      out[1] = 0x80 | 126;
      out.writeUInt16BE(n, 2);
    } else {
      out[1] = 0x80 | 127;
      out.writeBigUInt64BE(BigInt(n), 2);
    }
    // A zero mask: the bytes go out as they are (masking is for proxies, not for this test).
    out.set(body, head + 4);
    return out;
  };

  const write = (bytes: Buffer) =>
    new Promise<void>((resolve) => {
      if (gone || socket.destroyed) return resolve();
      if (socket.write(bytes)) return resolve();
      const done = () => {
        socket.off("drain", done);
        socket.off("close", done);
        resolve();
      };
      socket.once("drain", done);
      socket.once("close", done);
    });

  const raw: RawSocket = {
    send: (body, text) => write(frame(body, text)),
    sendAll: (bodies) => write(Buffer.concat(bodies.map((body) => frame(body)))),
    next: () =>
      new Promise<Uint8Array>((resolve, reject) => {
        const ready = messages.shift();
        if (ready !== undefined) return resolve(ready);
        if (gone) return reject(new Error(`The socket closed with ${closeInfo?.code ?? 1006}`));
        waiters.push({ resolve, reject });
      }),
    nextMessage: async () => decodeMessage(await raw.next()),
    pause: () => void socket.pause(),
    resume: () => void socket.resume(),
    get received() {
      return received;
    },
    closed,
    get gone() {
      return gone;
    },
    destroy: () => void socket.destroy(),
  };
  return raw;
}

/**
 * Sends `body` again and again (waiting on the kernel, so the attacker's own memory stays flat) until the relay
 * closes the socket or `limit` bytes went out. Resolves with the bytes sent.
 */
export async function flood(socket: RawSocket, body: (i: number) => Uint8Array, limit: number): Promise<number> {
  let sent = 0;
  let stop = false;
  void socket.closed.then(() => (stop = true));
  for (let i = 0; !stop && !socket.gone && sent < limit; i++) {
    const message = body(i);
    await socket.send(message);
    sent += message.length;
    // A write the kernel takes at once resolves without a turn of the event loop: let the socket read (the close).
    if (i % 8 === 7) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return sent;
}

/**
 * An attacker's reconciliation turn that splits every range in `open` into its 16 sub-ranges, each with a
 * fingerprint that matches nothing (a new one each turn), so that the victim must answer as deep as it goes.
 *
 * @example
 * ```ts ignore
 * const entries = splitAll([""], 0); // 16 entries, prefixes "0" to "f"
 * ```
 */
export function splitAll(open: readonly string[], turn: number): ReconEntry[] {
  return open.flatMap((prefix) =>
    [..."0123456789abcdef"].map((d) => ({
      kind: "fp" as const,
      prefix: prefix + d,
      fp: { count: 1000, xor: new Uint8Array(16).fill(turn + 1) },
    }))
  );
}

/**
 * The victim's reply to one reconciliation turn, read with `next` (its messages up to the one that ends its turn):
 * the bytes it took and its entries.
 *
 * @example
 * ```ts ignore
 * const { bytes, entries } = await turnReply(() => ws.next());
 * ```
 */
export async function turnReply(next: () => Promise<Uint8Array>): Promise<{ bytes: number; entries: ReconEntry[] }> {
  let bytes = 0;
  const entries: ReconEntry[] = [];
  for (;;) {
    const body = await next();
    bytes += body.length;
    const message = decodeMessage(body);
    if (message.type !== "recon") continue;
    entries.push(...message.entries);
    if (message.end) return { bytes, entries };
  }
}
