/**
 * Signed capability tokens: per-log access for many apps on one relay. A token is a JWT signed with HS256 (Hono's
 * `hono/jwt`, WebCrypto underneath) under the relay's `TOKEN_SECRET`, naming the logs it opens (exact names, or
 * prefixes such as `chat-*`), its role (`read` or `write`) and its expiry. The app checks it before a request
 * reaches the log's Durable Object (which does not wake for a refused one). `hyperlog token create` mints one.
 *
 * @module
 */
import { sign, verify } from "hono/jwt";
import type { Role } from "./limits.ts";
import { LOG_NAME } from "./settings.ts";

/** The audience of every capability token: a JWT minted for something else under the same secret is refused. */
export const TOKEN_AUDIENCE = "hyperlog-relay";

/**
 * What a capability token grants.
 *
 * @example
 * ```ts
 * import { checkToken, createToken } from "./tokens.ts";
 * import type { Capability } from "./tokens.ts";
 * const secret = "s".repeat(32);
 * const capability: Capability = { logs: ["chat-*"], role: "write", expires: Date.now() + 3600_000 };
 * const token = await createToken(secret, capability);
 * console.assert((await checkToken(secret, token, "chat-1")) === "write");
 * console.assert((await checkToken(secret, token, "notes")) === "other-log");
 * ```
 */
export interface Capability {
  /** Log names, or prefixes ending in `*` (`chat-*` opens `chat-1`, `chat-room`...; `*` alone opens every log). */
  logs: string[];
  /** What the holder may do. */
  role: Role;
  /** When it expires, in milliseconds since the epoch. */
  expires: number;
}

/**
 * Whether `pattern` (a name, or a prefix ending in `*`) covers log `name`.
 *
 * @example
 * ```ts
 * import { covers } from "./tokens.ts";
 * console.assert(covers("chat-*", "chat-1") && !covers("chat-*", "chatter") && covers("notes", "notes"));
 * ```
 */
export function covers(pattern: string, name: string): boolean {
  return pattern.endsWith("*") ? name.startsWith(pattern.slice(0, -1)) : pattern === name;
}

function checkPatterns(logs: readonly string[]): void {
  if (logs.length === 0) throw new TypeError("A token needs at least one log: --log NAME or --log 'PREFIX*'");
  for (const log of logs) {
    const bare = log.endsWith("*") ? log.slice(0, -1) : log;
    if (bare !== "" && !(LOG_NAME.test(bare) || (log.endsWith("*") && /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(bare)))) {
      throw new TypeError(`${JSON.stringify(log)} is not a log name or a prefix ending in '*'`);
    }
  }
}

/**
 * Mints a capability token signed with `secret` (HS256).
 *
 * @example
 * ```ts
 * import { checkToken, createToken } from "./tokens.ts";
 * const token = await createToken("s".repeat(32), { logs: ["chat-*"], role: "write", expires: Date.now() + 60_000 });
 * console.assert((await checkToken("s".repeat(32), token, "chat-1")) === "write");
 * ```
 */
export async function createToken(secret: string, capability: Capability): Promise<string> {
  if (secret.length < 32) throw new RangeError("TOKEN_SECRET must be at least 32 characters");
  checkPatterns(capability.logs);
  if (capability.role !== "read" && capability.role !== "write") {
    throw new TypeError(`The role must be read or write, not ${JSON.stringify(capability.role)}`);
  }
  return await sign(
    {
      aud: TOKEN_AUDIENCE,
      logs: capability.logs,
      role: capability.role,
      iat: Math.floor(Date.now() / 1000),
      exp: Math.floor(capability.expires / 1000),
    },
    secret,
    "HS256",
  );
}

/**
 * Whether `token` has the shape of a JWT (three base64url parts).
 *
 * @example
 * ```ts
 * import { looksSigned } from "./tokens.ts";
 * console.assert(looksSigned("a.b.c") && !looksSigned("secret"));
 * ```
 */
export function looksSigned(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token);
}

/**
 * The role a capability token grants on log `name`: `read` or `write`, `"invalid"` when the signature, audience or
 * expiry does not hold (or it has no expiry), `"other-log"` when it is valid but does not name this log.
 *
 * @example
 * ```ts
 * import { checkToken, createToken } from "./tokens.ts";
 * const secret = "k".repeat(32);
 * const token = await createToken(secret, { logs: ["notes"], role: "read", expires: Date.now() + 60_000 });
 * console.assert((await checkToken(secret, token, "other")) === "other-log");
 * console.assert((await checkToken("x".repeat(32), token, "notes")) === "invalid");
 * ```
 */
export async function checkToken(
  secret: string,
  token: string,
  name: string,
): Promise<Role | "invalid" | "other-log"> {
  let payload: Record<string, unknown>;
  try {
    payload = await verify(token, secret, { alg: "HS256", aud: TOKEN_AUDIENCE }) as Record<string, unknown>;
  } catch {
    return "invalid";
  }
  const { logs, role, exp } = payload;
  if (typeof exp !== "number" || (role !== "read" && role !== "write") || !Array.isArray(logs)) return "invalid";
  if (!logs.some((pattern) => typeof pattern === "string" && covers(pattern, name))) return "other-log";
  return role;
}

/**
 * Parses a time to live: a number and a unit, `s`, `m`, `h` or `d` (`90s`, `15m`, `1h`, `7d`), in milliseconds.
 *
 * @example
 * ```ts
 * import { parseTtl } from "./tokens.ts";
 * console.assert(parseTtl("1h") === 3_600_000);
 * ```
 */
export function parseTtl(text: string): number {
  const match = /^(\d{1,6})([smhd])$/.exec(text);
  if (match === null) throw new TypeError(`--ttl ${text} is not a duration: give a number and s, m, h or d (1h)`);
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as "s" | "m" | "h" | "d"];
  return Number(match[1]) * unit;
}
