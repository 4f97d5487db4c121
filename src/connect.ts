/**
 * The live client: keeps a replication session with a peer (the relay, or any WebSocket peer) open for as long as
 * a page or a process runs. It reconnects with exponential backoff and jitter, resyncs on each reconnect (the
 * protocol's per-peer checkpoints make that cost the difference), and reports its state. Writes made while offline
 * are stored in the log as usual and reach the peer in the resync after the next connect.
 *
 * Runtime-agnostic: it needs only the standard `WebSocket` (browsers, Deno, Bun, Node >= 22, Workers), or the one
 * passed in the options.
 *
 * @module
 */
import { HyperlogError } from "./errors.ts";
import type { Hyperlog } from "./log.ts";
import type { Replication, ReplicationStats } from "./replicate-types.ts";
import { closeSocket, replicateWebSocket, type WebSocketLike } from "./websocket.ts";
import { Presence, type PresenceOptions } from "./presence.ts";
import { DirectPeers, type IceServer, type PeerConnectionConstructor } from "./webrtc.ts";

/**
 * Where a {@link Sync} stands:
 * - `connecting`: opening the WebSocket;
 * - `syncing`: connected, exchanging what each side lacks;
 * - `live`: in sync; new nodes flow both ways as they are added;
 * - `offline`: not connected; a retry is scheduled (see `retryIn` in the event);
 * - `closed`: `close()` was called (or the log closed); nothing more happens.
 *
 * @example
 * ```ts
 * import { connect, Hyperlog } from "../mod.ts";
 * import type { SyncState } from "./connect.ts";
 * const sync = connect(new Hyperlog(), "ws://127.0.0.1:9/logs/demo");
 * const seen: SyncState[] = [sync.state];
 * sync.addEventListener("statechange", (e) => seen.push((e as CustomEvent<{ state: SyncState }>).detail.state));
 * await sync.close();
 * console.assert(seen[0] === "connecting" && seen.at(-1) === "closed", seen.join());
 * ```
 */
export type SyncState = "connecting" | "syncing" | "live" | "offline" | "closed";

/**
 * The `detail` of a {@link Sync}'s `statechange` event (and of the event named after the new state).
 *
 * @example
 * ```ts
 * import { connect, Hyperlog } from "../mod.ts";
 * import type { SyncStateDetail } from "./connect.ts";
 * const sync = connect(new Hyperlog(), "ws://127.0.0.1:9/logs/demo", { minDelay: 50, maxDelay: 50 });
 * const detail = await new Promise<SyncStateDetail>((resolve) =>
 *   sync.addEventListener("offline", (e) => resolve((e as CustomEvent<SyncStateDetail>).detail))
 * );
 * await sync.close();
 * console.assert(detail.state === "offline" && detail.previous === "connecting" && detail.attempt === 1);
 * console.assert(detail.retryIn! > 0 && detail.retryIn! <= 50);
 * ```
 */
export interface SyncStateDetail {
  /** The new state. */
  state: SyncState;
  /** The state before. */
  previous: SyncState;
  /** Failed connections in a row so far (0 once a session reached `live`). */
  attempt: number;
  /** For `offline`: milliseconds until the next attempt. */
  retryIn?: number;
  /** For `offline`: why the connection failed or ended, when it was an error. */
  error?: Error;
  /** For `live`: the stats of the initial exchange of this session (what the resync cost). */
  stats?: ReplicationStats;
}

/**
 * A WebSocket constructor: the global `WebSocket`, or any class with the same shape.
 *
 * @example
 * ```ts
 * import { connect, Hyperlog } from "../mod.ts";
 * import type { WebSocketConstructor } from "./connect.ts";
 * let opened!: (url: string) => void;
 * const url = new Promise<string>((resolve) => (opened = resolve));
 * const Recording: WebSocketConstructor = class {
 *   readyState = 0;
 *   binaryType = "blob";
 *   #closed: Array<(event: Event) => void> = [];
 *   constructor(url: string) {
 *     opened(url);
 *   }
 *   send() {}
 *   close() {
 *     this.readyState = 3;
 *     for (const listener of this.#closed) listener(new Event("close"));
 *   }
 *   addEventListener(type: string, listener: (event: Event) => void) {
 *     if (type === "close") this.#closed.push(listener);
 *   }
 * };
 * const sync = connect(new Hyperlog(), "ws://relay.example/logs/demo", { WebSocket: Recording });
 * console.assert((await url).startsWith("ws://relay.example/logs/demo"));
 * await sync.close();
 * ```
 */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/**
 * Options for {@link connect}.
 *
 * @example
 * ```ts
 * import { connect, Hyperlog } from "../mod.ts";
 * import type { ConnectOptions } from "./connect.ts";
 * const options: ConnectOptions = { token: "secret", minDelay: 250, maxDelay: 10_000 };
 * const sync = connect(new Hyperlog(), "ws://127.0.0.1:9/logs/demo", options);
 * console.assert(sync.state === "connecting");
 * await sync.close();
 * console.assert(sync.state === "closed");
 * ```
 */
export interface ConnectOptions {
  /**
   * A read/write token for the peer, sent as the `token` query parameter (browsers cannot set headers on a
   * WebSocket). Use `wss:` so that it travels encrypted.
   */
  token?: string;
  /** The WebSocket class to use (default: the global `WebSocket`). */
  WebSocket?: WebSocketConstructor;
  /** The delay before the first retry, in milliseconds (default 500). */
  minDelay?: number;
  /** The longest delay between retries, in milliseconds (default 30 000). */
  maxDelay?: number;
  /** How much the delay grows after each failed attempt (default 2). */
  factor?: number;
  /**
   * How much of each delay is random, from 0 (none) to 1 (default 0.5): a delay `d` becomes a value between
   * `d * (1 - jitter)` and `d`, so that many clients cut off at once do not all come back at once.
   */
  jitter?: number;
  /** The random source for the jitter (default `Math.random`). */
  random?: () => number;
  /** The largest frame accepted from the peer, in bytes (default 16 MiB). */
  maxFrame?: number;
  /**
   * Presence from the first connection (`{ state }` publishes a state; `{}` only watches the others), or a
   * {@link Presence} of your own to carry on (it outlives this sync: `close()` only lets go of it). Without it,
   * presence starts when `sync.presence` is first used.
   */
  presence?: PresenceOptions | Presence;
  /**
   * Also replicate browser to browser over WebRTC with the other peers of the log that do (see `DirectPeers`): the
   * relay's presence carries the signaling; `peer` events say how each direct connection stands.
   */
  direct?: boolean;
  /** STUN and TURN servers for `direct` (default none: enough on one machine or one network). */
  iceServers?: IceServer[];
  /** The `RTCPeerConnection` class for `direct` (default: the global one). */
  RTCPeerConnection?: PeerConnectionConstructor;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !(value >= 0) || value === Infinity) {
    throw new TypeError(`Option ${name} must be a finite number >= 0, got ${String(value)}`);
  }
  return value;
}

/**
 * Checks a peer URL and returns the URL to open: `ws:` or `wss:` (`http:` and `https:` are turned into them), with
 * the token as the `token` query parameter.
 *
 * @example
 * ```ts
 * import { socketUrl } from "./connect.ts";
 * console.assert(socketUrl("https://relay.example/logs/chat/ws", "t") === "wss://relay.example/logs/chat/ws?token=t");
 * ```
 */
export function socketUrl(url: string | URL, token?: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(
      `Cannot connect to ${JSON.stringify(String(url))}: not an absolute URL; ` +
        "use one like wss://relay.example/logs/NAME/ws",
    );
  }
  if (parsed.protocol === "http:") parsed.protocol = "ws:";
  else if (parsed.protocol === "https:") parsed.protocol = "wss:";
  else if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
    throw new TypeError(
      `Cannot connect to ${parsed.href}: the protocol ${parsed.protocol} is not a WebSocket one; use wss: (or ws:)`,
    );
  }
  if (parsed.hash !== "") throw new TypeError(`Cannot connect to ${parsed.href}: a WebSocket URL has no #fragment`);
  if (token !== undefined) {
    if (typeof token !== "string" || token === "") throw new TypeError("Option token must be a non-empty string");
    parsed.searchParams.set("token", token);
  }
  return parsed.href;
}

/**
 * A live replication session that survives disconnections: see {@link connect}. Listen to `statechange` (or to
 * the event named after a state, such as `live`); each carries a {@link SyncStateDetail}.
 *
 * @example
 * ```ts ignore
 * import { connect, Hyperlog } from "@hyperlog/hyperlog";
 * const sync = connect(new Hyperlog(), "wss://relay.example/logs/chat/ws");
 * sync.addEventListener("statechange", (e) => console.log((e as CustomEvent).detail.state));
 * ```
 */
export class Sync extends EventTarget {
  /** The URL this client connects to (with the token, when one was given). */
  readonly url: string;
  readonly #log: Hyperlog<unknown>;
  readonly #WebSocket: WebSocketConstructor;
  readonly #minDelay: number;
  readonly #maxDelay: number;
  readonly #factor: number;
  readonly #jitter: number;
  readonly #random: () => number;
  readonly #maxFrame: number | undefined;
  #state: SyncState = "connecting";
  #attempt = 0;
  #error: Error | undefined;
  #socket: WebSocketLike | undefined;
  #session: Replication | undefined;
  #wake: (() => void) | undefined;
  #closed = false;
  #presence: Presence | undefined;
  #ownPresence = true;
  #direct: DirectPeers | undefined;
  readonly #running: Promise<void>;
  readonly #online = () => this.#wake?.();

  /** Use {@link connect}. */
  constructor(log: Hyperlog<unknown>, url: string | URL, options: ConnectOptions = {}) {
    super();
    if (typeof options !== "object" || options === null) throw new TypeError("Options must be an object");
    this.url = socketUrl(url, options.token);
    this.#log = log;
    const ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (typeof ctor !== "function") {
      throw new TypeError("This runtime has no global WebSocket: pass one as the WebSocket option");
    }
    this.#WebSocket = ctor;
    this.#minDelay = positive("minDelay", options.minDelay, 500);
    this.#maxDelay = Math.max(this.#minDelay, positive("maxDelay", options.maxDelay, 30_000));
    this.#factor = Math.max(1, positive("factor", options.factor, 2));
    const jitter = positive("jitter", options.jitter, 0.5);
    if (jitter > 1) throw new TypeError(`Option jitter must be between 0 and 1, got ${jitter}`);
    this.#jitter = jitter;
    this.#random = options.random ?? Math.random;
    this.#maxFrame = options.maxFrame;
    if (options.presence instanceof Presence) {
      this.#presence = options.presence;
      this.#ownPresence = false;
    } else if (options.presence !== undefined || options.direct === true) {
      this.#presence = new Presence(options.presence);
    }
    if (options.direct === true) {
      this.#direct = new DirectPeers(log, this.#presence!, {
        ...(options.iceServers === undefined ? {} : { iceServers: options.iceServers }),
        ...(options.RTCPeerConnection === undefined ? {} : { RTCPeerConnection: options.RTCPeerConnection }),
      });
      this.#direct.addEventListener("peer", (event) => {
        this.dispatchEvent(new CustomEvent("peer", { detail: (event as CustomEvent).detail }));
      });
    }
    const target = globalThis as { addEventListener?: (type: string, listener: () => void) => void };
    if (typeof target.addEventListener === "function") target.addEventListener("online", this.#online);
    this.#running = this.#run();
  }

  /**
   * Presence on this log (see {@link Presence}): `sync.presence.set(state)`, `sync.presence.peers`, `presence`
   * events. Made on first use; it carries on across reconnects.
   */
  get presence(): Presence {
    if (this.#presence === undefined) {
      this.#presence = new Presence();
      if (this.#socket !== undefined && this.#socket.readyState <= 1) this.#presence.attach(this.#socket);
    }
    return this.#presence;
  }

  /** The direct (WebRTC) connections, with `direct: true`; `undefined` without. */
  get direct(): DirectPeers | undefined {
    return this.#direct;
  }

  /** The current state. */
  get state(): SyncState {
    return this.#state;
  }

  /** Failed connections in a row (0 once a session reached `live`). */
  get attempt(): number {
    return this.#attempt;
  }

  /** Why the last connection failed or ended, if it was an error; cleared once a session reaches `live`. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** The stats of the current session so far, or `undefined` when not connected. */
  get stats(): ReplicationStats | undefined {
    return this.#session?.stats;
  }

  /**
   * The delay before retry number `attempt` (1 for the first), before jitter: `minDelay * factor^(attempt - 1)`,
   * capped at `maxDelay`.
   */
  backoff(attempt: number): number {
    return Math.min(this.#maxDelay, this.#minDelay * this.#factor ** Math.max(0, attempt - 1));
  }

  /** Retries now when offline, instead of waiting for the scheduled attempt. */
  reconnect(): void {
    this.#wake?.();
  }

  /** Resolves when the state is `state` (at once if it is); rejects if the sync is or becomes closed first. */
  when(state: SyncState): Promise<void> {
    if (this.#state === state) return Promise.resolve();
    if (this.#state === "closed") return Promise.reject(new HyperlogError(`The sync closed before it was ${state}`));
    return new Promise((resolve, reject) => {
      const listener = (event: Event) => {
        const now = (event as CustomEvent<SyncStateDetail>).detail.state;
        if (now !== state && now !== "closed") return;
        this.removeEventListener("statechange", listener);
        if (now === state) resolve();
        else reject(new HyperlogError(`The sync closed before it was ${state}`));
      };
      this.addEventListener("statechange", listener);
    });
  }

  /** Stops the session and any retry; resolves once the socket is closed. The log stays open. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      const target = globalThis as { removeEventListener?: (type: string, listener: () => void) => void };
      if (typeof target.removeEventListener === "function") target.removeEventListener("online", this.#online);
      this.#wake?.();
      this.#direct?.close();
      if (this.#ownPresence) this.#presence?.close();
      else this.#presence?.detach();
      this.#session?.close().catch(() => {});
      if (this.#socket !== undefined && this.#socket.readyState < 2) this.#socket.close(1000, "Closed");
    }
    await this.#running;
  }

  #set(state: SyncState, extra: Partial<SyncStateDetail> = {}): void {
    const previous = this.#state;
    if (previous === "closed") return;
    this.#state = state;
    const detail: SyncStateDetail = { state, previous, attempt: this.#attempt, ...extra };
    this.dispatchEvent(new CustomEvent("statechange", { detail }));
    this.dispatchEvent(new CustomEvent(state, { detail }));
  }

  async #run(): Promise<void> {
    // Let the caller attach listeners before the first event.
    await Promise.resolve();
    while (!this.#closed && !this.#log.closed) {
      this.#set("connecting");
      let error: Error | undefined;
      try {
        error = await this.#connectOnce();
      } catch (err) {
        error = err instanceof Error ? err : new HyperlogError(String(err));
      }
      this.#socket = undefined;
      this.#session = undefined;
      if (this.#closed || this.#log.closed) break;
      this.#attempt++;
      this.#error = error;
      const delay = this.backoff(this.#attempt) * (1 - this.#jitter * this.#random());
      const retryIn = Math.round(delay);
      this.#set("offline", error === undefined ? { retryIn } : { retryIn, error });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => this.#wake?.(), retryIn);
        this.#wake = () => {
          clearTimeout(timer);
          this.#wake = undefined;
          resolve();
        };
      });
    }
    this.#set("closed");
  }

  /** One connection: resolves when it ends, with the error that ended it, if any. */
  async #connectOnce(): Promise<Error | undefined> {
    const socket = new this.#WebSocket(this.url);
    this.#socket = socket;
    this.#presence?.attach(socket);
    // The session listens for messages from the start: the peer may send its HELLO as soon as the socket opens
    // (some runtimes deliver it before the code awaiting "open" resumes). Its own messages wait for the open.
    const session = replicateWebSocket(
      this.#log,
      socket,
      this.#maxFrame === undefined ? { live: true } : { live: true, maxFrame: this.#maxFrame },
    );
    this.#session = session;
    session.done.catch(() => {});
    const ended = new Promise<Error | undefined>((resolve) => {
      socket.addEventListener("close", (event) => {
        const { code, reason } = event as CloseEvent;
        resolve(
          code === 1000 || this.#closed ? undefined : new HyperlogError(
            `The connection to ${this.url.replace(/token=[^&]*/, "token=…")} closed (code ${code}${
              reason ? `: ${reason}` : ""
            })`,
          ),
        );
      });
    });
    const opened = await Promise.race([
      new Promise<true>((resolve) => socket.addEventListener("open", () => resolve(true))),
      ended.then((error) => error ?? new HyperlogError("The connection closed before it opened")),
    ]);
    if (opened !== true) return opened;
    if (this.#closed) {
      socket.close(1000, "Closed");
      return undefined;
    }
    this.#set("syncing");
    session.synced.then(() => {
      if (this.#session !== session || this.#closed) return;
      this.#attempt = 0;
      this.#error = undefined;
      this.#set("live", { stats: session.stats });
    }, () => {});
    const outcome = await Promise.race([
      session.done.then(
        () => undefined,
        (err: unknown) => (err instanceof Error ? err : new HyperlogError(String(err))),
      ),
      ended,
    ]);
    // Whichever ended first, end the other too.
    if (socket.readyState < 2) closeSocket(socket, outcome === undefined ? 1000 : 1011, "Session ended");
    session.close().catch(() => {});
    const closedWith = await ended;
    return outcome ?? closedWith ?? (this.#closed ? undefined : new HyperlogError("The peer ended the session"));
  }
}

/**
 * Keeps `log` in live sync with the peer at `url` over a WebSocket, reconnecting whenever the connection drops.
 * Returns at once; watch the state through the returned {@link Sync}'s events and `state` property, and stop it
 * with `close()`. Throws a `TypeError` at once for a URL that is not a WebSocket (or http) URL.
 *
 * @example
 * ```ts ignore
 * import { connect, Hyperlog, IndexedDBStorage } from "@hyperlog/hyperlog";
 * const log = new Hyperlog(new IndexedDBStorage("chat"), { valueEncoding: "json" });
 * const sync = connect(log, "wss://relay.example/logs/chat/ws", { token: "secret" });
 * sync.addEventListener("statechange", (e) => (status.textContent = (e as CustomEvent).detail.state));
 * await log.append({ text: "hello" }); // reaches the relay now, or after the next reconnect
 * await sync.close();
 * ```
 */
export function connect<T>(log: Hyperlog<T>, url: string | URL, options: ConnectOptions = {}): Sync {
  return new Sync(log as Hyperlog<unknown>, url, options);
}
