/**
 * Set reconciliation over node keys, so that two logs that never met learn what the other lacks at a cost that
 * follows their difference, not their size.
 *
 * Keys are SHA-256 digests, so they spread evenly over the key space; a range of it is named by a hex prefix. The
 * fingerprint of a prefix is the number of keys under it and the XOR of their first 16 bytes. Each side answers the
 * other's fingerprints: a match closes the range; a mismatch on a range that holds few keys is settled by listing
 * them; any other mismatch is split into the 16 child prefixes. Peers that share n keys and differ by d settle in
 * about log16(n / 32) rounds with O(d log n) bytes.
 *
 * Message body (`RECON`): a sequence of entries, each `u8 kind`, `u8 prefixNibbles`, the prefix packed two nibbles
 * per byte (high nibble first), then by kind:
 * - `FP` (1): `varint count`, `16` bytes of XOR;
 * - `KEYS` (2): `varint count`, `count x 32` bytes: every key the sender holds under the prefix (the receiver answers
 *   with `NEED` for the ones it lacks, and sends the sender the ones the list lacks);
 * - `NEED` (3): `varint count`, `count x 32` bytes: keys the sender lacks and asks for;
 * - `ALL` (4): nothing more: the sender holds no key under the prefix and asks for every key the receiver holds there.
 *
 * @module
 */
import { ProtocolError } from "./errors.ts";
import { HEX_VALUE, hexInto, toHex } from "./hex.ts";
import { readVarint, varintLength, writeVarint } from "./wire.ts";

/** Ranges holding at most this many keys (on either side) are settled by listing keys. */
export const LIST_THRESHOLD = 32;

const FP = 1;
const KEYS = 2;
const NEED = 3;
const ALL = 4;

const HEX_DIGITS = "0123456789abcdef";

/**
 * A fingerprint: how many keys a range holds and the XOR of their first 16 bytes.
 *
 * @example
 * ```ts
 * import type { Fingerprint } from "./reconcile.ts";
 * const empty: Fingerprint = { count: 0, xor: new Uint8Array(16) };
 * console.assert(empty.count === 0);
 * ```
 */
export interface Fingerprint {
  /** The number of keys. */
  count: number;
  /** XOR of the first 16 bytes of every key. */
  xor: Uint8Array;
}

/**
 * One entry of a reconciliation message.
 *
 * @example
 * ```ts
 * import type { ReconEntry } from "./reconcile.ts";
 * const entry: ReconEntry = { kind: "all", prefix: "a" };
 * console.assert(entry.kind === "all");
 * ```
 */
export type ReconEntry =
  | { kind: "fp"; prefix: string; fp: Fingerprint }
  | { kind: "keys"; prefix: string; keys: string[] }
  | { kind: "need"; prefix: string; keys: string[] }
  | { kind: "all"; prefix: string };

/**
 * A sorted index of keys with prefix XORs, answering fingerprint and listing queries in O(log n).
 *
 * @example
 * ```ts
 * import { KeyIndex } from "./reconcile.ts";
 * const index = new KeyIndex(["ab".repeat(32), "cd".repeat(32)]);
 * console.assert(index.fingerprint("a").count === 1 && index.fingerprint("").count === 2);
 * ```
 */
export class KeyIndex {
  readonly #keys: string[];
  /** `#xors[16 * i ..]`: XOR of the first 16 bytes of keys `0 .. i-1`. */
  readonly #xors: Uint8Array;

  /** Builds the index; `keys` may be in any order and is sorted in place. */
  constructor(keys: string[]) {
    keys.sort();
    this.#keys = keys;
    const xors = new Uint8Array((keys.length + 1) * 16);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const at = i * 16;
      for (let j = 0; j < 16; j++) {
        xors[at + 16 + j] = xors[at + j]! ^
          ((HEX_VALUE[key.charCodeAt(2 * j)]! << 4) | HEX_VALUE[key.charCodeAt(2 * j + 1)]!);
      }
    }
    this.#xors = xors;
  }

  /** The number of keys. */
  get size(): number {
    return this.#keys.length;
  }

  /** Whether the index holds `key`. */
  has(key: string): boolean {
    const at = this.#lowerBound(key);
    return at < this.#keys.length && this.#keys[at] === key;
  }

  #lowerBound(text: string): number {
    let lo = 0;
    let hi = this.#keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#keys[mid]! < text) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #range(prefix: string): [number, number] {
    // Every key under the prefix sorts at or after the prefix, and before the prefix followed by "g".
    return [this.#lowerBound(prefix), this.#lowerBound(prefix + "g")];
  }

  /** The fingerprint of the keys under `prefix`. */
  fingerprint(prefix: string): Fingerprint {
    const [lo, hi] = this.#range(prefix);
    const xor = new Uint8Array(16);
    for (let j = 0; j < 16; j++) xor[j] = this.#xors[lo * 16 + j]! ^ this.#xors[hi * 16 + j]!;
    return { count: hi - lo, xor };
  }

  /** The keys under `prefix`, sorted. */
  keys(prefix: string): string[] {
    const [lo, hi] = this.#range(prefix);
    return this.#keys.slice(lo, hi);
  }
}

function sameFingerprint(a: Fingerprint, b: Fingerprint): boolean {
  if (a.count !== b.count) return false;
  for (let j = 0; j < 16; j++) if (a.xor[j] !== b.xor[j]) return false;
  return true;
}

/**
 * Answers a peer's reconciliation entries against the local index. Keys the peer lacks are added to `toSend`;
 * returns the entries to send back (empty when this side has nothing more to ask or say).
 *
 * @example Two sets that differ by one key settle in a few messages
 * ```ts
 * import { answer, KeyIndex } from "./reconcile.ts";
 * const shared = Array.from({ length: 100 }, (_, i) => i.toString(16).padStart(64, "0"));
 * const a = new KeyIndex([...shared, "f".repeat(64)]);
 * const b = new KeyIndex([...shared]);
 * const sendA = new Set<string>(), sendB = new Set<string>();
 * let message = answer(a, [{ kind: "fp", prefix: "", fp: b.fingerprint("") }], sendA);
 * for (let turn = 0; message.length > 0; turn++) message = answer(turn % 2 ? a : b, message, turn % 2 ? sendA : sendB);
 * console.assert(sendA.has("f".repeat(64)) && sendB.size === 0);
 * ```
 */
export function answer(index: KeyIndex, entries: readonly ReconEntry[], toSend: Set<string>): ReconEntry[] {
  const reply: ReconEntry[] = [];
  for (const entry of entries) {
    const { prefix } = entry;
    switch (entry.kind) {
      case "fp": {
        const mine = index.fingerprint(prefix);
        if (sameFingerprint(mine, entry.fp)) break;
        if (entry.fp.count === 0) {
          for (const key of index.keys(prefix)) toSend.add(key);
        } else if (mine.count === 0) {
          reply.push({ kind: "all", prefix });
        } else if (mine.count <= LIST_THRESHOLD || entry.fp.count <= LIST_THRESHOLD || prefix.length >= 63) {
          reply.push({ kind: "keys", prefix, keys: index.keys(prefix) });
        } else {
          for (const digit of HEX_DIGITS) {
            reply.push({ kind: "fp", prefix: prefix + digit, fp: index.fingerprint(prefix + digit) });
          }
        }
        break;
      }
      case "keys": {
        const theirs = new Set(entry.keys);
        for (const key of index.keys(prefix)) if (!theirs.has(key)) toSend.add(key);
        const need = entry.keys.filter((key) => !index.has(key));
        if (need.length > 0) reply.push({ kind: "need", prefix, keys: need });
        break;
      }
      case "need":
        for (const key of entry.keys) {
          if (!index.has(key)) throw new ProtocolError(`The peer asked for node ${key}, which this side never offered`);
          toSend.add(key);
        }
        break;
      case "all":
        for (const key of index.keys(prefix)) toSend.add(key);
        break;
    }
  }
  return reply;
}

const KIND_CODE = { fp: FP, keys: KEYS, need: NEED, all: ALL } as const;

/**
 * Encodes reconciliation entries as a message body after a one-byte type.
 *
 * @example
 * ```ts
 * import { decodeRecon, encodeRecon } from "./reconcile.ts";
 * const body = encodeRecon(2, [{ kind: "all", prefix: "abc" }]);
 * console.assert(decodeRecon(body, 1)[0]?.prefix === "abc");
 * ```
 */
export function encodeRecon(type: number, entries: readonly ReconEntry[]): Uint8Array {
  let size = 1;
  for (const entry of entries) {
    size += 2 + Math.ceil(entry.prefix.length / 2);
    if (entry.kind === "fp") size += varintLength(entry.fp.count) + 16;
    else if (entry.kind !== "all") size += varintLength(entry.keys.length) + 32 * entry.keys.length;
  }
  const out = new Uint8Array(size);
  out[0] = type;
  let at = 1;
  for (const entry of entries) {
    out[at++] = KIND_CODE[entry.kind];
    out[at++] = entry.prefix.length;
    for (let i = 0; i < entry.prefix.length; i += 2) {
      const high = HEX_VALUE[entry.prefix.charCodeAt(i)]!;
      const low = i + 1 < entry.prefix.length ? HEX_VALUE[entry.prefix.charCodeAt(i + 1)]! : 0;
      out[at++] = (high << 4) | low;
    }
    if (entry.kind === "fp") {
      at = writeVarint(out, at, entry.fp.count);
      out.set(entry.fp.xor, at);
      at += 16;
    } else if (entry.kind !== "all") {
      at = writeVarint(out, at, entry.keys.length);
      for (const key of entry.keys) {
        hexInto(key, out, at);
        at += 32;
      }
    }
  }
  return out;
}

/**
 * Decodes a reconciliation message body, starting at `at`. Throws a `ProtocolError` for a malformed one.
 *
 * @example
 * ```ts
 * import { decodeRecon, encodeRecon } from "./reconcile.ts";
 * const fp = { count: 3, xor: new Uint8Array(16).fill(7) };
 * const [entry] = decodeRecon(encodeRecon(2, [{ kind: "fp", prefix: "0f", fp }]), 1);
 * console.assert(entry?.kind === "fp" && entry.fp.count === 3);
 * ```
 */
export function decodeRecon(body: Uint8Array, at: number): ReconEntry[] {
  const entries: ReconEntry[] = [];
  const fail = (what: string): never => {
    throw new ProtocolError(`Malformed reconciliation message: ${what}`);
  };
  while (at < body.length) {
    const kind = body[at++]!;
    if (at >= body.length) fail("truncated entry");
    const nibbles = body[at++]!;
    if (nibbles > 63) fail(`a prefix of ${nibbles} hex digits`);
    const bytes = Math.ceil(nibbles / 2);
    if (at + bytes > body.length) fail("truncated prefix");
    const prefix = toHex(body.subarray(at, at + bytes)).slice(0, nibbles);
    at += bytes;
    if (kind === ALL) {
      entries.push({ kind: "all", prefix });
      continue;
    }
    if (kind !== FP && kind !== KEYS && kind !== NEED) fail(`unknown entry kind ${kind}`);
    const count = readVarint(body, at);
    if (count === undefined) fail("truncated count");
    const [n, next] = count!;
    at = next;
    if (kind === FP) {
      if (at + 16 > body.length) fail("truncated fingerprint");
      entries.push({ kind: "fp", prefix, fp: { count: n, xor: body.slice(at, at + 16) } });
      at += 16;
      continue;
    }
    if (at + 32 * n > body.length) fail("truncated key list");
    const keys: string[] = [];
    for (let i = 0; i < n; i++, at += 32) {
      const key = toHex(body.subarray(at, at + 32));
      if (!key.startsWith(prefix)) fail(`key ${key} is not under prefix ${prefix}`);
      keys.push(key);
    }
    entries.push(kind === KEYS ? { kind: "keys", prefix, keys } : { kind: "need", prefix, keys });
  }
  return entries;
}
