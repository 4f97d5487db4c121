/**
 * The writing side of {@link DenoKvStorage} (`deno-kv.ts`): the part of Deno KV's API it uses (so a `Deno.Kv`, or
 * the npm client `@deno/kv`'s, fits), and {@link KvWriter}, which commits writes atomically whatever their size
 * (one atomic operation, or a journal made visible by one atomic step) and retries SQLite's "database is locked".
 *
 * @module
 */
import { ClosedError, StorageError } from "../src/errors.ts";
import { toHex } from "../src/hex.ts";
import {
  decodeJournal,
  type DenoKvKey,
  type DenoKvKeyPart,
  encodeJournal,
  type KvWrite,
  splitWrites,
} from "./deno-kv-codec.ts";
import { join, pieces } from "./deno-kv-bytes.ts";

/**
 * The part of a `Deno.Kv` entry the storage reads.
 *
 * @example
 * ```ts
 * import { bytesOf, type DenoKvEntryLike } from "./deno-kv-journal.ts";
 * const absent: DenoKvEntryLike = { key: ["a"], value: null, versionstamp: null };
 * const present: DenoKvEntryLike = { key: ["a"], value: new Uint8Array([1]), versionstamp: "00000000000000010000" };
 * console.assert(bytesOf(absent, "A") === undefined && bytesOf(present, "A")?.[0] === 1);
 * ```
 */
export interface DenoKvEntryLike {
  /** The key. */
  readonly key: DenoKvKey;
  /** The value (`null` when absent). */
  readonly value: unknown;
  /** The versionstamp (`null` when absent). */
  readonly versionstamp: string | null;
}

/**
 * The part of `Deno.AtomicOperation` the storage uses.
 *
 * @example
 * ```ts ignore
 * const op: DenoKvAtomicLike = kv.atomic();
 * ```
 */
export interface DenoKvAtomicLike {
  /** Adds a check. */
  check(...checks: { key: DenoKvKey; versionstamp: string | null }[]): this;
  /** Adds a set. */
  set(key: DenoKvKey, value: unknown): this;
  /** Adds a deletion. */
  delete(key: DenoKvKey): this;
  /** Commits; `ok` is false when a check failed, else `versionstamp` is the commit's. */
  commit(): Promise<{ ok: boolean; versionstamp?: string }>;
}

/**
 * The part of `Deno.Kv` the storage uses: `Deno.openKv()` returns one, and so does `openKv()` of the npm client
 * `@deno/kv` (for Node).
 *
 * @example
 * ```ts ignore
 * const kv: DenoKvLike = await Deno.openKv();
 * ```
 */
export interface DenoKvLike {
  /** Reads one key. */
  get(key: DenoKvKey): Promise<DenoKvEntryLike>;
  /** Reads up to 10 keys at once, consistently. */
  getMany(keys: DenoKvKey[]): Promise<DenoKvEntryLike[]>;
  /** Lists keys in order. */
  list(
    selector: { prefix: DenoKvKey; start?: DenoKvKey; end?: DenoKvKey } | { start: DenoKvKey; end: DenoKvKey },
    options?: { limit?: number; reverse?: boolean; batchSize?: number },
  ): AsyncIterable<DenoKvEntryLike>;
  /** Starts an atomic operation. */
  atomic(): DenoKvAtomicLike;
  /** Streams the entries of `keys` now and after each change (optional: the storage then cannot watch). */
  watch?(keys: DenoKvKey[]): ReadableStream<DenoKvEntryLike[]>;
  /** Closes the database. */
  close(): void;
}

/**
 * The bytes of an entry, `undefined` when absent; a `StorageError` when the key holds something else.
 *
 * @example
 * ```ts
 * import { bytesOf } from "./deno-kv-journal.ts";
 * console.assert(bytesOf({ key: ["a"], value: null, versionstamp: null }, "A") === undefined);
 * ```
 */
export function bytesOf(entry: DenoKvEntryLike, what: string): Uint8Array | undefined {
  if (entry.versionstamp === null) return undefined;
  if (!(entry.value instanceof Uint8Array)) {
    throw new StorageError(`${what} in Deno KV is not bytes: the key holds data of another program`);
  }
  return entry.value;
}

/** Adds writes to an atomic operation. */
function add(
  op: DenoKvAtomicLike,
  writes: readonly { key: DenoKvKey; value: Uint8Array | undefined }[],
): DenoKvAtomicLike {
  for (const write of writes) {
    if (write.value === undefined) op.delete(write.key);
    else op.set(write.key, write.value);
  }
  return op;
}

/**
 * A new journal or generation id: the time in base 36 (so orphans can be aged) and 64 random bits in hex.
 *
 * @example
 * ```ts
 * import { JOURNAL_ID, newId } from "./deno-kv-journal.ts";
 * console.assert(JOURNAL_ID.test(newId()));
 * ```
 */
export function newId(): string {
  const random = crypto.getRandomValues(new Uint8Array(8));
  return `${Date.now().toString(36)}-${toHex(random)}`;
}

/**
 * The shape of a journal or generation id (see {@link newId}).
 *
 * @example
 * ```ts
 * import { JOURNAL_ID } from "./deno-kv-journal.ts";
 * console.assert(!JOURNAL_ID.test("tip"));
 * ```
 */
export const JOURNAL_ID: RegExp = /^[0-9a-z]{1,12}-[0-9a-f]{16}$/;

/**
 * Commits writes to one log's keys of a Deno KV database: `key(...parts)` makes a key under the log's prefix, and
 * `closed()` tells whether the storage closed meanwhile.
 *
 * @example
 * ```ts ignore
 * const writer = new KvWriter(kv, (...parts) => ["hyperlog", ...parts], () => false);
 * await writer.run([{ key: ["hyperlog", "m", "id"], value: new Uint8Array([1]) }]);
 * ```
 */
export class KvWriter {
  readonly #kv: DenoKvLike;
  readonly #key: (...parts: DenoKvKeyPart[]) => DenoKvKey;
  readonly #closed: () => boolean;

  /** A writer over `kv`. */
  constructor(kv: DenoKvLike, key: (...parts: DenoKvKeyPart[]) => DenoKvKey, closed: () => boolean) {
    this.#kv = kv;
    this.#key = key;
    this.#closed = closed;
  }

  /** Deletes every key under `prefix`, in as many operations as needed (not atomic: for garbage only). */
  async deletePrefix(prefix: DenoKvKey): Promise<void> {
    const keys: DenoKvKey[] = [];
    for await (const entry of this.#kv.list({ prefix }, { batchSize: 500 })) keys.push(entry.key);
    for (const group of splitWrites(keys.map((key) => ({ key, value: undefined })))) await this.run(group);
  }

  /**
   * Commits one atomic operation of `writes`, checked against `check` when given. SQLite under Deno KV answers
   * "database is locked" when another connection (or process) writes at the same moment: the operation did
   * nothing, so it is tried again (backing off up to ~10 s in all). Deno KV's other refusals become a StorageError.
   */
  async run(
    writes: readonly KvWrite[],
    check?: { key: DenoKvKey; versionstamp: string | null },
  ): Promise<{ ok: boolean; versionstamp?: string }> {
    for (let attempt = 1;; attempt++) {
      const op = this.#kv.atomic();
      if (check !== undefined) op.check(check);
      try {
        return await add(op, writes).commit();
      } catch (err) {
        const message = (err as Error)?.message ?? String(err);
        if (this.#closed()) throw new ClosedError("The storage is closed");
        if (!/database is locked|busy/i.test(message) || attempt >= 100) {
          throw new StorageError(`Deno KV refused a write: ${message}`, { cause: err });
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(200, 2 ** attempt) * (0.5 + Math.random())));
      }
    }
  }

  /**
   * Writes `writes` under the guard `check` (its versionstamp unchanged), with `guard("")` as its new value; false
   * if the check failed. Writes that fit one atomic operation go in one. Otherwise the operation that sets the
   * guard, now naming a journal, carries as many writes as fit and the journal holds the rest (written before, or
   * in the same operation when it is small); then the journal is put in place (see `deno-kv.ts`). `stamp` is the
   * guard's new versionstamp (null when another process finished the journal).
   */
  async commit(
    check: DenoKvEntryLike,
    writes: readonly KvWrite[],
    guard: (journal: string) => Uint8Array,
  ): Promise<{ ok: boolean; stamp: string | null; marked?: string }> {
    const stamp = { key: check.key, versionstamp: check.versionstamp };
    const [direct = [], ...others] = splitWrites(writes, 2048, 8);
    const rest = others.flat();
    if (rest.length === 0) {
      const result = await this.run([...direct, { key: check.key, value: guard("") }], stamp);
      return { ok: result.ok, stamp: result.versionstamp ?? null };
    }
    const id = newId();
    const journal = pieces(encodeJournal(rest)).map((value, i) => ({ key: this.#key("j", id, i), value }));
    const marked = { key: check.key, value: guard(id) };
    const together = splitWrites([marked, ...direct, ...journal]).length === 1;
    if (!together) {
      for (const group of splitWrites(journal)) {
        if (!(await this.run(group)).ok) throw new StorageError("Deno KV refused a journal");
      }
    }
    const result = await this.run([marked, ...direct, ...(together ? journal : [])], stamp);
    if (!result.ok) {
      if (!together) await this.deletePrefix(this.#key("j", id));
      return { ok: false, stamp: null };
    }
    // From here the commit is done; putting it in place may also be finished by any reader.
    const entry = { key: check.key, value: marked.value, versionstamp: result.versionstamp ?? null };
    const cleared = await this.apply(entry, id, guard(""));
    return result.versionstamp === undefined ? { ok: true, stamp: cleared } : {
      ok: true,
      stamp: cleared,
      marked: result.versionstamp,
    };
  }

  /**
   * Puts the writes of journal `id` in place while `entry` (the guard naming it) is current, then clears it.
   * Returns the versionstamp of the cleared guard, or null when another process finished it.
   */
  async apply(entry: DenoKvEntryLike, id: string, cleared: Uint8Array): Promise<string | null> {
    const parts: Uint8Array[] = [];
    const done: KvWrite[] = [{ key: entry.key, value: cleared }];
    for await (const piece of this.#kv.list({ prefix: this.#key("j", id) }, { batchSize: 10 })) {
      parts.push(bytesOf(piece, "A journal piece")!);
      done.push({ key: piece.key, value: undefined });
    }
    const check = { key: entry.key, versionstamp: entry.versionstamp };
    if (parts.length === 0) return null; // Put in place and deleted by another process meanwhile.
    for (const group of splitWrites(decodeJournal(join(parts)))) {
      if (!(await this.run(group, check)).ok) return null; // Another process finished it.
    }
    // Clearing the guard deletes the journal in the same step when it fits (else right after).
    const [first, ...more] = splitWrites(done);
    const result = await this.run(first!, check);
    if (!result.ok) return null;
    for (const group of more) await this.run(group);
    return result.versionstamp ?? null;
  }
}
