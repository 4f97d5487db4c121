/**
 * A filter of the keys settled into the index on disk (`hyperlog_keys`), so that a commit does not probe the index
 * for keys that are surely not there, as every key of a fresh sync is not. It is a blocked Bloom filter: a key sets
 * 6 bits inside one 512-bit block (one cache line), 12 bits a key on average, so a probe costs one memory access
 * (about 0.6 % of absent keys still go to the index, which stays the truth). Keys come in batches (one per settle);
 * a batch goes into the last filter while it has room, else into a new filter of at least four times the capacity,
 * the first one sized for 262 144 keys (512 KB), so a log of n keys has about log4(3n / 262 144 + 1) filters
 * (2 at 1 000 000, 3 up to 5 500 000: a probe of an absent key reads that many cache lines, not one per settle). A
 * connection has the filter only while it has seen every settle (it opened an empty log, and settled alone);
 * otherwise every key is looked up in the index, as before.
 *
 * @module
 */

/** Bits per key of each filter, at its capacity. */
const BITS_PER_KEY = 12;
/** Probes per key (all in one block). */
const PROBES = 6;
/** Words (32 bits) per block: 512 bits, one cache line. */
const BLOCK_WORDS = 16;
/** How much larger each filter is than the one before. */
const GROWTH = 4;
/** The capacity of the first filter, in keys. */
const FIRST_CAPACITY = 262144;

/** One filter: its bits, how many keys it holds, and how many it is sized for. */
interface Part {
  readonly bits: Int32Array;
  /** The number of blocks minus one (a power of two minus one). */
  readonly mask: number;
  readonly capacity: number;
  size: number;
}

/**
 * Blocked Bloom filters over keys given as 32-bit words of their characters (see `KeyTable`), probed from their
 * first four words (16 hex characters: 64 bits of the key) mixed with a random seed.
 *
 * @example
 * ```ts
 * import { KeyFilter } from "./sqlite-filter.ts";
 * const filter = new KeyFilter();
 * const words = new Int32Array([1, 2, 3, 4, 5, 6, 7, 8]);
 * filter.add(words, 1); // one key, its first four words at 0
 * console.assert(filter.mayHave(words, 0) && filter.size === 1 && filter.parts === 1);
 * console.assert(!filter.mayHave(new Int32Array([8, 7, 6, 5]), 0)); // surely not there (6 of 3 145 728 bits set)
 * ```
 */
export class KeyFilter {
  readonly #parts: Part[] = [];
  readonly #seed = (Math.random() * 0x100000000) | 0;
  #size = 0;

  /** The number of keys added. */
  get size(): number {
    return this.#size;
  }

  /** The number of filters a probe of an absent key reads (one cache line each). */
  get parts(): number {
    return this.#parts.length;
  }

  /** The bytes the filters take. */
  get bytes(): number {
    let bytes = 0;
    for (const part of this.#parts) bytes += part.bits.byteLength;
    return bytes;
  }

  /**
   * Adds `count` keys whose words are in `words`, `stride` words apart from index 0 on (as a `KeyTable` holds them:
   * 16 words a key).
   */
  add(words: Int32Array, count: number, stride = 16): void {
    if (count === 0) return;
    let part = this.#parts[this.#parts.length - 1];
    if (part === undefined || part.size + count > part.capacity) {
      let capacity = Math.max(FIRST_CAPACITY, GROWTH * (part?.capacity ?? 0));
      while (capacity < count) capacity *= 2;
      let blocks = 1;
      while (blocks * BLOCK_WORDS * 32 < capacity * BITS_PER_KEY) blocks *= 2;
      part = { bits: new Int32Array(blocks * BLOCK_WORDS), mask: blocks - 1, capacity, size: 0 };
      this.#parts.push(part);
    }
    const { bits, mask } = part;
    const seed = this.#seed;
    for (let k = 0, at = 0; k < count; k++, at += stride) {
      const h1 = hash(words[at]!, words[at + 1]!, seed);
      const h2 = hash(words[at + 2]!, words[at + 3]!, h1);
      const block = (h2 & mask) * BLOCK_WORDS;
      const bitsOf = remix(h1 ^ h2);
      for (let i = 0, h = bitsOf; i < PROBES; i++, h = i === 3 ? remix(bitsOf) : h >>> 9) {
        bits[block + ((h >>> 5) & 15)]! |= 1 << (h & 31);
      }
    }
    part.size += count;
    this.#size += count;
  }

  /** Whether the key whose first four words are at `words[at..at+4]` may have been added (false: surely not). */
  mayHave(words: Int32Array, at: number): boolean {
    const parts = this.#parts;
    if (parts.length === 0) return false;
    const seed = this.#seed;
    // The block and the bits both depend on all four words (keys alike in some words still spread).
    const h1 = hash(words[at]!, words[at + 1]!, seed);
    const h2 = hash(words[at + 2]!, words[at + 3]!, h1);
    const bitsOf = remix(h1 ^ h2);
    outer: for (let p = 0; p < parts.length; p++) {
      const { bits, mask } = parts[p]!;
      const block = (h2 & mask) * BLOCK_WORDS;
      for (let i = 0, h = bitsOf; i < PROBES; i++, h = i === 3 ? remix(bitsOf) : h >>> 9) {
        if ((bits[block + ((h >>> 5) & 15)]! & (1 << (h & 31))) === 0) continue outer;
      }
      return true;
    }
    return false;
  }
}

/** Another 32 bits from a hash (its 9-bit pieces give three probes). */
function remix(h: number): number {
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Mixes two words and a seed into 32 bits. */
function hash(a: number, b: number, seed: number): number {
  let h = Math.imul(a ^ seed, 0x2c1b3c6d);
  h = Math.imul(h ^ (h >>> 12) ^ b, 0x297a2d39);
  h = Math.imul(h ^ (h >>> 15), 0x85ebca77);
  return h ^ (h >>> 16);
}
