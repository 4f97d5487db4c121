/**
 * The synchronous SHA-256 that node keys are computed with.
 *
 * Hashing sits on the hot path of every add and every received node, so it must be synchronous: an awaited
 * WebCrypto digest costs 20-50 us, ten times the whole budget of an add (see the README for the figures).
 * The portable implementation is our own (`sha256-portable.ts`: plain JavaScript, about 1 KB minified, as fast as
 * `@noble/hashes`, which it replaced to keep the browser client small). Where the runtime
 * exposes a native synchronous SHA-256 through the standard `process.getBuiltinModule` hook (Node >= 22.3,
 * Deno 2, Bun), that one is used instead: same digests, 1.7x (Node) to 10x (Bun) faster; except for keys in hex on
 * Deno, whose native hash is slower there than the portable one (see `sha256Hex`). No module is imported for it, so
 * this file stays runtime-agnostic; browsers and Workers use the portable one.
 *
 * @module
 */
import { sha256HexJs, sha256Js } from "./sha256-portable.ts";
import { toHex } from "./hex.ts";

/** A synchronous SHA-256 function: bytes in, 32-byte digest out. */
export type Sha256 = (data: Uint8Array) => Uint8Array;

/**
 * The portable SHA-256 (`sha256-portable.ts`).
 *
 * @example
 * ```ts
 * import { portableSha256 } from "./sha256.ts";
 * console.assert(portableSha256(new Uint8Array()).length === 32);
 * ```
 */
export const portableSha256: Sha256 = sha256Js;

type HashFn = (algorithm: string, data: Uint8Array, outputEncoding: "buffer" | "hex") => Uint8Array | string;

/**
 * The runtime's native `crypto.hash` (found through `process.getBuiltinModule`), if it has one and it agrees with
 * the portable implementation on a known input.
 */
function findNativeHash(): HashFn | undefined {
  try {
    const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    const mod = proc?.getBuiltinModule?.("node:crypto") as { hash?: HashFn } | undefined;
    const hash = mod?.hash;
    if (typeof hash !== "function") return undefined;
    const probe = new TextEncoder().encode("5\nhello");
    const a = hash("sha256", probe, "buffer") as Uint8Array;
    const b = sha256Js(probe);
    if (a.length !== 32 || a.some((x, i) => x !== b[i])) return undefined;
    if (hash("sha256", probe, "hex") !== toHex(b)) return undefined;
    return hash;
  } catch {
    return undefined;
  }
}

const nativeHash = findNativeHash();

/** The runtime's `process.versions` (Node, and the Node compatibility of Deno and Bun), if it has one. */
const versions = (globalThis as { process?: { versions?: Record<string, string | undefined> } }).process?.versions;

/**
 * Whether the runtime is Deno, whose native `crypto.hash` costs more than the portable hash: 1.70 us for a
 * 100-byte node in hex, against 0.66 us for `sha256HexJs`, which allocates nothing but the string (a small typed
 * array costs Deno 1-3 us; Node 0.33 us native, Bun 0.44 us).
 */
function nativeHexSlower(): boolean {
  return versions?.deno !== undefined;
}

/** The native SHA-256 of this runtime, if it has one (used by the tests that compare implementations). */
export const nativeSha256: Sha256 | undefined = nativeHash === undefined
  ? undefined
  : (data) => nativeHash("sha256", data, "buffer") as Uint8Array;

/**
 * The SHA-256 hyperlog uses: native where the runtime has one, else the portable one.
 *
 * @example
 * ```ts
 * import { sha256 } from "./sha256.ts";
 * import { toHex } from "./hex.ts";
 * console.assert(toHex(sha256(new TextEncoder().encode("5\nhello"))).startsWith("8c7efb22"));
 * ```
 */
export const sha256: Sha256 = nativeSha256 ?? portableSha256;

/**
 * SHA-256 as lower-case hex, with no digest allocated (an ArrayBuffer allocation costs as much as the hash of a
 * small node): the runtime's native hash where it has one (Node, Bun), else, and on Deno, where the native one is
 * slower, the portable hash's `sha256HexJs`.
 *
 * @example
 * ```ts
 * import { sha256Hex } from "./sha256.ts";
 * console.assert(sha256Hex(new TextEncoder().encode("5\nhello")).startsWith("8c7efb22"));
 * ```
 */
export const sha256Hex: (data: Uint8Array) => string = nativeHash === undefined || nativeHexSlower()
  ? sha256HexJs
  : (data) => nativeHash("sha256", data, "hex") as string;
