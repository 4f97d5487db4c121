/**
 * The relay on Deno Deploy (or any `deno serve`): the same Hono app and relay core as `hyperlog serve`, with every
 * log in one Deno KV database (Deploy's own, from `Deno.openKv()`), log `NAME` under `["hyperlog", "logs", NAME]`.
 *
 * Run it locally: `deno serve -A --unstable-kv --port 8787 worker/deno-deploy.ts` (with `HYPERLOG_KV_PATH` set to
 * a file, or Deno's default database). Settings come from the environment, with the Worker's names: `READ_TOKEN`,
 * `WRITE_TOKEN`, `WRITERS`, `MAX_FRAME_BYTES`, `MAX_NODE_BYTES`, `MAX_NODES_PER_SECOND`.
 *
 * Deploy may run several isolates at once. Each one keeps its own sockets and serves every log from the shared
 * database, so what a client sends through one isolate is stored for all at once, and reaches the clients of
 * another isolate at their next sync (when they connect or reconnect), not live.
 *
 * @module
 */
import { RelayServer, type ServeSettings } from "./serve.ts";
import { kvLogs } from "./serve-kv.ts";
import { SERVE_SETTINGS } from "./serve-settings.ts";
import type { DenoKvLike } from "../storage/deno-kv.ts";
import { denoHandler, type DenoSocket } from "./serve-deno.ts";

/** The part of the `Deno` namespace the entry uses (structural: the project type-checks with Node's types). */
interface DenoLike {
  openKv(path?: string): Promise<DenoKvLike>;
  env: { get(name: string): string | undefined };
  upgradeWebSocket(request: Request, options: { protocol?: string }): { socket: DenoSocket; response: Response };
  addSignalListener(signal: "SIGINT" | "SIGTERM", handler: () => void): void;
  exit(code: number): never;
}

const deno = (globalThis as unknown as { Deno: DenoLike }).Deno;
const kv = await deno.openKv(deno.env.get("HYPERLOG_KV_PATH") || undefined);
const settings: ServeSettings = Object.fromEntries(SERVE_SETTINGS.map((name) => [name, deno.env.get(name)]));
const relay = new RelayServer("", settings, kvLogs(kv));

// Each open log watches the database for other isolates' commits, which keeps the process alive: on Ctrl-C or
// SIGTERM (under `deno serve` on a machine; Deploy manages isolates itself), close every log and the database, then
// exit.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  try {
    deno.addSignalListener(signal, () => {
      void relay.close().finally(() => {
        kv.close();
        deno.exit(0);
      });
    });
  } catch {
    // No signals here (Deno Deploy).
  }
}

/**
 * Answers one request: the app's routes, and WebSocket upgrades through `Deno.upgradeWebSocket`.
 *
 * @example
 * ```ts ignore
 * // deno serve -A --unstable-kv worker/deno-deploy.ts
 * import entry from "./deno-deploy.ts";
 * const response = await entry.fetch(new Request("http://localhost/logs/chat"));
 * ```
 */
const handler = denoHandler(relay, (request, options) => deno.upgradeWebSocket(request, options));
function fetch(request: Request): Promise<Response> {
  return handler(request);
}

/**
 * The `deno serve` entry: `{ fetch }`.
 *
 * @example
 * ```ts ignore
 * // deno serve -A --unstable-kv --port 8787 worker/deno-deploy.ts
 * ```
 */
const entry: { fetch(request: Request): Promise<Response> } = { fetch };
export default entry;
