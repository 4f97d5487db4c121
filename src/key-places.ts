/**
 * The first place of each key in a list of nodes or drafts, for the checks of one write (is a link satisfied by an
 * earlier draft of the call, is a key repeated, was it in the last commit). A `Map` keyed by the 64-character keys
 * would hash each one whole, and a key just decoded or computed has no hash cached yet: that hashing was most of
 * what a received page's checks cost. This table hashes a key's first 8 characters (32 bits of a SHA-256 digest,
 * mixed with a seed of the process's own) and compares whole keys only on a match.
 *
 * @module
 */

/**
 * The hash seed: a peer cannot aim keys at one slot without knowing it (and 32 shared bits cost 2^32 hashes). Drawn
 * at the first table, not when the module loads: a Worker may not draw random values in its global scope.
 */
let seed: number | undefined;

/**
 * The slot hash of a key for a table seeded with `salt`: its first 8 characters (32 bits of a hex SHA-256 digest)
 * mixed with the seed. Shared with the link encoder's table of sent keys (`link-refs.ts`).
 *
 * @example
 * ```ts
 * import { keyHash } from "./key-places.ts";
 * const key = "ab".repeat(32);
 * console.assert(keyHash(key, 1) === keyHash(key.slice(0, 8) + "0".repeat(56), 1), "only 8 characters count");
 * ```
 */
export function keyHash(key: string, salt: number): number {
  let h = salt;
  const n = key.length < 8 ? key.length : 8;
  for (let i = 0; i < n; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x9e3779b1);
  return h ^ (h >>> 16);
}

/**
 * The first index of each key among `items[from..to)` (anything with a string `key`): built once, then asked.
 *
 * @example
 * ```ts
 * import { KeyPlaces } from "./key-places.ts";
 * const items = [{ key: "aa".repeat(32) }, { key: "bb".repeat(32) }, { key: "aa".repeat(32) }];
 * const places = new KeyPlaces(items);
 * console.assert(places.first("aa".repeat(32)) === 0 && places.first("bb".repeat(32)) === 1);
 * console.assert(places.first("cc".repeat(32)) === -1);
 * const tail = new KeyPlaces(items, 1);
 * console.assert(tail.first("aa".repeat(32)) === 2, "indexes are the items' own");
 * ```
 */
export class KeyPlaces {
  readonly #items: readonly { readonly key: string }[];
  /** Item index + 1 per slot (0: empty), open addressing. */
  readonly #slots: Int32Array;
  readonly #mask: number;
  readonly #seed: number;

  /** Places the keys of `items[from..to)`, the first of each key kept. */
  constructor(items: readonly { readonly key: string }[], from = 0, to: number = items.length) {
    this.#items = items;
    const salt = (seed ??= crypto.getRandomValues(new Uint32Array(1))[0]! | 0);
    this.#seed = salt;
    let size = 16;
    while (size < 2 * (to - from)) size *= 2;
    const slots = new Int32Array(size);
    const mask = size - 1;
    for (let i = from; i < to; i++) {
      const key = items[i]!.key;
      for (let s = keyHash(key, salt) & mask;; s = (s + 1) & mask) {
        const at = slots[s]! - 1;
        if (at < 0) {
          slots[s] = i + 1;
          break;
        }
        if (items[at]!.key === key) break;
      }
    }
    this.#slots = slots;
    this.#mask = mask;
  }

  /** The index of the first item with `key`, or -1. */
  first(key: string): number {
    const slots = this.#slots;
    const mask = this.#mask;
    const items = this.#items;
    for (let s = keyHash(key, this.#seed) & mask;; s = (s + 1) & mask) {
      const at = slots[s]! - 1;
      if (at < 0 || items[at]!.key === key) return at;
    }
  }
}
