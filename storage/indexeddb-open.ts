/**
 * Opening `IndexedDBStorage`'s database: creates the stores of a new one, upgrades a version-1 or version-2 database
 * in place (see `indexeddb.ts`), refuses a database of another layout, and reports a connection lost to another page.
 *
 * A version-2 database becomes version 3 without any change to its data: its chunks keep every link as a key, which
 * version 3 reads as it is (see `indexeddb-links.ts`); only the new chunks keep links as change numbers. The
 * version-2 code then refuses the database ("written by a newer version of hyperlog; upgrade this page").
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
import { ClosedError, StorageError } from "../src/errors.ts";
import type { StoredNode } from "../src/node.ts";
import {
  CHUNK_NODES,
  CHUNKS,
  explain,
  HEADS,
  HEADS_KEY,
  INDEXEDDB_SCHEMA_VERSION,
  KEYS,
  NODES,
  STORES,
  toChunks,
} from "./indexeddb-layout.ts";

/** What the storage that opens a database tells and is told. */
export interface OpenHooks {
  /** Whether the storage was closed meanwhile (the database is then closed again and the open rejects). */
  closed(): boolean;
  /** The connection is lost (another page deleted or upgraded the database, or the browser closed it): why. */
  lost(why: string): void;
}

/** Opens (creating or upgrading when needed) the database `name` of the current layout. */
export function openDatabase(factory: IDBFactory, name: string, hooks: OpenHooks): Promise<IDBDatabase> {
  return new Promise<IDBDatabase>((resolve, reject) => {
    let request: IDBOpenDBRequest;
    try {
      request = factory.open(name, INDEXEDDB_SCHEMA_VERSION);
    } catch (err) {
      reject(new StorageError(`Cannot open IndexedDB database ${name}: ${explain(err)}`, { cause: err }));
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
      if (event.oldVersion === 2) {
        // Version 2 has the stores of version 3 and chunks whose links are all keys, which version 3 reads as
        // they are: nothing changes but the version number (so that the version-2 code refuses the database, as
        // it may now hold links as change numbers).
        const missing = STORES.filter((store) => !db.objectStoreNames.contains(store));
        if (missing.length > 0) {
          refuse(
            `IndexedDB database ${name} is not a hyperlog database (version 2 without the stores ` +
              `${missing.join(", ")}); choose another name or delete it`,
          );
        }
        return;
      }
      if (event.oldVersion === 0) {
        for (const store of STORES.slice(2)) db.createObjectStore(store);
      } else {
        // Version 1: a hyperlog database has exactly these stores; anything else is left untouched.
        const v1 = [NODES, ...STORES.slice(2)];
        if (event.oldVersion !== 1 || v1.some((store) => !db.objectStoreNames.contains(store))) {
          return refuse(
            `IndexedDB database ${name} is not a hyperlog database (version ${event.oldVersion} without ` +
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
                `IndexedDB database ${name} has a gap at change ${length} in its version-1 nodes, so it ` +
                  "cannot be upgraded; export its nodes with the version that wrote it, or delete it",
              );
            }
          }
          // Links within the page become change numbers; links before it stay keys (read as they are).
          const inPage = new Map(records.map((record) => [record.key, record.change]));
          for (const chunk of toChunks(records, (key) => inPage.get(key))) {
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
            `IndexedDB database ${name} is not a hyperlog database (it lacks ${missing.join(", ")}); ` +
              "choose another name or delete it",
          ),
        );
        return;
      }
      // Another page wants to delete or upgrade the database: let it, and refuse further calls here.
      db.onversionchange = () => {
        hooks.lost(`IndexedDB database ${name} was deleted or upgraded by another page; reload this one`);
        db.close();
      };
      db.onclose = () => {
        hooks.lost(`The browser closed IndexedDB database ${name} (storage cleared or unavailable)`);
      };
      if (hooks.closed()) {
        db.close();
        reject(new ClosedError("The storage is closed"));
        return;
      }
      resolve(db);
    };
    request.onerror = () => {
      const err = request.error;
      const newer = err?.name === "VersionError";
      reject(
        new StorageError(
          refused ??
            (newer
              ? `IndexedDB database ${name} was written by a newer version of hyperlog; upgrade this page`
              : `Cannot open IndexedDB database ${name}: ${explain(err)}` +
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
