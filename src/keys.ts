/**
 * The shapes of the hex strings the log uses, in one place: node keys (and identities, which are Ed25519 public
 * keys of the same length), and signatures. Every check of a key, in the core, the storage backends, the relay and
 * the CLI, goes through these.
 *
 * @module
 */

/**
 * A node key (or an identity): 64 lower-case hex characters, a SHA-256 digest or an Ed25519 public key.
 *
 * @example
 * ```ts
 * import { KEY_PATTERN } from "./keys.ts";
 * console.assert(KEY_PATTERN.test("ab".repeat(32)) && !KEY_PATTERN.test("AB".repeat(32)));
 * console.assert(!KEY_PATTERN.test("ab".repeat(32) + "\n"));
 * ```
 */
export const KEY_PATTERN: RegExp = /^[0-9a-f]{64}$/;

/**
 * A signature: 128 lower-case hex characters (64 bytes of Ed25519).
 *
 * @example
 * ```ts
 * import { SIGNATURE_PATTERN } from "./keys.ts";
 * console.assert(SIGNATURE_PATTERN.test("0f".repeat(64)) && !SIGNATURE_PATTERN.test("0f".repeat(32)));
 * ```
 */
export const SIGNATURE_PATTERN: RegExp = /^[0-9a-f]{128}$/;

/**
 * Tells whether `value` is a node key: 64 lower-case hex characters.
 *
 * @example
 * ```ts
 * import { isKey } from "./keys.ts";
 * console.assert(isKey("ab".repeat(32)) && !isKey("AB".repeat(32)) && !isKey(42) && !isKey("ab"));
 * ```
 */
export function isKey(value: unknown): value is string {
  return typeof value === "string" && value.length === 64 && KEY_PATTERN.test(value);
}

/**
 * Tells whether `value` is a signature: 128 lower-case hex characters.
 *
 * @example
 * ```ts
 * import { isSignature } from "./keys.ts";
 * console.assert(isSignature("0f".repeat(64)) && !isSignature("0F".repeat(64)) && !isSignature(undefined));
 * ```
 */
export function isSignature(value: unknown): value is string {
  return typeof value === "string" && value.length === 128 && SIGNATURE_PATTERN.test(value);
}
