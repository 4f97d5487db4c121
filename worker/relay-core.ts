/**
 * The relay of one log, whatever hosts it: the Durable Object on Cloudflare (`relay.ts`) or `hyperlog serve` on
 * Node, Deno or Bun (`serve.ts`). It needs a `Storage` for the log and a small {@link RelayHost}: how to list
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
  EncodedPages,
  Hyperlog,
  type MessageTransport,
  Session,
  type SessionOptions,
  type SessionState,
  type StoredNode,
} from "../mod.ts";
import { CLOSE, type RelayLimits, type Role } from "./limits.ts";
import { noteWrites } from "./log-page.ts";
import { nodeJson } from "./node-json.ts";
import { readLog } from "./relay-reads.ts";
import {
  admitNodes,
  codeOf,
  type Conn,
  exact,
  reasonOf,
  Refused,
  type RelayCoreOptions,
  type RelayHost,
  type RelaySocket,
  type RelaySocketState,
} from "./relay-socket.ts";
import { newPeerId, PresenceHub } from "./presence-hub.ts";
import { DEFAULT_PRESENCE } from "./presence-settings.ts";
import { bufferedOf, drained, roomOf, SEND_HIGH_WATER } from "./socket-buffer.ts";

export type { RelayCoreOptions, RelayHost, RelaySocket, RelaySocketState } from "./relay-socket.ts";
export { nodeJson };

/** A session state bigger than this is not kept (a Durable Object attachment holds 2 KiB). */
const MAX_STATE = 1800;
/** Recent nodes kept in memory for the sessions' live reads (up to twice this many). */
const RECENT = 2048;
/** The most bytes of framed nodes a log's relay keeps for its late joiners (about 170 000 storm nodes). */
const ENCODED_PAGES_BYTES = 32 * 1024 * 1024;

/** Milliseconds between two saves of a socket's session state in the same phase, at least. */
const SAVE_EVERY = 250;

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
  readonly #idleMs: number;
  readonly #conns = new Map<RelaySocket, Conn>();
  readonly #log: Hyperlog<Uint8Array>;
  readonly #mirror: ((nodes: readonly StoredNode[]) => Promise<void>) | undefined;
  readonly #resumes: boolean;
  readonly #admit: RelayCoreOptions["admit"];
  readonly #refused: RelayCoreOptions["refused"];
  #mirrorQueue: StoredNode[] = [];
  #mirroring = false;
  /** The latest stored nodes, consecutive in change order. */
  #recent: StoredNode[] = [];
  #kicking = false;
  readonly #presence: PresenceHub;
  /**
   * The log framed once for every late joiner (src/encoded-pages.ts): a fresh session copies its initial messages
   * from it; and its latest nodes framed once for every live session (src/live-frames.ts). Dropped when the last
   * socket closes. A relay whose sessions may resume (the Durable Object) keeps only the live part.
   */
  readonly #pages: EncodedPages;

  /** Opens the log in `options.storage` (lazily: {@link RelayCore.ready} or any call waits for it). */
  constructor(host: RelayHost, options: RelayCoreOptions) {
    this.#host = host;
    this.#limits = options.limits;
    this.#name = options.name;
    this.#idleMs = options.idleMs ?? 30_000;
    this.#mirror = options.mirror;
    this.#admit = options.admit;
    this.#resumes = options.resumes !== false;
    this.#refused = options.refused;
    this.#pages = new EncodedPages(
      (since, until, limit) => this.#readNodes(since, until, limit),
      this.#resumes ? 0 : ENCODED_PAGES_BYTES,
      options.pagesShared,
    );
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

  /**
   * How many of this log's sockets wait for their client before the relay sends them more nodes: for room in the
   * socket's buffer, or for the client's CREDIT (a client that stops reading ends up in one or the other).
   */
  get waiting(): number {
    let n = 0;
    for (const conn of this.#conns.values()) {
      if (conn.waiting || conn.driver.session.waitingFor?.startsWith("CREDIT") === true) n++;
    }
    return n;
  }

  /** Bytes sent on this log's sockets and not yet handed to the network (where the sockets tell). */
  get buffered(): number {
    let n = 0;
    for (const conn of this.#conns.values()) n += bufferedOf(conn.ws);
    return n;
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
    if (this.#conns.size > 0) this.#pages.follow(node);
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
   * (NDJSON), the log's views; anything else is a 404.
   */
  async read(url: URL): Promise<Response> {
    await this.#log.ready();
    return await readLog(this.#log, this.#name, url, () => [...this.#host.sockets()].length);
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
      linkRefs: !this.#resumes,
      // Whatever window a client asks for, no more than this goes out ahead of its CREDIT (where the socket does not
      // tell how much it buffers, this is what bounds the memory a client that stops reading costs).
      peerWindow: SEND_HIGH_WATER,
      read: (since, until, limit) => this.#readNodes(since, until, limit),
      // Sessions that may resume keep only the live frames (a resumed session has no references, so sends plainly).
      pages: this.#pages,
      admit: admitNodes(role, limits, this.#admit, () => conn().ws),
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
      waiting: false,
    };
    const options = this.#options(() => conn, att.role);
    const log = this.#log as unknown as Hyperlog<unknown>;
    const session = state === undefined ? new Session(log, options) : Session.resume(log, options, state);
    const transport: MessageTransport = {
      send: (body) => {
        if (!conn.closed && ws.readyState === 1) ws.send(exact(body));
      },
      room: () => roomOf(ws),
      drained: () => drained(conn),
      close: (error) => {
        const [code, reason] = conn.closing ?? codeOf(error);
        this.#close(conn, code, reason);
      },
    };
    this.#conns.set(ws, conn);
    conn.driver = new Driver(session, transport, {
      kicked: true,
      coalesce: true,
      // The host closes a socket with no HELLO (4408) with its own timer.
      handshakeTimeout: 0,
      idleTimeout: this.#idleMs,
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
    if (conn.closed || !this.#resumes) return;
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

  /**
   * Stops every session without closing its socket, once the messages already received are handled, and keeps each
   * one's state with its socket: what eviction after hibernation leaves (the sockets and the storage). A new core on
   * the same host resumes them. Tests use it to stand for an eviction, which never comes in the middle of work.
   */
  async suspend(): Promise<void> {
    const conns = [...this.#conns.values()];
    await Promise.all(conns.map((conn) => conn.driver.handled.catch(() => {})));
    for (const conn of conns) {
      conn.mark = undefined;
      this.#save(conn);
      // Closed for this core only: the driver stops, sends nothing, and leaves the socket open.
      conn.closed = true;
      clearTimeout(conn.saveTimer);
      clearTimeout(conn.drainTimer);
      conn.driver.fail(new Error("Suspended"));
      this.#conns.delete(conn.ws);
    }
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

  /** Resolves once every message received from `ws` so far is handled (the host stops reading it meanwhile). */
  handled(ws: RelaySocket): Promise<void> {
    return this.#conns.get(ws)?.driver.handledSoFar() ?? Promise.resolve();
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
    clearTimeout(conn.drainTimer);
    conn.waiting = false;
    this.#conns.delete(conn.ws);
    if (this.#conns.size === 0) this.#pages.clear();
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
