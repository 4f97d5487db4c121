/**
 * The relay's side of one WebSocket on `hyperlog serve` ({@link HostedSocket}), and the types the runtime adapters
 * (`serve-node.ts`, `serve-deno.ts`, `serve-bun.ts`) fill in to hand their sockets over.
 *
 * @module
 */
import { nodesInMessage } from "../mod.ts";
import type { RelayMetrics } from "./metrics.ts";
import type { RelaySocket } from "./relay-core.ts";

/**
 * What each message received counts toward {@link HostedSocket.receiveLimit} beyond its bytes: holding a message
 * until it is handled costs the relay more than its payload, so a flood of tiny messages is paused too.
 *
 * @example
 * ```ts
 * import { HostedSocket, MESSAGE_OVERHEAD } from "./hosted-socket.ts";
 * const socket = new HostedSocket({ message() {}, closed() {}, handled: () => new Promise(() => {}) });
 * socket.received(new Uint8Array(10));
 * console.assert(socket.receiving === 10 + MESSAGE_OVERHEAD);
 * ```
 */
export const MESSAGE_OVERHEAD = 128;

/**
 * The runtime's own socket once the upgrade is done: what {@link HostedSocket} forwards to.
 *
 * @example
 * ```ts
 * import { HostedSocket, type RuntimeSocket } from "./serve.ts";
 * const sent: (Uint8Array | string)[] = [];
 * const closed: number[] = [];
 * const real: RuntimeSocket = { send: (data) => void sent.push(data), close: (code) => void closed.push(code) };
 * const socket = new HostedSocket({ message() {}, closed() {} });
 * socket.send("hello"); // before the upgrade is done: kept
 * socket.close(4000, "bye");
 * socket.attach(real);
 * console.assert(sent[0] === "hello" && closed[0] === 4000);
 * ```
 */
export interface RuntimeSocket {
  /** Sends one message (text for presence). */
  send(data: Uint8Array | string): void;
  /** Closes with a code and reason. */
  close(code: number, reason: string): void;
  /** Bytes sent and not yet handed to the network (the runtime's `bufferedAmount`), where the runtime tells. */
  buffered?: (() => number) | undefined;
  /** Stops reading from the connection (the client's sends wait in the kernel), where the runtime can. */
  pause?: (() => void) | undefined;
  /** Reads again after {@link RuntimeSocket.pause}. */
  resume?: (() => void) | undefined;
}

/**
 * Upgrades the request being served to a WebSocket answering with `protocol` (when the client offered one), and
 * ties the runtime's socket to `socket` (see {@link HostedSocket.attach}). Returns the response to give the runtime.
 *
 * @example
 * ```ts ignore
 * const upgrade: Upgrade = (protocol, socket) => {
 *   const { socket: ws, response } = Deno.upgradeWebSocket(request, protocol ? { protocol } : {});
 *   ws.onopen = () => socket.attach(ws);
 *   return response;
 * };
 * ```
 */
export type Upgrade = (protocol: string | undefined, socket: HostedSocket) => Response;

/**
 * Where a {@link HostedSocket} delivers what the client sends: a {@link RelayCore}.
 *
 * @example
 * ```ts
 * import { HostedSocket, type SocketSink } from "./serve.ts";
 * const got: unknown[] = [];
 * const sink: SocketSink = { message: (_ws, data) => void got.push(data), closed: (_ws, code) => void got.push(code) };
 * const socket = new HostedSocket(sink);
 * socket.received("hi");
 * socket.ended(1001);
 * socket.received("too late"); // after the close: dropped
 * console.assert(got.join() === "hi,1001" && socket.readyState === 3);
 * ```
 */
export interface SocketSink {
  /** A message from the client. */
  message(ws: RelaySocket, data: ArrayBuffer | Uint8Array | string): unknown;
  /** The client closed the socket with `code`. */
  closed(ws: RelaySocket, code: number): void;
  /** Resolves once every message delivered from `ws` so far is handled (absent: once `message` resolves). */
  handled?(ws: RelaySocket): Promise<void>;
}

/**
 * The relay's side of one WebSocket, for {@link RelayCore}: it forwards to the runtime's socket once the handshake
 * is done (and keeps what the relay sends before that), and passes the runtime's events to the relay.
 *
 * @example
 * ```ts
 * import { HostedSocket } from "./serve.ts";
 * const seen: unknown[] = [];
 * const socket = new HostedSocket({ message: (_ws, data) => void seen.push(data), closed: () => {} });
 * socket.send(new Uint8Array([1]));
 * const sent: Uint8Array[] = [];
 * socket.attach({ send: (data) => void sent.push(data), close() {} });
 * console.assert(sent.length === 1);
 * ```
 */
export class HostedSocket implements RelaySocket {
  #real: RuntimeSocket | undefined;
  #queue: (Uint8Array | string)[] = [];
  #queued = 0;
  #closing: [number, string] | undefined;
  #state = 1;
  readonly #relay: SocketSink;
  /** Called once when the socket is gone, whichever side closed it. */
  onGone: (() => void) | undefined;
  /** Counts bytes and nodes in and out, when set. */
  metrics: RelayMetrics | undefined;
  /** The client has sent a message (its HELLO comes first). */
  heard = false;
  /**
   * Bytes received and not yet handled past which the runtime's socket stops reading until they are (where it can
   * pause: Node); `Infinity` never pauses.
   */
  receiveLimit: number = Infinity;
  #receiving = 0;
  #peak = 0;
  #paused = false;

  /** `relay` receives the socket's messages and its close. */
  constructor(relay: SocketSink) {
    this.#relay = relay;
  }

  /** 1 until either side closes, then 3. */
  get readyState(): number {
    return this.#state;
  }

  /** Sends one message (kept until the handshake is done). */
  send(data: Uint8Array | string): void {
    if (this.#state !== 1) return;
    if (typeof data === "string") this.metrics?.add("bytes_out_total", data.length);
    else if (this.metrics !== undefined) {
      this.metrics.add("bytes_out_total", data.byteLength);
      const nodes = nodesInMessage(data);
      if (nodes > 0) this.metrics.add("nodes_out_total", nodes);
    }
    if (this.#real !== undefined) this.#real.send(data);
    else {
      this.#queue.push(data);
      this.#queued += typeof data === "string" ? data.length : data.byteLength;
    }
  }

  /**
   * Bytes sent and not yet handed to the network: what the runtime's socket buffers (or, before the handshake is
   * done, what is kept for it). The relay's sessions wait while it is high, so a client that stops reading costs
   * the relay at most about that much memory.
   */
  get bufferedAmount(): number {
    if (this.#real === undefined) return this.#queued;
    return this.#real.buffered?.() ?? 0;
  }

  /** Closes the socket (once the handshake is done, if it is not yet). */
  close(code = 1000, reason = ""): void {
    if (this.#state !== 1) return;
    this.#state = 3;
    if (this.#real !== undefined) {
      try {
        this.#real.close(code, reason);
      } catch {
        // Already closed.
      }
    } else this.#closing = [code, reason];
    this.#gone();
  }

  /** The runtime's socket is open: sends what was kept. */
  attach(real: RuntimeSocket): void {
    this.#real = real;
    for (const data of this.#queue) real.send(data);
    this.#queue = [];
    this.#queued = 0;
    if (this.#closing !== undefined) {
      try {
        real.close(...this.#closing);
      } catch {
        // Already closed.
      }
    }
  }

  /** Bytes received from the client and not yet handled (each message counting {@link MESSAGE_OVERHEAD} more). */
  get receiving(): number {
    return this.#receiving;
  }

  /** The most bytes received from the client and not yet handled at once, so far. */
  get receivingPeak(): number {
    return this.#peak;
  }

  /** Whether the runtime's socket is not read now (see {@link HostedSocket.receiveLimit}). */
  get paused(): boolean {
    return this.#paused;
  }

  /**
   * A message from the client. While more than {@link HostedSocket.receiveLimit} bytes received are not yet handled,
   * the runtime's socket is paused (TCP backpressure), so a client that sends faster than the relay stores costs it
   * about that much memory, whatever it sends.
   */
  received(data: ArrayBuffer | Uint8Array | string): void {
    if (this.#state !== 1) return;
    this.heard = true;
    const size = typeof data === "string" ? data.length : data.byteLength;
    this.metrics?.add("bytes_in_total", size);
    const bytes = size + MESSAGE_OVERHEAD;
    this.#receiving += bytes;
    if (this.#receiving > this.#peak) this.#peak = this.#receiving;
    const relay = this.#relay;
    const handled = Promise.resolve(relay.message(this, data)).then(() => relay.handled?.(this));
    void handled.catch(() => {}).then(() => {
      this.#receiving -= bytes;
      if (this.#paused && this.#receiving <= this.receiveLimit / 2) {
        this.#paused = false;
        this.#real?.resume?.();
      }
    });
    if (this.#receiving > this.receiveLimit && !this.#paused && this.#real?.pause !== undefined) {
      this.#paused = true;
      this.metrics?.add("receive_pauses_total");
      this.#real.pause();
    }
  }

  /** The client closed the socket, or it failed (1006). */
  ended(code: number): void {
    if (this.#state !== 1) return;
    this.#state = 3;
    this.#relay.closed(this, code);
    this.#gone();
  }

  #gone(): void {
    const gone = this.onGone;
    this.onGone = undefined;
    gone?.();
  }
}
