/**
 * IndexedDB storage: keeps a log in the browser, so that a page works offline and still has everything after a
 * reload. It uses only the standard IndexedDB API (a global `indexedDB`, or the factory passed in), so it runs in
 * every browser, in web workers and service workers, and under any IndexedDB implementation for other runtimes.
 *
 * Browsers charge a fixed cost per IndexedDB request (~0.2 ms in Chromium, whatever its size), so the layout keeps
 * the requests per commit few however many nodes it holds. The database (version 3) holds these object stores:
 *
 * - `chunks` (the nodes, a run of consecutive changes per record, cut at 1000 nodes or 256 KB of values), `keys`
 *   (each chunk's keys, under a unique `multiEntry` index from key to chunk), `heads` (one record: the head keys),
 *   `meta`, `views` and `view_data`; `indexeddb-layout.ts` describes each. A chunk keeps each link to an earlier
 *   stored node as its change number, turned back into its key on read (`indexeddb-links.ts`).
 *
 * Each `commit` is one readwrite transaction: it reads the last change and the heads and looks up the keys it does
 * not know to be stored (one `getKey` each, or one `getAll` of the keys stored since when it keeps the key set),
 * then adds a record per chunk of the new nodes to `chunks` and to `keys`, and writes the heads record. The
 * transaction aborts, leaving nothing of the commit behind, when the last change is not the one the commit
 * continues from; keys already stored are skipped and reported. Several pages (or several storages in one page)
 * may share a database: transactions serialize, a commit checks the change numbers against what is stored, and a
 * page that loses the race gets a `StorageConflictError` (the log then reloads its length). A log with very many heads (tens
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
 * A version-1 or version-2 database is upgraded in place when this version first opens it (see
 * `indexeddb-open.ts`; from version 2 nothing is rewritten).
 *
 * @module
 */
import { ClosedError, StorageConflictError, StorageError } from "../src/errors.ts";
import { ChunkCache } from "./chunk-cache.ts";
import {
  CACHE_BYTES,
  CACHE_NODES,
  type ChunkRecord,
  CHUNKS,
  explain,
  fromChunk,
  HEADS,
  HEADS_KEY,
  INDEXEDDB_SCHEMA_VERSION as SCHEMA_VERSION,
  KEY_SET_AFTER,
  KEYS,
  type KeysRecord,
  META,
  VIEW_DATA,
  VIEWS,
} from "./indexeddb-layout.ts";
import { type CommitOutcome, commitRequests, KeySet, STORED_ALREADY } from "./indexeddb-commit.ts";
import { resolveLinks } from "./indexeddb-links.ts";
import { openDatabase } from "./indexeddb-open.ts";
import type { IndexedDBStorageOptions } from "./indexeddb-options.ts";
import { readViewRange, readViewState, writeView } from "./indexeddb-views.ts";
import type { StoredNode } from "../src/node.ts";
import type { ReadRange, Storage, ViewRange, ViewState, ViewWrite } from "../src/storage.ts";
import { checkViewCommit } from "../src/view-keys.ts";

/**
 * The version of the database layout described in the module doc.
 *
 * @example
 * ```ts
 * import { INDEXEDDB_SCHEMA_VERSION } from "./indexeddb.ts";
 * console.assert(INDEXEDDB_SCHEMA_VERSION === 3);
 * ```
 */
export const INDEXEDDB_SCHEMA_VERSION: number = SCHEMA_VERSION;

export type { IndexedDBStorageOptions };

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
  /** Every stored key, once `has` or `commit` has loaded them (see the module doc). */
  readonly #keys: KeySet = new KeySet();

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
    return openDatabase(factory, this.name, {
      closed: () => this.#closed,
      lost: (why) => void (this.#lost ??= why),
    }).then((db) => {
      this.#db = db;
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

  /** The nodes `fill` decodes from chunks, or `undefined` once `fail` got why a link cannot be resolved. */
  #decode(fail: (err: Error) => void, fill: (out: StoredNode[]) => void): StoredNode[] | undefined {
    const out: StoredNode[] = [];
    try {
      fill(out);
    } catch (err) {
      fail(err instanceof Error ? err : new StorageError(String(err)));
      return undefined;
    }
    return out;
  }

  /** The node with this key, or `undefined`. */
  get(key: string): Promise<StoredNode | undefined> {
    const node = this.#cache.get(key);
    if (node !== undefined) {
      return this.#answer(node);
    }
    return this.#transaction<StoredNode | undefined>([CHUNKS, KEYS], "readonly", (tx, done, fail) => {
      const where = tx.objectStore(KEYS).index("key").getKey(key);
      where.onsuccess = () => {
        if (where.result === undefined) return done(undefined, true);
        const request = tx.objectStore(CHUNKS).get(where.result);
        request.onsuccess = () => {
          const chunk = request.result as ChunkRecord;
          resolveLinks(tx, [chunk], this.name, (keyOf) => {
            const nodes = this.#decode(fail, (out) => fromChunk(chunk, out, keyOf));
            if (nodes === undefined) return;
            this.#cache.remember(nodes);
            done(nodes.find((n) => n.key === key), true);
          }, fail);
        };
      };
    });
  }

  /** Whether each key is stored. */
  has(keys: readonly string[]): Promise<boolean[]> {
    const found = keys.map((key) => this.#cache.has(key) || this.#keys.has(key));
    const unknown = found.filter((known) => !known).length;
    if (unknown === 0) {
      return this.#answer(found);
    }
    return this.#transaction<boolean[]>([KEYS], "readonly", (tx, done) => {
      const store = tx.objectStore(KEYS);
      if (!this.#keys.loaded && unknown <= KEY_SET_AFTER) {
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
      const request = store.getAll(IDBKeyRange.lowerBound(this.#keys.upTo, true));
      request.onsuccess = () => {
        this.#keys.learn(request.result as KeysRecord[]);
        done(keys.map((key, i) => found[i]! || this.#keys.has(key)), true);
      };
    });
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
    return this.#transaction<StoredNode[]>([CHUNKS, KEYS], "readonly", (tx, done, fail) => {
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
          const chunks = within.result as ChunkRecord[];
          if (after !== within) chunks.push(...after.result as ChunkRecord[]);
          resolveLinks(tx, chunks, this.name, (keyOf) => {
            const out = this.#decode(fail, (out) => {
              for (const chunk of chunks) fromChunk(chunk, out, keyOf, from, to);
            });
            if (out !== undefined) then(out);
          }, fail);
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

  /**
   * Stores the new nodes atomically, in one transaction, and says which of the given nodes were new. The keys not
   * known to be stored (from the chunks in memory or the key set) are looked up inside that transaction, so no
   * earlier call is trusted for what only the database knows: one `getKey` each for a few, one `getAll` of the
   * keys stored since when the key set is loaded. Many unknown keys without a key set are written at once, and the
   * unique index refuses a stored one: the transaction then aborts and the commit is done again with the key set.
   */
  commit(nodes: readonly StoredNode[]): Promise<boolean[]> {
    if (nodes.length === 0) {
      return this.#answer([]);
    }
    // Checks that need no stored data come first, so a refused commit does not even start a transaction.
    const first = nodes[0]!.change;
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
    }
    const hopeful = !this.#keys.loaded && nodes.length > KEY_SET_AFTER;
    return this.#commit(nodes, hopeful).catch((err) => {
      if (err !== STORED_ALREADY) throw err;
      return this.#commit(nodes, false, true);
    });
  }

  /** One try at a commit (see `commit` and {@link commitRequests}). */
  #commit(nodes: readonly StoredNode[], hopeful: boolean, keySet = false): Promise<boolean[]> {
    const fresh: boolean[] = new Array(nodes.length);
    const inCommit = new Set<string>();
    const ask: number[] = [];
    for (let i = 0; i < nodes.length; i++) {
      const key = nodes[i]!.key;
      // Stored chunks never change, so a key in memory is stored for good.
      fresh[i] = !inCommit.has(key) && !this.#cache.has(key) && !this.#keys.has(key);
      inCommit.add(key);
      if (fresh[i]) ask.push(i);
    }
    const out: CommitOutcome = { stored: [], chunks: [] };
    const lookup = hopeful ? "none" : keySet || this.#keys.loaded || ask.length > KEY_SET_AFTER ? "keySet" : "each";
    const committed = this.#transaction<boolean[]>([CHUNKS, KEYS, HEADS], "readwrite", (tx, done, fail) => {
      done(fresh);
      const cached = (key: string) => this.#cache.get(key)?.change;
      commitRequests(tx, nodes, fresh, ask, lookup, this.#keys, cached, KEY_SET_AFTER, fail, out);
    });
    return committed.then((report) => {
      if (this.#keys.loaded) this.#keys.learn(out.chunks);
      let at = 0;
      for (const chunk of out.chunks) {
        this.#cache.remember(out.stored.slice(at, at += chunk.keys.length));
      }
      return report;
    });
  }

  /** The checkpoint of a view, or `undefined`. */
  viewState(name: string): Promise<ViewState | undefined> {
    return this.#transaction<ViewState | undefined>([VIEWS], "readonly", (tx, done) => readViewState(tx, name, done));
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
      readViewRange(tx, name, range, pairs);
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
    return this.#transaction<void>([VIEWS, VIEW_DATA], "readwrite", (tx) => writeView(tx, name, writes, state));
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
    this.#keys.clear();
    this.#db?.close();
    this.#db = undefined;
    return Promise.resolve();
  }
}
