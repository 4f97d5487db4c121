/**
 * The relay's limits, close codes and access roles: what the Hono app and the Durable Object agree on.
 *
 * @module
 */
import { parseWriters, readSettings, writersFor } from "./settings.ts";

/**
 * WebSocket close codes the relay uses (4000-4999 is the range for applications). The reason string says more.
 *
 * @example
 * ```ts
 * import { CLOSE } from "./limits.ts";
 * console.assert(CLOSE.RATE_LIMITED === 4029);
 * ```
 */
export const CLOSE: {
  readonly PROTOCOL: 4000;
  readonly READ_ONLY: 4003;
  readonly INVALID_NODE: 4008;
  readonly FRAME_TOO_LARGE: 4009;
  readonly INTERRUPTED: 4010;
  readonly INTERNAL: 4011;
  readonly NODE_TOO_LARGE: 4013;
  readonly RATE_LIMITED: 4029;
  readonly HELLO_TIMEOUT: 4408;
  readonly TOO_MANY_SOCKETS: 4503;
  readonly LOG_FULL: 4507;
  readonly TOO_MANY_LOGS: 4508;
} = {
  /** A malformed frame or a message out of turn. */
  PROTOCOL: 4000,
  /** The client sent a node but may only read (its token does not allow writes). */
  READ_ONLY: 4003,
  /** A node failed its checks: key does not match, missing links, bad or unlisted signature. */
  INVALID_NODE: 4008,
  /** A message over the frame size limit. */
  FRAME_TOO_LARGE: 4009,
  /** The relay restarted in the middle of the initial exchange: reconnect. */
  INTERRUPTED: 4010,
  /** The relay failed (a bug or storage failure): reconnect later. */
  INTERNAL: 4011,
  /** A node over the node size limit. */
  NODE_TOO_LARGE: 4013,
  /** More nodes (or bytes of nodes) per second than allowed on one socket, in any phase. */
  RATE_LIMITED: 4029,
  /**
   * The socket sent no HELLO within the deadline (`HELLO_TIMEOUT_MS`), or its initial exchange waited longer than
   * `EXCHANGE_IDLE_MS` for a reply it needed.
   */
  HELLO_TIMEOUT: 4408,
  /** The relay, or this log, has as many sockets as allowed (`MAX_SOCKETS`, `MAX_SOCKETS_PER_LOG`): retry later. */
  TOO_MANY_SOCKETS: 4503,
  /** The log is at its size limit (`MAX_LOG_BYTES`): the write is refused, reading goes on. */
  LOG_FULL: 4507,
  /** The relay holds as many logs as allowed (`MAX_LOGS`): a write that would create one more is refused. */
  TOO_MANY_LOGS: 4508,
};

/**
 * Size and rate limits of one relay, read from the environment (see {@link readLimits}).
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS, readLimits } from "./limits.ts";
 * import type { RelayLimits } from "./limits.ts";
 * const limits: RelayLimits = readLimits({ MAX_FRAME_BYTES: String(1 << 21) });
 * console.assert(limits.maxFrame === 1 << 21 && limits.maxNode === DEFAULT_LIMITS.maxNode);
 * ```
 */
export interface RelayLimits {
  /** The largest WebSocket message accepted, in bytes. */
  maxFrame: number;
  /** The largest encoded node accepted (key, links, signature and value), in bytes. */
  maxNode: number;
  /** Nodes per second one socket may send once live (a bucket that holds one second's worth). */
  nodesPerSecond: number;
}

/** The defaults: 1 MiB frames, 256 KiB nodes, 1 000 live nodes per second per socket. */
export const DEFAULT_LIMITS: RelayLimits = { maxFrame: 1 << 20, maxNode: 1 << 18, nodesPerSecond: 1000 };

/**
 * Reads the limits from environment variables `MAX_FRAME_BYTES`, `MAX_NODE_BYTES` and `MAX_NODES_PER_SECOND`;
 * missing ones take the defaults. A value that does not parse throws a `ConfigError` (see `settings.ts`).
 *
 * @example
 * ```ts
 * import { readLimits } from "./limits.ts";
 * console.assert(readLimits({ MAX_NODES_PER_SECOND: "50" }).nodesPerSecond === 50);
 * ```
 */
export function readLimits(env: Record<string, unknown>): RelayLimits {
  return readSettings(env).limits;
}

/**
 * What a client may do: `write` (pull and push) or `read` (pull only).
 *
 * @example
 * ```ts
 * import { roleOf } from "./limits.ts";
 * import type { Role } from "./limits.ts";
 * const role: Role | undefined = roleOf({ READ_TOKEN: "r", WRITE_TOKEN: "w" }, "r");
 * console.assert(role === "read");
 * ```
 */
export type Role = "read" | "write";

/**
 * Compares two texts in a time that does not depend on where they first differ (for tokens).
 *
 * @example
 * ```ts
 * import { sameText } from "./limits.ts";
 * console.assert(sameText("abc", "abc") && !sameText("abc", "abd"));
 * ```
 */
export function sameText(a: string, b: string): boolean {
  // Compare every byte whatever the first difference, so the time taken does not tell how much of a guess was right.
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < x.length; i++) diff |= x[i]! ^ (y[i % Math.max(1, y.length)] ?? 0);
  return diff === 0;
}

/**
 * The role a token grants, or `undefined` for none. With no `WRITE_TOKEN` and no `READ_TOKEN` everyone writes.
 * With `WRITE_TOKEN` only its holders write; with `READ_TOKEN` reading needs it (or the write token). With only
 * `READ_TOKEN`, its holders also write.
 *
 * @example
 * ```ts
 * import { roleOf } from "./limits.ts";
 * console.assert(roleOf({ WRITE_TOKEN: "w" }, undefined) === "read");
 * console.assert(roleOf({ WRITE_TOKEN: "w" }, "w") === "write");
 * console.assert(roleOf({ READ_TOKEN: "r" }, "nope") === undefined);
 * ```
 */
export function roleOf(
  env: { READ_TOKEN?: string; WRITE_TOKEN?: string },
  token: string | undefined,
): Role | undefined {
  const read = env.READ_TOKEN || undefined;
  const write = env.WRITE_TOKEN || undefined;
  const matches = (secret: string | undefined) =>
    secret !== undefined && token !== undefined && sameText(token, secret);
  if (write !== undefined ? matches(write) : read === undefined || matches(read)) return "write";
  if (read === undefined || matches(read)) return "read";
  return undefined;
}

/**
 * The writer allowlist of a log from `WRITERS`, a JSON object of log name (or `*` for every log) to a list of
 * Ed25519 public keys in hex. `undefined` when the log has none: any writer (signed or not) is accepted. Only the
 * object's own entries count (`constructor` is a log name like any other); a `WRITERS` that does not parse throws
 * a `ConfigError`.
 *
 * @example
 * ```ts
 * import { writersOf } from "./limits.ts";
 * const env = { WRITERS: JSON.stringify({ chat: ["ab".repeat(32)] }) };
 * console.assert(writersOf(env, "chat")?.length === 1 && writersOf(env, "other") === undefined);
 * ```
 */
export function writersOf(env: { WRITERS?: string }, name: string): string[] | undefined {
  return writersFor(parseWriters(env.WRITERS), name);
}
