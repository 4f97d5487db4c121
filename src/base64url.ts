/**
 * Base64url without padding (RFC 4648 §5), through the platform's `btoa`/`atob`: the HELLO's binary fields and
 * JWK keys. One codec for both, so the browser bundle carries no alphabet table of its own.
 *
 * @module
 */

/** Text made only of base64url characters. */
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Encodes bytes as base64url without padding.
 *
 * @example
 * ```ts
 * import { toBase64Url } from "./base64url.ts";
 * console.assert(toBase64Url(new Uint8Array([251, 255])) === "-_8");
 * ```
 */
export function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]!);
  return btoa(binary).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

/**
 * Decodes base64url (without padding); `undefined` if the text holds anything else or has an impossible length.
 *
 * @example
 * ```ts
 * import { fromBase64Url } from "./base64url.ts";
 * console.assert(fromBase64Url("-_8")?.join() === "251,255");
 * console.assert(fromBase64Url("a+b=") === undefined && fromBase64Url("abcde") === undefined);
 * ```
 */
export function fromBase64Url(text: string): Uint8Array | undefined {
  if (!BASE64URL.test(text) || text.length % 4 === 1) return undefined;
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}
