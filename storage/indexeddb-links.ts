/**
 * How `IndexedDBStorage` keeps a node's links (layout version 3): in a chunk record's `links`, an entry that is a
 * number is the change number of the node it names (stored before it, in an earlier commit or earlier in the same
 * one); an entry that is a string is the key itself: a dangling link (to a node not stored), a link the commit could
 * not number cheaply, and every link of the chunks written by layout 2, so that those need no rewrite. A storm-shaped
 * node (~49 links) thus keeps ~49 small integers instead of ~3.2 KB of hex keys. Keys, hashes and signatures never
 * change: a read resolves each number back to its key, from the chunks it read (by position) and, for the changes
 * outside them, from the `keys` store, one request per distinct chunk they fall in.
 *
 * @module
 */
import { StorageError } from "../src/errors.ts";
import type { ChunkRecord, KeysRecord } from "./indexeddb-layout.ts";

/** A stored link: a change number (a reference to an earlier node) or a key. */
export type StoredLink = string | number;

/**
 * The stored form of `links` for a node numbered `change`: `changeOf` gives the change number of a linked key that
 * is stored (or stored earlier in the same commit), or `undefined`. A link numbers only a node before this one.
 */
export function encodeLinks(
  change: number,
  links: readonly string[],
  changeOf: (key: string) => number | undefined,
): StoredLink[] {
  // Built by `push`: an array made with `new Array(n)` has holes as far as V8 knows, and structured clone writes
  // such an array in its sparse form (index and value for each entry), larger and slower to read back.
  const out: StoredLink[] = [];
  for (let i = 0; i < links.length; i++) {
    const link = links[i]!;
    const target = changeOf(link);
    out.push(target !== undefined && target >= 1 && target < change ? target : link);
  }
  return out;
}

/** Whether any link of the chunk is a change number. */
function hasNumbers(chunk: ChunkRecord): boolean {
  for (const links of chunk.links) {
    for (const link of links) if (typeof link === "number") return true;
  }
  return false;
}

/** The key of change `change` among `records` (sorted by `last`, disjoint), or `undefined`. */
function keyIn(records: readonly KeysRecord[], change: number): string | undefined {
  let low = 0;
  let high = records.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    const record = records[mid]!;
    const first = record.last - record.keys.length + 1;
    if (change < first) high = mid - 1;
    else if (change > record.last) low = mid + 1;
    else return record.keys[change - first];
  }
  return undefined;
}

/**
 * Finds, within `tx` (which covers the `keys` store), the keys of the change numbers that `chunks` link to outside
 * themselves, and calls `then` with a function from change to key (for `fromChunk`). The changes outside are looked
 * up in ascending order, one `get` of the `keys` record holding the lowest one not yet known at a time, so a page
 * costs one request per distinct chunk it links into (none when it links only within itself). `fail` gets a
 * `StorageError` when a number names no stored node (a damaged database).
 */
export function resolveLinks(
  tx: IDBTransaction,
  chunks: readonly ChunkRecord[],
  name: string,
  then: (keyOf: (change: number) => string) => void,
  fail: (err: Error) => void,
): void {
  const records: KeysRecord[] = [...chunks].sort((a, b) => a.last - b.last);
  const missing = new Set<number>();
  for (const chunk of chunks) {
    if (!hasNumbers(chunk)) continue;
    const first = chunk.last - chunk.keys.length + 1;
    for (const links of chunk.links) {
      for (const link of links) {
        if (typeof link !== "number" || (link >= first && link <= chunk.last)) continue;
        if (keyIn(records, link) === undefined) missing.add(link);
      }
    }
  }
  const outside: KeysRecord[] = [];
  const keyOf = (change: number): string => {
    const key = keyIn(records, change) ?? keyIn(outside, change);
    if (key === undefined) {
      throw new StorageError(
        `IndexedDB database ${name} holds a link to change ${change}, which is not stored; the database is damaged`,
      );
    }
    return key;
  };
  const wanted = [...missing].sort((a, b) => a - b);
  let at = 0;
  const next = () => {
    if (at >= wanted.length) return then(keyOf);
    const change = wanted[at]!;
    const request = tx.objectStore("keys").get(IDBKeyRange.lowerBound(change));
    request.onsuccess = () => {
      const record = request.result as KeysRecord | undefined;
      if (record === undefined || record.last - record.keys.length + 1 > change) {
        try {
          keyOf(change);
        } catch (err) {
          return fail(err as Error);
        }
      } else outside.push(record);
      while (at < wanted.length && wanted[at]! <= (record?.last ?? Infinity)) at++;
      next();
    };
  };
  next();
}
