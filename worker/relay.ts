/**
 * The relay's Durable Object: one per log name. It stores the log with `SqliteStorage` over `ctx.storage.sql`,
 * replicates with every connected client over hibernatable WebSockets, and answers the log's HTTP reads.
 *
 * A socket goes through two phases:
 *
 * 1. The initial exchange runs the ordinary protocol (`replicate()` from `src/replicate.ts`, not live, in `sync`
 *    mode for writers and `push` mode for readers): HELLO, the checkpoint or reconciliation, the nodes each side
 *    lacks, SYNCED and ACK. The client runs a live session; to it the relay is a peer that stays open afterwards.
 * 2. The live phase is driven one message at a time, with nothing in memory that cannot be rebuilt: a NODE from a
 *    socket is stored and then sent to every other live socket, never back to its sender; the only state a socket
 *    needs is in its attachment (`ws.serializeAttachment`): its role, its mode, its phase and `cursor`, the change
 *    number up to which the relay has sent it every node (or it came from that socket). A hibernated Object that
 *    wakes up for a message reads the attachment and carries on. A socket caught by hibernation in the middle of
 *    its initial exchange (which takes a client silent for many seconds) is closed with code 4010: reconnect.
 *
 * @module
 */
import {
  ClosedError,
  HyperlogError,
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
import { decodeNodes, encodeNodeBody, frame, FrameDecoder } from "../src/wire.ts";
import { durableObjectSqlite, type DurableObjectSqlStorage } from "../storage/sqlite-do.ts";
import { CLOSE, readLimits, type RelayLimits, type Role, writersOf } from "./limits.ts";

const HELLO = 1;
const NODE = 4;
const ERROR = 7;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/**
 * A WebSocket accepted with the hibernation API (structural: no Workers types needed).
 *
 * @example
 * ```ts ignore
 * const ws: HibernatableWebSocket = server;
 * ws.serializeAttachment({ phase: "live" });
 * ```
 */
export interface HibernatableWebSocket {
  /** 1 while open. */
  readonly readyState: number;
  /** Sends one message. */
  send(data: ArrayBuffer | ArrayBufferView | string): void;
  /** Closes the socket. */
  close(code?: number, reason?: string): void;
  /** Keeps a small structured-cloneable value with the socket, across hibernation. */
  serializeAttachment(value: unknown): void;
  /** The value kept by `serializeAttachment`. */
  deserializeAttachment(): unknown;
}

/**
 * The part of a Durable Object's `ctx` the relay uses.
 *
 * @example
 * ```ts ignore
 * const state: RelayState = ctx;
 * ```
 */
export interface RelayState {
  /** The Object's storage, with its SQL API. */
  readonly storage: DurableObjectSqlStorage;
  /** Accepts a socket with the hibernation API. */
  acceptWebSocket(ws: HibernatableWebSocket, tags?: string[]): void;
  /** Every socket accepted and still open, also after a wake-up. */
  getWebSockets(tag?: string): HibernatableWebSocket[];
  /** Keeps the Object alive until the promise settles. */
  waitUntil(promise: Promise<unknown>): void;
}

/**
 * A Workers KV namespace, as far as the mirror uses it.
 *
 * @example
 * ```ts ignore
 * const kv: KvNamespaceLike = env.NODES;
 * ```
 */
export interface KvNamespaceLike {
  /** Reads a value as text. */
  get(key: string): Promise<string | null>;
  /** Writes a value. */
  put(key: string, value: string): Promise<void>;
}

/**
 * The relay's environment: bindings and settings (see README "Relay worker").
 *
 * @example
 * ```ts
 * import type { RelayEnv } from "./relay.ts";
 * const env: Partial<RelayEnv> = { WRITE_TOKEN: "secret" };
 * console.assert(env.WRITE_TOKEN === "secret");
 * ```
 */
export interface RelayEnv {
  /** The Durable Object namespace of {@link RelayObject}. */
  RELAY: { idFromName(name: string): unknown; get(id: unknown): { fetch(request: Request): Promise<Response> } };
  /** The KV namespace mirroring nodes by key (optional). */
  NODES?: KvNamespaceLike;
  /** Reading needs this token (or the write token), when set. */
  READ_TOKEN?: string;
  /** Writing needs this token, when set. */
  WRITE_TOKEN?: string;
  /** JSON: log name (or `*`) to the hex public keys allowed to write; nodes must be signed by one of them. */
  WRITERS?: string;
  /** The largest WebSocket message, in bytes (default 1 MiB). */
  MAX_FRAME_BYTES?: string;
  /** The largest encoded node, in bytes (default 256 KiB). */
  MAX_NODE_BYTES?: string;
  /** Live nodes per second one socket may send (default 1 000). */
  MAX_NODES_PER_SECOND?: string;
  /**
   * Tests only: "1" enables `POST /debug/forget` on the Object, which drops everything it holds in memory (sessions,
   * sockets' state, the open log) as hibernation does, so that tests can check that it carries on after a wake-up.
   */
  RELAY_DEBUG?: string;
}

/** What each socket keeps across hibernation. */
interface Attachment {
  /** The log's name (the Object learns it from requests; a woken Object learns it here). */
  name: string;
  role: Role;
  phase: "handshake" | "live";
  /** The relay sends nodes to this socket (its mode is not `push`). */
  sends: boolean;
  /** Every node up to this change number was sent to the socket or came from it. */
  cursor: number;
}

/** What each socket has in memory while the Object is awake. */
interface Conn {
  ws: HibernatableWebSocket;
  att: Attachment;
  session?: Replication | undefined;
  writer?: WritableStreamDefaultWriter<Uint8Array> | undefined;
  /** The session reached `synced`: later messages belong to the live phase. */
  synced: boolean;
  /** The relay's HELLO told the client this snapshot; live sending starts after it. */
  snapshot: number;
  /** Keys of nodes this socket sent that were not yet passed by its cursor: never sent back. */
  heard: Set<string>;
  /** Messages are handled one after another. */
  queue: Promise<void>;
  /** Live nodes waiting to be stored together. */
  pending: Uint8Array[];
  flushing: boolean;
  tokens: number;
  refilled: number;
  closed: boolean;
}

/** A node as the HTTP routes show it: the value parsed when it is JSON, else in base64. */
export function nodeJson(node: StoredNode): Record<string, unknown> {
  const out: Record<string, unknown> = { key: node.key, links: node.links, change: node.change };
  let parsed: unknown;
  let isJson = false;
  try {
    parsed = JSON.parse(textDecoder.decode(node.value));
    isJson = true;
  } catch {
    // Not JSON: base64 below.
  }
  if (isJson) out.value = parsed;
  else out.valueBase64 = toBase64(node.value);
  if (node.identity !== undefined) {
    out.identity = node.identity;
    out.signature = node.signature;
  }
  return out;
}

function toBase64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
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

/** Sends raw bytes with the exact length. */
function sendBytes(ws: HibernatableWebSocket, body: Uint8Array): void {
  ws.send(body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : body.slice());
}

/**
 * The Durable Object of one log. Workers calls `fetch` for requests forwarded by the app and the
 * `webSocketMessage`, `webSocketClose` and `webSocketError` handlers for hibernatable sockets.
 *
 * @example Its binding in wrangler.jsonc
 * ```ts ignore
 * // "durable_objects": { "bindings": [{ "name": "RELAY", "class_name": "RelayObject" }] },
 * // "migrations": [{ "tag": "v1", "new_sqlite_classes": ["RelayObject"] }]
 * ```
 */
export class RelayObject {
  readonly #ctx: RelayState;
  readonly #env: RelayEnv;
  readonly #limits: RelayLimits;
  readonly #conns = new Map<HibernatableWebSocket, Conn>();
  #name: string | undefined;
  #log: Hyperlog<Uint8Array> | undefined;
  #fanning = false;
  #again = false;

  /** Keeps `ctx` and `env`; the log opens on the first request or message. */
  constructor(ctx: RelayState, env: RelayEnv) {
    this.#ctx = ctx;
    this.#env = env;
    this.#limits = readLimits(env as unknown as Record<string, unknown>);
  }

  /** The log, opened once the Object knows its name. */
  async #open(name: string): Promise<Hyperlog<Uint8Array>> {
    if (this.#log === undefined) {
      this.#name = name;
      const writers = writersOf(this.#env, name);
      const log = new Hyperlog<Uint8Array>(durableObjectSqlite(this.#ctx.storage), {
        valueEncoding: "binary",
        ...(writers === undefined ? {} : { writers }),
      });
      log.addEventListener("add", (event) => this.#added((event as CustomEvent<StoredNode>).detail));
      this.#log = log;
    }
    await this.#log.ready();
    return this.#log;
  }

  /** A node was stored: mirror it to KV and send it on. */
  #added(node: StoredNode): void {
    const kv = this.#env.NODES;
    if (kv !== undefined && this.#name !== undefined) {
      this.#ctx.waitUntil(kv.put(`${this.#name}/${node.key}`, JSON.stringify(nodeJson(node))).catch(() => {}));
    }
    this.#scheduleFanOut();
  }

  /** Serves the app's forwarded requests: `/ws`, `/info`, `/nodes/KEY`, `/changes?since=N`. */
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const name = request.headers.get("x-hyperlog-log");
    if (name === null) return new Response("Missing x-hyperlog-log header", { status: 400 });
    const log = await this.#open(name);
    const path = url.pathname;
    if (path === "/ws") return this.#accept(request, name);
    if (path === "/debug/forget" && this.#env.RELAY_DEBUG === "1" && request.method === "POST") {
      // What eviction after hibernation leaves: the sockets (with their attachments) and the database.
      this.#conns.clear();
      this.#log = undefined;
      return Response.json({ forgot: true });
    }
    if (path === "/info") {
      return Response.json({ heads: await log.storage.heads(), length: log.length });
    }
    if (path.startsWith("/nodes/")) {
      const key = path.slice("/nodes/".length);
      const node = isKey(key) ? await log.storage.get(key) : undefined;
      if (node === undefined) return Response.json({ error: `No node ${key} in log ${name}` }, { status: 404 });
      return Response.json(nodeJson(node));
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
          controller.enqueue(textEncoder.encode(page.map((n) => JSON.stringify(nodeJson(n)) + "\n").join("")));
        },
      });
      return new Response(body, { headers: { "content-type": "application/x-ndjson" } });
    }
    return new Response("Not found", { status: 404 });
  }

  #accept(request: Request, name: string): Response {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("Expected a WebSocket upgrade", { status: 426 });
    }
    const role: Role = request.headers.get("x-hyperlog-role") === "write" ? "write" : "read";
    const Pair = (globalThis as unknown as { WebSocketPair: new () => Record<0 | 1, HibernatableWebSocket> })
      .WebSocketPair;
    const pair = new Pair();
    const client = pair[0];
    const server = pair[1];
    this.#ctx.acceptWebSocket(server);
    const att: Attachment = { name, role, phase: "handshake", sends: true, cursor: 0 };
    server.serializeAttachment(att);
    this.#startSession(this.#conn(server, att));
    const headers = new Headers();
    const protocol = request.headers.get("x-hyperlog-protocol");
    if (protocol !== null) headers.set("sec-websocket-protocol", protocol);
    return new Response(null, { status: 101, webSocket: client, headers } as ResponseInit);
  }

  #conn(ws: HibernatableWebSocket, att: Attachment): Conn {
    const conn: Conn = {
      ws,
      att,
      synced: false,
      snapshot: 0,
      heard: new Set(),
      queue: Promise.resolve(),
      pending: [],
      flushing: false,
      tokens: this.#limits.nodesPerSecond,
      refilled: Date.now(),
      closed: false,
    };
    this.#conns.set(ws, conn);
    return conn;
  }

  /** Runs the initial exchange with the ordinary protocol, then hands the socket to the live phase. */
  #startSession(conn: Conn): void {
    const log = this.#log!;
    const session = replicate(log, {
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
          sendBytes(conn.ws, body);
        }
      }
    })().catch(() => {});
    session.done.then(
      async () => {
        await pumped;
        if (conn.closed) return;
        conn.att = { ...conn.att, phase: "live", cursor: conn.snapshot };
        conn.ws.serializeAttachment(conn.att);
        conn.session = undefined;
        conn.writer = undefined;
        this.#scheduleFanOut();
      },
      async (error: unknown) => {
        await pumped;
        if ((error as { fromPeer?: boolean }).fromPeer === true) this.#close(conn, 1000, "Peer stopped the session");
        else this.#close(conn, codeOf(error), (error as Error).message ?? String(error));
      },
    );
  }

  /** The live phase's state of a socket, from memory or (after a wake-up) from its attachment. */
  #connOf(ws: HibernatableWebSocket): Conn | undefined {
    const known = this.#conns.get(ws);
    if (known !== undefined) return known;
    if (ws.readyState !== 1) return undefined;
    const att = ws.deserializeAttachment() as Attachment | null;
    if (att === null || typeof att !== "object") return undefined;
    const conn = this.#conn(ws, att);
    if (att.phase !== "live") {
      this.#close(conn, CLOSE.INTERRUPTED, "The relay restarted during the initial exchange; reconnect");
      return undefined;
    }
    return conn;
  }

  /** A message from a hibernatable socket. */
  async webSocketMessage(ws: HibernatableWebSocket, message: ArrayBuffer | string): Promise<void> {
    const att = ws.deserializeAttachment() as Attachment | null;
    if (att !== null && this.#log === undefined) await this.#open(att.name);
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
    const body = new Uint8Array(message);
    if (body.length === 0) return this.#refuse(conn, CLOSE.PROTOCOL, "ProtocolError", "Empty message");
    if (body[0] === NODE) {
      if (conn.att.role !== "write") {
        return this.#refuse(conn, CLOSE.READ_ONLY, "ProtocolError", "This client may only read; its nodes are refused");
      }
      if (body.length > this.#limits.maxNode) {
        return this.#refuse(
          conn,
          CLOSE.NODE_TOO_LARGE,
          "InvalidNodeError",
          `Node of ${body.length} bytes is over the limit of ${this.#limits.maxNode} bytes`,
        );
      }
      if (body.length >= 33) conn.heard.add(toHex(body.subarray(1, 33)));
    }
    // Handled in order, one after another; the next message need not wait for this one to be stored.
    conn.queue = conn.queue.then(() => this.#handle(conn, body)).catch((error) => {
      this.#close(conn, codeOf(error), (error as Error).message);
    });
  }

  async #handle(conn: Conn, body: Uint8Array): Promise<void> {
    if (conn.closed) return;
    if (!conn.synced && conn.writer !== undefined) {
      if (body[0] === HELLO) conn.att.sends = modeOf(body) !== "push";
      // The initial exchange: the ordinary session handles it (it takes varint-framed bytes).
      await conn.writer.write(frame(body)).catch(() => {});
      return;
    }
    if (conn.att.phase !== "live" && !conn.synced) return;
    switch (body[0]) {
      case NODE: {
        const now = Date.now();
        const rate = this.#limits.nodesPerSecond;
        conn.tokens = Math.min(rate, conn.tokens + ((now - conn.refilled) / 1000) * rate);
        conn.refilled = now;
        if (conn.tokens < 1) {
          return this.#refuse(
            conn,
            CLOSE.RATE_LIMITED,
            "ProtocolError",
            `More than ${rate} nodes per second from one socket; slow down and reconnect`,
          );
        }
        conn.tokens--;
        conn.pending.push(body);
        if (!conn.flushing) {
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
      await this.#log!.ingest(nodes, WIRE_NODES);
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
    if (log === undefined) return;
    for (const ws of this.#ctx.getWebSockets()) this.#connOf(ws);
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
      if (!link.closed) link.ws.serializeAttachment(link.att);
    }
  }

  /** Tells the client why, then closes its socket. */
  #refuse(conn: Conn, code: number, name: string, message: string): void {
    if (conn.closed) return;
    try {
      if (conn.ws.readyState === 1) sendBytes(conn.ws, errorFrame(name, message));
    } catch {
      // Closing anyway.
    }
    this.#close(conn, code, message);
  }

  #close(conn: Conn, code: number, reason: string): void {
    if (conn.closed) return;
    conn.closed = true;
    this.#conns.delete(conn.ws);
    conn.writer?.abort(new ProtocolError("The socket closed")).catch(() => {});
    try {
      conn.ws.close(code, reasonOf(reason));
    } catch {
      // Already closed.
    }
  }

  /** The client closed its socket. */
  webSocketClose(ws: HibernatableWebSocket, code: number, _reason: string, _wasClean: boolean): void {
    const conn = this.#conns.get(ws);
    if (conn !== undefined) this.#close(conn, code === 1005 || code === 1006 ? 1000 : code, "Closed");
    else {
      try {
        ws.close(1000, "Closed");
      } catch {
        // Already closed.
      }
    }
  }

  /** The socket failed. */
  webSocketError(ws: HibernatableWebSocket, _error: unknown): void {
    const conn = this.#conns.get(ws);
    if (conn !== undefined) this.#close(conn, 1011, "Socket error");
  }
}
