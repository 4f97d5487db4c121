/**
 * The key index of `SqliteStorage` (schema version 2). Keys are hashes, so their entries land on pages all over a
 * B-tree, and a commit writes each page it touches whole. So the index has two parts, like a small log-structured
 * merge tree whose first level is the table of nodes itself:
 *
 * - `hyperlog_keys` (prefix, change): the keys of nodes 1 to `settled` (stored in `hyperlog_info`), where a
 *   key's prefix is its first 6 bytes as an integer ({@link keyPrefix}); the full key is compared on the node row
 *   found, so prefixes may collide (and a peer can make them collide) without a wrong answer.
 * - The nodes after `settled` are in no index on disk: their rows are appended in change order, nothing else is
 *   written per node. Each connection keeps their keys in memory ({@link RecentKeys}), read from those rows on its
 *   first lookup and caught up before each lookup with the rows other connections appended since (a commit reads
 *   them inside its write transaction, so it sees them all).
 * - Once more than `sqrt(64000 * settled)` nodes (at least {@link MIN_RECENT_KEYS}) are past `settled`, a commit
 *   moves their entries into `hyperlog_keys`, so the big index is rewritten rarely (8 times in a log of 1 000 000
 *   nodes, where at most 253 000 keys, ~27 MB, are in memory, and never more than {@link MAX_RECENT_KEYS}; each
 *   settle dirties most pages of the index). The commit holds those keys in memory already: it sorts their
 *   prefixes in JavaScript (a typed array) and inserts them in that order with multi-row statements of integers,
 *   half the cost of SQLite sorting the rows itself (its sorter takes ~1 us a row).
 *
 * @module
 */
import { StorageError } from "../src/errors.ts";
import type { SqliteDriver } from "./sqlite-driver.ts";
import { KeyFilter } from "./sqlite-filter.ts";
import { keyPrefix, nibble } from "./sqlite-prefix.ts";
import { insertKeysSql, SQL } from "./sqlite-schema.ts";

/** The fewest recent keys that are moved into the settled index at once. */
export const MIN_RECENT_KEYS = 32768;
/**
 * The recent keys move once there are more than `sqrt(SETTLE_FACTOR * settled)` of them (at least
 * {@link MIN_RECENT_KEYS}, at most {@link MAX_RECENT_KEYS}).
 */
export const SETTLE_FACTOR = 64000;

/** The most entries one statement of a settle inserts (two parameters each). */
const KEYS_PER_INSERT = 500;

/**
 * The most recent keys a connection holds (~27 MB): a log of more than ~1 070 000 settled nodes settles every
 * 262 144 new keys, so the memory of an open log stays bounded however long it grows.
 */
export const MAX_RECENT_KEYS = 262_144;

/**
 * Whether a store of `length` nodes, settled up to `settled`, should move its recent keys now.
 *
 * @example
 * ```ts
 * import { MAX_RECENT_KEYS, MIN_RECENT_KEYS, shouldSettle } from "./sqlite-keys.ts";
 * console.assert(!shouldSettle(MIN_RECENT_KEYS - 1, 0) && shouldSettle(MIN_RECENT_KEYS, 0));
 * console.assert(shouldSettle(1e8 + MAX_RECENT_KEYS, 1e8), "capped, however big the log");
 * ```
 */
export function shouldSettle(length: number, settled: number): boolean {
  const limit = Math.min(MAX_RECENT_KEYS, Math.max(MIN_RECENT_KEYS, Math.sqrt(SETTLE_FACTOR * settled)));
  return length - settled >= limit;
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
        filter.add(this.keys.words, this.keys.size);
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

  /**
   * Moves the keys of the nodes after `settled` into `hyperlog_keys`, up to `length` (the caller's transaction,
   * caught up): those in the table, then `added`, the keys of the commit's new nodes (not in the table yet), from
   * change `indexed + 1` on. Their prefixes are sorted here and inserted in that order, so the index's pages are
   * visited in order once.
   */
  settle(db: SqliteDriver, length: number, added: readonly string[]): void {
    const table = this.keys;
    const count = table.size + added.length;
    if (this.settled + table.size !== this.indexed || this.indexed + added.length !== length) {
      // Not what a caught-up commit holds (never expected): the rows themselves are the truth.
      db.run(SQL.settleKeys, this.settled);
      db.run(SQL.setSettled, length);
      return;
    }
    const prefixes = new Float64Array(count);
    const changes = new Float64Array(count);
    for (let i = 0; i < table.size; i++) {
      prefixes[i] = table.prefixAt(i);
      changes[i] = table.changeAt(i);
    }
    for (let i = 0, at = table.size; i < added.length; i++, at++) {
      prefixes[at] = keyPrefix(added[i]!);
      changes[at] = this.indexed + 1 + i;
    }
    const order = sortedOrder(prefixes);
    const rows = Math.max(1, Math.min(KEYS_PER_INSERT, Math.floor(db.maxParams / 2)));
    const many = insertKeysSql(rows);
    const params: number[] = [];
    let i = 0;
    for (; i + rows <= count; i += rows) {
      params.length = 0;
      for (let j = i; j < i + rows; j++) params.push(prefixes[order[j]!]!, changes[order[j]!]!);
      db.run(many, ...params);
    }
    if (i < count) {
      params.length = 0;
      for (let j = i; j < count; j++) params.push(prefixes[order[j]!]!, changes[order[j]!]!);
      db.run(insertKeysSql(count - i), ...params);
    }
    db.run(SQL.setSettled, length);
  }
}

/** Entries up to this many are sorted as one typed array of numbers (prefix's high 32 bits, then the entry). */
const PACKED = 2_097_152; // 2 ** 21, written out: a bundler keeps the expression in bundles that leave SQLite out

/**
 * The indexes of `prefixes` in the order of their values (ties, and prefixes equal in their high 32 bits, in any
 * order: the order only makes the inserts visit the index's pages in turn).
 *
 * @example
 * ```ts
 * import { sortedOrder } from "./sqlite-keys.ts";
 * console.assert(sortedOrder(new Float64Array([2 ** 47, 5 * 65536, 2 ** 40])).join() === "1,2,0");
 * ```
 */
export function sortedOrder(prefixes: Float64Array): Uint32Array {
  const count = prefixes.length;
  const order = new Uint32Array(count);
  if (count < PACKED) {
    // One native sort of numbers: the high 32 bits of the prefix, times 2^21, plus the entry (below 2^53).
    const packed = new Float64Array(count);
    for (let i = 0; i < count; i++) packed[i] = Math.floor(prefixes[i]! / 65536) * PACKED + i;
    packed.sort();
    for (let i = 0; i < count; i++) order[i] = packed[i]! % PACKED;
  } else {
    for (let i = 0; i < count; i++) order[i] = i;
    order.sort((a, b) => prefixes[a]! - prefixes[b]! || a - b);
  }
  return order;
}

const ENCODER: TextEncoder = /* @__PURE__ */ new TextEncoder();
/** Whether typed arrays are little-endian here (everywhere hyperlog runs; the other order takes a slower path). */
const LITTLE_ENDIAN: boolean = /* @__PURE__ */ (() => new Uint8Array(new Uint32Array([1]).buffer)[0] === 1)();

/**
 * A hash table from keys (64 lower-case hex characters) to change numbers in typed arrays: each key's characters
 * are copied as bytes into one buffer (by `TextEncoder.encodeInto`, natively, for a whole commit at once) and read
 * back as sixteen 32-bit words, so an entry is ~100 bytes and no object: tens of thousands of recent keys cost the
 * garbage collector nothing. Slots are found from the first four words (16 hex characters) mixed with a random
 * seed, so that nobody can aim keys at one slot; a match compares all sixteen.
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
  /** The characters of each entry's key, 64 bytes an entry. */
  #bytes = new Uint8Array(64 * 1024);
  #words = new Int32Array(this.#bytes.buffer);
  #changes = new Float64Array(1024);
  /**
   * Two words per slot: the entry index + 1 (0: empty), and the key's hash, so that a probe compares the hash in
   * the same cache line and reads the entry's characters only on a match (a fresh key costs one memory access).
   */
  #slots = new Int32Array(2 * 2048);
  #size = 0;
  readonly #seed = (Math.random() * 0x100000000) | 0;
  readonly #queryBytes = new Uint8Array(64);
  readonly #query = new Int32Array(this.#queryBytes.buffer);

  /** The number of keys. */
  get size(): number {
    return this.#size;
  }

  /** The hash of the key whose first four words are at `words[at]`. */
  #hash(words: Int32Array, at: number): number {
    let h = Math.imul(words[at]! ^ this.#seed, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 15) ^ words[at + 1]!, 0x85ebca77);
    h = Math.imul(h ^ (h >>> 13) ^ words[at + 2]!, 0xc2b2ae35);
    h = Math.imul(h ^ (h >>> 16) ^ words[at + 3]!, 0x27d4eb2f);
    return h ^ (h >>> 15);
  }

  /**
   * The change number of `key`, or `undefined`. Leaves the key's words in {@link KeyTable.head} for a
   * {@link KeyFilter}.
   */
  get(key: string): number | undefined {
    const query = this.#query;
    if (LITTLE_ENDIAN) {
      // The first four words from the characters (as encodeInto would lay them out), the rest only on a match.
      for (let w = 0, i = 0; w < 4; w++, i += 4) {
        query[w] = key.charCodeAt(i) | (key.charCodeAt(i + 1) << 8) | (key.charCodeAt(i + 2) << 16) |
          (key.charCodeAt(i + 3) << 24);
      }
    } else ENCODER.encodeInto(key, this.#queryBytes);
    if (this.#size === 0) return undefined;
    const slots = this.#slots;
    const words = this.#words;
    const mask = (slots.length >>> 1) - 1;
    let whole = !LITTLE_ENDIAN;
    const hash = this.#hash(query, 0);
    search: for (let i = hash & mask;; i = (i + 1) & mask) {
      const entry = slots[2 * i]! - 1;
      if (entry < 0) return undefined;
      if (slots[2 * i + 1] !== hash) continue;
      const at = entry * 16;
      if (words[at] !== query[0] || words[at + 1] !== query[1] || words[at + 2] !== query[2]) continue;
      if (words[at + 3] !== query[3]) continue;
      if (!whole) {
        ENCODER.encodeInto(key, this.#queryBytes);
        whole = true;
      }
      for (let w = 4; w < 16; w++) if (words[at + w] !== query[w]) continue search;
      return this.#changes[entry];
    }
  }

  /** The prefix ({@link keyPrefix}) of entry `entry`'s key, from its characters. */
  prefixAt(entry: number): number {
    const bytes = this.#bytes;
    const at = entry * 64;
    let high = 0;
    for (let i = 0; i < 8; i++) high = high * 16 + nibble(bytes[at + i]!);
    let low = 0;
    for (let i = 8; i < 12; i++) low = low * 16 + nibble(bytes[at + i]!);
    return high * 65536 + low;
  }

  /** The change number of entry `entry` (entries are numbered in the order they were added). */
  changeAt(entry: number): number {
    return this.#changes[entry]!;
  }

  /** The words of the key last given to {@link KeyTable.get}. */
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
      const bytes = new Uint8Array(capacity * 64);
      bytes.set(this.#bytes.subarray(0, this.#size * 64));
      this.#bytes = bytes;
      this.#words = new Int32Array(bytes.buffer);
      const changes = new Float64Array(capacity);
      changes.set(this.#changes);
      this.#changes = changes;
    }
    if (needed * 2 > this.#slots.length >>> 1) {
      let slots = this.#slots.length >>> 1;
      while (needed * 2 > slots) slots *= 2;
      this.#slots = new Int32Array(2 * slots);
      for (let entry = 0; entry < this.#size; entry++) this.#place(entry);
    }
    const start = this.#size;
    const written = ENCODER.encodeInto(keys.length === 1 ? keys[0]! : keys.join(""), this.#bytes.subarray(start * 64));
    if (written.written !== keys.length * 64) throw new TypeError("A key to add is not 64 hex characters");
    for (let i = 0; i < keys.length; i++) {
      const entry = start + i;
      this.#changes[entry] = first + i;
      this.#place(entry);
    }
    this.#size = needed;
  }

  #place(entry: number): void {
    const slots = this.#slots;
    const mask = (slots.length >>> 1) - 1;
    const hash = this.#hash(this.#words, entry * 16);
    let i = hash & mask;
    while (slots[2 * i] !== 0) i = (i + 1) & mask;
    slots[2 * i] = entry + 1;
    slots[2 * i + 1] = hash;
  }

  /** The characters of the keys as 32-bit words, 16 a key, in the order they were added (for a {@link KeyFilter}). */
  get words(): Int32Array {
    return this.#words;
  }

  /** The words of every key, for a {@link KeyFilter} (one object reused for all). */
  *entries(): Generator<{ words: Int32Array; at: number }> {
    const entry = { words: this.#words, at: 0 };
    for (let i = 0; i < this.#size; i++) {
      entry.at = i * 16;
      yield entry;
    }
  }

  /** Removes every key (keeps the arrays, for the next ones). */
  clear(): void {
    this.#size = 0;
    this.#slots.fill(0);
  }
}
