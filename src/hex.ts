/**
 * Hex encoding helpers used for keys, identities and signatures.
 *
 * @module
 */

/**
 * The two lower-case hex characters of each byte value.
 *
 * @example
 * ```ts
 * import { HEX_BYTES } from "./hex.ts";
 * console.assert(HEX_BYTES[0xa5] === "a5" && HEX_BYTES[7] === "07");
 * ```
 */
export const HEX_BYTES: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/**
 * The two lower-case hex characters of each byte value, packed as `first | second << 8` (for decoders that write
 * many keys into one string at a time).
 *
 * @example
 * ```ts
 * import { HEX_PAIRS } from "./hex.ts";
 * const pair = HEX_PAIRS[0xa5]!;
 * console.assert(String.fromCharCode(pair & 0xff, pair >> 8) === "a5");
 * ```
 */
export const HEX_PAIRS: Uint16Array = new Uint16Array(256);
for (let i = 0; i < 256; i++) HEX_PAIRS[i] = HEX_BYTES[i]!.charCodeAt(0) | (HEX_BYTES[i]!.charCodeAt(1) << 8);

/**
 * Encodes bytes as lower-case hex.
 *
 * @example
 * ```ts
 * import { toHex } from "./hex.ts";
 * console.assert(toHex(new Uint8Array([0, 255])) === "00ff");
 * ```
 */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX_BYTES[bytes[i]!]!;
  return out;
}

/** The value of each lower-case hex digit, indexed by its character code (0 for anything else). */
export const HEX_VALUE: Uint8Array = new Uint8Array(128);
for (let i = 0; i < 16; i++) HEX_VALUE["0123456789abcdef".charCodeAt(i)] = i;

/**
 * Writes lower-case hex that is already known to be valid (keys, identities, signatures) as bytes at `at`.
 *
 * @example
 * ```ts
 * import { hexInto } from "./hex.ts";
 * const out = new Uint8Array(2);
 * hexInto("00ff", out, 0);
 * console.assert(out[1] === 255);
 * ```
 */
export function hexInto(hex: string, out: Uint8Array, at: number): void {
  for (let i = 0; i < hex.length; i += 2) {
    out[at++] = (HEX_VALUE[hex.charCodeAt(i)]! << 4) | HEX_VALUE[hex.charCodeAt(i + 1)]!;
  }
}

/**
 * Decodes hex (either case) into bytes; throws a `TypeError` naming `what` if the text is not hex.
 *
 * @example
 * ```ts
 * import { fromHex } from "./hex.ts";
 * console.assert(fromHex("00ff")[1] === 255);
 * ```
 */
export function fromHex(hex: string, what = "Value"): Uint8Array {
  if (typeof hex !== "string" || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new TypeError(`${what} must be a hex string of even length`);
  }
  const out = new Uint8Array(hex.length / 2);
  hexInto(hex.toLowerCase(), out, 0);
  return out;
}

/** Node keys are checked in keys.ts; re-exported here for the modules that import it from hex.ts. */
export { isKey } from "./keys.ts";
