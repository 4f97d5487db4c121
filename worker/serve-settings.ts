/**
 * Every setting of `hyperlog serve` (`ServeSettings`) and their names, once: the Deno Deploy entry reads each from the
 * environment, and the CLI makes an option of each (`MAX_FRAME_BYTES` is `--max-frame-bytes`). The compiler checks
 * that none is missing.
 *
 * @module
 */
/**
 * The settings of a self-hosted relay: the same names as the Worker's environment (see README "Relay worker").
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { serve, type ServeSettings } from "./serve.ts";
 * const settings: ServeSettings = { READ_TOKEN: "r", WRITE_TOKEN: "w" };
 * const dir = mkdtempSync(join(tmpdir(), "relay-"));
 * const server = await serve({ dir, port: 0, settings });
 * console.assert((await fetch(`${server.url}/logs/chat`)).status === 401);
 * const read = await fetch(`${server.url}/logs/chat`, { headers: { authorization: "Bearer r" } });
 * console.assert(read.status === 404, "a reader gets through, to a log not written yet");
 * await server.close();
 * rmSync(dir, { recursive: true, force: true });
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
  /** Nodes per second one socket may send, in every phase (default 1 000). */
  MAX_NODES_PER_SECOND?: string | undefined;
  /** Bytes of nodes per second one socket may send (default 8 MiB). */
  MAX_BYTES_PER_SECOND?: string | undefined;
  /** Nodes one socket may send at once before the rate holds it back (default 10 000). */
  MAX_NODES_BURST?: string | undefined;
  /** Bytes of nodes one socket may send at once (default 64 MiB). */
  MAX_BYTES_BURST?: string | undefined;
  /** Open WebSockets on the relay (default 10 000; 0 for no cap). */
  MAX_SOCKETS?: string | undefined;
  /** Open WebSockets on one log (default 1 000; 0 for no cap). */
  MAX_SOCKETS_PER_LOG?: string | undefined;
  /** Bytes of a log past which writes are refused with 4507 (default none). */
  MAX_LOG_BYTES?: string | undefined;
  /** Logs on the relay; a write creating one more is refused with 4508 (default none). */
  MAX_LOGS?: string | undefined;
  /** Logs kept open at once (default 256). */
  MAX_OPEN_LOGS?: string | undefined;
  /** Milliseconds an unused log stays open (default 30 000). */
  IDLE_LOG_MS?: string | undefined;
  /** Milliseconds a socket may stay open without sending its HELLO (default 10 000). */
  HELLO_TIMEOUT_MS?: string | undefined;
  /** Milliseconds an initial exchange may wait for a reply it needs before 4408 (default 30 000). */
  EXCHANGE_IDLE_MS?: string | undefined;
  /** Bytes received from one socket and not yet handled past which Node's serve stops reading it (default 256 KiB). */
  RECEIVE_BUFFER_BYTES?: string | undefined;
  /** Bytes of framed nodes the logs keep for late joiners, all together (default 256 MiB; 32 MiB a log at most). */
  PAGES_CACHE_BYTES?: string | undefined;
  /** `/metrics` answers with this token; unset, it is a 404. */
  METRICS_TOKEN?: string | undefined;
  /** The secret of signed capability tokens (`hyperlog token create`). */
  TOKEN_SECRET?: string | undefined;
  /** The admin dashboard (`/admin`) needs this token (or METRICS_TOKEN); it is off without either. */
  ADMIN_TOKEN?: string | undefined;
  /** The largest presence state, in bytes of JSON (default 4096). */
  PRESENCE_MAX_BYTES?: string | undefined;
  /** Presence messages per second per socket, heartbeats included (default 20). */
  PRESENCE_PER_SECOND?: string | undefined;
  /** Peers with a presence state on one log (default 100). */
  PRESENCE_PEERS?: string | undefined;
  /** Milliseconds without a message after which a peer leaves (default 30 000). */
  PRESENCE_TIMEOUT_MS?: string | undefined;
  /** "1": clients that may only read may publish presence too (default: they only watch). */
  PRESENCE_READERS?: string | undefined;
  /** Bytes of presence sent per second on one log, all sockets together; past it, states are coalesced (default 2 MiB). */
  PRESENCE_FANOUT_BYTES?: string | undefined;
}

/** The list, as a tuple for the check below. */
const LISTED = [
  "READ_TOKEN",
  "WRITE_TOKEN",
  "WRITERS",
  "MAX_FRAME_BYTES",
  "MAX_NODE_BYTES",
  "MAX_NODES_PER_SECOND",
  "MAX_BYTES_PER_SECOND",
  "MAX_NODES_BURST",
  "MAX_BYTES_BURST",
  "MAX_SOCKETS",
  "MAX_SOCKETS_PER_LOG",
  "MAX_LOG_BYTES",
  "MAX_LOGS",
  "MAX_OPEN_LOGS",
  "IDLE_LOG_MS",
  "HELLO_TIMEOUT_MS",
  "EXCHANGE_IDLE_MS",
  "METRICS_TOKEN",
  "TOKEN_SECRET",
  "ADMIN_TOKEN",
  "PRESENCE_MAX_BYTES",
  "PRESENCE_PER_SECOND",
  "PRESENCE_PEERS",
  "PRESENCE_TIMEOUT_MS",
  "PRESENCE_READERS",
  "PRESENCE_FANOUT_BYTES",
  "RECEIVE_BUFFER_BYTES",
  "PAGES_CACHE_BYTES",
] as const satisfies readonly (keyof ServeSettings)[];

/**
 * Every setting of `hyperlog serve`, by its environment name.
 *
 * @example
 * ```ts
 * import { SERVE_SETTINGS } from "./serve-settings.ts";
 * console.assert(SERVE_SETTINGS.includes("MAX_FRAME_BYTES") && SERVE_SETTINGS.includes("TOKEN_SECRET"));
 * ```
 */
export const SERVE_SETTINGS: readonly (keyof ServeSettings)[] = LISTED;

/** Fails to compile when ServeSettings gains a setting this list does not name. */
const EVERY_SETTING: [Exclude<keyof ServeSettings, typeof LISTED[number]>] extends [never] ? true : never = true;
void EVERY_SETTING;
