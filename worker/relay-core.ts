/**
 * The relay of one log, whatever hosts it: the Durable Object on Cloudflare (`relay.ts`) or `hyperlog serve` on
 * Node, Deno or Bun (`serve.ts`). It needs a {@link Storage} for the log and a small {@link RelayHost}: how to list
 * the open sockets and keep a few fields with each. The host accepts sockets and passes their messages and closes
 * to {@link RelayCore.message} and {@link RelayCore.closed}.
 *
 * Each socket runs the package's own replication session (`Session` and `Driver` from the package entry), live, in
 * `sync` mode for writers and `push` mode for readers: the initial exchange and the live phase are the protocol's,
 * not the relay's. A node one socket sends is stored once; every other live session sends it on from the log
 * (several per message when they arrive together), never back to its sender. What is the relay's own: sockets,
 * roles, limits (the frame and node size, the live rate), storage, and the KV mirror.
 *
 * The session's state is kept with its socket ({@link RelaySocketState}, through {@link RelayHost.save}) after
 * each step, so a host that drops the core's memory (a hibernated Durable Object) makes a new core that reads the
 * states back and carries on, in the live phase and in most of the initial exchange. A socket caught in a phase
 * that cannot resume (a reconciliation under way) is closed with code 4010: reconnect.
 *
 * @module
 */
import {
  Driver,
  Hyperlog,
  InvalidNodeError,
  type MessageTransport,
  MissingLinksError,
  ProtocolError,
  Session,
  type SessionOptions,
  type SessionState,
  SignatureError,
  type StoredNode,
} from "../mod.ts";
import type { Storage } from "../src/storage.ts";
import type { Refusal } from "./caps.ts";
import { CLOSE, type RelayLimits, type Role } from "./limits.ts";
import { LOG_VIEW_PATHS, logView, noteWrites } from "./log-page.ts";
import { nodeJson, nodeText } from "./node-json.ts";
import { newPeerId, PresenceHub, type PresenceHubOptions } from "./presence-hub.ts";
import { DEFAULT_PRESENCE } from "./presence-settings.ts";

export { nodeJson };

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();
/** Bytes buffered on a socket before its session waits (where the socket tells: `bufferedAmount`). */
const HIGH_WATER = 1 << 20;
/** A session state bigger than this is not kept (a Durable Object attachment holds 2 KiB). */
const MAX_STATE = 1800;
/** Recent nodes kept in memory for the sessions' live reads (up to twice this many). */
const RECENT = 2048;
/** Milliseconds between two saves of a socket's session state in the same phase, at least. */
const SAVE_EVERY = 250;

/**
 * A server-side WebSocket as the relay uses it (a Workers socket accepted with the hibernation API fits, and so
 * does the wrapper `serve.ts` puts around a Node, Deno or Bun socket).
 *
 * @example
 * ```ts
 * import { MemoryStorage } from "../mod.ts";
 * import { HELLO } from "../src/wire.ts";
 * import { DEFAULT_LIMITS } from "./limits.ts";
 * import { RelayCore, type RelaySocket } from "./relay-core.ts";
 * const sent: (Uint8Array | string)[] = [];
 * const ws: RelaySocket = { readyState: 1, send: (data) => void sent.push(data), close() {} };
 * const host = { sockets: () => [ws], save() {}, load: () => undefined, waitUntil() {} };
 * const core = new RelayCore(host, { name: "chat", storage: new MemoryStorage(), limits: DEFAULT_LIMITS });
 * await core.accept(ws, "write");
 * for (let i = 0; i < 200 && sent.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
 * console.assert((sent[0] as Uint8Array)[0] === HELLO); // the relay speaks first
 * core.closed(ws, 1000);
 * await core.close();
 * ```
 */
export interface RelaySocket {
  /** 1 while open. */
  readonly readyState: number;
  /** Sends one message: binary (replication) or text (presence). */
  send(data: Uint8Array | string): void;
  /** Closes the socket. */
  close(code?: number, reason?: string): void;
}

/**
 * What the relay keeps with each socket, through {@link RelayHost.save}: small and structured-cloneable, so that a
 * Durable Object can keep it in the socket's attachment across hibernation.
 *
 * @example
 * ```ts
 * import { MemoryStorage } from "../mod.ts";
 * import { DEFAULT_LIMITS } from "./limits.ts";
 * import { RelayCore, type RelaySocketState } from "./relay-core.ts";
 * let kept: RelaySocketState | undefined;
 * const ws = { readyState: 1, send() {}, close() {} };
 * const save = (_ws: unknown, state: RelaySocketState) => void (kept = state);
 * const host = { sockets: () => [ws], save, load: () => kept, waitUntil() {} };
 * const core = new RelayCore(host, { name: "chat", storage: new MemoryStorage(), limits: DEFAULT_LIMITS });
 * await core.accept(ws, "read");
 * console.assert(kept?.name === "chat" && kept.role === "read" && kept.phase === "handshake");
 * core.closed(ws, 1000);
 * await core.close();
 * ```
 */
export interface RelaySocketState {
  /** The log's name (a Durable Object learns it from requests; a woken one learns it here). */
  name: string;
  /** What the client may do. */
  role: Role;
  /** `handshake` during the initial exchange, then `live`. */
  phase: "handshake" | "live";
  /** The session's state to resume from, or null when its phase cannot resume. */
  session: SessionState | null;
  /** The socket's presence peer id (`presence-hub.ts`). */
  peer?: string;
}

/**
 * The seam between the relay and what hosts it: the Durable Object fills it with its hibernation API
 * (`ctx.getWebSockets()`, `ws.serializeAttachment`), `hyperlog serve` with a set and a map.
 *
 * @example
 * ```ts
 * import { MemoryStorage } from "../mod.ts";
 * import { DEFAULT_LIMITS } from "./limits.ts";
 * import { type RelayHost, RelayCore, type RelaySocket, type RelaySocketState } from "./relay-core.ts";
 * const states = new Map<RelaySocket, RelaySocketState>();
 * const host: RelayHost = {
 *   sockets: () => states.keys(),
 *   save: (ws, state) => void states.set(ws, state),
 *   load: (ws) => states.get(ws),
 *   waitUntil: () => {},
 * };
 * const core = new RelayCore(host, { name: "chat", storage: new MemoryStorage(), limits: DEFAULT_LIMITS });
 * const ws = { readyState: 1, send() {}, close() {} };
 * await core.accept(ws, "write");
 * console.assert(states.get(ws)?.role === "write"); // kept through the host
 * core.closed(ws, 1000);
 * await core.close();
 * ```
 */
export interface RelayHost {
  /** Every socket of this log accepted and still open (after a wake-up too). */
  sockets(): Iterable<RelaySocket>;
  /** Keeps `state` with the socket. */
  save(ws: RelaySocket, state: RelaySocketState): void;
  /** The state last saved with the socket (`undefined` or `null` if none). */
  load(ws: RelaySocket): unknown;
  /** Keeps the host alive until `promise` settles (background work such as the KV mirror). */
  waitUntil(promise: Promise<unknown>): void;
}

/**
 * Options of a {@link RelayCore}.
 *
 * @example
 * ```ts
 * import { MemoryStorage } from "../mod.ts";
 * import { DEFAULT_LIMITS } from "./limits.ts";
 * import type { RelayCoreOptions } from "./relay-core.ts";
 * const options: RelayCoreOptions = { name: "chat", storage: new MemoryStorage(), limits: DEFAULT_LIMITS };
 * console.assert(options.name === "chat");
 * ```
 */
export interface RelayCoreOptions {
  /** The log's name. */
  name: string;
  /** Where the log is kept. */
  storage: Storage;
  /** Size and rate limits. */
  limits: RelayLimits;
  /** The writer allowlist (hex public keys); nodes must be signed by one of them. */
  writers?: string[] | undefined;
  /**
   * Copies stored nodes elsewhere (the KV mirror). Called with batches in change order, one call at a time, in the
   * background (through {@link RelayHost.waitUntil}): ingest never waits for it. A failure is dropped: the copy is
   * a cache, and readers fall back to the log.
   */
  mirror?: ((nodes: readonly StoredNode[]) => Promise<void>) | undefined;
  /**
   * Called for every node a socket sends, in every phase, once its role and size are checked (the write budget, the
   * log's size cap): a {@link Refusal} closes the socket with its code.
   */
  admit?: ((ws: RelaySocket, bytes: number) => Refusal | undefined) | undefined;
  /** Called when the relay closes a socket for a reason of its own (a refusal), with the code and reason. */
  refused?: ((ws: RelaySocket, code: number, reason: string) => void) | undefined;
  /** Presence: its bounds, and where a host that loses its memory keeps the peers (default: the defaults, in memory). */
  presence?: PresenceHubOptions | undefined;
}

/** What each socket has in memory while the core lives. */
interface Conn {
  ws: RelaySocket;
  att: RelaySocketState;
  driver: Driver;
  /** The close code and reason for the relay's own refusals. */
  closing?: [number, string] | undefined;
  closed: boolean;
  /** When the state was last saved, and the timer of the next save. */
  saved: number;
  /** The phase and flags of the state last saved. */
  mark?: string | undefined;
  saveTimer?: ReturnType<typeof setTimeout> | undefined;
}

/** A refusal of the relay's own (a limit or a role), with its close code. */
class Refused extends Error {
  readonly closeCode: number;
  constructor(name: string, message: string, closeCode: number) {
    super(message);
    this.name = name;
    this.closeCode = closeCode;
  }
}

/** The close code for an error that ended a session. */
function codeOf(error: Error | undefined): [number, string] {
  if (error === undefined) return [1000, "Done"];
  if ((error as { fromPeer?: boolean }).fromPeer === true) return [1000, "Peer stopped the session"];
  if (error instanceof Refused) return [error.closeCode, error.message];
  if (error instanceof InvalidNodeError || error instanceof SignatureError || error instanceof MissingLinksError) {
    return [CLOSE.INVALID_NODE, error.message];
  }
  if (error.name === "MissingLinksError") return [CLOSE.INVALID_NODE, error.message];
  if (error instanceof ProtocolError) return [CLOSE.PROTOCOL, error.message];
  return [CLOSE.INTERNAL, error.message];
}

/** A close reason is at most 123 bytes. */
function reasonOf(message: string): string {
  const bytes = textEncoder.encode(message);
  return bytes.length <= 123 ? message : textDecoder.decode(bytes.subarray(0, 120)).replace(/\uFFFD$/, "") + "...";
}

/** Raw bytes with the exact length (a view of part of a buffer would send the whole buffer). */
function exact(body: Uint8Array): Uint8Array {
  return body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : body.slice();
}

function isKey(value: string): boolean {
  return /^[0-9a-f]{64}$/.test(value);
}

/**
 * The relay of one log: replicates with every socket the host hands it and answers the log's HTTP reads.
 *
 * @example An in-process relay, with the sockets kept in a map
 * ```ts
 * import { MemoryStorage } from "../mod.ts";
 * import { DEFAULT_LIMITS } from "./limits.ts";
 * import { RelayCore, type RelaySocket } from "./relay-core.ts";
 * const states = new Map<RelaySocket, unknown>();
 * const core = new RelayCore({
 *   sockets: () => states.keys(),
 *   save: (ws, state) => void states.set(ws, state),
 *   load: (ws) => states.get(ws),
 *   waitUntil: () => {},
 * }, { name: "chat", storage: new MemoryStorage(), limits: DEFAULT_LIMITS });
 * const info = await core.read(new URL("https://relay/info"));
 * console.assert((await info.json()).length === 0);
 * await core.close();
 * ```
 */
export class RelayCore {
  readonly #host: RelayHost;
  readonly #limits: RelayLimits;
  readonly #name: string;
  readonly #conns = new Map<RelaySocket, Conn>();
  readonly #log: Hyperlog<Uint8Array>;
  readonly #mirror: ((nodes: readonly StoredNode[]) => Promise<void>) | undefined;
  readonly #admit: RelayCoreOptions["admit"];
  readonly #refused: RelayCoreOptions["refused"];
  #mirrorQueue: StoredNode[] = [];
  #mirroring = false;
  /** The latest stored nodes, consecutive in change order. */
  #recent: StoredNode[] = [];
  #kicking = false;
  readonly #presence: PresenceHub;

  /** Opens the log in `options.storage` (lazily: {@link RelayCore.ready} or any call waits for it). */
  constructor(host: RelayHost, options: RelayCoreOptions) {
    this.#host = host;
    this.#limits = options.limits;
    this.#name = options.name;
    this.#mirror = options.mirror;
    this.#admit = options.admit;
    this.#refused = options.refused;
    this.#log = new Hyperlog<Uint8Array>(options.storage, {
      valueEncoding: "binary",
      ...(options.writers === undefined ? {} : { writers: options.writers }),
    });
    this.#log.addEventListener("add", (event) => this.#added((event as CustomEvent<StoredNode>).detail));
    noteWrites(this.#log);
    this.#presence = new PresenceHub({
      sockets: () => host.sockets(),
      peerOf: (ws) => this.#stateOf(ws)?.peer,
      roleOf: (ws) => this.#stateOf(ws)?.role,
      close: (ws, code, reason) => {
        const conn = this.#conns.get(ws);
        if (conn !== undefined) this.#refuse(conn, code, "ProtocolError", reason);
        else this.#close({ ws, closed: false } as Conn, code, reason);
      },
    }, options.presence ?? { settings: DEFAULT_PRESENCE });
  }

  /** A socket's saved state, from memory or from the host. */
  #stateOf(ws: RelaySocket): RelaySocketState | undefined {
    const att = this.#conns.get(ws)?.att ?? this.#host.load(ws);
    return typeof att === "object" && att !== null ? att as RelaySocketState : undefined;
  }

  /** Presence on this log: who is there. */
  get presence(): PresenceHub {
    return this.#presence;
  }

  /** The log's name. */
  get name(): string {
    return this.#name;
  }

  /** The log this relay keeps. */
  get log(): Hyperlog<Uint8Array> {
    return this.#log;
  }

  /** Resolves when the log is open. */
  async ready(): Promise<void> {
    await this.#log.ready();
  }

  /**
   * A node was stored: keep it among the recent ones (every live session reads it from there), queue it for the
   * mirror, and wake the sessions (after the commit's other nodes).
   */
  #added(node: StoredNode): void {
    const recent = this.#recent;
    if (recent.length > 0 && recent[recent.length - 1]!.change + 1 !== node.change) recent.length = 0;
    recent.push(node);
    if (recent.length > RECENT * 2) recent.splice(0, recent.length - RECENT);
    if (!this.#kicking) {
      this.#kicking = true;
      queueMicrotask(() => {
        this.#kicking = false;
        for (const conn of this.#conns.values()) conn.driver.kick();
      });
    }
    if (this.#mirror !== undefined) {
      this.#mirrorQueue.push(node);
      if (!this.#mirroring) {
        this.#mirroring = true;
        this.#host.waitUntil(this.#drainMirror());
      }
    }
  }

  /** Hands the queued nodes to the mirror, a batch at a time, in the background. */
  async #drainMirror(): Promise<void> {
    // Let the commit that queued the first node finish queueing its others.
    await Promise.resolve();
    try {
      while (this.#mirrorQueue.length > 0) {
        const batch = this.#mirrorQueue;
        this.#mirrorQueue = [];
        try {
          await this.#mirror!(batch);
        } catch {
          // The mirror is a cache: readers fall back to the log.
        }
      }
    } finally {
      this.#mirroring = false;
    }
  }

  /**
   * Answers the log's reads: `/info` (`{ heads, length }`), `/nodes/KEY` (one node as JSON), `/changes?since=N`
   * (NDJSON); anything else is a 404.
   */
  async read(url: URL): Promise<Response> {
    const log = this.#log;
    await log.ready();
    const path = url.pathname;
    // The log's views (log-page.ts): /graph, /summary, /page.
    if (LOG_VIEW_PATHS.has(path)) return await logView(log, this.#name, url, () => [...this.#host.sockets()].length);
    if (path === "/info") {
      return Response.json({ heads: await log.storage.heads(), length: log.length });
    }
    if (path.startsWith("/nodes/")) {
      const key = path.slice("/nodes/".length);
      const node = isKey(key) ? await log.storage.get(key) : undefined;
      if (node === undefined) return Response.json({ error: `No node ${key} in log ${this.#name}` }, { status: 404 });
      return new Response(nodeText(node), { headers: { "content-type": "application/json" } });
    }
    if (path === "/changes") {
      const since = Number(url.searchParams.get("since") ?? "0");
      let cursor = since;
      const until = log.length;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const page = cursor < until
            ? await log.storage.read({ since: cursor, until, limit: 512, reverse: false })
            : [];
          if (page.length === 0) return controller.close();
          cursor = page[page.length - 1]!.change;
          controller.enqueue(textEncoder.encode(page.map((n) => nodeText(n) + "\n").join("")));
        },
      });
      return new Response(body, { headers: { "content-type": "application/x-ndjson" } });
    }
    return new Response("Not found", { status: 404 });
  }

  /**
   * Takes a socket the host has just accepted (and will list in {@link RelayHost.sockets}) and starts its session.
   * The relay may send on it at once.
   */
  async accept(ws: RelaySocket, role: Role): Promise<void> {
    await this.#log.ready();
    const att: RelaySocketState = { name: this.#name, role, phase: "handshake", session: null, peer: newPeerId() };
    this.#host.save(ws, att);
    this.#start(ws, att, undefined);
  }

  /** The session options of a socket with `role`: its mode, the limits, and the relay's checks on its nodes. */
  #options(conn: () => Conn, role: Role): SessionOptions {
    const limits = this.#limits;
    return {
      mode: role === "write" ? "sync" : "push",
      live: true,
      maxFrame: limits.maxFrame,
      read: (since, until, limit) => this.#readNodes(since, until, limit),
      admit: (sizes) => {
        if (role !== "write") {
          throw new Refused("ProtocolError", "This client may only read; its nodes are refused", CLOSE.READ_ONLY);
        }
        for (const size of sizes) {
          if (size > limits.maxNode) {
            throw new Refused(
              "InvalidNodeError",
              `Node of ${size} bytes is over the limit of ${limits.maxNode} bytes`,
              CLOSE.NODE_TOO_LARGE,
            );
          }
        }
        // The host's own checks (the write budget, the log's size cap), node by node, in every phase.
        for (const size of sizes) {
          const refusal = this.#admit?.(conn().ws, size);
          if (refusal !== undefined) throw new Refused("ProtocolError", refusal.reason, refusal.code);
        }
      },
    };
  }

  /** Nodes after `since`, from the recent ones when they hold the range, else from storage. */
  #readNodes(since: number, until: number, limit: number): Promise<StoredNode[]> {
    const recent = this.#recent;
    const first = recent[0]?.change;
    // Changes `since + 1 .. until`, both in the recent ones.
    if (first !== undefined && since + 1 >= first && until <= recent[recent.length - 1]!.change) {
      const from = since + 1 - first;
      return Promise.resolve(recent.slice(from, Math.min(from + limit, until - first + 1)));
    }
    return this.#log.storage.read({ since, until, limit, reverse: false });
  }

  /** Runs a socket's session: a new one, or one resumed from its saved state. */
  #start(ws: RelaySocket, att: RelaySocketState, state: SessionState | undefined): Conn {
    const conn: Conn = {
      ws,
      att,
      driver: undefined as unknown as Driver,
      closed: false,
      saved: 0,
    };
    const options = this.#options(() => conn, att.role);
    const log = this.#log as unknown as Hyperlog<unknown>;
    const session = state === undefined ? new Session(log, options) : Session.resume(log, options, state);
    const transport: MessageTransport = {
      send: (body) => {
        if (!conn.closed && ws.readyState === 1) ws.send(exact(body));
      },
      room: () => HIGH_WATER - ((ws as { bufferedAmount?: number }).bufferedAmount ?? 0),
      drained: () => new Promise<void>((resolve) => setTimeout(resolve, 5)),
      close: (error) => {
        const [code, reason] = conn.closing ?? codeOf(error);
        this.#close(conn, code, reason);
      },
    };
    this.#conns.set(ws, conn);
    conn.driver = new Driver(session, transport, {
      kicked: true,
      coalesce: true,
      onChange: () => this.#save(conn),
    });
    conn.driver.done.catch(() => {});
    return conn;
  }

  /**
   * Keeps the session's state with its socket: at once when its phase or flags change, else at most every
   * {@link SAVE_EVERY} ms (a state a little behind only makes a resumed session send a few nodes again).
   */
  #save(conn: Conn): void {
    if (conn.closed) return;
    const session = conn.driver.session;
    const state = session.state;
    // What a resumed session must not get wrong is saved at once: its phase and flags.
    const mark = state === undefined ? "none" : `${state.flags.join()}${state.plan === null}`;
    const now = Date.now();
    if (mark === conn.mark && now - conn.saved < SAVE_EVERY) {
      if (conn.saveTimer === undefined) {
        conn.saveTimer = setTimeout(() => {
          conn.saveTimer = undefined;
          conn.saved = 0;
          this.#save(conn);
        }, SAVE_EVERY);
      }
      return;
    }
    conn.saved = now;
    conn.mark = mark;
    clearTimeout(conn.saveTimer);
    conn.saveTimer = undefined;
    const kept = state !== undefined && JSON.stringify(state).length <= MAX_STATE ? state : null;
    conn.att = { ...conn.att, phase: session.synced ? "live" : "handshake", session: kept };
    try {
      this.#host.save(conn.ws, conn.att);
    } catch {
      // The host could not keep it: a wake-up closes this socket with 4010 instead of resuming it.
    }
  }

  /** A socket's state, from memory or (after a wake-up) from the host. */
  #connOf(ws: RelaySocket): Conn | undefined {
    const known = this.#conns.get(ws);
    if (known !== undefined) return known;
    if (ws.readyState !== 1) return undefined;
    const att = this.#host.load(ws) as RelaySocketState | null | undefined;
    if (att === null || att === undefined || typeof att !== "object") return undefined;
    if (att.session === null || att.session === undefined) {
      try {
        ws.close(CLOSE.INTERRUPTED, "The relay restarted during the initial exchange; reconnect");
      } catch {
        // Already closed.
      }
      return undefined;
    }
    return this.#start(ws, att, att.session);
  }

  /** Wakes the sessions of every socket the host lists (after a wake-up, live sockets send again at once). */
  resumeAll(): void {
    for (const ws of this.#host.sockets()) this.#connOf(ws);
  }

  /** A message from a socket. Refusals close only that socket. */
  async message(ws: RelaySocket, message: ArrayBuffer | Uint8Array | string): Promise<void> {
    await this.#log.ready();
    const conn = this.#connOf(ws);
    if (conn === undefined || conn.closed) return;
    // Text messages are presence (presence-hub.ts); any message counts as a heartbeat.
    if (typeof message === "string") return this.#presence.message(ws, message);
    this.#presence.seen(ws);
    if (message.byteLength > this.#limits.maxFrame) {
      return this.#refuse(
        conn,
        CLOSE.FRAME_TOO_LARGE,
        "ProtocolError",
        `Message of ${message.byteLength} bytes is over the limit of ${this.#limits.maxFrame} bytes`,
      );
    }
    const body = message instanceof Uint8Array ? message : new Uint8Array(message);
    if (body.length === 0) return this.#refuse(conn, CLOSE.PROTOCOL, "ProtocolError", "Empty message");
    conn.driver.deliver(body);
  }

  /** Tells the client why (an ERROR message), then closes its socket with `code`. */
  #refuse(conn: Conn, code: number, name: string, message: string): void {
    if (conn.closed) return;
    conn.closing = [code, message];
    conn.driver.fail(new Refused(name, message, code));
  }

  #close(conn: Conn, code: number, reason: string): void {
    if (conn.closed) return;
    conn.closed = true;
    this.#presence.gone(conn.ws);
    if (code >= 4000) this.#refused?.(conn.ws, code, reason);
    clearTimeout(conn.saveTimer);
    this.#conns.delete(conn.ws);
    try {
      conn.ws.close(code, reasonOf(reason));
    } catch {
      // Already closed.
    }
  }

  /** The client closed its socket (or it failed: pass 1011). */
  closed(ws: RelaySocket, code: number): void {
    this.#presence.gone(ws);
    const conn = this.#conns.get(ws);
    if (conn !== undefined) {
      // What the client sent before closing is handled first (its last ACK completes the initial exchange).
      conn.driver.ended(code === 1011 ? new Error("The socket failed") : undefined);
    } else {
      try {
        ws.close(1000, "Closed");
      } catch {
        // Already closed.
      }
    }
  }

  /**
   * Lets the messages already received be handled (and initial exchanges that they finish store their checkpoints,
   * for up to a second), closes every socket with `code` and `reason`, and closes the log.
   */
  async close(code = 1001, reason = "The relay is shutting down"): Promise<void> {
    this.#presence.close();
    const conns = [...this.#conns.values()];
    await Promise.all(conns.map((conn) => conn.driver.handled));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(conns.filter((c) => !c.driver.session.synced).map((c) => c.driver.synced.catch(() => {}))),
      new Promise((resolve) => (timer = setTimeout(resolve, 1000))),
    ]);
    clearTimeout(timer);
    for (const conn of [...this.#conns.values()]) {
      conn.closing = [code, reason];
      await conn.driver.close().catch(() => {});
      this.#close(conn, code, reason);
    }
    for (const ws of this.#host.sockets()) {
      try {
        ws.close(code, reason);
      } catch {
        // Already closed.
      }
    }
    await this.#log.close();
  }
}
