/**
 * The commit of `IndexedDBStorage` inside its readwrite transaction (see `indexeddb.ts`): reads the last change and
 * the heads, looks up the keys not known to be stored (one `getKey` each, one `getAll` of the keys stored since
 * into the key set, or none for a hopeful commit, which the unique index stops at a stored key), then numbers the
 * new nodes on from the last change and writes their chunks, key lists and the heads.
 *
 * @module
 */
import { StorageConflictError } from "../src/errors.ts";
import { type StoredNode, withChange } from "../src/node.ts";
import { type ChunkRecord, CHUNKS, HEADS, HEADS_KEY, KEYS, type KeysRecord, toChunks } from "./indexeddb-layout.ts";

/** The reason a hopeful commit aborts: a key it wrote is stored already (the commit is then done with lookups). */
export const STORED_ALREADY: StorageConflictError = new StorageConflictError(
  "Commit holds a node that is already stored",
);

/** Every stored key and its change, up to change `upTo`, once loaded: about 100 bytes of memory per node. */
export class KeySet {
  #keys: Map<string, number> | undefined;
  /** The change up to which the keys are loaded. */
  upTo: number = 0;

  /** Whether the keys are loaded (then kept up to date by `learn`). */
  get loaded(): boolean {
    return this.#keys !== undefined;
  }

  /** Whether `key` is among the keys loaded (a key once stored stays stored). */
  has(key: string): boolean {
    return this.#keys?.has(key) === true;
  }

  /** The change of `key`, if it is among the keys loaded. */
  changeOf(key: string): number | undefined {
    return this.#keys?.get(key);
  }

  /** Adds the keys of chunks that follow `upTo` (in change order), loading the set if it was not. */
  learn(records: readonly KeysRecord[]): void {
    const set = this.#keys ??= new Map();
    for (const record of records) {
      if (record.last - record.keys.length !== this.upTo) continue;
      let change = this.upTo;
      for (const key of record.keys) set.set(key, ++change);
      this.upTo = record.last;
    }
  }

  /** Forgets every key. */
  clear(): void {
    this.#keys = undefined;
    this.upTo = 0;
  }
}

/** What a commit stored, filled in as its transaction runs: the new nodes (numbered) and their chunks. */
export interface CommitOutcome {
  stored: StoredNode[];
  chunks: ChunkRecord[];
}

/**
 * Makes the requests of one try at committing `nodes` within `tx`. `fresh[i]` starts true for the nodes not known
 * to be stored, whose indexes are `ask`; the lookups clear it for those found stored. `lookup`: `"each"` (a
 * `getKey` per key), `"keySet"` (the key set, brought up to date), `"none"` (hopeful: a stored key makes the unique
 * index refuse, and the transaction aborts with {@link STORED_ALREADY}). `cached` gives the change of a key whose
 * node is in memory. The links of the new nodes are kept as change numbers (see `indexeddb-links.ts`): to nodes of
 * the commit, in memory or in the key set at once; the other linked keys are looked up in the same transaction
 * (a `getKey` each, then a `get` of each distinct chunk's keys), or, when there are more than `many`, through the
 * key set. `fail` aborts the transaction.
 */
export function commitRequests(
  tx: IDBTransaction,
  nodes: readonly StoredNode[],
  fresh: boolean[],
  ask: readonly number[],
  lookup: "each" | "keySet" | "none",
  keys: KeySet,
  cached: (key: string) => number | undefined,
  many: number,
  fail: (err: Error) => void,
  out: CommitOutcome,
): void {
  const first = nodes[0]!.change;
  const store = tx.objectStore(KEYS);
  // The linked keys whose change is not known here (outside the commit, not in memory).
  const inCommit = new Set<string>();
  for (const i of ask) inCommit.add(nodes[i]!.key);
  const unknown = new Set<string>();
  if (lookup !== "keySet") {
    for (const i of ask) {
      for (const link of nodes[i]!.links) {
        if (!inCommit.has(link) && cached(link) === undefined && keys.changeOf(link) === undefined) unknown.add(link);
      }
    }
    if (unknown.size > many) {
      lookup = "keySet";
      unknown.clear();
    }
  }
  /** The changes of the linked keys looked up here. */
  const found = new Map<string, number>();
  // Every request goes out at once; they complete in order, so when the lookups complete, the heads and the
  // last change (read before them) are known, and a wrong last change has aborted the transaction.
  const heads = tx.objectStore(HEADS).get(HEADS_KEY);
  const last = store.openKeyCursor(null, "prev");
  let length = -1;
  const lookups = ask.length > 0 && lookup !== "none";
  // What `write` waits for: the last change, the key lookups, the link lookups.
  let pending = 1 + (lookups ? 1 : 0) + (unknown.size > 0 ? 1 : 0);
  const step = () => {
    if (--pending === 0) write();
  };
  last.onsuccess = () => {
    const found = (last.result?.key as number | undefined) ?? 0;
    if (first !== found + 1) {
      fail(
        new StorageConflictError(
          `Commit expected change ${found + 1} for node ${nodes[0]!.key} but got ${first}; ` +
            "another writer may share this store",
        ),
      );
    } else length = found;
    step();
  };
  const write = () => {
    if (length < 0) return;
    const numbered = new Map<string, number>();
    for (const i of ask) {
      let node = nodes[i]!;
      if (!fresh[i]) continue;
      const change = length + out.stored.length + 1;
      if (node.change !== change) node = withChange(node, change);
      out.stored.push(node);
      numbered.set(node.key, change);
    }
    if (out.stored.length === 0) return;
    const set = new Set(heads.result as string[] | undefined);
    for (const node of out.stored) {
      for (const link of node.links) set.delete(link);
      set.add(node.key);
    }
    tx.objectStore(HEADS).put([...set], HEADS_KEY);
    out.chunks = toChunks(
      out.stored,
      (key) => numbered.get(key) ?? cached(key) ?? keys.changeOf(key) ?? found.get(key),
    );
    for (const chunk of out.chunks) {
      tx.objectStore(CHUNKS).add(chunk);
      const request = store.add({ last: chunk.last, keys: chunk.keys });
      request.onerror = (event) => {
        if (request.error?.name !== "ConstraintError") return;
        // A key of the chunk is stored already (only a hopeful commit gets here): abort, and look up.
        event.preventDefault();
        event.stopPropagation();
        fail(STORED_ALREADY);
      };
    }
  };
  if (!lookups) {
    // Nothing to look up: the last change's success writes.
  } else if (lookup === "keySet") {
    // Many keys: one request brings the key set up to date (loading it whole the first time).
    const request = store.getAll(IDBKeyRange.lowerBound(keys.upTo, true));
    request.onsuccess = () => {
      keys.learn(request.result as KeysRecord[]);
      for (const i of ask) if (keys.has(nodes[i]!.key)) fresh[i] = false;
      step();
    };
  } else {
    const index = store.index("key");
    ask.forEach((i, n) => {
      const request = index.getKey(nodes[i]!.key);
      request.onsuccess = () => {
        if (request.result !== undefined) fresh[i] = false;
        if (n === ask.length - 1) step();
      };
    });
  }
  if (unknown.size > 0) {
    // The chunk of each linked key (none for a dangling link), then the keys of each distinct chunk.
    const index = store.index("key");
    const chunkOf = new Map<string, number>();
    let left = unknown.size;
    for (const link of unknown) {
      const request = index.getKey(link);
      request.onsuccess = () => {
        if (request.result !== undefined) chunkOf.set(link, request.result as number);
        if (--left === 0) positions();
      };
    }
    const positions = () => {
      const chunks = new Set(chunkOf.values());
      if (chunks.size === 0) return step();
      let remaining = chunks.size;
      for (const chunk of chunks) {
        const request = store.get(chunk);
        request.onsuccess = () => {
          const record = request.result as KeysRecord;
          const start = record.last - record.keys.length + 1;
          record.keys.forEach((key, at) => {
            if (unknown.has(key)) found.set(key, start + at);
          });
          if (--remaining === 0) step();
        };
      }
    };
  }
}
