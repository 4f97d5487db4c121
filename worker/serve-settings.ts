/**
 * The names of every setting of `hyperlog serve` (`ServeSettings`), once: the Deno Deploy entry reads each from the
 * environment, and the CLI makes an option of each (`MAX_FRAME_BYTES` is `--max-frame-bytes`). The compiler checks
 * that none is missing.
 *
 * @module
 */
import type { ServeSettings } from "./serve.ts";

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
