/**
 * The relay's settings, read and checked once at start (the same names on the Worker, as variables, and for
 * `hyperlog serve`, as options or environment variables): a setting that does not parse stops the relay with a
 * {@link ConfigError} naming it, rather than leaving a log open that the operator meant to close.
 *
 * @module
 */
import { DEFAULT_LIMITS, type RelayLimits } from "./limits.ts";
import { isKey } from "../mod.ts";

/** A log name: 1 to 128 letters, digits, '.', '_' or '-', not starting with '.', '_' or '-'. */
export const LOG_NAME: RegExp = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * A setting that does not parse: the relay refuses to start (`hyperlog serve` exits 2; the Worker answers 500 with
 * this message and logs it).
 *
 * @example
 * ```ts
 * import { ConfigError, readSettings } from "./settings.ts";
 * try {
 *   readSettings({ WRITERS: "[]" });
 *   console.assert(false);
 * } catch (error) {
 *   console.assert(error instanceof ConfigError && /WRITERS/.test(error.message));
 * }
 * ```
 */
export class ConfigError extends TypeError {
  /** `message` names the setting and says what it takes. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/**
 * Caps on what a relay holds at once, besides the per-message {@link RelayLimits}. `undefined` means no cap.
 *
 * @example
 * ```ts
 * import { readSettings } from "./settings.ts";
 * console.assert(readSettings({ MAX_SOCKETS_PER_LOG: "10" }).caps.socketsPerLog === 10);
 * ```
 */
export interface RelayCaps {
  /** Open WebSockets on the whole relay (`hyperlog serve` only; a Worker has no single process). */
  sockets: number | undefined;
  /** Open WebSockets on one log. */
  socketsPerLog: number | undefined;
  /** Bytes of a log's storage past which writes are refused with close code 4507. */
  logBytes: number | undefined;
  /** Logs on the relay (`hyperlog serve` only): a write that would create one more is refused with 4508. */
  logs: number | undefined;
  /** Logs kept open at once by `hyperlog serve`; idle ones beyond it are closed, least recently used first. */
  openLogs: number;
  /** Milliseconds a socket may stay open without sending its HELLO; then it is closed with 4408. */
  helloMs: number;
  /**
   * Milliseconds an initial exchange may wait for a reply it needs before the socket is closed with 4408 (a client
   * that stops answering in the middle of it). Live sockets may stay quiet for ever.
   */
  idleMs: number;
  /** Milliseconds a log of `hyperlog serve` with no socket and no request stays open. */
  idleLogMs: number;
  /** Bytes per second of nodes one socket may send, in every phase. */
  bytesPerSecond: number;
  /**
   * Nodes one socket may send at once before `MAX_NODES_PER_SECOND` holds it back (the size of its bucket, at least
   * one second's worth): a catch-up push of up to this many nodes goes through at full speed.
   */
  burstNodes: number;
  /** Bytes of nodes one socket may send at once (at least one second's worth of `bytesPerSecond`). */
  burstBytes: number;
  /**
   * Bytes received from one socket and not yet handled past which `hyperlog serve` on Node stops reading that
   * socket until they are (TCP backpressure: the client's sends wait in the kernel, not in the relay's memory).
   */
  receiveBytes: number;
  /**
   * Bytes of framed nodes all the logs of `hyperlog serve` keep for their late joiners, together (each log keeps up
   * to 32 MiB): past it a log frames no more, and its late joiners are framed for each of them as before.
   */
  pagesCacheBytes: number;
}

/** The defaults of {@link RelayCaps}. */
export const DEFAULT_CAPS: RelayCaps = {
  sockets: 10_000,
  socketsPerLog: 1_000,
  logBytes: undefined,
  logs: undefined,
  openLogs: 256,
  helloMs: 10_000,
  idleMs: 30_000,
  idleLogMs: 30_000,
  bytesPerSecond: 8 << 20,
  burstNodes: 10_000,
  burstBytes: 64 << 20,
  receiveBytes: 256 << 10,
  pagesCacheBytes: 256 << 20,
};

/**
 * Every setting, checked: limits, caps, the writer allowlist.
 *
 * @example
 * ```ts
 * import { readSettings } from "./settings.ts";
 * const settings = readSettings({ MAX_NODES_PER_SECOND: "50" });
 * console.assert(settings.limits.nodesPerSecond === 50 && settings.writers.size === 0);
 * ```
 */
export interface RelaySettings {
  /** Per-message limits. */
  limits: RelayLimits;
  /** Caps on what the relay holds. */
  caps: RelayCaps;
  /** Log name (or `*`) to the hex public keys allowed to write; empty when `WRITERS` is unset. */
  writers: ReadonlyMap<string, readonly string[]>;
}

function integer(env: Record<string, unknown>, name: string, fallback: number, min = 1): number {
  const value = Object.hasOwn(env, name) ? env[name] : undefined;
  if (value === undefined || value === "") return fallback;
  if (typeof value !== "string" || !/^\d{1,15}$/.test(value.trim()) || Number(value) < min) {
    throw new ConfigError(`${name} must be a positive integer, not ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/** A cap that can be turned off with `0`. */
function cap(env: Record<string, unknown>, name: string, fallback: number | undefined): number | undefined {
  const n = integer(env, name, fallback ?? 0, 0);
  return n === 0 ? undefined : n;
}

/**
 * Parses `WRITERS`: a JSON object of log name (or `*`) to a list of 64-character hex Ed25519 public keys. Anything
 * else (a list, a bad name, a bad key) is a {@link ConfigError}.
 *
 * @example
 * ```ts
 * import { parseWriters } from "./settings.ts";
 * const writers = parseWriters(JSON.stringify({ chat: ["ab".repeat(32)] }));
 * console.assert(writers.get("chat")?.length === 1 && !writers.has("constructor"));
 * ```
 */
export function parseWriters(text: string | undefined): Map<string, readonly string[]> {
  const writers = new Map<string, readonly string[]>();
  if (text === undefined || text === "") return writers;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(
      'WRITERS must be JSON: an object of log name to a list of hex public keys, {"chat": ["..."]}',
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(
      'WRITERS must be a JSON object of log name (or "*") to a list of hex public keys, not a list',
    );
  }
  for (const [name, keys] of Object.entries(parsed)) {
    if (name !== "*" && !LOG_NAME.test(name)) {
      throw new ConfigError(`WRITERS names ${JSON.stringify(name)}, which is not a log name (or "*")`);
    }
    if (!Array.isArray(keys) || keys.length === 0) {
      throw new ConfigError(`WRITERS[${JSON.stringify(name)}] must be a non-empty list of hex public keys`);
    }
    for (const key of keys) {
      if (!isKey(key)) {
        throw new ConfigError(
          `WRITERS[${JSON.stringify(name)}] holds ${JSON.stringify(key)}, not a 64-character lower-case hex public key`,
        );
      }
    }
    writers.set(name, Object.freeze([...keys] as string[]));
  }
  return writers;
}

/**
 * The writer allowlist of log `name` (its own entry, else `*`), or `undefined` for none.
 *
 * @example
 * ```ts
 * import { parseWriters, writersFor } from "./settings.ts";
 * const writers = parseWriters(JSON.stringify({ "*": ["ab".repeat(32)] }));
 * console.assert(writersFor(writers, "toString")?.length === 1);
 * ```
 */
export function writersFor(
  writers: ReadonlyMap<string, readonly string[]>,
  name: string,
): string[] | undefined {
  const list = writers.get(name) ?? writers.get("*");
  return list === undefined ? undefined : [...list];
}

const cache = new WeakMap<object, RelaySettings>();

/**
 * Reads and checks every setting from `env` (only its own string properties count). Throws a {@link ConfigError}
 * naming the first one that does not parse. Cached per `env` object.
 *
 * @example
 * ```ts
 * import { readSettings } from "./settings.ts";
 * console.assert(readSettings({}).caps.openLogs === 256);
 * ```
 */
export function readSettings(env: object): RelaySettings {
  const known = cache.get(env);
  if (known !== undefined) return known;
  const e = env as Record<string, unknown>;
  const settings: RelaySettings = {
    limits: {
      maxFrame: integer(e, "MAX_FRAME_BYTES", DEFAULT_LIMITS.maxFrame),
      maxNode: integer(e, "MAX_NODE_BYTES", DEFAULT_LIMITS.maxNode),
      nodesPerSecond: integer(e, "MAX_NODES_PER_SECOND", DEFAULT_LIMITS.nodesPerSecond),
    },
    caps: {
      sockets: cap(e, "MAX_SOCKETS", DEFAULT_CAPS.sockets),
      socketsPerLog: cap(e, "MAX_SOCKETS_PER_LOG", DEFAULT_CAPS.socketsPerLog),
      logBytes: cap(e, "MAX_LOG_BYTES", DEFAULT_CAPS.logBytes),
      logs: cap(e, "MAX_LOGS", DEFAULT_CAPS.logs),
      openLogs: integer(e, "MAX_OPEN_LOGS", DEFAULT_CAPS.openLogs),
      helloMs: integer(e, "HELLO_TIMEOUT_MS", DEFAULT_CAPS.helloMs),
      idleMs: integer(e, "EXCHANGE_IDLE_MS", DEFAULT_CAPS.idleMs),
      idleLogMs: integer(e, "IDLE_LOG_MS", DEFAULT_CAPS.idleLogMs),
      bytesPerSecond: integer(e, "MAX_BYTES_PER_SECOND", DEFAULT_CAPS.bytesPerSecond),
      burstNodes: integer(e, "MAX_NODES_BURST", DEFAULT_CAPS.burstNodes),
      burstBytes: integer(e, "MAX_BYTES_BURST", DEFAULT_CAPS.burstBytes),
      receiveBytes: integer(e, "RECEIVE_BUFFER_BYTES", DEFAULT_CAPS.receiveBytes),
      pagesCacheBytes: integer(e, "PAGES_CACHE_BYTES", DEFAULT_CAPS.pagesCacheBytes),
    },
    writers: parseWriters(typeof e.WRITERS === "string" && Object.hasOwn(e, "WRITERS") ? e.WRITERS : undefined),
  };
  if (e.WRITERS !== undefined && typeof e.WRITERS !== "string") {
    throw new ConfigError("WRITERS must be a JSON string");
  }
  const secret = Object.hasOwn(e, "TOKEN_SECRET") ? e.TOKEN_SECRET : undefined;
  if (secret !== undefined && secret !== "" && (typeof secret !== "string" || secret.length < 32)) {
    throw new ConfigError("TOKEN_SECRET must be at least 32 characters (a random string: openssl rand -hex 32)");
  }
  if (settings.limits.maxNode > settings.limits.maxFrame) {
    throw new ConfigError(
      `MAX_NODE_BYTES (${settings.limits.maxNode}) must not be over MAX_FRAME_BYTES (${settings.limits.maxFrame})`,
    );
  }
  cache.set(env, settings);
  return settings;
}
