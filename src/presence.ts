/**
 * Presence: who else is connected to the same log, with a small JSON state each (a name, a cursor, a status), and
 * ephemeral messages to one peer. The relay fans states out to the other sockets of the log and never stores them
 * in the log. A {@link Presence} rides on the replication WebSocket (text messages beside the binary ones): get one
 * from `connect(...).presence`, or attach one to any socket with {@link attachPresence}.
 *
 * @module
 */
import { HyperlogError } from "./errors.ts";
import { type PresenceMessage, type PresencePeer, takeText } from "./presence-wire.ts";
import type { WebSocketLike } from "./websocket.ts";

export type { PresencePeer } from "./presence-wire.ts";

/**
 * The `detail` of a `presence` event: a peer joined (published its first state), updated it, or left (cleared it,
 * closed its socket, or stopped sending heartbeats). `state` is `undefined` for `leave`.
 *
 * @example
 * ```ts
 * import { Presence, type PresenceEvent } from "./presence.ts";
 * const socket = Object.assign(new EventTarget(), { readyState: 1, binaryType: "", send() {}, close() {} });
 * const presence = new Presence();
 * presence.attach(socket);
 * const events: PresenceEvent[] = [];
 * presence.addEventListener("presence", (e) => events.push((e as CustomEvent<PresenceEvent>).detail));
 * const relay = (message: object) =>
 *   socket.dispatchEvent(new MessageEvent("message", { data: JSON.stringify(message) }));
 * relay({ t: "join", peer: "a1b2c3d4e5f60718", state: { name: "ada" } });
 * relay({ t: "leave", peer: "a1b2c3d4e5f60718" });
 * console.assert(events.map((e) => e.type).join() === "join,leave" && events[1]!.state === undefined);
 * ```
 */
export interface PresenceEvent {
  /** What happened. */
  type: "join" | "update" | "leave";
  /** The peer's id (the relay's, for the life of its socket). */
  peer: string;
  /** Its new state (`undefined` on leave). */
  state: unknown;
}

/**
 * The `detail` of a `presenceerror` event: the relay refused something (code 4003: readers may not publish; 4504:
 * the log has as many peers as allowed; see the README for the others, which close the socket).
 *
 * @example
 * ```ts
 * import { Presence, type PresenceErrorDetail } from "./presence.ts";
 * const socket = Object.assign(new EventTarget(), { readyState: 1, binaryType: "", send() {}, close() {} });
 * const presence = new Presence();
 * presence.attach(socket);
 * let detail: PresenceErrorDetail | undefined;
 * presence.addEventListener("presenceerror", (e) => detail = (e as CustomEvent<PresenceErrorDetail>).detail);
 * const data = '{"t":"error","code":4504,"message":"This log has 100 peers"}';
 * socket.dispatchEvent(new MessageEvent("message", { data }));
 * console.assert(detail?.code === 4504 && detail.message === "This log has 100 peers");
 * ```
 */
export interface PresenceErrorDetail {
  /** The relay's code. */
  code: number;
  /** What was wrong and what to do. */
  message: string;
}

/**
 * Options of a {@link Presence}.
 *
 * @example
 * ```ts
 * import { Presence, type PresenceOptions } from "./presence.ts";
 * const options: PresenceOptions = { state: { name: "ada" }, heartbeat: 5_000, direct: "ada-laptop" };
 * console.assert((new Presence(options).state as { name: string }).name === "ada");
 * let refused: unknown;
 * try {
 *   new Presence({ heartbeat: 0 });
 * } catch (error) {
 *   refused = error;
 * }
 * console.assert(refused instanceof TypeError);
 * ```
 */
export interface PresenceOptions {
  /** The state to publish from the start (default: none, only watch the others). */
  state?: unknown;
  /** Milliseconds between heartbeats (default: a third of the relay's timeout). */
  heartbeat?: number;
  /** Announce that this peer takes direct (WebRTC) connections under this id (1 to 64 letters, digits, - or _). */
  direct?: string;
}

/** Bytes of a state before the relay has said its limit. */
const DEFAULT_MAX_BYTES = 4096;

function directId(id: string): string {
  if (typeof id !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
    throw new TypeError(`A direct id must be 1 to 64 letters, digits, - or _, got ${JSON.stringify(id)}`);
  }
  return id;
}

function encodeState(state: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(state);
  } catch (error) {
    throw new TypeError(`A presence state must be JSON: ${(error as Error).message}`);
  }
  if (text === undefined || state === null) throw new TypeError("A presence state must be a JSON value, not null");
  return text;
}

/**
 * Presence on one log: this peer's state, the other peers' states, and their changes as `presence` events
 * ({@link PresenceEvent}). It carries on across reconnects: attach each new socket with {@link Presence.attach}
 * (`connect` does); when a socket closes, every peer leaves, and they join again from the relay's welcome on the next.
 *
 * Events: `presence` ({@link PresenceEvent}), `presenceerror` ({@link PresenceErrorDetail}), `signal` (`{ from, data }`:
 * a message a peer addressed to this one), `welcome` (`{ peer }`: this peer's id on the new socket).
 *
 * @example Two clients of a relay
 * ```ts ignore
 * import { connect, Hyperlog } from "@hyperlog/hyperlog";
 * const sync = connect(new Hyperlog(), "wss://relay.example/logs/chat/ws", { presence: { name: "ada" } });
 * sync.presence.addEventListener("presence", (e) => console.log((e as CustomEvent).detail));
 * sync.presence.set({ name: "ada", typing: true });
 * console.log([...sync.presence.peers.values()]);
 * ```
 */
export class Presence extends EventTarget {
  readonly #peers = new Map<string, unknown>();
  readonly #direct = new Map<string, string>();
  #state: string | undefined;
  #stateValue: unknown;
  #wantDirect: string | undefined;
  #socket: WebSocketLike | undefined;
  #self: string | undefined;
  #maxBytes = DEFAULT_MAX_BYTES;
  #heartbeat: number | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  /** Starts with no socket; see {@link Presence.attach} and {@link attachPresence}. */
  constructor(options: PresenceOptions = {}) {
    super();
    if (typeof options !== "object" || options === null) throw new TypeError("Presence options must be an object");
    if (options.heartbeat !== undefined && !(options.heartbeat > 0 && options.heartbeat < 2 ** 31)) {
      throw new TypeError(`Option heartbeat must be a number of milliseconds > 0, got ${String(options.heartbeat)}`);
    }
    this.#heartbeat = options.heartbeat;
    this.#wantDirect = options.direct === undefined ? undefined : directId(options.direct);
    if (options.state !== undefined) {
      this.#state = encodeState(options.state);
      this.#stateValue = JSON.parse(this.#state);
    }
  }

  /** This peer's id on the current socket (from the relay's welcome), or `undefined` when not connected. */
  get self(): string | undefined {
    return this.#self;
  }

  /** The other peers that published a state: id to latest state. */
  get peers(): ReadonlyMap<string, unknown> {
    return this.#peers;
  }

  /** The peers that take direct connections: the relay's peer id to the id they take them under. */
  get directPeers(): ReadonlyMap<string, string> {
    return this.#direct;
  }

  /** This peer's state, or `undefined` when it publishes none. */
  get state(): unknown {
    return this.#stateValue;
  }

  /** The largest state the relay takes, in bytes of JSON (4096 until the relay says). */
  get maxBytes(): number {
    return this.#maxBytes;
  }

  /**
   * Publishes `state` (any JSON value but null) to the other peers: now if connected, else on the next connection.
   * Throws a `TypeError` for a value that is not JSON and a `RangeError` for one over the relay's size limit.
   */
  set(state: unknown): void {
    const text = encodeState(state);
    const bytes = new TextEncoder().encode(text).length;
    if (bytes > this.#maxBytes) {
      throw new RangeError(
        `A presence state of ${bytes} bytes is over the relay's limit of ${this.#maxBytes} bytes; publish less`,
      );
    }
    this.#state = text;
    this.#stateValue = JSON.parse(text);
    this.#sendState();
  }

  /** Stops publishing: the other peers see this one leave (it still sees them). */
  clear(): void {
    this.#state = undefined;
    this.#stateValue = undefined;
    this.#send('{"t":"clear"}');
  }

  /**
   * Announces that this peer takes direct connections under `id` (or stops, with `undefined`); publishes `{}` if it
   * had no state.
   */
  setDirect(id: string | undefined): void {
    this.#wantDirect = id === undefined ? undefined : directId(id);
    if (id !== undefined && this.#state === undefined) this.#state = "{}", this.#stateValue = {};
    this.#sendState();
  }

  /** Sends `data` (JSON) to one peer through the relay; returns whether it was sent (false when not connected). */
  signal(to: string, data: unknown): boolean {
    if (this.#socket === undefined || this.#socket.readyState !== 1 || this.#self === undefined) return false;
    return this.#send(JSON.stringify({ t: "signal", to, data }));
  }

  /**
   * Carries presence on `socket` from now on (a WebSocket to a relay, whether open yet or not): watches the peers,
   * publishes this peer's state, and sends heartbeats. Its text messages are presence's from now on.
   */
  attach(socket: WebSocketLike): void {
    if (this.#closed) throw new HyperlogError("This presence is closed");
    this.#detach();
    this.#socket = socket;
    takeText(socket);
    const opened = () => {
      if (this.#socket !== socket) return;
      if (this.#state === undefined) this.#send('{"t":"watch"}');
      else this.#sendState();
    };
    if (socket.readyState === 1) opened();
    else socket.addEventListener("open", opened);
    socket.addEventListener("message", (event) => {
      if (this.#socket !== socket) return;
      const data = (event as MessageEvent).data as unknown;
      if (typeof data === "string") this.#received(data);
    });
    socket.addEventListener("close", () => {
      if (this.#socket === socket) this.#detach();
    });
  }

  /** Lets go of the current socket (every peer leaves) until the next {@link Presence.attach}. */
  detach(): void {
    this.#detach();
  }

  /** Stops: no more heartbeats; every peer leaves. The socket stays open. */
  close(): void {
    this.#closed = true;
    this.#detach();
  }

  #detach(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#socket = undefined;
    this.#self = undefined;
    for (const peer of [...this.#peers.keys()]) this.#leave(peer);
  }

  #send(text: string): boolean {
    const socket = this.#socket;
    if (socket === undefined || socket.readyState !== 1) return false;
    try {
      (socket as unknown as { send(data: string): void }).send(text);
      return true;
    } catch {
      return false;
    }
  }

  #sendState(): void {
    if (this.#state === undefined) return;
    this.#send(`{"t":"set","state":${this.#state}${this.#wantDirect ? `,"direct":"${this.#wantDirect}"` : ""}}`);
  }

  #emit(type: string, detail: unknown): void {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #leave(peer: string): void {
    if (!this.#peers.delete(peer)) return;
    this.#direct.delete(peer);
    this.#emit("presence", { type: "leave", peer, state: undefined } satisfies PresenceEvent);
  }

  #upsert(entry: PresencePeer): void {
    if (typeof entry?.peer !== "string" || entry.peer === this.#self) return;
    const type = this.#peers.has(entry.peer) ? "update" : "join";
    this.#peers.set(entry.peer, entry.state);
    if (typeof entry.direct === "string") this.#direct.set(entry.peer, entry.direct);
    else this.#direct.delete(entry.peer);
    this.#emit("presence", { type, peer: entry.peer, state: entry.state } satisfies PresenceEvent);
  }

  #received(text: string): void {
    let message: PresenceMessage;
    try {
      message = JSON.parse(text) as PresenceMessage;
    } catch {
      return;
    }
    if (typeof message !== "object" || message === null) return;
    switch (message.t) {
      case "welcome": {
        this.#self = String(message.peer);
        if (message.maxBytes > 0) this.#maxBytes = message.maxBytes;
        const listed = new Set<string>();
        for (const entry of Array.isArray(message.peers) ? message.peers : []) {
          listed.add(entry.peer);
          this.#upsert(entry);
        }
        for (const peer of [...this.#peers.keys()]) if (!listed.has(peer)) this.#leave(peer);
        clearInterval(this.#timer);
        const every = this.#heartbeat ?? Math.max(50, Math.floor((message.timeout > 0 ? message.timeout : 30_000) / 3));
        // Cleared when the socket closes (#detach): while it is open, the socket keeps a process alive anyway.
        this.#timer = setInterval(() => this.#send('{"t":"ping"}'), every);
        this.#emit("welcome", { peer: this.#self });
        break;
      }
      case "join":
      case "update":
        this.#upsert(message);
        break;
      case "leave":
        this.#leave(String(message.peer));
        break;
      case "signal":
        if ("from" in message && typeof message.from === "string") {
          this.#emit("signal", { from: message.from, data: message.data });
        }
        break;
      case "error":
        this.#emit("presenceerror", { code: message.code, message: message.message } satisfies PresenceErrorDetail);
        break;
    }
  }
}

/**
 * Presence on a WebSocket of your own (for instance the one given to `replicateWebSocket`): call it before the
 * socket opens or right after, with the same socket.
 *
 * @example
 * ```ts ignore
 * import { attachPresence, Hyperlog, replicateWebSocket } from "@hyperlog/hyperlog";
 * const socket = new WebSocket("ws://127.0.0.1:8787/logs/chat/ws");
 * const presence = attachPresence(socket, { state: { name: "ada" } });
 * replicateWebSocket(new Hyperlog(), socket, { live: true });
 * presence.addEventListener("presence", (e) => console.log((e as CustomEvent).detail));
 * ```
 */
export function attachPresence(socket: WebSocketLike, options: PresenceOptions = {}): Presence {
  const presence = new Presence(options);
  presence.attach(socket);
  return presence;
}
