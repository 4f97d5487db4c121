/**
 * The key index of `SqliteStorage` (schema version 2). Keys are hashes, so their entries land on pages all over a
 * B-tree, and a commit writes each page it touches whole. So the index has two parts, like a small log-structured
 * merge tree whose first level is the table of nodes itself:
 *
 * - `hyperlog_keys` (prefix, change): the keys of nodes 1 to `settled` (stored in `hyperlog_info`), where a
 *   key's prefix is its first 6 bytes; the full key is compared on the node row found.
 * - The nodes after `settled` are in no index on disk: their rows are appended in change order, nothing else is
 *   written per node. Each connection keeps their keys in memory ({@link RecentKeys}), read from those rows on its
 *   first lookup and caught up before each lookup with the rows other connections appended since (a commit reads
 *   them inside its write transaction, so it sees them all).
 * - Once more than `sqrt(16000 * settled)` nodes (at least {@link MIN_RECENT_KEYS}) are past `settled`, a commit
 *   moves their entries into `hyperlog_keys` in one sorted pass of SQL over the rows after `settled`, so the big
 *   index is rewritten rarely.
 *
 * @module
 */
import { StorageError } from "../src/errors.ts";
import type { SqliteDriver } from "./sqlite-driver.ts";
import { KeyFilter } from "./sqlite-filter.ts";
import { SQL } from "./sqlite-schema.ts";

/** The fewest recent keys that are moved into the settled index at once. */
export const MIN_RECENT_KEYS = 32768;
/** The recent keys move once there are more than `sqrt(SETTLE_FACTOR * settled)` of them (and MIN_RECENT_KEYS). */
export const SETTLE_FACTOR = 16000;

/** Whether a store of `length` nodes, settled up to `settled`, should move its recent keys now. */
export function shouldSettle(length: number, settled: number): boolean {
  return length - settled >= Math.max(MIN_RECENT_KEYS, Math.sqrt(SETTLE_FACTOR * settled));
}

/**
 * The keys of the nodes after `settled`, in memory, for one connection; see the module doc.
 */
export class RecentKeys {
  /** Key to change number, for the nodes in (settled, indexed]. */
  readonly keys: KeyTable = new KeyTable();
  /** The change up to which the keys are in `hyperlog_keys`, as last read. */
  settled = 0;
  /** The change up to which every node's key is in `keys` or settled. */
  indexed = 0;
  /** Whether the table was filled from the file once (it is filled on the first lookup, not on open). */
  #loaded = false;
  /**
   * A filter of every settled key, while this connection has seen them all (see `sqlite-filter.ts`); `undefined`
   * when it has not, and every key not in the table must be looked up in the index.
   */
  filter: KeyFilter | undefined;

  /**
   * Reads the length and the settled change (one statement) and adds the keys of the nodes appended since the
   * last call, by this connection or another. Returns the length.
   */
  catchUp(db: SqliteDriver): number {
    const row = db.get(SQL.state);
    const length = row?.[0] === null || row?.[0] === undefined ? 0 : Number(row[0]);
    const settled = row?.[1] === null || row?.[1] === undefined ? 0 : Number(row[1]);
    if (!this.#loaded || length < this.indexed || settled < this.settled) {
      this.keys.clear();
      this.filter = settled === 0 ? new KeyFilter() : undefined;
      this.settled = settled;
      this.indexed = settled;
      this.#loaded = true;
    } else if (settled > this.settled) {
      // Another connection settled: the keys after its settled change are read again (a rare, bounded read).
      this.keys.clear();
      this.filter = undefined;
      this.settled = settled;
      this.indexed = settled;
    }
    if (length > this.indexed) {
      const rows = db.all(SQL.keysAfter, this.indexed);
      const keys: string[] = new Array(rows.length);
      for (let i = 0; i < rows.length; i++) {
        if (Number(rows[i]![0]) !== this.indexed + 1 + i) {
          throw new StorageError(
            `The database ${db.file} is damaged: change ${this.indexed + 1 + i} is missing; restore it from a ` +
              "backup, or replicate the log from a peer into a new file",
          );
        }
        keys[i] = rows[i]![1] as string;
      }
      this.keys.addAll(keys, this.indexed + 1);
      this.indexed = length;
    }
    return length;
  }

  /**
   * Records what a commit wrote, once its transaction committed (so a rolled-back commit leaves nothing behind):
   * the keys of the new nodes, numbered from `first`, or an empty table after a settle.
   */
  added(keys: readonly string[], first: number, settled: number): void {
    if (settled > this.settled) {
      const filter = this.filter;
      if (filter !== undefined && first === this.indexed + 1 && first + keys.length - 1 === settled) {
        this.keys.addAll(keys, first);
        filter.add(this.keys.entries(), this.keys.size);
      } else this.filter = undefined;
      this.keys.clear();
      this.settled = settled;
      this.indexed = settled;
    } else if (first === this.indexed + 1 && keys.length > 0) {
      this.keys.addAll(keys, first);
      this.indexed = first + keys.length - 1;
    }
    // Otherwise the next catch-up reads them from the file.
  }

  /** Moves the keys of the nodes after `settled` into `hyperlog_keys`, up to `length` (the caller's transaction). */
  settle(db: SqliteDriver, length: number): void {
    db.run(SQL.settleKeys, this.settled);
    db.run(SQL.setSettled, length);
  }
}

/** The value of a lower-case hex digit's character code. */
function nibble(code: number): number {
  return code < 58 ? code - 48 : code - 87;
}

/** The 32-bit word of the 8 hex characters of `key` from `at`. */
function wordAt(key: string, at: number): number {
  let word = 0;
  for (let i = at; i < at + 8; i++) word = (word << 4) | nibble(key.charCodeAt(i));
  return word;
}

/**
 * A hash table from keys (64 lower-case hex characters) to change numbers, with few objects: the keys of each
 * {@link KeyTable.addAll} call are kept as one joined string, each entry is its first 64 bits, where its key is
 * in which string, and its change number, in typed arrays. So tens of thousands of recent keys cost ~100 bytes
 * each and almost no garbage collector work. Slots are found from the first 64 bits mixed with a random seed, so
 * that nobody can aim keys at one slot; a match is confirmed on the whole key.
 *
 * @example
 * ```ts
 * import { KeyTable } from "./sqlite-keys.ts";
 * const table = new KeyTable();
 * table.addAll(["ab".repeat(32), "cd".repeat(32)], 7);
 * console.assert(table.get("cd".repeat(32)) === 8 && table.get("ab".repeat(31) + "ac") === undefined);
 * ```
 */
export class KeyTable {
  /** The first two words of each entry's key. */
  #heads = new Int32Array(2 * 1024);
  /** Which string holds each entry's key, and where in it. */
  #string = new Int32Array(1024);
  #offset = new Int32Array(1024);
  #changes = new Float64Array(1024);
  #strings: string[] = [];
  /** Entry index + 1 per slot; 0 is empty. */
  #slots = new Int32Array(2048);
  #size = 0;
  readonly #seed = (Math.random() * 0x100000000) | 0;
  readonly #query = new Int32Array(2);

  /** The number of keys. */
  get size(): number {
    return this.#size;
  }

  #slot(w0: number, w1: number): number {
    let h = Math.imul(w0 ^ this.#seed, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 15) ^ w1, 0x85ebca77);
    h ^= h >>> 13;
    return h & (this.#slots.length - 1);
  }

  /**
   * The change number of `key`, or `undefined`. Reads 16 hex characters of `key` unless an entry starts with the
   * same 64 bits; leaves them in {@link KeyTable.head} for a {@link KeyFilter}.
   */
  get(key: string): number | undefined {
    const w0 = wordAt(key, 0);
    const w1 = wordAt(key, 8);
    this.#query[0] = w0;
    this.#query[1] = w1;
    if (this.#size === 0) return undefined;
    const slots = this.#slots;
    const heads = this.#heads;
    const mask = slots.length - 1;
    for (let i = this.#slot(w0, w1);; i = (i + 1) & mask) {
      const entry = slots[i]! - 1;
      if (entry < 0) return undefined;
      if (heads[entry * 2] !== w0 || heads[entry * 2 + 1] !== w1) continue;
      if (this.#strings[this.#string[entry]!]!.startsWith(key, this.#offset[entry]!)) return this.#changes[entry];
    }
  }

  /** The first two words of the key last given to {@link KeyTable.get}. */
  get head(): Int32Array {
    return this.#query;
  }

  /** Adds `keys`, numbered from `first` on (keys not in the table: a commit adds only new ones). */
  addAll(keys: readonly string[], first: number): void {
    if (keys.length === 0) return;
    const needed = this.#size + keys.length;
    if (needed > this.#changes.length) {
      let capacity = this.#changes.length;
      while (capacity < needed) capacity *= 2;
      const grow = <A extends Int32Array | Float64Array>(array: A, per: number): A => {
        const bigger = new (array.constructor as new (n: number) => A)(capacity * per);
        bigger.set(array);
        return bigger;
      };
      this.#heads = grow(this.#heads, 2);
      this.#string = grow(this.#string, 1);
      this.#offset = grow(this.#offset, 1);
      this.#changes = grow(this.#changes, 1);
    }
    if (needed * 2 > this.#slots.length) {
      let slots = this.#slots.length;
      while (needed * 2 > slots) slots *= 2;
      this.#slots = new Int32Array(slots);
      for (let entry = 0; entry < this.#size; entry++) this.#place(entry);
    }
    const string = this.#strings.length;
    this.#strings.push(keys.length === 1 ? keys[0]! : keys.join(""));
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const entry = this.#size++;
      this.#heads[entry * 2] = wordAt(key, 0);
      this.#heads[entry * 2 + 1] = wordAt(key, 8);
      this.#string[entry] = string;
      this.#offset[entry] = i * 64;
      this.#changes[entry] = first + i;
      this.#place(entry);
    }
  }

  #place(entry: number): void {
    const slots = this.#slots;
    const mask = slots.length - 1;
    let i = this.#slot(this.#heads[entry * 2]!, this.#heads[entry * 2 + 1]!);
    while (slots[i] !== 0) i = (i + 1) & mask;
    slots[i] = entry + 1;
  }

  /** The first two words of every key, for a {@link KeyFilter} (one object reused for all). */
  *entries(): Generator<{ words: Int32Array; at: number }> {
    const entry = { words: this.#heads, at: 0 };
    for (let i = 0; i < this.#size; i++) {
      entry.at = i * 2;
      yield entry;
    }
  }

  /** Removes every key (keeps the arrays, for the next ones). */
  clear(): void {
    this.#size = 0;
    this.#strings = [];
    this.#slots.fill(0);
  }
}
