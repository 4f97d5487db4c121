/**
 * Replication over a WebSocket: each binary message carries one protocol message (no length prefix, since the
 * WebSocket already delimits messages). Browsers, Deno, Bun, Node >= 22 and Cloudflare Workers share the same
 * WebSocket API, so this one adapter serves them all.
 *
 * @module
 */
import { ProtocolError } from "./errors.ts";
import type { Hyperlog } from "./log.ts";
import { driveChannel } from "./channel.ts";
import type { ReplicateOptions, Replication } from "./replicate-types.ts";
import { DEFAULT_MAX_FRAME, frame, FrameDecoder } from "./frame.ts";
import { ownsText } from "./presence-wire.ts";

/**
 * The part of the standard WebSocket API the adapter uses (a Workers `WebSocket` from a `WebSocketPair` fits too).
 *
 * @example
 * ```ts
 * import { closeSocket, type WebSocketLike } from "./websocket.ts";
 * const calls: Array<[number, string]> = [];
 * const socket: WebSocketLike = {
 *   readyState: 1,
 *   binaryType: "blob",
 *   send: () => {},
 *   close(code = 1000, reason = "") {
 *     if (code !== 1000 && (code < 3000 || code > 4999)) throw new RangeError("Not a client close code");
 *     calls.push([code, reason]);
 *   },
 *   addEventListener: () => {},
 * };
 * closeSocket(socket, 1011, "Replication failed");
 * console.assert(calls[0]![0] === 1000 && calls[0]![1] === "Replication failed");
 * ```
 */
export interface WebSocketLike {
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  /** Set to "arraybuffer" by the adapter. */
  binaryType: string;
  /** Sends one message. */
  send(data: Uint8Array<ArrayBuffer>): void;
  /** Closes the socket. */
  close(code?: number, reason?: string): void;
  /** Listens for "open", "message", "close" and "error". */
  addEventListener(type: string, listener: (event: Event) => void): void;
}

/**
 * Closes `socket` with `code`, or with 1000 where the WebSocket API refuses that code: a client-side WebSocket may
 * only use 1000 and 3000-4999 (the standard's rule, which Deno enforces), while a server may say 1003, 1009 or 1011.
 * The error frame sent before carries the reason anyway.
 *
 * @example
 * ```ts ignore
 * import { closeSocket } from "./websocket.ts";
 * closeSocket(new WebSocket("wss://relay.example/logs/demo/ws"), 1011, "Replication failed");
 * ```
 */
export function closeSocket(socket: WebSocketLike, code: number, reason: string): void {
  try {
    socket.close(code, reason);
  } catch {
    socket.close(1000, reason);
  }
}

/**
 * Adapts a WebSocket into a byte-stream pair that `Hyperlog.replicate` can pipe through: `readable` gives the
 * frames of incoming messages, `writable` sends each frame written to it as one message.
 *
 * @example
 * ```ts ignore
 * import { Hyperlog, webSocketStream } from "../mod.ts";
 * const log = new Hyperlog();
 * const socket = new WebSocket("wss://relay.example/logs/demo/ws");
 * const session = log.replicate({ live: true });
 * const transport = webSocketStream(socket);
 * transport.readable.pipeTo(session.writable);
 * session.readable.pipeTo(transport.writable);
 * ```
 */
export function webSocketStream(
  socket: WebSocketLike,
  options: { maxFrame?: number } = {},
): { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> } {
  socket.binaryType = "arraybuffer";
  const maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
  const opened = new Promise<void>((resolve, reject) => {
    if (socket.readyState === 1) return resolve();
    if (socket.readyState > 1) return reject(new ProtocolError("The WebSocket is already closed"));
    socket.addEventListener("open", () => resolve());
    socket.addEventListener("close", () => reject(new ProtocolError("The WebSocket closed before it opened")));
  });
  opened.catch(() => {});
  let closed = false;
  const readable = new ReadableStream<Uint8Array>({
    start(controller) {
      socket.addEventListener("message", (event) => {
        if (closed) return;
        const data = (event as MessageEvent).data as unknown;
        if (!(data instanceof ArrayBuffer)) {
          closed = true;
          controller.error(
            new ProtocolError("The peer sent a text message; the hyperlog protocol uses binary messages"),
          );
          closeSocket(socket, 1003, "Binary messages only");
          return;
        }
        if (data.byteLength > maxFrame) {
          closed = true;
          controller.error(
            new ProtocolError(`Message of ${data.byteLength} bytes is over the limit of ${maxFrame} bytes`),
          );
          closeSocket(socket, 1009, "Message too big");
          return;
        }
        controller.enqueue(frame(new Uint8Array(data)));
      });
      socket.addEventListener("close", () => {
        if (closed) return;
        closed = true;
        controller.close();
      });
      socket.addEventListener("error", () => {
        if (closed) return;
        closed = true;
        controller.error(new ProtocolError("The WebSocket failed"));
      });
    },
    cancel() {
      closed = true;
      if (socket.readyState < 2) socket.close(1000, "Done");
    },
  });
  const decoder = new FrameDecoder(maxFrame);
  const writable = new WritableStream<Uint8Array>({
    async write(chunk) {
      await opened;
      if (socket.readyState !== 1) throw new ProtocolError("The WebSocket closed while sending");
      for (const body of decoder.push(chunk)) socket.send(body as Uint8Array<ArrayBuffer>);
    },
    close() {
      if (socket.readyState < 2) socket.close(1000, "Done");
    },
    abort() {
      if (socket.readyState < 2) closeSocket(socket, 1011, "Replication failed");
    },
  });
  return { readable, writable };
}

/**
 * Replicates `log` over a WebSocket: each protocol message is one binary WebSocket message. Sends wait while the
 * socket's `bufferedAmount` is high; messages over `maxFrame` or in text end the session (closing with 1009 or 1003).
 * Messages sent before the socket opens wait for it. Resolves like the session's `done`.
 *
 * @example
 * ```ts ignore
 * import { Hyperlog, replicateWebSocket } from "../mod.ts";
 * const log = new Hyperlog();
 * const stats = await replicateWebSocket(log, new WebSocket("ws://127.0.0.1:8787/logs/demo/ws")).done;
 * console.log(stats.nodesReceived);
 * ```
 */
export function replicateWebSocket<T>(
  log: Hyperlog<T>,
  socket: WebSocketLike,
  options: ReplicateOptions = {},
): Replication {
  socket.binaryType = "arraybuffer";
  const maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
  const waiting: Uint8Array<ArrayBuffer>[] = [];
  let code = 1000;
  let reason = "Done";
  const driver = driveChannel(log, options, {
    send(body) {
      const data =
        (body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : body.slice()) as Uint8Array<
          ArrayBuffer
        >;
      if (socket.readyState === 0) waiting.push(data);
      else if (socket.readyState === 1) socket.send(data);
    },
    buffered: () => (socket.readyState === 0 ? 1 << 30 : (socket as { bufferedAmount?: number }).bufferedAmount ?? 0),
    close(error) {
      if (error !== undefined && code === 1000) [code, reason] = [1011, "Replication failed"];
      if (socket.readyState === 0) socket.addEventListener("open", () => closeSocket(socket, code, reason));
      else if (socket.readyState === 1) closeSocket(socket, code, reason);
    },
  });
  socket.addEventListener("open", () => {
    for (const data of waiting.splice(0)) socket.send(data);
  });
  socket.addEventListener("message", (event) => {
    const data = (event as MessageEvent).data as unknown;
    // Text messages on a socket that carries presence are presence's (presence.ts).
    if (typeof data === "string" && ownsText(socket)) return;
    if (!(data instanceof ArrayBuffer)) {
      [code, reason] = [1003, "Binary messages only"];
      driver.fail(new ProtocolError("The peer sent a text message; the hyperlog protocol uses binary messages"));
      return;
    }
    if (data.byteLength > maxFrame) {
      [code, reason] = [1009, "Message too big"];
      driver.fail(new ProtocolError(`Message of ${data.byteLength} bytes is over the limit of ${maxFrame} bytes`));
      return;
    }
    driver.deliver(new Uint8Array(data));
  });
  socket.addEventListener("close", () => driver.ended());
  socket.addEventListener("error", () => driver.ended(new Error("The WebSocket failed")));
  const none = new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  return driver.replication(none, new WritableStream<Uint8Array>());
}
