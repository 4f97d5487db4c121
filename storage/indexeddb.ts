/**
 * IndexedDB storage: keeps a log in the browser, so that a page works offline and still has everything after a
 * reload. It uses only the standard IndexedDB API (a global `indexedDB`, or the factory passed in), so it runs in
 * every browser, in web workers and service workers, and under any IndexedDB implementation for other runtimes.
 *
 * The database (version 1) holds these object stores:
 *
 * - `nodes`: one record `{ key, links, value, change, identity?, signature? }` per node, keyed by its change
 *   number, with a unique index `key`. Reading a change range is one `getAll` over consecutive keys, `length()`
 *   reads the last key, and the unique index refuses a node stored twice inside the commit's transaction.
 * - `heads`: the keys of the nodes no node links to (as keys, with the change as value), so `heads()` is one
 *   `getAllKeys` however long the log is.
 * - `meta`: the `getMeta`/`setMeta` values, keyed by name.
 * - `views`: the checkpoint `{ version, change }` of each view, keyed by view name; `view_data`: the view pairs,
 *   keyed by `[view name, key]`. IndexedDB orders string keys by UTF-16 code units, as JavaScript compares strings,
 *   so ranges need no sorting.
 *
 * Each `commit` is one readwrite transaction: it reads the last change number, then issues every `add` and every
 * head update at once (no request waits for another), so a commit costs one transaction however many nodes it
 * holds, and it is atomic: an error aborts the transaction and nothing of it stays. Several pages may share a
 * database: transactions serialize, a commit checks the change numbers against what is stored, and a page that
 * loses the race gets a `StorageConflictError` (the log then reloads its length).
 *
 * @module
 */
import { ClosedError, StorageConflictError, StorageError } from "../src/errors.ts";
import type { StoredNode } from "../src/node.ts";
import type { ReadRange, Storage, ViewRange, ViewState, ViewWrite } from "./storage.ts";
import { checkViewCommit } from "./view-keys.ts";

/** The version of the database layout described in the module doc. */
export const INDEXEDDB_SCHEMA_VERSION = 1;

const NODES = "nodes";
const HEADS = "heads";
const META = "meta";
const VIEWS = "views";
const VIEW_DATA = "view_data";
const STORES = [NODES, HEADS, META, VIEWS, VIEW_DATA];

/**
 * Options for {@link IndexedDBStorage}.
 *
 * @example
 * ```ts
 * import type { IndexedDBStorageOptions } from "./indexeddb.ts";
 * const options: IndexedDBStorageOptions = { durability: "strict" };
 * console.assert(options.durability === "strict");
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

/** The record of a node in the `nodes` store. */
interface NodeRecord {
  key: string;
  links: readonly string[];
  value: Uint8Array;
  change: number;
  identity?: string;
  signature?: string;
}

/** A copy of `bytes` that owns its buffer whole: structured clone would otherwise copy the entire buffer. */
function ownBytes(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

function toRecord(node: StoredNode): NodeRecord {
  const record: NodeRecord = { key: node.key, links: node.links, value: ownBytes(node.value), change: node.change };
  if (node.identity !== undefined) record.identity = node.identity;
  if (node.signature !== undefined) record.signature = node.signature;
  return record;
}

function toNode(record: NodeRecord): StoredNode {
  // Records come out of IndexedDB in the shape they went in; freezing is the log's business.
  return record;
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
      request.onupgradeneeded = (event) => {
        const db = request.result;
        if (event.oldVersion !== 0) return; // There is only version 1 so far.
        const nodes = db.createObjectStore(NODES, { keyPath: "change" });
        nodes.createIndex("key", "key", { unique: true });
        db.createObjectStore(HEADS);
        db.createObjectStore(META);
        db.createObjectStore(VIEWS);
        db.createObjectStore(VIEW_DATA);
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
            newer
              ? `IndexedDB database ${this.name} was written by a newer version of hyperlog; upgrade this page`
              : `Cannot open IndexedDB database ${this.name}: ${explain(err)}` +
                " (is storage disabled, as in some private windows?)",
            { cause: err },
          ),
        );
      };
      request.onblocked = () => {
        // Only a deletion in progress can block version 1; the open proceeds once it is done.
      };
    });
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
    return this.#transaction<number>([NODES], "readonly", (tx, done) => {
      const request = tx.objectStore(NODES).openKeyCursor(null, "prev");
      request.onsuccess = () => done((request.result?.key as number | undefined) ?? 0, true);
    });
  }

  /** The node with this key, or `undefined`. */
  get(key: string): Promise<StoredNode | undefined> {
    return this.#transaction<StoredNode | undefined>([NODES], "readonly", (tx, done) => {
      const request = tx.objectStore(NODES).index("key").get(key);
      request.onsuccess = () => {
        const record = request.result as NodeRecord | undefined;
        done(record === undefined ? undefined : toNode(record), true);
      };
    });
  }

  /** Whether each key is stored. */
  has(keys: readonly string[]): Promise<boolean[]> {
    if (keys.length === 0) {
      try {
        this.#database();
      } catch (err) {
        return Promise.reject(err);
      }
      return Promise.resolve([]);
    }
    return this.#transaction<boolean[]>([NODES], "readonly", (tx, done) => {
      const index = tx.objectStore(NODES).index("key");
      const found = new Array<boolean>(keys.length).fill(false);
      done(found);
      keys.forEach((key, i) => {
        const request = index.getKey(key);
        request.onsuccess = () => void (found[i] = request.result !== undefined);
      });
    });
  }

  /** The current heads. */
  heads(): Promise<string[]> {
    return this.#transaction<string[]>([HEADS], "readonly", (tx, done) => {
      const request = tx.objectStore(HEADS).getAllKeys();
      request.onsuccess = () => done(request.result as string[], true);
    });
  }

  /** One page of nodes in change order. */
  read(range: ReadRange): Promise<StoredNode[]> {
    const { since, limit, reverse } = range;
    return this.#transaction<StoredNode[]>([NODES], "readonly", (tx, done) => {
      done([]);
      if (!(limit > 0) || !(range.until > since)) return;
      const store = tx.objectStore(NODES);
      const low = Math.max(Math.floor(since), 0) + 1;
      if (!reverse) {
        const high = range.until === Infinity ? Infinity : Math.floor(range.until);
        if (high < low) return;
        const keys = high === Infinity ? IDBKeyRange.lowerBound(low) : IDBKeyRange.bound(low, high);
        const request = store.getAll(keys, limit === Infinity ? undefined : Math.min(limit, 2 ** 32 - 1));
        request.onsuccess = () => done((request.result as NodeRecord[]).map(toNode));
        return;
      }
      // Newest first: change numbers are dense, so the page is the `limit` highest changes up to `until` (bounded
      // by the last change stored, read in the same transaction).
      const last = store.openKeyCursor(null, "prev");
      last.onsuccess = () => {
        const length = (last.result?.key as number | undefined) ?? 0;
        const high = Math.min(Math.floor(range.until), length);
        const start = limit === Infinity ? low : Math.max(low, high - Math.floor(limit) + 1);
        if (high < start) return;
        const request = store.getAll(IDBKeyRange.bound(start, high));
        request.onsuccess = () => done((request.result as NodeRecord[]).map(toNode).reverse());
      };
    });
  }

  /** Stores nodes atomically, in one transaction. */
  commit(nodes: readonly StoredNode[]): Promise<void> {
    if (nodes.length === 0) {
      try {
        this.#database();
      } catch (err) {
        return Promise.reject(err);
      }
      return Promise.resolve();
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
    const records = nodes.map(toRecord);
    return this.#transaction<void>([NODES, HEADS], "readwrite", (tx, _done, fail) => {
      const store = tx.objectStore(NODES);
      const heads = tx.objectStore(HEADS);
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
          return;
        }
        const linked = new Set<string>();
        for (const record of records) {
          const request = store.add(record);
          request.onerror = (event) => {
            if (request.error?.name !== "ConstraintError") return;
            event.preventDefault();
            event.stopPropagation();
            fail(new StorageConflictError(`Commit holds node ${record.key}, which is already stored`));
          };
          for (const link of record.links) {
            if (inCommit.has(link)) linked.add(link);
            else heads.delete(link);
          }
        }
        for (const record of records) if (!linked.has(record.key)) heads.put(record.change, record.key);
      };
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
    this.#db?.close();
    this.#db = undefined;
    return Promise.resolve();
  }
}
