/**
 * The prefix under which the SQLite key index (`hyperlog_keys`, see `sqlite-keys.ts`) files a node's key: its first
 * 6 bytes as an integer, and the JSON text a lookup gives SQLite.
 *
 * @module
 */

/**
 * The value of a lower-case hex digit's character code.
 *
 * @example
 * ```ts
 * import { nibble } from "./sqlite-prefix.ts";
 * console.assert(nibble("7".charCodeAt(0)) === 7 && nibble("c".charCodeAt(0)) === 12);
 * ```
 */
export function nibble(code: number): number {
  return code < 58 ? code - 48 : code - 87;
}

/**
 * The prefix under which `hyperlog_keys` files a key (64 lower-case hex characters): its first 6 bytes as an
 * integer, below 2^48 (exact in a double).
 *
 * @example
 * ```ts
 * import { keyPrefix } from "./sqlite-prefix.ts";
 * console.assert(keyPrefix("0000000001ff" + "0".repeat(52)) === 0x1ff && keyPrefix("f".repeat(64)) === 2 ** 48 - 1);
 * ```
 */
export function keyPrefix(key: string): number {
  let high = 0;
  for (let i = 0; i < 8; i++) high = high * 16 + nibble(key.charCodeAt(i));
  let low = 0;
  for (let i = 8; i < 12; i++) low = low * 16 + nibble(key.charCodeAt(i));
  return high * 65536 + low;
}

/**
 * The JSON object of `keys` (valid keys: hex, nothing to escape) to their prefixes that `SQL.lookupSettled` reads.
 *
 * @example
 * ```ts
 * import { lookupJson } from "./sqlite-prefix.ts";
 * const key = "00000000000a" + "0".repeat(52);
 * console.assert(JSON.parse(lookupJson([key]))[key] === 10);
 * ```
 */
export function lookupJson(keys: readonly string[]): string {
  let json = "{";
  for (let i = 0; i < keys.length; i++) json += `${i === 0 ? "" : ","}"${keys[i]}":${keyPrefix(keys[i]!)}`;
  return json + "}";
}
