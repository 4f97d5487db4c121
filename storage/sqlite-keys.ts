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
      for (const row of db.all(SQL.keysAfter, this.indexed)) this.keys.set(row[1] as string, Number(row[0]));
      this.indexed = length;
    }
    return length;
  }

  /**
   * Records what a commit wrote, once its transaction committed (so a rolled-back commit leaves nothing behind):
   * the keys of the new nodes, numbered from `first`, or an empty table after a settle. Keys are copied into the
   * table's typed arrays, so no caller's string is kept.
   */
  added(keys: readonly string[], first: number, settled: number): void {
    if (settled > this.settled) {
      const filter = this.filter;
      if (filter !== undefined && first === this.indexed + 1 && first + keys.length - 1 === settled) {
        for (const key of keys) this.keys.set(key, 0);
        filter.add(this.keys.entries(), this.keys.size);
      } else this.filter = undefined;
      this.keys.clear();
      this.settled = settled;
      this.indexed = settled;
    } else if (first === this.indexed + 1 && keys.length > 0) {
      for (let i = 0; i < keys.length; i++) this.keys.set(keys[i]!, first + i);
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

/** Writes the 32-bit words `from` to `to` (all eight by default) of a 64-hex-character key at `out[at + word]`. */
function parseKey(key: string, out: Int32Array, at: number, from = 0, to = 8): void {
  for (let w = from; w < to; w++) {
    let word = 0;
    for (let i = w * 8; i < w * 8 + 8; i++) word = (word << 4) | nibble(key.charCodeAt(i));
    out[at + w] = word;
  }
}

/**
 * A hash table from keys (64 lower-case hex characters) to change numbers, in typed arrays: no object or string
 * per entry, so that tens of thousands of recent keys cost ~60 bytes each and no garbage collector work. Slots are
 * found from the key's first 64 bits mixed with a random seed, so that nobody can aim keys at one slot.
 *
 * @example
 * ```ts
 * import { KeyTable } from "./sqlite-keys.ts";
 * const table = new KeyTable();
 * table.set("ab".repeat(32), 7);
 * console.assert(table.get("ab".repeat(32)) === 7 && table.get("cd".repeat(32)) === undefined);
 * ```
 */
export class KeyTable {
  #words = new Int32Array(8 * 1024);
  #changes = new Float64Array(1024);
  /** Entry index + 1 per slot; 0 is empty. */
  #slots = new Int32Array(2048);
  #size = 0;
  readonly #seed = (Math.random() * 0x100000000) | 0;
  readonly #query = new Int32Array(8);

  /** The number of keys. */
  get size(): number {
    return this.#size;
  }

  #slot(words: Int32Array, at: number): number {
    let h = Math.imul(words[at]! ^ this.#seed, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 15) ^ words[at + 1]!, 0x85ebca77);
    h ^= h >>> 13;
    return h & (this.#slots.length - 1);
  }

  /**
   * The change number of `key`, or `undefined`. Only the first 16 hex characters are read unless an entry starts
   * with the same 64 bits; they are left in {@link KeyTable.head} for a {@link KeyFilter}.
   */
  get(key: string): number | undefined {
    const query = this.#query;
    parseKey(key, query, 0, 0, 2);
    if (this.#size === 0) return undefined;
    const slots = this.#slots;
    const words = this.#words;
    const mask = slots.length - 1;
    let parsed = false;
    for (let i = this.#slot(query, 0);; i = (i + 1) & mask) {
      const entry = slots[i]! - 1;
      if (entry < 0) return undefined;
      const at = entry * 8;
      if (words[at] !== query[0] || words[at + 1] !== query[1]) continue;
      if (!parsed) {
        parseKey(key, query, 0, 2, 8);
        parsed = true;
      }
      if (
        words[at + 2] === query[2] && words[at + 3] === query[3] && words[at + 4] === query[4] &&
        words[at + 5] === query[5] && words[at + 6] === query[6] && words[at + 7] === query[7]
      ) return this.#changes[entry];
    }
  }

  /** The first two words of the key last given to {@link KeyTable.get}. */
  get head(): Int32Array {
    return this.#query;
  }

  /** Adds `key` (keys are added once: a key already in the table keeps its first change number). */
  set(key: string, change: number): void {
    const entry = this.#size;
    if (entry === this.#changes.length) {
      const words = new Int32Array(this.#words.length * 2);
      words.set(this.#words);
      this.#words = words;
      const changes = new Float64Array(this.#changes.length * 2);
      changes.set(this.#changes);
      this.#changes = changes;
    }
    const words = this.#words;
    const at = entry * 8;
    parseKey(key, words, at);
    const slots = this.#slots;
    const mask = slots.length - 1;
    let i = this.#slot(words, at);
    for (;; i = (i + 1) & mask) {
      const other = slots[i]! - 1;
      if (other < 0) break;
      const o = other * 8;
      if (
        words[o] === words[at] && words[o + 1] === words[at + 1] && words[o + 2] === words[at + 2] &&
        words[o + 3] === words[at + 3] && words[o + 4] === words[at + 4] && words[o + 5] === words[at + 5] &&
        words[o + 6] === words[at + 6] && words[o + 7] === words[at + 7]
      ) return;
    }
    slots[i] = entry + 1;
    this.#changes[entry] = change;
    this.#size = entry + 1;
    if (this.#size * 2 > slots.length) this.#rehash(slots.length * 2);
  }

  #place(entry: number): void {
    const slots = this.#slots;
    const mask = slots.length - 1;
    let i = this.#slot(this.#words, entry * 8);
    while (slots[i] !== 0) i = (i + 1) & mask;
    slots[i] = entry + 1;
  }

  #rehash(slots: number): void {
    this.#slots = new Int32Array(slots);
    for (let entry = 0; entry < this.#size; entry++) this.#place(entry);
  }

  /** The words of every key, for a {@link KeyFilter} (one object reused for all). */
  *entries(): Generator<{ words: Int32Array; at: number }> {
    const entry = { words: this.#words, at: 0 };
    for (let i = 0; i < this.#size; i++) {
      entry.at = i * 8;
      yield entry;
    }
  }

  /** Removes every key (keeps the memory, for the next ones). */
  clear(): void {
    this.#size = 0;
    this.#slots.fill(0);
  }
}
