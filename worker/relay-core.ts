/**
 * The relay of one log, whatever hosts it: the Durable Object on Cloudflare (`relay.ts`) or `hyperlog serve` on
 * Node, Deno or Bun (`serve.ts`). It needs a {@link Storage} for the log and a small {@link RelayHost}: how to list
 * the open sockets and keep a few fields with each. The host accepts sockets and passes their messages and closes
 * to {@link RelayCore.message} and {@link RelayCore.closed}.
 *
 * A socket goes through two phases:
 *
 * 1. The initial exchange runs the ordinary protocol (`replicate()` from `src/replicate.ts`, not live, in `sync`
 *    mode for writers and `push` mode for readers): HELLO, the checkpoint or reconciliation, the nodes each side
 *    lacks, SYNCED and ACK. The client runs a live session; to it the relay is a peer that stays open afterwards.
 *    Messages that arrive together go into the session as one chunk, so a burst of nodes is stored in a few
 *    commits.
 * 2. The live phase is driven message by message, with nothing in memory that cannot be rebuilt: a NODE from a
 *    socket is stored (with the others that arrived with it, in one commit) and then sent to every other live
 *    socket, never back to its sender; the only state a socket needs is kept by the host ({@link RelaySocketState}:
 *    its role, its mode, its phase and `cursor`, the change number up to which the relay has sent it every node or
 *    got the node from it). A host that drops the core's memory (a hibernated Durable Object) makes a new core,
 *    which reads the states back and carries on. A socket caught by that in the middle of its initial exchange is
 *    closed with code 4010: reconnect.
 *
 * @module
 */
import {
  ClosedError,
  type HyperlogError,
  InvalidNodeError,
  MissingLinksError,
  ProtocolError,
  SignatureError,
} from "../src/errors.ts";
import { isKey, toHex } from "../src/hex.ts";
import { WIRE_NODES } from "../src/internal.ts";
import { Hyperlog } from "../src/log.ts";
import type { StoredNode } from "../src/node.ts";
import { replicate, type Replication } from "../src/replicate.ts";
import {
  ACK,
  concatBytes,
  decodeNodes,
  encodeNodeBody,
  ERROR,
  frame,
  FrameDecoder,
  HELLO,
  NODE,
  NODES,
  splitNodes,
  SYNCED,
} from "../src/wire.ts";
import type { Storage } from "../storage/storage.ts";
import type { Refusal } from "./caps.ts";
import { CLOSE, type RelayLimits, type Role } from "./limits.ts";
import { LOG_VIEW_PATHS, logView, noteWrites } from "./log-page.ts";
import { nodeJson, nodeText } from "./node-json.ts";

export { nodeJson };

/** Nodes stored in one commit in the live phase, at most. */
const LIVE_BATCH = 512;
/** Bytes of messages handed to the initial exchange's session in one chunk, at most. */
const CHUNK_BYTES = 1 << 20;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/**
 * A server-side WebSocket as the relay uses it (a Workers socket accepted with the hibernation API fits, and so
 * does the wrapper `serve.ts` puts around a Node, Deno or Bun socket).
 *
 * @example
 * ```ts
 * import type { RelaySocket } from "./relay-core.ts";
 * const sink: RelaySocket = { readyState: 1, send() {}, close() {} };
 * console.assert(sink.readyState === 1);
 * ```
 */
export interface RelaySocket {
  /** 1 while open. */
  readonly readyState: number;
  /** Sends one binary message. */
  send(data: Uint8Array): void;
  /** Closes the socket. */
  close(code?: number, reason?: string): void;
}

/**
 * What the relay keeps with each socket, through {@link RelayHost.save}: small and structured-cloneable, so that a
 * Durable Object can keep it in the socket's attachment across hibernation.
 *
 * @example
 * ```ts
 * import type { RelaySocketState } from "./relay-core.ts";
 * const state: RelaySocketState = { name: "chat", role: "write", phase: "live", sends: true, cursor: 12 };
 * console.assert(state.cursor === 12);
 * ```
 */
export interface RelaySocketState {
  /** The log's name (a Durable Object learns it from requests; a woken one learns it here). */
  name: string;
  /** What the client may do. */
  role: Role;
  /** `handshake` during the initial exchange, then `live`. */
  phase: "handshake" | "live";
  /** The relay sends nodes to this socket (its mode is not `push`). */
  sends: boolean;
  /** Every node up to this change number was sent to the socket or came from it. */
  cursor: number;
}

/**
 * The seam between the relay and what hosts it: the Durable Object fills it with its hibernation API
 * (`ctx.getWebSockets()`, `ws.serializeAttachment`), `hyperlog serve` with a set and a map.
 *
 * @example
 * ```ts
 * import type { RelayHost, RelaySocket, RelaySocketState } from "./relay-core.ts";
 * const states = new Map<RelaySocket, RelaySocketState>();
 * const host: RelayHost = {
 *   sockets: () => states.keys(),
 *   save: (ws, state) => void states.set(ws, state),
 *   load: (ws) => states.get(ws),
 *   waitUntil: () => {},
 * };
 * console.assert([...host.sockets()].length === 0);
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
}

/** What each socket has in memory while the core lives. */
interface Conn {
  ws: RelaySocket;
  att: RelaySocketState;
  session?: Replication | undefined;
  writer?: WritableStreamDefaultWriter<Uint8Array> | undefined;
  /** The session reached `synced`: later messages belong to the live phase. */
  synced: boolean;
  /** The relay's HELLO told the client this snapshot; live sending starts after it. */
  snapshot: number;
  /** Keys of nodes this socket sent that were not yet passed by its cursor: never sent back. */
  heard: Set<string>;
  /** Messages not yet handled, in order. */
  inbox: Uint8Array[];
  /** The client's SYNCED went into the session: its nodes from then on are live ones. */
  peerSynced: boolean;
  /** Live nodes that came before the initial exchange ended, handled once it has. */
  held: Uint8Array[];
  /** The inbox is being worked through... */
  draining: boolean;
  /** ...until this settles. */
  drained: Promise<void>;
  /** Live nodes waiting to be stored together. */
  pending: Uint8Array[];
  flushing: boolean;
  closed: boolean;
}

function errorFrame(name: string, message: string): Uint8Array {
  const bytes = textEncoder.encode(JSON.stringify({ name, message }));
  const body = new Uint8Array(1 + bytes.length);
  body[0] = ERROR;
  body.set(bytes, 1);
  return body;
}

/** The close code for an error that ended a session. */
function codeOf(error: unknown): number {
  if (error instanceof InvalidNodeError || error instanceof SignatureError || error instanceof MissingLinksError) {
    return CLOSE.INVALID_NODE;
  }
  if (error instanceof ProtocolError) return CLOSE.PROTOCOL;
  return CLOSE.INTERNAL;
}

/** A close reason is at most 123 bytes. */
function reasonOf(message: string): string {
  const bytes = textEncoder.encode(message);
  return bytes.length <= 123 ? message : textDecoder.decode(bytes.subarray(0, 120)).replace(/\uFFFD$/, "") + "...";
}

/** The mode a client's HELLO asks for (the session checks the rest). */
function modeOf(body: Uint8Array): unknown {
  try {
    return (JSON.parse(textDecoder.decode(body.subarray(1))) as { mode?: unknown }).mode;
  } catch {
    return undefined;
  }
}

/** Raw bytes with the exact length (a view of part of a buffer would send the whole buffer). */
function exact(body: Uint8Array): Uint8Array {
  return body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : body.slice();
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
  #fanning = false;
  #again = false;

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

  /** A node was stored: queue it for the mirror and send it on. */
  #added(node: StoredNode): void {
    if (this.#mirror !== undefined) {
      this.#mirrorQueue.push(node);
      if (!this.#mirroring) {
        this.#mirroring = true;
        this.#host.waitUntil(this.#drainMirror());
      }
    }
    this.#scheduleFanOut();
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
   * Takes a socket the host has just accepted (and will list in {@link RelayHost.sockets}) and starts its initial
   * exchange. The relay may send on it at once.
   */
  async accept(ws: RelaySocket, role: Role): Promise<void> {
    await this.#log.ready();
    const att: RelaySocketState = { name: this.#name, role, phase: "handshake", sends: true, cursor: 0 };
    this.#host.save(ws, att);
    this.#startSession(this.#conn(ws, att));
  }

  #conn(ws: RelaySocket, att: RelaySocketState): Conn {
    const conn: Conn = {
      ws,
      att,
      synced: false,
      snapshot: 0,
      heard: new Set(),
      inbox: [],
      peerSynced: false,
      held: [],
      draining: false,
      drained: Promise.resolve(),
      pending: [],
      flushing: false,
      closed: false,
    };
    this.#conns.set(ws, conn);
    return conn;
  }

  /** Runs the initial exchange with the ordinary protocol, then hands the socket to the live phase. */
  #startSession(conn: Conn): void {
    const session = replicate(this.#log, {
      mode: conn.att.role === "write" ? "sync" : "push",
      live: false,
      maxFrame: this.#limits.maxFrame,
    });
    conn.session = session;
    conn.writer = session.writable.getWriter();
    conn.writer.closed.catch(() => {});
    session.synced.then(() => (conn.synced = true), () => {});
    const pumped = (async () => {
      // The session writes varint-framed bytes; each frame goes out as one message.
      const reader = session.readable.getReader();
      const decoder = new FrameDecoder(Number.MAX_SAFE_INTEGER);
      let first = true;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        for (const body of decoder.push(value)) {
          if (first && body[0] === HELLO) {
            first = false;
            conn.snapshot = JSON.parse(textDecoder.decode(body.subarray(1))).length;
          }
          if (conn.closed || conn.ws.readyState !== 1) continue;
          conn.ws.send(exact(body));
        }
      }
    })().catch(() => {});
    session.done.then(
      async () => {
        await pumped;
        if (conn.closed) return;
        conn.att = { ...conn.att, phase: "live", cursor: conn.snapshot };
        this.#host.save(conn.ws, conn.att);
        conn.session = undefined;
        conn.writer = undefined;
        this.#kick(conn);
        this.#scheduleFanOut();
      },
      async (error: unknown) => {
        await pumped;
        if ((error as { fromPeer?: boolean }).fromPeer === true) this.#close(conn, 1000, "Peer stopped the session");
        else this.#close(conn, codeOf(error), (error as Error).message ?? String(error));
      },
    );
  }

  /** The live phase's state of a socket, from memory or (after a wake-up) from the host. */
  #connOf(ws: RelaySocket): Conn | undefined {
    const known = this.#conns.get(ws);
    if (known !== undefined) return known;
    if (ws.readyState !== 1) return undefined;
    const att = this.#host.load(ws) as RelaySocketState | null | undefined;
    if (att === null || att === undefined || typeof att !== "object") return undefined;
    const conn = this.#conn(ws, att);
    if (att.phase !== "live") {
      this.#close(conn, CLOSE.INTERRUPTED, "The relay restarted during the initial exchange; reconnect");
      return undefined;
    }
    return conn;
  }

  /** A message from a socket. Refusals close only that socket. */
  async message(ws: RelaySocket, message: ArrayBuffer | Uint8Array | string): Promise<void> {
    await this.#log.ready();
    const conn = this.#connOf(ws);
    if (conn === undefined || conn.closed) return;
    if (typeof message === "string") {
      return this.#refuse(conn, CLOSE.PROTOCOL, "ProtocolError", "The relay takes binary messages only");
    }
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
    // A NODES message is handled as the NODE messages it holds, each checked and counted on its own.
    let bodies = [body];
    if (body[0] === NODES) {
      try {
        bodies = splitNodes(body);
      } catch (error) {
        return this.#refuse(conn, CLOSE.PROTOCOL, "ProtocolError", (error as Error).message);
      }
    }
    for (const one of bodies) if (one[0] === NODE && !this.#admitNode(conn, one)) return;
    // Handled in order (a NODES message whole: the session splits it); what arrives while earlier messages are being
    // handled is handled together.
    conn.inbox.push(body);
    this.#kick(conn);
  }

  /** Checks a node from a socket against its role and the node limit; false when the socket was refused. */
  #admitNode(conn: Conn, body: Uint8Array): boolean {
    if (conn.att.role !== "write") {
      this.#refuse(conn, CLOSE.READ_ONLY, "ProtocolError", "This client may only read; its nodes are refused");
      return false;
    }
    if (body.length > this.#limits.maxNode) {
      this.#refuse(
        conn,
        CLOSE.NODE_TOO_LARGE,
        "InvalidNodeError",
        `Node of ${body.length} bytes is over the limit of ${this.#limits.maxNode} bytes`,
      );
      return false;
    }
    const refusal = this.#admit?.(conn.ws, body.length);
    if (refusal !== undefined) {
      this.#refuse(conn, refusal.code, "ProtocolError", refusal.reason);
      return false;
    }
    // Also in the initial exchange: those nodes are stored past the socket's live cursor, and must not echo.
    if (body.length >= 33) conn.heard.add(toHex(body.subarray(1, 33)));
    return true;
  }

  /** Works through the socket's messages unless that is under way. */
  #kick(conn: Conn): void {
    if (conn.draining) return;
    // Set before the call: the drain may finish without awaiting anything, and clears the flag itself.
    conn.draining = true;
    conn.drained = this.#drain(conn).catch((error) => this.#close(conn, codeOf(error), (error as Error).message));
  }

  async #drain(conn: Conn): Promise<void> {
    try {
      while ((conn.inbox.length > 0 || (conn.held.length > 0 && conn.synced)) && !conn.closed) {
        if (!conn.synced && conn.writer !== undefined) {
          // Wait a turn of the event loop, so that the messages arriving right behind this one join it in one
          // chunk: a host that delivers each message as its own event (a Durable Object) would otherwise feed the
          // session one message per write, and the session would cost more per node than the socket does.
          await new Promise((resolve) => setTimeout(resolve, 0));
          await this.#handshake(conn);
          continue;
        }
        const bodies = conn.held.length > 0 ? conn.held.concat(conn.inbox) : conn.inbox;
        conn.held = [];
        conn.inbox = [];
        for (const body of bodies) {
          if (conn.closed) return;
          this.#live(conn, body);
        }
      }
    } finally {
      conn.draining = false;
    }
  }

  /**
   * Hands the messages waiting in the inbox to the initial exchange's session as one chunk, up to and including the
   * first SYNCED, ACK or ERROR (after which the session may be over, and later messages belong to the live phase).
   * Nodes after the client's SYNCED are its live nodes (a live client forwards new nodes as soon as it is synced,
   * which can be before its last ACK): they wait for the live phase.
   */
  async #handshake(conn: Conn): Promise<void> {
    const inbox = conn.inbox;
    const frames: Uint8Array[] = [];
    let size = 0;
    let taken = 0;
    while (taken < inbox.length && size < CHUNK_BYTES) {
      const body = inbox[taken++]!;
      if (conn.peerSynced && (body[0] === NODE || body[0] === NODES)) {
        conn.held.push(body);
        continue;
      }
      if (body[0] === SYNCED) conn.peerSynced = true;
      if (body[0] === HELLO) conn.att.sends = modeOf(body) !== "push";
      const framed = frame(body);
      frames.push(framed);
      size += framed.length;
      if (body[0] === SYNCED || body[0] === ACK || body[0] === ERROR) break;
    }
    conn.inbox = taken === inbox.length ? [] : inbox.slice(taken);
    if (frames.length === 0) return;
    await conn.writer!.write(frames.length === 1 ? frames[0]! : concatBytes(frames, size)).catch(() => {});
    // The session marks itself synced in a reaction to the last control message: let it run.
    await Promise.resolve();
  }

  /** One message of the live phase. */
  #live(conn: Conn, body: Uint8Array): void {
    if (conn.att.phase !== "live" && !conn.synced) return;
    switch (body[0]) {
      case NODES:
        for (const node of splitNodes(body)) {
          this.#live(conn, node);
          if (conn.closed) return;
        }
        return;
      case NODE: {
        // Counted against the socket's write budget when it arrived (`admit`), in every phase.
        conn.pending.push(body);
        if (conn.pending.length >= LIVE_BATCH) void this.#flush(conn);
        else if (!conn.flushing) {
          conn.flushing = true;
          // Store what arrived together in one commit, once the socket pauses.
          setTimeout(() => void this.#flush(conn), 0);
        }
        return;
      }
      case ERROR:
        this.#close(conn, 1000, "Peer stopped the session");
        return;
      default:
        return this.#refuse(
          conn,
          CLOSE.PROTOCOL,
          "ProtocolError",
          `The peer sent message type ${String(body[0])} after the initial exchange; only nodes may follow`,
        );
    }
  }

  async #flush(conn: Conn): Promise<void> {
    const bodies = conn.pending;
    conn.pending = [];
    conn.flushing = false;
    if (conn.closed || bodies.length === 0) return;
    try {
      const nodes = decodeNodes(bodies, 1);
      await this.#log.ingest(nodes, WIRE_NODES);
    } catch (error) {
      if (error instanceof ClosedError) return;
      const e = error as HyperlogError;
      this.#refuse(conn, codeOf(e), e.name, e.message);
    }
  }

  #scheduleFanOut(): void {
    if (this.#fanning) {
      this.#again = true;
      return;
    }
    this.#fanning = true;
    queueMicrotask(async () => {
      try {
        do {
          this.#again = false;
          await this.#fanOut();
        } while (this.#again);
      } catch {
        // A storage failure: the next node added tries again.
      } finally {
        this.#fanning = false;
      }
    });
  }

  /** Sends every live socket the nodes past its cursor, each encoded once, none back to where it came from. */
  async #fanOut(): Promise<void> {
    const log = this.#log;
    for (const ws of this.#host.sockets()) this.#connOf(ws);
    const links = [...this.#conns.values()].filter((c) => !c.closed && c.att.phase === "live");
    if (links.length === 0) return;
    const until = log.length;
    let cursor = Math.min(...links.map((c) => c.att.cursor));
    while (cursor < until) {
      const page = await log.storage.read({ since: cursor, until, limit: 512, reverse: false });
      if (page.length === 0) break;
      for (const node of page) {
        let body: Uint8Array | undefined;
        for (const link of links) {
          if (link.att.cursor >= node.change) continue;
          if (link.heard.delete(node.key) || !link.att.sends || link.closed || link.ws.readyState !== 1) continue;
          body ??= encodeNodeBody(NODE, node);
          link.ws.send(body);
        }
      }
      cursor = page[page.length - 1]!.change;
      for (const link of links) if (link.att.cursor < cursor) link.att.cursor = cursor;
    }
    for (const link of links) {
      if (link.heard.size > 100_000) link.heard.clear();
      if (!link.closed) this.#host.save(link.ws, link.att);
    }
  }

  /** Tells the client why, then closes its socket. */
  #refuse(conn: Conn, code: number, name: string, message: string): void {
    if (conn.closed) return;
    try {
      if (conn.ws.readyState === 1) conn.ws.send(errorFrame(name, message));
    } catch {
      // Closing anyway.
    }
    this.#close(conn, code, message);
  }

  #close(conn: Conn, code: number, reason: string): void {
    if (conn.closed) return;
    conn.closed = true;
    if (code >= 4000) this.#refused?.(conn.ws, code, reason);
    this.#conns.delete(conn.ws);
    conn.writer?.abort(new ProtocolError("The socket closed")).catch(() => {});
    try {
      conn.ws.close(code, reasonOf(reason));
    } catch {
      // Already closed.
    }
  }

  /** The client closed its socket (or it failed: pass 1011). */
  closed(ws: RelaySocket, code: number): void {
    const conn = this.#conns.get(ws);
    if (conn !== undefined) {
      const close = () => this.#close(conn, code === 1005 || code === 1006 ? 1000 : code, "Closed");
      // What the client sent before closing is handled first: its last ACK completes the initial exchange, which then
      // stores its checkpoint, so that the next sync costs only the difference.
      if (conn.draining) void conn.drained.then(close);
      else close();
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
    const conns = [...this.#conns.values()];
    await Promise.all(conns.map((conn) => conn.drained));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(conns.map((conn) => conn.session?.done.catch(() => {}))),
      new Promise((resolve) => (timer = setTimeout(resolve, 1000))),
    ]);
    clearTimeout(timer);
    for (const conn of [...this.#conns.values()]) this.#close(conn, code, reason);
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
