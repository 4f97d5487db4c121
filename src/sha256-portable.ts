/**
 * A synchronous SHA-256 in plain JavaScript (FIPS 180-4), for runtimes without a native one (browsers, Workers).
 *
 * It is small on purpose (it ships in the browser client): the 64 round constants and the 8 initial hash words are
 * not a table in the source but computed once, on first use, as FIPS 180-4 defines them (the first 32 bits of the
 * fractional parts of the cube roots of the first 64 primes, and of the square roots of the first 8). Each of those
 * values sits at least 2^-8 from a rounding boundary of its 32 bits, far beyond the error of `Math.cbrt` and
 * `Math.sqrt`, so every engine computes the same words; `tests/hash.test.ts` checks them against the standard's
 * vectors and against WebCrypto on inputs of every length around the block boundaries.
 *
 * @module
 */

import { HEX_BYTES } from "./hex.ts";

let K: Int32Array | undefined;
let IV: Int32Array;
const W = new Int32Array(64);
/** The last one or two blocks: the tail of the input, the padding and the length. */
const TAIL = new Uint8Array(128);
const TAIL_VIEW = new DataView(TAIL.buffer);

/** The round constants and initial hash words, computed from the primes (see the module doc). */
function constants(): Int32Array {
  const k = new Int32Array(64);
  IV = new Int32Array(8);
  const bits = (x: number) => ((x - Math.floor(x)) * 2 ** 32) | 0;
  for (let n = 2, i = 0; i < 64; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) if (n % d === 0) prime = false;
    if (!prime) continue;
    if (i < 8) IV[i] = bits(Math.sqrt(n));
    k[i++] = bits(Math.cbrt(n));
  }
  return k;
}

/** `x` rotated right by `n` bits. */
const rotr = (x: number, n: number): number => (x >>> n) | (x << (32 - n));

/** Runs the compression function over the 64-byte block of `src` at `at`, updating `h`. */
function block(h: Int32Array, src: Uint8Array, at: number, k: Int32Array): void {
  for (let i = 0; i < 16; i++, at += 4) {
    W[i] = (src[at]! << 24) | (src[at + 1]! << 16) | (src[at + 2]! << 8) | src[at + 3]!;
  }
  for (let i = 16; i < 64; i++) {
    const x = W[i - 15]!;
    const y = W[i - 2]!;
    W[i] = (rotr(x, 7) ^ rotr(x, 18) ^ (x >>> 3)) + (rotr(y, 17) ^ rotr(y, 19) ^ (y >>> 10)) + W[i - 7]! + W[i - 16]!;
  }
  let a = h[0]!, b = h[1]!, c = h[2]!, d = h[3]!, e = h[4]!, f = h[5]!, g = h[6]!, j = h[7]!;
  for (let i = 0; i < 64; i++) {
    const t = (j + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i]! + W[i]!) | 0;
    const u = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    j = g;
    g = f;
    f = e;
    e = (d + t) | 0;
    d = c;
    c = b;
    b = a;
    a = (t + u) | 0;
  }
  h[0]! += a;
  h[1]! += b;
  h[2]! += c;
  h[3]! += d;
  h[4]! += e;
  h[5]! += f;
  h[6]! += g;
  h[7]! += j;
}

/** The hash words of the digest under way (one state, reused: no allocation per digest). */
const H = new Int32Array(8);

/** Hashes `data` into {@link H} (the padding goes through the reused {@link TAIL}). */
function digestInto(data: Uint8Array): void {
  const k = (K ??= constants());
  H.set(IV);
  const length = data.length;
  const full = length & ~63;
  for (let at = 0; at < full; at += 64) block(H, data, at, k);
  // The tail, the 0x80 byte, zeros and the length in bits (big-endian, 64 bits): one or two more blocks.
  const end = length - full < 56 ? 64 : 128;
  TAIL.fill(0);
  TAIL.set(data.subarray(full));
  TAIL[length - full] = 0x80;
  TAIL_VIEW.setUint32(end - 8, Math.floor(length / 2 ** 29));
  TAIL_VIEW.setUint32(end - 4, length << 3);
  for (let at = 0; at < end; at += 64) block(H, TAIL, at, k);
}

/**
 * The SHA-256 digest of `data` (32 bytes), computed in JavaScript.
 *
 * @example
 * ```ts
 * import { sha256Js } from "./sha256-portable.ts";
 * import { toHex } from "./hex.ts";
 * const digest = sha256Js(new TextEncoder().encode("abc"));
 * console.assert(toHex(digest) === "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
 * ```
 */
export function sha256Js(data: Uint8Array): Uint8Array {
  digestInto(data);
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = H[i >> 2]! >>> (24 - 8 * (i & 3));
  return out;
}

/**
 * The SHA-256 digest of `data` as lower-case hex, computed in JavaScript without allocating anything but the
 * string: on Deno a small typed array costs 1-3 us to allocate (0.04 us on Node), more than the hash itself.
 *
 * @example
 * ```ts
 * import { sha256HexJs } from "./sha256-portable.ts";
 * const hex = sha256HexJs(new TextEncoder().encode("abc"));
 * console.assert(hex === "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
 * ```
 */
export function sha256HexJs(data: Uint8Array): string {
  digestInto(data);
  let hex = "";
  for (let i = 0; i < 8; i++) {
    const word = H[i]!;
    hex += HEX_BYTES[word >>> 24]! + HEX_BYTES[(word >>> 16) & 255]! + HEX_BYTES[(word >>> 8) & 255]! +
      HEX_BYTES[word & 255]!;
  }
  return hex;
}
