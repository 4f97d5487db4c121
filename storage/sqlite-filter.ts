/**
 * A filter of the keys settled into the index on disk (`hyperlog_keys`), so that a commit does not probe the index
 * for keys that are surely not there, as every key of a fresh sync is not: one Bloom filter per settle, sized for
 * its keys (12 bits a key, 6 probes: about 0.5 % of absent keys still go to the index, which stays the truth). A
 * connection has the filter only while it has seen every settle (it opened an empty log, and settled alone);
 * otherwise every key is looked up in the index, as before.
 *
 * @module
 */

/** Bits per key of each filter. */
const BITS_PER_KEY = 12;
/** Probes per key. */
const PROBES = 6;

/**
 * Bloom filters over keys given as 32-bit words of their characters (see `KeyTable`), probed from their first
 * four words (16 hex characters: 64 bits of the key) mixed with a random seed.
 *
 * @example
 * ```ts
 * import { KeyFilter } from "./sqlite-filter.ts";
 * const filter = new KeyFilter();
 * const words = new Int32Array([1, 2, 3, 4, 5, 6, 7, 8]);
 * filter.add([{ words, at: 0 }]);
 * console.assert(filter.mayHave(words, 0) && filter.size === 1);
 * console.assert(!filter.mayHave(new Int32Array([8, 7, 6, 5]), 0)); // surely not there (this filter has 64 bits)
 * ```
 */
export class KeyFilter {
  readonly #filters: Int32Array[] = [];
  readonly #seed = (Math.random() * 0x100000000) | 0;
  #size = 0;

  /** The number of keys added. */
  get size(): number {
    return this.#size;
  }

  /** Adds a filter holding `keys` (the words of each key at `at`). */
  add(keys: Iterable<{ words: Int32Array; at: number }>, count?: number): void {
    const list = count === undefined ? [...keys] : keys;
    const n = count ?? (list as { words: Int32Array; at: number }[]).length;
    if (n === 0) return;
    let words = 1;
    while (words * 32 < n * BITS_PER_KEY) words *= 2;
    const bits = new Int32Array(words);
    const mask = words * 32 - 1;
    const seed = this.#seed;
    for (const { words: w, at } of list) {
      const h1 = hash(w[at]!, w[at + 1]!, seed);
      const h2 = hash(w[at + 2]!, w[at + 3]!, ~seed) | 1;
      for (let i = 0; i < PROBES; i++) {
        const bit = (h1 + Math.imul(i, h2)) & mask;
        bits[bit >>> 5]! |= 1 << (bit & 31);
      }
    }
    this.#filters.push(bits);
    this.#size += n;
  }

  /** Whether the key whose first four words are at `words[at..at+4]` may have been added (false: surely not). */
  mayHave(words: Int32Array, at: number): boolean {
    const seed = this.#seed;
    const h1 = hash(words[at]!, words[at + 1]!, seed);
    const h2 = hash(words[at + 2]!, words[at + 3]!, ~seed) | 1;
    const filters = this.#filters;
    outer: for (let f = 0; f < filters.length; f++) {
      const bits = filters[f]!;
      const mask = bits.length * 32 - 1;
      for (let i = 0; i < PROBES; i++) {
        const bit = (h1 + Math.imul(i, h2)) & mask;
        if ((bits[bit >>> 5]! & (1 << (bit & 31))) === 0) continue outer;
      }
      return true;
    }
    return false;
  }
}

/** Mixes two words and a seed into 32 bits. */
function hash(a: number, b: number, seed: number): number {
  let h = Math.imul(a ^ seed, 0x2c1b3c6d);
  h = Math.imul(h ^ (h >>> 12) ^ b, 0x297a2d39);
  return h ^ (h >>> 15);
}
