/**
 * Replication over anything that carries whole messages: a `MessagePort`, an `RTCDataChannel`, a worker, or any
 * object with `send` (or `postMessage`) and `onmessage`. Each protocol message is one channel message (a
 * `Uint8Array` or `ArrayBuffer`); nothing is framed. This is the driver browser-to-browser sync uses.
 *
 * @module
 */
import { Driver } from "./driver.ts";
import { ProtocolError } from "./errors.ts";
import type { Hyperlog } from "./log.ts";
import type { ReplicateOptions, Replication } from "./replicate-types.ts";
import { Session } from "./session.ts";

/**
 * A message channel as {@link replicateChannel} uses it: `MessagePort` and `RTCDataChannel` fit.
 *
 * @example
 * ```ts
 * import { Hyperlog, replicateChannel } from "../mod.ts";
 * import type { MessageChannelLike } from "./channel.ts";
 * const a = new Hyperlog(), b = new Hyperlog();
 * await a.append("x");
 * // Two ends of a channel made by hand: postMessage on one calls onmessage on the other.
 * let posted = 0;
 * const deliver = (to: MessageChannelLike) => (data: Uint8Array<ArrayBuffer>) =>
 *   void queueMicrotask(() => to.onmessage?.(new MessageEvent("message", { data })));
 * const left: MessageChannelLike = { onmessage: null };
 * const right: MessageChannelLike = { onmessage: null, postMessage: deliver(left) };
 * left.postMessage = (data) => (posted++, deliver(right)(data));
 * await Promise.all([replicateChannel(a, left).done, replicateChannel(b, right).done]);
 * console.assert(b.length === 1 && posted > 0);
 * ```
 */
export interface MessageChannelLike {
  /** Sends one message (`RTCDataChannel`, `WebSocket`). */
  send?(data: Uint8Array<ArrayBuffer>): void;
  /** Sends one message (`MessagePort`, `Worker`). */
  postMessage?(data: Uint8Array<ArrayBuffer>): void;
  /** Set by the driver. */
  onmessage: ((event: MessageEvent) => void) | null;
  /** Bytes queued to send (`RTCDataChannel`); the driver sends nodes only while it is low. */
  readonly bufferedAmount?: number;
  /** Closes the channel. */
  close?(): void;
}

/** Bytes queued on a channel before the driver waits. */
const HIGH_WATER = 1 << 20;

/**
 * Bytes of a channel message: a `Uint8Array`, an `ArrayBuffer` or a view; `undefined` for anything else.
 *
 * @example
 * ```ts
 * import { messageBytes } from "./channel.ts";
 * console.assert(messageBytes(new ArrayBuffer(3))?.length === 3 && messageBytes("text") === undefined);
 * ```
 */
export function messageBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}

/**
 * Runs a session over a message channel given as three functions: how to send, how many bytes wait to be sent, how
 * to close. Returns the driver; hand it each message with `deliver` and the channel's end with `ended`.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { driveChannel } from "./channel.ts";
 * const driver = driveChannel(new Hyperlog(), {}, { send: () => {}, buffered: () => 0, close: () => {} });
 * driver.done.catch(() => {});
 * await driver.close().catch(() => {});
 * ```
 */
export function driveChannel<T>(
  log: Hyperlog<T>,
  options: ReplicateOptions,
  channel: { send(body: Uint8Array): void; buffered(): number; close(error?: Error): void },
): Driver {
  const session = new Session(log as Hyperlog<unknown>, options);
  return new Driver(session, {
    send: (body) => channel.send(body),
    room: () => HIGH_WATER - channel.buffered(),
    drained: () => new Promise<void>((resolve) => setTimeout(resolve, 5)),
    close: (error) => channel.close(error),
  }, options);
}

/**
 * Replicates `log` over a message channel (see the module doc). `readable` and `writable` of the result are unused
 * stand-ins (the channel carries the messages); use `done`, `synced`, `stats` and `close`.
 *
 * @example Two logs over a MessageChannel
 * ```ts
 * import { Hyperlog, replicateChannel } from "../mod.ts";
 * const a = new Hyperlog(), b = new Hyperlog();
 * await a.append("over a port");
 * const { port1, port2 } = new MessageChannel();
 * const [sa, sb] = await Promise.all([replicateChannel(a, port1).done, replicateChannel(b, port2).done]);
 * console.assert(sb.nodesReceived === 1 && sa.nodesSent === 1);
 * ```
 */
export function replicateChannel<T>(
  log: Hyperlog<T>,
  channel: MessageChannelLike,
  options: ReplicateOptions = {},
): Replication {
  const maxFrame = options.maxFrame;
  let closed = false;
  const driver = driveChannel(log, options, {
    send(body) {
      if (closed) return;
      const data =
        (body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : body.slice()) as Uint8Array<
          ArrayBuffer
        >;
      if (channel.send !== undefined) channel.send(data);
      else channel.postMessage!(data);
    },
    buffered: () => channel.bufferedAmount ?? 0,
    close() {
      if (closed) return;
      closed = true;
      // Let the last messages leave before the channel closes.
      setTimeout(() => channel.close?.(), 0);
    },
  });
  channel.onmessage = (event) => {
    const bytes = messageBytes(event.data);
    if (bytes === undefined) {
      driver.fail(new ProtocolError("The peer sent a message that is not bytes; the hyperlog protocol uses binary"));
      return;
    }
    if (maxFrame !== undefined && bytes.length > maxFrame) {
      driver.fail(new ProtocolError(`Message of ${bytes.length} bytes is over the limit of ${maxFrame} bytes`));
      return;
    }
    driver.deliver(bytes);
  };
  const target = channel as unknown as { addEventListener?: (type: string, listener: () => void) => void };
  target.addEventListener?.("close", () => driver.ended());
  const none = new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  return driver.replication(none, new WritableStream<Uint8Array>());
}
