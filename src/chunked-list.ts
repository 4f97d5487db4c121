/**
 * A list that grows by chunks of a fixed size, for what a store in memory keeps per node (its nodes by change
 * number, its heads): a JavaScript array grows by copying itself into one half as large again, so that a list of
 * n entries has allocated ~3n by the time it holds them, each copy past ~16 000 entries in fresh pages of its own
 * (on Node, 1.5-2 MB of copies and their page faults per 100 000 nodes, ~10 % of a `batch`). A chunk is made once,
 * at its full size, and never copied.
 *
 * @module
 */

/** Entries per chunk: 2^14, so that a chunk of references is 128 KiB. */
const SHIFT = 14;
const CHUNK = 1 << SHIFT;
const MASK = CHUNK - 1;

/**
 * A list of entries that grows by chunks (see the module doc): `push`, `at`, `set`, `length` and `truncate`. The
 * first chunk grows as an array does, so that a short list costs no more than one.
 *
 * @example
 * ```ts
 * import { ChunkedList } from "./chunked-list.ts";
 * const list = new ChunkedList<string>();
 * list.push("a");
 * list.push("b");
 * list.truncate(1);
 * console.assert(list.length === 1 && list.at(0) === "a");
 * ```
 */
export class ChunkedList<T> {
  /** The chunks: the first an array that grows, the others made at their full size. */
  #chunks: T[][] = [[]];
  #length = 0;

  /** The number of entries. */
  get length(): number {
    return this.#length;
  }

  /** The entry at `index`, which must be below `length`. */
  at(index: number): T {
    return this.#chunks[index >>> SHIFT]![index & MASK]!;
  }

  /** Replaces the entry at `index`, which must be below `length`. */
  set(index: number, value: T): void {
    this.#chunks[index >>> SHIFT]![index & MASK] = value;
  }

  /** Adds an entry at the end. */
  push(value: T): void {
    const index = this.#length;
    this.#length = index + 1;
    if (index < CHUNK) {
      this.#chunks[0]!.push(value);
      return;
    }
    if ((index & MASK) === 0) this.#chunks.push(new Array<T>(CHUNK));
    this.#chunks[index >>> SHIFT]![index & MASK] = value;
  }

  /** Keeps the first `length` entries (no more than there are), and drops the chunks past them. */
  truncate(length: number): void {
    if (length >= this.#length) return;
    this.#length = length;
    this.#chunks.length = Math.max(1, (length + MASK) >>> SHIFT);
    if (length < CHUNK) this.#chunks[0]!.length = length;
  }
}
