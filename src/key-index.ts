/**
 * The key index reconciliation works on: every key of a log, grouped by its first three hex digits into 4 096
 * sorted buckets, each with the count and XOR of its keys. A fingerprint of a short prefix XORs bucket totals; a
 * long prefix looks inside one bucket. Adding a key costs a binary search and an insert into one bucket, so the
 * index is kept up to date as nodes are committed (see `Hyperlog`'s key index), never rebuilt per session.
 *
 * @module
 */
import { HEX_VALUE } from "./hex.ts";

const BUCKET_DIGITS = 3;

/**
 * Keys a log keeps indexed without being asked: a replication session builds the index before its HELLO for a log
 * of at most this many nodes, and a log drops an index that grows past it unless a reconciliation used it
 * ({@link KeyIndex.keep}); a larger log builds it when a reconciliation first needs it, then keeps it.
 *
 * @example
 * ```ts
 * import { EAGER_KEYS } from "./key-index.ts";
 * console.assert(EAGER_KEYS === 131_072);
 * ```
 */
export const EAGER_KEYS = 1 << 17;
const BUCKETS = 16 ** BUCKET_DIGITS;
/** Every empty bucket (never written: a bucket gets an array of its own with its first key). */
const EMPTY: string[] = [];

/**
 * A fingerprint: how many keys a range holds and the XOR of their first 16 bytes.
 *
 * @example
 * ```ts
 * import { type Fingerprint, KeyIndex } from "./key-index.ts";
 * const index = new KeyIndex(["ab".repeat(32), "cd".repeat(32)]);
 * const both: Fingerprint = index.fingerprint("");
 * const empty: Fingerprint = index.fingerprint("e");
 * console.assert(both.count === 2 && both.xor[0] === (0xab ^ 0xcd) && both.xor.length === 16);
 * console.assert(empty.count === 0 && empty.xor.every((byte) => byte === 0));
 * ```
 */
export interface Fingerprint {
  /** The number of keys. */
  count: number;
  /** XOR of the first 16 bytes of every key. */
  xor: Uint8Array;
}

function xorKeyInto(xor: Uint8Array, key: string, at = 0): void {
  for (let j = 0; j < 16; j++) {
    xor[at + j]! ^= (HEX_VALUE[key.charCodeAt(2 * j)]! << 4) | HEX_VALUE[key.charCodeAt(2 * j + 1)]!;
  }
}

function lowerBound(keys: readonly string[], text: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < text) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A sorted, growable index of keys (64 lower-case hex digits) answering fingerprint and listing queries.
 *
 * @example
 * ```ts
 * import { KeyIndex } from "./key-index.ts";
 * const index = new KeyIndex(["ab".repeat(32), "cd".repeat(32)]);
 * index.add("ef".repeat(32));
 * console.assert(index.fingerprint("a").count === 1 && index.fingerprint("").count === 3 && index.size === 3);
 * ```
 */
export class KeyIndex {
  /** The sorted buckets; an empty one is the shared `EMPTY` until a key goes in (a new log makes none). */
  readonly #buckets: string[][] = new Array<string[]>(BUCKETS).fill(EMPTY);
  /** `#xors[16 * b ..]`: XOR of the keys of bucket `b`. */
  readonly #xors = new Uint8Array(BUCKETS * 16);
  /** 1 for a bucket that {@link KeyIndex.addNew} appended to: sorted when next read (counts and XORs need no order). */
  readonly #unsorted = new Uint8Array(BUCKETS);
  #size = 0;
  /**
   * Keys given to {@link KeyIndex.addNew} and not yet in their buckets: put there by the next call that reads the
   * index, so that a commit pays one push per key, and a log no session reads again (the receiver of a fresh sync)
   * never pays the rest.
   */
  #pending: string[] = [];
  /** Whether a reconciliation used this index: its log keeps it up to date whatever its size. */
  keep = false;
  /**
   * Keys a replication session into an empty log expects to add: an index that would outgrow {@link EAGER_KEYS}
   * with them is dropped at the next commit, before it holds them (a fresh sync of a million nodes keeps none).
   */
  coming = 0;

  /** Builds the index from `keys`, in any order; a key given twice counts once. */
  constructor(keys: Iterable<string> = []) {
    for (const key of keys) this.add(key);
  }

  /** The number of keys. */
  get size(): number {
    return this.#size + this.#pending.length;
  }

  static #bucketOf(key: string): number {
    return (HEX_VALUE[key.charCodeAt(0)]! << 8) | (HEX_VALUE[key.charCodeAt(1)]! << 4) | HEX_VALUE[key.charCodeAt(2)]!;
  }

  /** Puts the pending keys in their buckets (each appended, its bucket sorted when next read). */
  #place(): void {
    const keys = this.#pending;
    if (keys.length === 0) return;
    this.#pending = [];
    const buckets = this.#buckets;
    const unsorted = this.#unsorted;
    const xors = this.#xors;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const b = KeyIndex.#bucketOf(key);
      let bucket = buckets[b]!;
      if (bucket === EMPTY) buckets[b] = bucket = [];
      else unsorted[b] = 1;
      bucket.push(key);
      xorKeyInto(xors, key, b * 16);
    }
    this.#size += keys.length;
  }

  /** Bucket `b`, sorted. */
  #sorted(b: number): string[] {
    const bucket = this.#buckets[b]!;
    if (this.#unsorted[b] === 1) {
      bucket.sort();
      this.#unsorted[b] = 0;
    }
    return bucket;
  }

  /** Adds a key; returns false if it was there already. */
  add(key: string): boolean {
    this.#place();
    const b = KeyIndex.#bucketOf(key);
    let bucket = this.#sorted(b);
    if (bucket === EMPTY) this.#buckets[b] = bucket = [];
    const at = lowerBound(bucket, key);
    if (bucket[at] === key) return false;
    if (at === bucket.length) bucket.push(key);
    else bucket.splice(at, 0, key);
    xorKeyInto(this.#xors, key, b * 16);
    this.#size++;
    return true;
  }

  /**
   * Adds a key the index does not hold (the log's storage said it was new): noted, and put in its bucket (appended,
   * the bucket sorted when next read) only when the index is next read, so that a commit pays one push per key and
   * no binary search of string comparisons (most of a fresh sync's index cost). A key given twice here would count
   * twice: use {@link KeyIndex.add} when unsure.
   *
   * @example
   * ```ts
   * import { KeyIndex } from "./key-index.ts";
   * const index = new KeyIndex();
   * for (const key of ["ab2", "ab1", "ab3"]) index.addNew(key.padEnd(64, "0"));
   * console.assert(index.keys("ab").join() === ["ab1", "ab2", "ab3"].map((k) => k.padEnd(64, "0")).join());
   * console.assert(!index.add("ab1".padEnd(64, "0")) && index.size === 3);
   * ```
   */
  addNew(key: string): void {
    this.#pending.push(key);
  }

  /** Whether the index holds `key`. */
  has(key: string): boolean {
    this.#place();
    const bucket = this.#sorted(KeyIndex.#bucketOf(key));
    return bucket[lowerBound(bucket, key)] === key;
  }

  /** The buckets a prefix of at most three digits covers: `[first, end)`. */
  #span(prefix: string): [number, number] {
    let first = 0;
    for (let i = 0; i < prefix.length; i++) first = (first << 4) | HEX_VALUE[prefix.charCodeAt(i)]!;
    const width = 16 ** (BUCKET_DIGITS - prefix.length);
    first *= width;
    return [first, first + width];
  }

  /** Within one bucket, the keys under a prefix of more than three digits: `[bucket, lo, hi)`. */
  #inBucket(prefix: string): [string[], number, number] {
    const bucket = this.#sorted(KeyIndex.#bucketOf(prefix));
    return [bucket, lowerBound(bucket, prefix), lowerBound(bucket, prefix + "g")];
  }

  /** The fingerprint of the keys under `prefix`. */
  fingerprint(prefix: string): Fingerprint {
    this.#place();
    const xor = new Uint8Array(16);
    let count = 0;
    if (prefix.length <= BUCKET_DIGITS) {
      const [first, end] = this.#span(prefix);
      const xors = this.#xors;
      for (let b = first; b < end; b++) {
        const n = this.#buckets[b]!.length;
        if (n === 0) continue;
        count += n;
        for (let j = 0, at = b * 16; j < 16; j++) xor[j]! ^= xors[at + j]!;
      }
      return { count, xor };
    }
    const [bucket, lo, hi] = this.#inBucket(prefix);
    for (let i = lo; i < hi; i++) xorKeyInto(xor, bucket[i]!);
    return { count: hi - lo, xor };
  }

  /** The number of keys under `prefix`. */
  count(prefix: string): number {
    this.#place();
    if (prefix.length <= BUCKET_DIGITS) {
      const [first, end] = this.#span(prefix);
      let count = 0;
      for (let b = first; b < end; b++) count += this.#buckets[b]!.length;
      return count;
    }
    const [, lo, hi] = this.#inBucket(prefix);
    return hi - lo;
  }

  /** The keys under `prefix`, sorted. */
  keys(prefix: string): string[] {
    this.#place();
    if (prefix.length <= BUCKET_DIGITS) {
      const [first, end] = this.#span(prefix);
      const out: string[] = [];
      for (let b = first; b < end; b++) for (const key of this.#sorted(b)) out.push(key);
      return out;
    }
    const [bucket, lo, hi] = this.#inBucket(prefix);
    return bucket.slice(lo, hi);
  }
}
