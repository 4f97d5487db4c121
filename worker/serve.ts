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
import { INTERNAL_ERROR } from "./app.ts";
import type { RelayLimits } from "./limits.ts";
import type { RelayEnv } from "./relay.ts";
import type { Storage } from "../mod.ts";
import type { RelaySocket } from "./relay-core.ts";
import { RelayServer, type ServeSettings } from "./relay-server.ts";

export type { RelayEnv, RelayLimits, RelaySocket, ServeSettings };
export type { KvNamespaceLike } from "./relay.ts";
export { RelayMetrics } from "./metrics.ts";
export type { RelayCaps, RelaySettings } from "./settings.ts";
export { HostedSocket, type RuntimeSocket, type SocketSink, type Upgrade } from "./hosted-socket.ts";
export { RelayServer };

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
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { serve, type ServeOptions } from "./serve.ts";
 * const options: ServeOptions = { dir: mkdtempSync(join(tmpdir(), "relay-")), port: 0, hostname: "127.0.0.1" };
 * const server = await serve(options);
 * console.assert(new URL(server.url).hostname === "127.0.0.1");
 * console.assert((await (await fetch(`${server.url}/health`)).json()).ok === true);
 * await server.close();
 * rmSync(options.dir, { recursive: true, force: true });
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
 * The body of a 500 (no path, no stack, no error message).
 *
 * @example
 * ```ts
 * import { INTERNAL } from "./serve.ts";
 * console.assert(!INTERNAL.includes("/"));
 * ```
 */
export const INTERNAL: string = JSON.stringify({ error: INTERNAL_ERROR });

/**
 * Deadlines of the runtime's HTTP server against slow clients (slowloris): the request head within `headersMs`, the
 * whole request within `requestMs`, an idle keep-alive connection closed after `keepAliveMs`. Node applies all three;
 * Bun closes connections idle for `idleS` seconds; `Deno.serve` has no deadline on a request head (README "Operating
 * a relay": put a proxy in front).
 *
 * @example
 * ```ts
 * import { SERVER_TIMEOUTS } from "./serve.ts";
 * console.assert(SERVER_TIMEOUTS.headersMs <= SERVER_TIMEOUTS.requestMs);
 * ```
 */
export const SERVER_TIMEOUTS: { headersMs: number; requestMs: number; keepAliveMs: number; idleS: number } = {
  headersMs: 10_000,
  requestMs: 30_000,
  keepAliveMs: 5_000,
  idleS: 30,
};

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
