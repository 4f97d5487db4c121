/**
 * `hyperlog serve`: the relay outside Cloudflare, on Node, Deno or Bun. The same Hono app (`app.ts`) answers every
 * request, and the same relay (`RelayCore`, `relay-core.ts`) keeps each log; what the Durable Object does with its
 * hibernation API, {@link RelayServer} does in process: one `RelayCore` per log name, each log in its own SQLite file
 * `DIR/NAME.db`, sockets in a set and their state in a map. The WebSocket server is the runtime's: `Deno.serve` with
 * `Deno.upgradeWebSocket`, `Bun.serve` with its `websocket` handlers, and on Node `node:http` with the `ws` package
 * (`serve-node.ts`, `serve-deno.ts`, `serve-bun.ts`).
 *
 * @module
 */
import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { openSqlite } from "../storage/sqlite-open.ts";
import { createApp } from "./app.ts";
import { readLimits, type RelayLimits, type Role, writersOf } from "./limits.ts";
import type { RelayEnv } from "./relay.ts";
import { RelayCore, type RelaySocket } from "./relay-core.ts";
import type { Storage } from "../storage/storage.ts";

export type { RelayEnv, RelayLimits, RelaySocket };
export type { KvNamespaceLike } from "./relay.ts";

/**
 * The settings of a self-hosted relay: the same names as the Worker's environment (see README "Relay worker").
 *
 * @example
 * ```ts
 * import type { ServeSettings } from "./serve.ts";
 * const settings: ServeSettings = { WRITE_TOKEN: "secret", MAX_NODES_PER_SECOND: "500" };
 * console.assert(settings.WRITE_TOKEN === "secret");
 * ```
 */
export interface ServeSettings {
  /** Reading needs this token (or the write token), when set. */
  READ_TOKEN?: string | undefined;
  /** Writing needs this token, when set. */
  WRITE_TOKEN?: string | undefined;
  /** JSON: log name (or `*`) to the hex public keys allowed to write. */
  WRITERS?: string | undefined;
  /** The largest WebSocket message, in bytes (default 1 MiB). */
  MAX_FRAME_BYTES?: string | undefined;
  /** The largest encoded node, in bytes (default 256 KiB). */
  MAX_NODE_BYTES?: string | undefined;
  /** Live nodes per second one socket may send (default 1 000). */
  MAX_NODES_PER_SECOND?: string | undefined;
}

/**
 * The runtime's own socket once the upgrade is done: what {@link HostedSocket} forwards to.
 *
 * @example
 * ```ts
 * import type { RuntimeSocket } from "./serve.ts";
 * const sent: Uint8Array[] = [];
 * const socket: RuntimeSocket = { send: (data) => void sent.push(data), close() {} };
 * socket.send(new Uint8Array([1]));
 * console.assert(sent.length === 1);
 * ```
 */
export interface RuntimeSocket {
  /** Sends one binary message. */
  send(data: Uint8Array): void;
  /** Closes with a code and reason. */
  close(code: number, reason: string): void;
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
 * import type { SocketSink } from "./serve.ts";
 * const sink: SocketSink = { message() {}, closed() {} };
 * console.assert(typeof sink.closed === "function");
 * ```
 */
export interface SocketSink {
  /** A message from the client. */
  message(ws: RelaySocket, data: ArrayBuffer | Uint8Array | string): unknown;
  /** The client closed the socket with `code`. */
  closed(ws: RelaySocket, code: number): void;
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
  #queue: Uint8Array[] = [];
  #closing: [number, string] | undefined;
  #state = 1;
  readonly #relay: SocketSink;
  /** Called once when the socket is gone, whichever side closed it. */
  onGone: (() => void) | undefined;

  /** `relay` receives the socket's messages and its close. */
  constructor(relay: SocketSink) {
    this.#relay = relay;
  }

  /** 1 until either side closes, then 3. */
  get readyState(): number {
    return this.#state;
  }

  /** Sends one message (kept until the handshake is done). */
  send(data: Uint8Array): void {
    if (this.#state !== 1) return;
    if (this.#real !== undefined) this.#real.send(data);
    else this.#queue.push(data);
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
    if (this.#closing !== undefined) {
      try {
        real.close(...this.#closing);
      } catch {
        // Already closed.
      }
    }
  }

  /** A message from the client. */
  received(data: ArrayBuffer | Uint8Array | string): void {
    if (this.#state === 1) void this.#relay.message(this, data);
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

/** One log: its relay and its sockets. */
interface Served {
  core: RelayCore;
  sockets: Set<HostedSocket>;
  states: Map<RelaySocket, unknown>;
}

/**
 * The self-hosted relay, whatever serves it: `fetch(request, upgrade)` answers one request through the Hono app,
 * with an `upgrade` from the runtime's server for WebSocket requests. {@link serve} starts one on a port.
 *
 * @example
 * ```ts ignore
 * const relay = new RelayServer("./relay-data", { WRITE_TOKEN: "secret" });
 * const response = await relay.fetch(new Request("http://localhost/logs/chat"));
 * console.log(await response.json()); // { heads: [], length: 0 }
 * await relay.close();
 * ```
 */
export class RelayServer {
  readonly #dir: string;
  readonly #settings: { [K in keyof ServeSettings]?: string };
  readonly #limits: RelayLimits;
  readonly #logs = new Map<string, Promise<Served>>();
  readonly #app = createApp();
  readonly #openLog: ((name: string) => Promise<Storage>) | undefined;
  #closed = false;

  /**
   * Keeps the logs in `dir` (created if needed), or where `openLog` says (`serve-kv.ts`: Deno KV); checks the
   * settings (a bad limit or `WRITERS` throws here).
   */
  constructor(dir: string, settings: ServeSettings = {}, openLog?: (name: string) => Promise<Storage>) {
    this.#dir = dir;
    this.#openLog = openLog;
    // Unset and empty settings are left out, as an unset Worker variable is.
    this.#settings = Object.fromEntries(
      Object.entries(settings).filter(([, value]) => typeof value === "string" && value !== ""),
    );
    this.#limits = readLimits(this.#settings as Record<string, unknown>);
    writersOf(this.#settings, "*");
    if (openLog === undefined) mkdirSync(dir, { recursive: true });
  }

  /** The limits in force. */
  get limits(): RelayLimits {
    return this.#limits;
  }

  /** The relay of log `name`, opened on first use. */
  #open(name: string): Promise<Served> {
    let served = this.#logs.get(name);
    if (served === undefined) {
      served = (async () => {
        const sockets = new Set<HostedSocket>();
        const states = new Map<RelaySocket, unknown>();
        const core = new RelayCore({
          sockets: () => [...sockets],
          save: (ws, state) => void states.set(ws, state),
          load: (ws) => states.get(ws),
          waitUntil: (promise) => void promise.catch(() => {}),
        }, {
          name,
          storage: await (this.#openLog?.(name) ?? openSqlite(join(this.#dir, `${name}.db`))),
          limits: this.#limits,
          writers: writersOf(this.#settings, name),
        });
        await core.ready();
        return { core, sockets, states };
      })();
      served.catch(() => this.#logs.delete(name));
      this.#logs.set(name, served);
    }
    return served;
  }

  /**
   * Answers one request. `upgrade` is the runtime's way to accept a WebSocket for this request (needed for
   * `/logs/NAME/ws`; without it such a request is a 426).
   */
  async fetch(request: Request, upgrade?: Upgrade): Promise<Response> {
    if (this.#closed) return Response.json({ error: "The relay is shutting down" }, { status: 503 });
    const env: RelayEnv = {
      ...(this.#settings as Omit<RelayEnv, "RELAY">),
      RELAY: {
        idFromName: (name: string) => name,
        get: (id: unknown) => ({ fetch: (forwarded: Request) => this.#forwarded(id as string, forwarded, upgrade) }),
      },
    };
    return await this.#app.fetch(request, env);
  }

  /** What the Durable Object's `fetch` does, in process. */
  async #forwarded(name: string, request: Request, upgrade: Upgrade | undefined): Promise<Response> {
    const { core, sockets, states } = await this.#open(name);
    const url = new URL(request.url);
    if (url.pathname !== "/ws") return await core.read(url);
    if (upgrade === undefined) {
      return Response.json({ error: "This server cannot accept WebSockets here" }, { status: 426 });
    }
    const role: Role = request.headers.get("x-hyperlog-role") === "write" ? "write" : "read";
    const socket = new HostedSocket(core);
    const response = upgrade(request.headers.get("x-hyperlog-protocol") ?? undefined, socket);
    if (socket.readyState !== 1) return response;
    sockets.add(socket);
    socket.onGone = () => {
      sockets.delete(socket);
      states.delete(socket);
    };
    await core.accept(socket, role);
    return response;
  }

  /** Closes every socket (1001) and every log. */
  async close(): Promise<void> {
    this.#closed = true;
    const logs = [...this.#logs.values()];
    this.#logs.clear();
    await Promise.all(logs.map(async (served) => {
      try {
        await (await served).core.close();
      } catch {
        // A log that failed to open has nothing to close.
      }
    }));
  }
}

/**
 * A running self-hosted relay.
 *
 * @example
 * ```ts ignore
 * const running = await serve({ dir: "./relay-data", port: 0 });
 * console.log(running.url); // http://127.0.0.1:PORT
 * await running.close();
 * ```
 */
export interface RunningServer {
  /** The base URL, `http://HOST:PORT`. */
  readonly url: string;
  /** The port it listens on (useful with `port: 0`). */
  readonly port: number;
  /** The relay. */
  readonly relay: RelayServer;
  /** Stops listening, closes every socket and every log. */
  close(): Promise<void>;
}

/**
 * Options of {@link serve}.
 *
 * @example
 * ```ts
 * import type { ServeOptions } from "./serve.ts";
 * const options: ServeOptions = { dir: "./relay-data", port: 8787, hostname: "127.0.0.1" };
 * console.assert(options.port === 8787);
 * ```
 */
export interface ServeOptions {
  /** Where the logs are kept, one SQLite file per log name. */
  dir: string;
  /** The port (0 for any free one; default 8787). */
  port?: number;
  /** The address to listen on (default 127.0.0.1). */
  hostname?: string;
  /** Tokens, writers and limits. */
  settings?: ServeSettings;
  /** Opens the storage of log `name` instead of `dir/NAME.db` (see `serve-kv.ts` for Deno KV). */
  openLog?: (name: string) => Promise<Storage>;
}

/** How a runtime listens: the adapters in `serve-node.ts`, `serve-deno.ts` and `serve-bun.ts`. */
export type Listen = (
  relay: RelayServer,
  port: number,
  hostname: string,
) => Promise<{ port: number; close(): Promise<void> }>;

/**
 * Starts a relay on `hostname:port` with the runtime's HTTP and WebSocket server.
 *
 * @example
 * ```ts ignore
 * import { serve } from "./serve.ts";
 * const running = await serve({ dir: "./relay-data", port: 8787, settings: { WRITE_TOKEN: "secret" } });
 * // hyperlog sync ws://127.0.0.1:8787/logs/chat --token=secret
 * ```
 */
export async function serve(options: ServeOptions): Promise<RunningServer> {
  const relay = new RelayServer(options.dir, options.settings ?? {}, options.openLog);
  const hostname = options.hostname ?? "127.0.0.1";
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  const { listen } = g.Bun !== undefined
    ? await import("./serve-bun.ts")
    : g.Deno !== undefined
    ? await import("./serve-deno.ts")
    : await import("./serve-node.ts");
  let listening: { port: number; close(): Promise<void> };
  try {
    listening = await (listen as Listen)(relay, options.port ?? 8787, hostname);
  } catch (error) {
    await relay.close();
    throw error;
  }
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return {
    url: `http://${host}:${listening.port}`,
    port: listening.port,
    relay,
    async close() {
      await relay.close();
      await listening.close();
    },
  };
}

/**
 * The most a runtime's WebSocket server reads of one message before giving up with 1009: twice the relay's frame
 * limit, so that a message a little over the limit reaches the relay, which closes with 4009 as the Worker does.
 *
 * @example
 * ```ts
 * import { socketReadLimit } from "./serve.ts";
 * console.assert(socketReadLimit({ maxFrame: 1024, maxNode: 512, nodesPerSecond: 1 }) === 2048 + 65536);
 * ```
 */
export function socketReadLimit(limits: RelayLimits): number {
  return 2 * limits.maxFrame + 65536;
}
