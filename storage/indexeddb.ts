/**
 * IndexedDB storage: keeps a log in the browser, so that a page works offline and still has everything after a
 * reload. It uses only the standard IndexedDB API (a global `indexedDB`, or the factory passed in), so it runs in
 * every browser, in web workers and service workers, and under any IndexedDB implementation for other runtimes.
 *
 * Browsers charge a fixed cost per IndexedDB request (~0.2 ms in Chromium, whatever its size), so the layout keeps
 * the requests per commit few however many nodes it holds. The database (version 2) holds these object stores:
 *
 * - `chunks`: the nodes, a run of consecutive changes per record: `{ last, keys, links, values, identities?,
 *   signatures? }` (one array entry per node, in change order), keyed by `last`, the change of its last node (its
 *   first is `last - keys.length + 1`). A commit is cut into chunks of at most 1000 nodes or 256 KB of values, so
 *   a commit of 1000 small nodes is one record. Reading a change range is one `getAll` over the chunks it covers
 *   (plus one for the chunk that holds its upper end).
 * - `keys`: `{ last, keys }` for each chunk, with a unique `multiEntry` index `key` over `keys`: it maps a node key
 *   to its chunk, and it refuses, inside the commit's transaction, a node stored twice. `length()` reads its last
 *   key.
 * - `heads`: one record, the array of the keys no node links to, so `heads()` is one `get`.
 * - `meta`: the `getMeta`/`setMeta` values, keyed by name.
 * - `views`: the checkpoint `{ version, change }` of each view, keyed by view name; `view_data`: the view pairs,
 *   keyed by `[view name, key]`. IndexedDB orders string keys by UTF-16 code units, as JavaScript compares strings,
 *   so ranges need no sorting.
 *
 * Each `commit` is one readwrite transaction: it reads the last change and the heads, adds a record per chunk to
 * `chunks` and to `keys`, and writes the heads record (only that write waits for a read: requests run in order, so
 * the others go out at once). The transaction aborts, leaving nothing of the commit behind, when the last change is not the one the
 * commit continues from or when a key is already stored. Several pages (or several storages in one page) may share
 * a database: transactions serialize, a commit checks the change numbers against what is stored, and a page that
 * loses the race gets a `StorageConflictError` (the log then reloads its length). A log with very many heads (tens
 * of thousands of unlinked nodes) rewrites them all at each commit.
 *
 * Stored chunks never change, so a storage keeps some in memory and trusts them without asking the database:
 * - the nodes of its recent chunks (the ones it committed or read with `get`, up to 20 000 nodes or 16 MB of
 *   values): `get` and `has` answer from them without a transaction;
 * - once `has` is asked about more than 16 unknown keys at once (as the log does for a batch, or replication for a
 *   page of nodes), every stored key: it loads them with one `getAll` of `keys`, then each `has` that meets an
 *   unknown key brings them up to date with one `getAll` of the chunks stored since (by any page). This costs
 *   about 100 bytes of memory per node of the log.
 * Everything else (`length`, `heads`, `read`, and `get`/`has` of keys not in memory) asks the database, so every
 * call sees what other pages have committed.
 *
 * A version-1 database (one record per node in a `nodes` store with a unique `key` index, one record per head) is
 * upgraded in place when this version first opens it: the upgrade transaction copies the nodes into chunks of
 * consecutive changes, gathers the heads into one record and deletes the `nodes` store; it is atomic (a failure
 * leaves the version-1 database as it was). A page still running the version-1 code closes the database when
 * asked and must reload; it cannot open the upgraded database (it gets a clear error). A database of another
 * layout is refused and left untouched.
 *
 * @module
 */
import { ClosedError, StorageConflictError, StorageError } from "../src/errors.ts";
import { ChunkCache } from "./chunk-cache.ts";
import type { StoredNode } from "../src/node.ts";
import type { ReadRange, Storage, ViewRange, ViewState, ViewWrite } from "../src/storage.ts";
import { checkViewCommit } from "../src/view-keys.ts";

/** The version of the database layout described in the module doc. */
export const INDEXEDDB_SCHEMA_VERSION = 2;

const CHUNKS = "chunks";
const KEYS = "keys";
const NODES = "nodes"; // Version 1 only.
const HEADS = "heads";
/** The key of the one record of `heads`: the array of head keys. */
const HEADS_KEY = 0;
const META = "meta";
const VIEWS = "views";
const VIEW_DATA = "view_data";
const STORES = [CHUNKS, KEYS, HEADS, META, VIEWS, VIEW_DATA];
/** A chunk holds at most this many nodes... */
const CHUNK_NODES = 1000;
/** ...and takes no more node after its values reach this many bytes. */
const CHUNK_BYTES = 256 * 1024;
/** The nodes of recent chunks kept in memory: at most this many... */
const CACHE_NODES = 20_000;
/** ...and this many bytes of values. */
const CACHE_BYTES = 16 * 1024 * 1024;
/** `has` loads every stored key into memory once it is asked about more unknown keys than this at once. */
const KEY_SET_AFTER = 16;

/**
 * Options for {@link IndexedDBStorage}.
 *
 * @example
 * ```ts
 * import { IndexedDBStorage, type IndexedDBStorageOptions } from "./indexeddb.ts";
 * const options: IndexedDBStorageOptions = { durability: "strict" };
 * new IndexedDBStorage("notes", options); // describes the store: opens nothing yet
 * let refused: unknown;
 * try {
 *   new IndexedDBStorage("notes", { durability: "lazy" as IndexedDBStorageOptions["durability"] });
 * } catch (error) {
 *   refused = error;
 * }
 * console.assert(refused instanceof TypeError);
 * ```
 */
export interface IndexedDBStorageOptions {
  /** The IndexedDB factory to use (default: the global `indexedDB`). */
  indexedDB?: IDBFactory;
  /**
   * How a resolved write is made durable. `"relaxed"` (the default): the browser may resolve a commit before the
   * data reaches the disk; a resolved write survives the page or the browser crashing, and the database stays
   * consistent through a power loss, which may take back the last writes (like SQLite's WAL with
   * `synchronous=NORMAL`). `"strict"`: a resolved write has been flushed to disk, at the cost of a flush per
   * commit.
   */
  durability?: "relaxed" | "strict";
}

/** A record of the `chunks` store: consecutive nodes, one entry per node in each array, up to change `last`. */
interface ChunkRecord {
  last: number;
  keys: string[];
  links: (readonly string[])[];
  values: Uint8Array[];
  identities?: (string | undefined)[];
  signatures?: (string | undefined)[];
}

/** A record of the `keys` store: the keys of the chunk with the same `last`. */
interface KeysRecord {
  last: number;
  keys: string[];
}

/** A copy of `bytes` that owns its buffer whole: structured clone would otherwise copy the entire buffer. */
function ownBytes(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

/** Cuts nodes of consecutive changes into chunk records (see the module doc). */
function toChunks(nodes: readonly StoredNode[]): ChunkRecord[] {
  const chunks: ChunkRecord[] = [];
  let chunk: ChunkRecord | undefined;
  let bytes = 0;
  for (const node of nodes) {
    if (chunk === undefined || chunk.keys.length >= CHUNK_NODES || bytes >= CHUNK_BYTES) {
      chunks.push(chunk = { last: 0, keys: [], links: [], values: [] });
      bytes = 0;
    }
    const i = chunk.keys.length;
    chunk.keys.push(node.key);
    chunk.links.push(node.links);
    chunk.values.push(ownBytes(node.value));
    if (node.identity !== undefined) {
      (chunk.identities ??= [])[i] = node.identity;
      (chunk.signatures ??= [])[i] = node.signature;
    }
    chunk.last = node.change;
    bytes += node.value.byteLength;
  }
  return chunks;
}

/** The nodes of a chunk record with changes from `low` to `high`, appended to `out`. */
function fromChunk(chunk: ChunkRecord, out: StoredNode[], low = 0, high = Infinity): StoredNode[] {
  const first = chunk.last - chunk.keys.length + 1;
  const end = Math.min(chunk.last, high) - first;
  for (let i = Math.max(low - first, 0); i <= end; i++) {
    const identity = chunk.identities?.[i];
    const node = { key: chunk.keys[i]!, links: chunk.links[i]!, value: chunk.values[i]!, change: first + i };
    // Records come out of IndexedDB in the shape they went in; freezing is the log's business.
    out.push(identity === undefined ? node : { ...node, identity, signature: chunk.signatures![i]! });
  }
  return out;
}

function explain(err: unknown): string {
  if (err instanceof Error || (typeof DOMException !== "undefined" && err instanceof DOMException)) {
    return `${(err as Error).name}: ${(err as Error).message}`;
  }
  return String(err);
}

/** The key range of a view's pairs within `view_data`, from the bounds of `range`. */
function viewKeyRange(name: string, range: ViewRange): IDBKeyRange | null {
  let lower: [string, string] | [string] = [name];
  let lowerOpen = false;
  // `[name, []]` sorts after every `[name, string]`: arrays sort after strings in IndexedDB.
  let upper: [string, string] | [string, never[]] = [name, []];
  let upperOpen = false;
  if (range.gte !== undefined) lower = [name, range.gte];
  if (range.gt !== undefined && (range.gte === undefined || range.gt >= range.gte)) {
    lower = [name, range.gt];
    lowerOpen = true;
  }
  if (range.lte !== undefined) upper = [name, range.lte];
  if (range.lt !== undefined && (range.lte === undefined || range.lt <= range.lte)) {
    upper = [name, range.lt];
    upperOpen = true;
  }
  if (lower.length === 2 && upper[1] !== undefined && typeof upper[1] === "string") {
    const low = lower[1];
    const high = upper[1];
    if (low > high || (low === high && (lowerOpen || upperOpen))) return null;
  }
  return IDBKeyRange.bound(lower, upper, lowerOpen, upperOpen);
}

/**
 * Keeps a log in an IndexedDB database, in browsers (and anywhere an IndexedDB factory exists). The database is
 * named `name`, as given; delete it with {@link IndexedDBStorage.destroy}.
 *
 * @example
 * ```ts ignore
 * import { Hyperlog, IndexedDBStorage } from "@hyperlog/hyperlog";
 * const log = new Hyperlog(new IndexedDBStorage("chat"), { valueEncoding: "json" });
 * await log.append({ text: "hello" });   // still there after a reload
 * ```
 */
export class IndexedDBStorage implements Storage {
  /** The database name. */
  readonly name: string;
  readonly #factory: IDBFactory | undefined;
  readonly #durability: "relaxed" | "strict";
  #db: IDBDatabase | undefined;
  #opening: Promise<void> | undefined;
  #closed = false;
  #lost: string | undefined;
  /** The nodes of recent chunks (see the module doc). */
  readonly #cache: ChunkCache = new ChunkCache(CACHE_NODES, CACHE_BYTES);
  /** Every key of the chunks up to change `#keysUpTo`, once `has` has loaded them (see the module doc). */
  #keys: Set<string> | undefined;
  #keysUpTo = 0;

  /**
   * Describes a store in the database `name`; `open()` (which the log calls) opens or creates it.
   *
   * @example
   * ```ts ignore
   * import { IndexedDBStorage } from "@hyperlog/hyperlog";
   * const storage = new IndexedDBStorage("notes", { durability: "strict" });
   * await storage.open();
   * ```
   */
  constructor(name: string, options: IndexedDBStorageOptions = {}) {
    if (typeof name !== "string" || name === "") {
      throw new TypeError("IndexedDBStorage needs a database name: a non-empty string");
    }
    this.name = name;
    this.#factory = options.indexedDB;
    const durability = options.durability ?? "relaxed";
    if (durability !== "relaxed" && durability !== "strict") {
      throw new TypeError(`Durability must be "relaxed" or "strict", got ${JSON.stringify(durability)}`);
    }
    this.#durability = durability;
  }

  /**
   * Deletes the database `name` and everything in it. Resolves once it is gone; waits while a page still has it
   * open (each `IndexedDBStorage` closes its connection when another page asks to delete it).
   *
   * @example
   * ```ts ignore
   * import { IndexedDBStorage } from "@hyperlog/hyperlog";
   * await IndexedDBStorage.destroy("notes");
   * ```
   */
  static destroy(name: string, options: Pick<IndexedDBStorageOptions, "indexedDB"> = {}): Promise<void> {
    const factory = options.indexedDB ?? globalThis.indexedDB;
    if (factory === undefined) return Promise.reject(new StorageError("This runtime has no IndexedDB"));
    return new Promise((resolve, reject) => {
      const request = factory.deleteDatabase(name);
      request.onsuccess = () => resolve();
      request.onerror = () =>
        reject(new StorageError(`Could not delete IndexedDB database ${name}: ${explain(request.error)}`));
    });
  }

  /** Opens (creating when needed) the database. */
  open(): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError("The storage is closed"));
    this.#opening ??= this.#open();
    return this.#opening;
  }

  #open(): Promise<void> {
    const factory = this.#factory ?? globalThis.indexedDB;
    if (factory === undefined) {
      return Promise.reject(
        new StorageError(`Cannot open IndexedDB database ${this.name}: this runtime has no IndexedDB`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      let request: IDBOpenDBRequest;
      try {
        request = factory.open(this.name, INDEXEDDB_SCHEMA_VERSION);
      } catch (err) {
        reject(new StorageError(`Cannot open IndexedDB database ${this.name}: ${explain(err)}`, { cause: err }));
        return;
      }
      let refused: string | undefined;
      request.onupgradeneeded = (event) => {
        const db = request.result;
        const tx = request.transaction!;
        const refuse = (why: string) => {
          refused ??= why;
          tx.abort();
        };
        if (event.oldVersion === 0) {
          for (const store of STORES.slice(2)) db.createObjectStore(store);
        } else {
          // Version 1: a hyperlog database has exactly these stores; anything else is left untouched.
          const v1 = [NODES, ...STORES.slice(2)];
          if (event.oldVersion !== 1 || v1.some((store) => !db.objectStoreNames.contains(store))) {
            return refuse(
              `IndexedDB database ${this.name} is not a hyperlog database (version ${event.oldVersion} without ` +
                `the stores ${v1.join(", ")}); choose another name or delete it`,
            );
          }
        }
        const chunks = db.createObjectStore(CHUNKS, { keyPath: "last" });
        const keys = db.createObjectStore(KEYS, { keyPath: "last" });
        keys.createIndex("key", "keys", { unique: true, multiEntry: true });
        if (event.oldVersion === 0) return;
        // Version 1 kept a record per head: they become one record.
        const heads = tx.objectStore(HEADS);
        const headKeys = heads.getAllKeys();
        headKeys.onsuccess = () => {
          heads.clear();
          heads.put(headKeys.result, HEADS_KEY);
        };
        // Copies the version-1 nodes into chunks, a page of them at a time, then drops the old store.
        const nodes = tx.objectStore(NODES);
        let length = 0;
        const copy = () => {
          const page = nodes.getAll(IDBKeyRange.lowerBound(length, true), CHUNK_NODES);
          page.onsuccess = () => {
            const records = page.result as StoredNode[];
            if (records.length === 0) return db.deleteObjectStore(NODES);
            for (const record of records) {
              if (record.change !== ++length) {
                return refuse(
                  `IndexedDB database ${this.name} has a gap at change ${length} in its version-1 nodes, so it ` +
                    "cannot be upgraded; export its nodes with the version that wrote it, or delete it",
                );
              }
            }
            for (const chunk of toChunks(records)) {
              chunks.add(chunk);
              keys.add({ last: chunk.last, keys: chunk.keys });
            }
            copy();
          };
        };
        copy();
      };
      request.onsuccess = () => {
        const db = request.result;
        const missing = STORES.filter((store) => !db.objectStoreNames.contains(store));
        if (missing.length > 0) {
          db.close();
          reject(
            new StorageError(
              `IndexedDB database ${this.name} is not a hyperlog database (it lacks ${missing.join(", ")}); ` +
                "choose another name or delete it",
            ),
          );
          return;
        }
        // Another page wants to delete or upgrade the database: let it, and refuse further calls here.
        db.onversionchange = () => {
          this.#lost = `IndexedDB database ${this.name} was deleted or upgraded by another page; reload this one`;
          db.close();
        };
        db.onclose = () => {
          this.#lost ??= `The browser closed IndexedDB database ${this.name} (storage cleared or unavailable)`;
        };
        if (this.#closed) {
          db.close();
          reject(new ClosedError("The storage is closed"));
          return;
        }
        this.#db = db;
        resolve();
      };
      request.onerror = () => {
        const err = request.error;
        const newer = err?.name === "VersionError";
        reject(
          new StorageError(
            refused ??
              (newer
                ? `IndexedDB database ${this.name} was written by a newer version of hyperlog; upgrade this page`
                : `Cannot open IndexedDB database ${this.name}: ${explain(err)}` +
                  " (is storage disabled, as in some private windows?)"),
            { cause: err },
          ),
        );
      };
      request.onblocked = () => {
        // A deletion in progress, or a page with the database open at version 1, which closes it when asked: the
        // open proceeds once they are done.
      };
    });
  }

  /** `value`, when the storage is open (answers that need no transaction). */
  #answer<R>(value: R): Promise<R> {
    try {
      this.#database();
      return Promise.resolve(value);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #database(): IDBDatabase {
    if (this.#closed) throw new ClosedError("The storage is closed");
    if (this.#lost !== undefined) throw new StorageError(this.#lost);
    if (this.#db === undefined) {
      throw new StorageError(`IndexedDB database ${this.name} is not open: call open() first`);
    }
    return this.#db;
  }

  /**
   * Runs `fn` in a transaction over `stores`; resolves with what `fn` passed to `done` once the transaction
   * completes (a read-only one at once when `done` says it is final: waiting for the completion event of a
   * read-only transaction costs a round trip), rejects with the reason it aborted (`fail(err)` aborts with `err`).
   */
  #transaction<R>(
    stores: string[],
    mode: IDBTransactionMode,
    fn: (tx: IDBTransaction, done: (result: R, final?: boolean) => void, fail: (err: Error) => void) => void,
  ): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let tx: IDBTransaction;
      try {
        tx = this.#database().transaction(stores, mode, mode === "readwrite" ? { durability: this.#durability } : {});
      } catch (err) {
        reject(err instanceof Error && err.name !== "InvalidStateError" ? err : this.#failure(err));
        return;
      }
      let result: R | undefined;
      let failure: Error | undefined;
      tx.oncomplete = () => resolve(result as R);
      tx.onabort = () => reject(failure ?? this.#failure(tx.error));
      const fail = (err: Error) => {
        failure ??= err;
        try {
          tx.abort();
        } catch {
          // Already finished or aborting.
        }
      };
      try {
        fn(tx, (value, final) => {
          result = value;
          if (final === true && mode === "readonly") resolve(value);
        }, fail);
      } catch (err) {
        fail(err instanceof Error ? err : new StorageError(String(err)));
      }
    });
  }

  #failure(err: unknown): Error {
    if (this.#closed) return new ClosedError("The storage is closed");
    if (this.#lost !== undefined) return new StorageError(this.#lost);
    const name = (err as { name?: string } | null)?.name;
    if (name === "QuotaExceededError") {
      return new StorageError(
        `IndexedDB database ${this.name} is out of space (the browser's storage quota is used up); ` +
          "free some space or ask for persistent storage",
        { cause: err },
      );
    }
    return new StorageError(`IndexedDB database ${this.name} failed: ${explain(err)}`, { cause: err });
  }

  /** Reads a metadata value. */
  getMeta(name: string): Promise<string | undefined> {
    return this.#transaction<string | undefined>([META], "readonly", (tx, done) => {
      const request = tx.objectStore(META).get(name);
      request.onsuccess = () => done(request.result as string | undefined, true);
    });
  }

  /** Writes a metadata value. */
  setMeta(name: string, value: string): Promise<void> {
    return this.#transaction<void>([META], "readwrite", (tx) => void tx.objectStore(META).put(value, name));
  }

  /** The number of nodes: the last change number. */
  length(): Promise<number> {
    return this.#transaction<number>([KEYS], "readonly", (tx, done) => {
      const request = tx.objectStore(KEYS).openKeyCursor(null, "prev");
      request.onsuccess = () => done((request.result?.key as number | undefined) ?? 0, true);
    });
  }

  /** Keeps the nodes of a committed chunk in memory, dropping the oldest chunks beyond the limits. */


  /** The node with this key, or `undefined`. */
  get(key: string): Promise<StoredNode | undefined> {
    const node = this.#cache.get(key);
    if (node !== undefined) {
      return this.#answer(node);
    }
    return this.#transaction<StoredNode | undefined>([CHUNKS, KEYS], "readonly", (tx, done) => {
      const where = tx.objectStore(KEYS).index("key").getKey(key);
      where.onsuccess = () => {
        if (where.result === undefined) return done(undefined, true);
        const request = tx.objectStore(CHUNKS).get(where.result);
        request.onsuccess = () => {
          const nodes = fromChunk(request.result as ChunkRecord, []);
          this.#cache.remember(nodes);
          done(nodes.find((n) => n.key === key), true);
        };
      };
    });
  }

  /** Whether each key is stored. */
  has(keys: readonly string[]): Promise<boolean[]> {
    const found = keys.map((key) => this.#cache.has(key) || this.#keys?.has(key) === true);
    const unknown = found.filter((known) => !known).length;
    if (unknown === 0) {
      return this.#answer(found);
    }
    return this.#transaction<boolean[]>([KEYS], "readonly", (tx, done) => {
      const store = tx.objectStore(KEYS);
      if (this.#keys === undefined && unknown <= KEY_SET_AFTER) {
        const index = store.index("key");
        done(found);
        keys.forEach((key, i) => {
          if (found[i]) return;
          const request = index.getKey(key);
          request.onsuccess = () => void (found[i] = request.result !== undefined);
        });
        return;
      }
      // Many unknown keys: one request brings the key set up to date (loading it whole the first time).
      const request = store.getAll(IDBKeyRange.lowerBound(this.#keysUpTo, true));
      request.onsuccess = () => {
        this.#learn(request.result as KeysRecord[]);
        done(keys.map((key, i) => found[i]! || this.#keys!.has(key)), true);
      };
    });
  }

  /** Adds the keys of chunks that follow `#keysUpTo` (in change order) to the key set. */
  #learn(records: readonly KeysRecord[]): void {
    const set = this.#keys ??= new Set();
    for (const record of records) {
      if (record.last - record.keys.length !== this.#keysUpTo) continue;
      for (const key of record.keys) set.add(key);
      this.#keysUpTo = record.last;
    }
  }

  /** The current heads. */
  heads(): Promise<string[]> {
    return this.#transaction<string[]>([HEADS], "readonly", (tx, done) => {
      const request = tx.objectStore(HEADS).get(HEADS_KEY);
      request.onsuccess = () => done((request.result as string[] | undefined) ?? [], true);
    });
  }

  /** One page of nodes in change order. */
  read(range: ReadRange): Promise<StoredNode[]> {
    const { since, limit, reverse } = range;
    return this.#transaction<StoredNode[]>([CHUNKS], "readonly", (tx, done) => {
      done([]);
      if (!(limit > 0) || !(range.until > since)) return;
      const store = tx.objectStore(CHUNKS);
      const low = Math.max(Math.floor(since), 0) + 1;
      // Nodes `from` to `to` (at most): the chunks whose last change is within, and the one after, which may hold
      // the upper end. Requests complete in order, so the second one's success sees both.
      const nodes = (from: number, to: number, then: (nodes: StoredNode[]) => void) => {
        const within = store.getAll(to === Infinity ? IDBKeyRange.lowerBound(from) : IDBKeyRange.bound(from, to));
        const after = to === Infinity ? within : store.getAll(IDBKeyRange.lowerBound(to, true), 1);
        after.onsuccess = () => {
          const out: StoredNode[] = [];
          for (const chunk of within.result as ChunkRecord[]) fromChunk(chunk, out, from, to);
          if (after !== within) { for (const chunk of after.result as ChunkRecord[]) fromChunk(chunk, out, from, to); }
          then(out);
        };
      };
      if (!reverse) {
        const until = Math.min(Math.floor(range.until), limit === Infinity ? Infinity : low + Math.floor(limit) - 1);
        if (until >= low) nodes(low, until, done);
        return;
      }
      // Newest first: change numbers are dense, so the page is the `limit` highest changes up to `until` (bounded
      // by the last change stored, read in the same transaction).
      const last = store.openKeyCursor(null, "prev");
      last.onsuccess = () => {
        const length = (last.result?.key as number | undefined) ?? 0;
        const high = Math.min(Math.floor(range.until), length);
        const start = limit === Infinity ? low : Math.max(low, high - Math.floor(limit) + 1);
        if (high >= start) nodes(start, high, (out) => done(out.reverse()));
      };
    });
  }

  /** Stores nodes atomically, in one transaction. */
  commit(nodes: readonly StoredNode[]): Promise<void> {
    if (nodes.length === 0) {
      return this.#answer(undefined);
    }
    // Checks that need no stored data come first, so a refused commit does not even start a transaction.
    const first = nodes[0]!.change;
    const inCommit = new Set<string>();
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i]!;
      if (node.change !== first + i) {
        return Promise.reject(
          new StorageConflictError(
            `Commit expected change ${first + i} for node ${node.key} but got ${node.change}; ` +
              "change numbers within a commit must be consecutive",
          ),
        );
      }
      if (inCommit.has(node.key)) {
        return Promise.reject(new StorageConflictError(`Commit holds node ${node.key} twice`));
      }
      inCommit.add(node.key);
    }
    const chunks = toChunks(nodes);
    const committed = this.#transaction<void>([CHUNKS, KEYS, HEADS], "readwrite", (tx, _done, fail) => {
      const store = tx.objectStore(KEYS);
      const heads = tx.objectStore(HEADS);
      const stored = heads.get(HEADS_KEY);
      stored.onsuccess = () => {
        const set = new Set(stored.result as string[] | undefined);
        for (const node of nodes) {
          for (const link of node.links) set.delete(link);
          set.add(node.key);
        }
        heads.put([...set], HEADS_KEY);
      };
      // Every request goes out at once; they run in order, so the last change read is the one before this commit,
      // and a wrong one aborts the transaction with the writes queued after it.
      const last = store.openKeyCursor(null, "prev");
      last.onsuccess = () => {
        const length = (last.result?.key as number | undefined) ?? 0;
        if (first !== length + 1) {
          fail(
            new StorageConflictError(
              `Commit expected change ${length + 1} for node ${nodes[0]!.key} but got ${first}; ` +
                "another writer may share this store",
            ),
          );
        }
      };
      for (const chunk of chunks) {
        tx.objectStore(CHUNKS).add(chunk);
        const request = store.add({ last: chunk.last, keys: chunk.keys });
        request.onerror = (event) => {
          if (request.error?.name !== "ConstraintError") return;
          // A key of the chunk is stored already: name the first one, then abort.
          event.preventDefault();
          event.stopPropagation();
          const index = store.index("key");
          chunk.keys.forEach((key, i) => {
            const found = index.getKey(key);
            found.onsuccess = () => {
              if (found.result !== undefined) {
                fail(new StorageConflictError(`Commit holds node ${key}, which is already stored`));
              } else if (i === chunk.keys.length - 1) {
                fail(new StorageConflictError("Commit holds a node that is already stored"));
              }
            };
          });
        };
      }
    });
    return committed.then(() => {
      if (this.#keys !== undefined) this.#learn(chunks);
      let at = 0;
      for (const chunk of chunks) {
        this.#cache.remember(nodes.slice(at, at += chunk.keys.length));
      }
    });
  }

  /** The checkpoint of a view, or `undefined`. */
  viewState(name: string): Promise<ViewState | undefined> {
    return this.#transaction<ViewState | undefined>([VIEWS], "readonly", (tx, done) => {
      const request = tx.objectStore(VIEWS).get(name);
      request.onsuccess = () => {
        const state = request.result as ViewState | undefined;
        done(state === undefined ? undefined : { version: state.version, change: state.change }, true);
      };
    });
  }

  /** The value of a key in a view, or `undefined`. */
  viewGet(name: string, key: string): Promise<string | undefined> {
    return this.#transaction<string | undefined>([VIEW_DATA], "readonly", (tx, done) => {
      const request = tx.objectStore(VIEW_DATA).get([name, key]);
      request.onsuccess = () => done(request.result as string | undefined, true);
    });
  }

  /** Pairs of a view in key order. */
  viewRange(name: string, range: ViewRange): Promise<Array<[string, string]>> {
    return this.#transaction<Array<[string, string]>>([VIEW_DATA], "readonly", (tx, done) => {
      const pairs: Array<[string, string]> = [];
      done(pairs);
      const keys = viewKeyRange(name, range);
      if (keys === null || !(range.limit > 0)) return;
      const store = tx.objectStore(VIEW_DATA);
      if (!range.reverse) {
        // Two bulk reads over the same range in one transaction see the same pairs.
        const count = range.limit === Infinity ? undefined : Math.min(range.limit, 2 ** 32 - 1);
        const keyRequest = store.getAllKeys(keys, count);
        const valueRequest = store.getAll(keys, count);
        valueRequest.onsuccess = () => {
          const found = keyRequest.result as Array<[string, string]>;
          const values = valueRequest.result as string[];
          for (let i = 0; i < found.length; i++) pairs.push([found[i]![1], values[i]!]);
        };
        return;
      }
      const cursor = store.openCursor(keys, "prev");
      cursor.onsuccess = () => {
        const at = cursor.result;
        if (at === null) return;
        pairs.push([(at.key as [string, string])[1], at.value as string]);
        if (pairs.length < range.limit) at.continue();
      };
    });
  }

  /** Applies writes and sets the checkpoint of a view, in one transaction. */
  viewCommit(name: string, writes: readonly ViewWrite[], state: ViewState): Promise<void> {
    try {
      this.#database();
      checkViewCommit(name, writes, state);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#transaction<void>([VIEWS, VIEW_DATA], "readwrite", (tx) => {
      const data = tx.objectStore(VIEW_DATA);
      for (const { key, value } of writes) {
        if (value === undefined) data.delete([name, key]);
        else data.put(value, [name, key]);
      }
      tx.objectStore(VIEWS).put({ version: state.version, change: state.change }, name);
    });
  }

  /** Removes a view's pairs and checkpoint, in one transaction. */
  viewDrop(name: string): Promise<void> {
    return this.#transaction<void>([VIEWS, VIEW_DATA], "readwrite", (tx) => {
      tx.objectStore(VIEW_DATA).delete(IDBKeyRange.bound([name], [name, []]));
      tx.objectStore(VIEWS).delete(name);
    });
  }

  /** Closes the connection; pending transactions finish first. */
  close(): Promise<void> {
    this.#closed = true;
    this.#cache.clear();
    this.#keys = undefined;
    this.#db?.close();
    this.#db = undefined;
    return Promise.resolve();
  }
}
