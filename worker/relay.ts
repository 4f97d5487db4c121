/**
 * The relay's Durable Object: one per log name. It stores the log with `SqliteStorage` over `ctx.storage.sql`,
 * replicates with every connected client over hibernatable WebSockets, and answers the log's HTTP reads. The relay
 * itself is `RelayCore` (`relay-core.ts`, shared with `hyperlog serve`); this file fills its host seam with the
 * hibernation API: `ctx.acceptWebSocket`, `ctx.getWebSockets()` and the sockets' attachments.
 *
 * Each socket runs the package's replication session (through `RelayCore`); its state is kept in the socket's
 * attachment (`ws.serializeAttachment`) with the log name and the client's role, so a hibernated Object that wakes
 * up for a message resumes every socket's session from its attachment and carries on, in the live phase and in the
 * initial exchange alike. Only a socket caught in the middle of a reconciliation is closed with code 4010: reconnect.
 *
 * @module
 */
import { durableObjectSqlite, type DurableObjectSqlStorage } from "../storage/sqlite-do.ts";
import { budgetOf, LogGuard, refuseSocket } from "./caps.ts";
import { logEvent } from "./events.ts";
import { LazyStorage } from "./lazy-storage.ts";
import { CLOSE, type Role } from "./limits.ts";
import { readSettings, type RelaySettings, writersFor } from "./settings.ts";
import type { RelayMetrics } from "./metrics.ts";
import { nodeJson, RelayCore, type RelaySocket, type RelaySocketState } from "./relay-core.ts";
import { REGISTRY_HEADER, registryResponse, RegistryReporter, sendReport } from "./registry.ts";
import { sqlPresenceStore } from "./presence-hub.ts";
import { readPresence } from "./presence-settings.ts";

export { nodeJson };

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
 * import { createApp } from "./app.ts";
 * import type { RelayEnv } from "./relay.ts";
 * const env = { READ_TOKEN: "r" } as Partial<RelayEnv> as RelayEnv;
 * const app = createApp();
 * console.assert((await app.fetch(new Request("http://relay.example/health"), env)).status === 200);
 * console.assert((await app.fetch(new Request("http://relay.example/logs/chat"), env)).status === 401);
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
  /** Nodes per second one socket may send, in every phase (default 1 000). */
  MAX_NODES_PER_SECOND?: string;
  /** Bytes of nodes per second one socket may send (default 8 MiB). */
  MAX_BYTES_PER_SECOND?: string;
  /** Nodes one socket may send at once before the rate holds it back (default 10 000). */
  MAX_NODES_BURST?: string;
  /** Bytes of nodes one socket may send at once (default 64 MiB). */
  MAX_BYTES_BURST?: string;
  /** Open WebSockets on one log (default 1 000; 0 for no cap). */
  MAX_SOCKETS_PER_LOG?: string;
  /** Bytes of a log's storage past which writes are refused with 4507 (default none). */
  MAX_LOG_BYTES?: string;
  /** Milliseconds a socket may stay open without sending its HELLO (default 10 000). */
  HELLO_TIMEOUT_MS?: string;
  /** Milliseconds an initial exchange may wait for a reply it needs before 4408 (default 30 000). */
  EXCHANGE_IDLE_MS?: string;
  /** `/metrics` answers with this token (Authorization: Bearer); unset, `/metrics` is a 404. */
  METRICS_TOKEN?: string;
  /** The secret of signed capability tokens (HS256 JWTs: `hyperlog token create`); unset, none is accepted. */
  TOKEN_SECRET?: string;
  /** The largest presence state, in bytes of JSON (default 4096). */
  PRESENCE_MAX_BYTES?: string;
  /** Presence messages per second per socket, heartbeats included (default 20). */
  PRESENCE_PER_SECOND?: string;
  /** Peers with a presence state on one log (default 100). */
  PRESENCE_PEERS?: string;
  /** Milliseconds without a message after which a peer leaves (default 30 000). */
  PRESENCE_TIMEOUT_MS?: string;
  /** "1": clients that may only read may publish presence too (default: they only watch). */
  PRESENCE_READERS?: string;
  /** Bytes of presence sent per second on one log, all sockets together; past it, states are coalesced (default 2 MiB). */
  PRESENCE_FANOUT_BYTES?: string;
  /** The counters `/metrics` shows (`hyperlog serve` passes its own; a Worker isolate keeps one). */
  METRICS?: RelayMetrics;
  /**
   * Tests only: "1" enables `POST /debug/forget` on the Object, which drops everything it holds in memory (sessions,
   * sockets' state, the open log) as hibernation does, so that tests can check that it carries on after a wake-up.
   */
  RELAY_DEBUG?: string;
}

/** KV writes in flight at once while mirroring a batch. */
const MIRROR_CONCURRENCY = 8;

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
  #settings: RelaySettings | undefined;
  #core: RelayCore | undefined;
  #storage: LazyStorage | undefined;
  /** Sockets that have sent nothing yet (for the HELLO deadline). */
  readonly #silent = new Set<HibernatableWebSocket>();
  /** Tells the registry Object (registry.ts) of this log's size, last write and refusals, for `/admin`. */
  #reporter: RegistryReporter | undefined;

  /** Keeps `ctx` and `env`; the log opens on the first request or message. */
  constructor(ctx: RelayState, env: RelayEnv) {
    this.#ctx = ctx;
    this.#env = env;
  }

  /** The settings (checked by the app before any request gets here). */
  get #config(): RelaySettings {
    return this.#settings ??= readSettings(this.#env);
  }

  /** Whether this Object has ever stored a node: a read checks without writing anything. */
  #written(): boolean {
    for (
      const _ of this.#ctx.storage.sql.exec(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'hyperlog_nodes'",
      ).raw()
    ) return true;
    return false;
  }

  /** The relay, made once the Object knows its log's name (from a request, or a socket's attachment). */
  async #open(name: string): Promise<RelayCore> {
    let created = false;
    if (this.#core === undefined) {
      created = true;
      const ctx = this.#ctx;
      const kv = this.#env.NODES;
      const config = this.#config;
      const storage = new LazyStorage({
        exists: () => this.#written(),
        create: () => durableObjectSqlite(ctx.storage),
      });
      const databaseSize = () => {
        const size = (ctx.storage.sql as { databaseSize?: unknown }).databaseSize;
        return typeof size === "number" ? size : 0;
      };
      const size = databaseSize();
      const reporter = this.#reporter = new RegistryReporter(name, (report) => sendReport(this.#env.RELAY, report));
      const guard = new LogGuard(budgetOf(config), {
        logBytes: config.caps.logBytes,
        startBytes: size,
        created: () => storage.created,
        canCreate: () => true,
      });
      this.#storage = storage;
      this.#core = new RelayCore({
        sockets: () => ctx.getWebSockets() as unknown as RelaySocket[],
        save: (ws, state) => (ws as unknown as HibernatableWebSocket).serializeAttachment(state),
        load: (ws) => (ws as unknown as HibernatableWebSocket).deserializeAttachment(),
        waitUntil: (promise) => ctx.waitUntil(promise),
      }, {
        name,
        storage,
        limits: config.limits,
        idleMs: config.caps.idleMs,
        writers: writersFor(config.writers, name),
        admit: (ws, bytes) => guard.admit(ws, bytes),
        refused: (_ws, code, reason) => this.#refused(name, code, reason),
        // Presence is kept in the Object's database too, so that a wake-up knows who is there.
        presence: {
          settings: readPresence(this.#env as unknown as Record<string, unknown>),
          store: sqlPresenceStore(ctx.storage.sql),
        },
        mirror: async (nodes) => {
          reporter.changed(databaseSize());
          if (kv === undefined) return;
          // A few writes at a time, in the background (the core hands this to waitUntil): ingest does not wait.
          let next = 0;
          const worker = async () => {
            while (next < nodes.length) {
              const node = nodes[next++]!;
              await kv.put(`${name}/${node.key}`, JSON.stringify(nodeJson(node))).catch(() => {});
            }
          };
          await Promise.all(Array.from({ length: Math.min(MIRROR_CONCURRENCY, nodes.length) }, worker));
        },
      });
    }
    await this.#core.ready();
    // A core made after a wake-up carries on every socket's session from its attachment.
    if (created) this.#core.resumeAll();
    return this.#core;
  }

  /** Serves the app's forwarded requests: `/ws`, `/info`, `/nodes/KEY`, `/changes?since=N`. */
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const name = request.headers.get("x-hyperlog-log");
    // The registry Object (registry.ts) is asked without a log's name; the app strips the header from clients.
    if (name === null && request.headers.get(REGISTRY_HEADER) === "1") {
      return await registryResponse(this.#ctx.storage.sql, request);
    }
    if (name === null) return new Response("Missing x-hyperlog-log header", { status: 400 });
    if (url.pathname !== "/ws" && this.#core === undefined && !this.#written()) {
      // Nothing is opened for a read of a log never written: the Object writes nothing.
      return Response.json(
        { error: `No log ${JSON.stringify(name)} on this relay: a log comes into being with its first write` },
        { status: 404 },
      );
    }
    const core = await this.#open(name);
    if (url.pathname === "/ws") return this.#accept(request, core);
    if (url.pathname === "/debug/forget" && this.#env.RELAY_DEBUG === "1" && request.method === "POST") {
      // What eviction after hibernation leaves: the sockets (with their attachments) and the database. An Object is
      // evicted only when idle: the work under way is finished first.
      await core.suspend();
      this.#core = undefined;
      this.#storage = undefined;
      return Response.json({ forgot: true });
    }
    if (this.#storage?.created === false) {
      return Response.json(
        { error: `No log ${JSON.stringify(name)} on this relay: a log comes into being with its first write` },
        { status: 404 },
      );
    }
    return await core.read(url);
  }

  async #accept(request: Request, core: RelayCore): Promise<Response> {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("Expected a WebSocket upgrade", { status: 426 });
    }
    const role: Role = request.headers.get("x-hyperlog-role") === "write" ? "write" : "read";
    const perLog = this.#config.caps.socketsPerLog;
    const refusal = perLog !== undefined && this.#ctx.getWebSockets().length >= perLog
      ? "This log is full; retry later"
      : undefined;
    const Pair = (globalThis as unknown as { WebSocketPair: new () => Record<0 | 1, HibernatableWebSocket> })
      .WebSocketPair;
    const pair = new Pair();
    const client = pair[0];
    const server = pair[1];
    this.#ctx.acceptWebSocket(server);
    if (refusal !== undefined) {
      refuseSocket(server, { code: CLOSE.TOO_MANY_SOCKETS, reason: refusal });
      this.#refused(core.name, CLOSE.TOO_MANY_SOCKETS, refusal);
    } else {
      await core.accept(server as unknown as RelaySocket, role);
      this.#helloDeadline(server, core);
    }
    const headers = new Headers();
    const protocol = request.headers.get("x-hyperlog-protocol");
    if (protocol !== null) headers.set("sec-websocket-protocol", protocol);
    return new Response(null, { status: 101, webSocket: client, headers } as ResponseInit);
  }

  /**
   * Closes `ws` with 4408 unless it sends a message within `HELLO_TIMEOUT_MS`. The timer lives in memory: a socket
   * silent across hibernation is not closed by it (the Object sleeps, costing nothing).
   */
  #helloDeadline(ws: HibernatableWebSocket, core: RelayCore): void {
    const ms = this.#config.caps.helloMs;
    this.#silent.add(ws);
    setTimeout(() => {
      if (!this.#silent.delete(ws) || ws.readyState !== 1) return;
      const reason = `No HELLO within ${ms} ms`;
      refuseSocket(ws, { code: CLOSE.HELLO_TIMEOUT, reason });
      core.closed(ws as unknown as RelaySocket, CLOSE.HELLO_TIMEOUT);
      this.#refused(core.name, CLOSE.HELLO_TIMEOUT, reason);
    }, ms);
  }

  /** A socket refused with `code`: logged, and counted for the admin dashboard. */
  #refused(name: string, code: number, reason: string): void {
    logEvent("refused", { log: name, code, reason });
    this.#reporter?.refused(code);
  }

  /** The relay for a socket's message or close: the one in memory, or a new one after a wake-up. */
  async #coreOf(ws: HibernatableWebSocket): Promise<RelayCore | undefined> {
    if (this.#core !== undefined) return this.#core;
    const att = ws.deserializeAttachment() as RelaySocketState | null;
    if (att === null || typeof att !== "object" || typeof att.name !== "string") return undefined;
    return await this.#open(att.name);
  }

  /** A message from a hibernatable socket. */
  async webSocketMessage(ws: HibernatableWebSocket, message: ArrayBuffer | string): Promise<void> {
    this.#silent.delete(ws);
    const core = await this.#coreOf(ws);
    if (core === undefined) {
      ws.close(1011, "The relay lost this socket's state; reconnect");
      return;
    }
    await core.message(ws as unknown as RelaySocket, message);
  }

  /** The client closed its socket. */
  async webSocketClose(ws: HibernatableWebSocket, code: number, _reason: string, _wasClean: boolean): Promise<void> {
    this.#silent.delete(ws);
    // After a wake-up, the relay is made again so that the peer's presence leaves (the others are told).
    const core = this.#core ?? await this.#coreOf(ws).catch(() => undefined);
    if (core !== undefined) core.closed(ws as unknown as RelaySocket, code);
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
    this.#core?.closed(ws as unknown as RelaySocket, 1011);
  }
}
