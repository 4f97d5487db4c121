/**
 * The layout of `IndexedDBStorage`'s database (see `indexeddb.ts` for the stores and what they hold): the store
 * names and limits, the chunk records that hold the nodes, and the key range of a view's pairs. The database
 * (version 3) holds these object stores:
 *
 * - `chunks`: the nodes, a run of consecutive changes per record: `{ last, keys, links, values, identities?,
 *   signatures? }` (one array entry per node, in change order), keyed by `last`, the change of its last node (its
 *   first is `last - keys.length + 1`). A commit is cut into chunks of at most 1000 nodes or 256 KB of values, so
 *   a commit of 1000 small nodes is one record. Reading a change range is one `getAll` over the chunks it covers
 *   (plus one for the chunk that holds its upper end). In `links`, a number is the change of a node stored before
 *   this one, a string a key (a dangling link, or any link of a chunk written by version 2): see
 *   `indexeddb-links.ts`.
 * - `keys`: `{ last, keys }` for each chunk, with a unique `multiEntry` index `key` over `keys`: it maps a node key
 *   to its chunk; a commit looks up there, inside its transaction, which of its keys are stored already (and,
 *   being unique, it would refuse a node stored twice). `length()` reads its last key.
 * - `heads`: one record, the array of the keys no node links to, so `heads()` is one `get`.
 * - `meta`: the `getMeta`/`setMeta` values, keyed by name.
 * - `views`: the checkpoint `{ version, change }` of each view, keyed by view name; `view_data`: the view pairs,
 *   keyed by `[view name, key]`. IndexedDB orders string keys by UTF-16 code units, as JavaScript compares strings,
 *   so ranges need no sorting.
 *
 * @module
 */
import type { StoredNode } from "../src/node.ts";
import type { ViewRange } from "../src/storage.ts";
import { encodeLinks, type StoredLink } from "./indexeddb-links.ts";

/** The version of the database layout described in the module doc. */
export const INDEXEDDB_SCHEMA_VERSION: number = 3;

export const CHUNKS = "chunks";
export const KEYS = "keys";
export const NODES = "nodes"; // Version 1 only.
export const HEADS = "heads";
/** The key of the one record of `heads`: the array of head keys. */
export const HEADS_KEY = 0;
export const META = "meta";
export const VIEWS = "views";
export const VIEW_DATA = "view_data";
export const STORES: readonly string[] = [CHUNKS, KEYS, HEADS, META, VIEWS, VIEW_DATA];
/** A chunk holds at most this many nodes... */
export const CHUNK_NODES = 1000;
/** ...and takes no more node after its values reach this many bytes. */
export const CHUNK_BYTES = 256 * 1024;
/** The nodes of recent chunks kept in memory: at most this many... */
export const CACHE_NODES = 20_000;
/** ...and this many bytes of values. */
export const CACHE_BYTES = 16 * 1024 * 1024;
/** `has` loads every stored key into memory once it is asked about more unknown keys than this at once. */
export const KEY_SET_AFTER = 16;

/** A record of the `chunks` store: consecutive nodes, one entry per node in each array, up to change `last`. */
export interface ChunkRecord {
  last: number;
  keys: string[];
  /** Each node's links: a number is the change of a node stored before it, a string a key (`indexeddb-links.ts`). */
  links: (readonly StoredLink[])[];
  values: Uint8Array[];
  identities?: (string | undefined)[];
  signatures?: (string | undefined)[];
}

/** A record of the `keys` store: the keys of the chunk with the same `last`. */
export interface KeysRecord {
  last: number;
  keys: string[];
}

/** A copy of `bytes` that owns its buffer whole: structured clone would otherwise copy the entire buffer. */
export function ownBytes(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

/**
 * Cuts nodes of consecutive changes into chunk records (see the module doc); `changeOf` gives the change of a linked
 * key stored before (or earlier in `nodes`), so that the link is kept as that number; without it links stay keys.
 */
export function toChunks(
  nodes: readonly StoredNode[],
  changeOf?: (key: string) => number | undefined,
): ChunkRecord[] {
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
    chunk.links.push(changeOf === undefined ? node.links : encodeLinks(node.change, node.links, changeOf));
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

/**
 * The nodes of a chunk record with changes from `low` to `high`, appended to `out`; `keyOf` gives the key of a
 * linked change number outside the chunk (see `resolveLinks`; it throws when there is none).
 */
export function fromChunk(
  chunk: ChunkRecord,
  out: StoredNode[],
  keyOf: (change: number) => string,
  low = 0,
  high = Infinity,
): StoredNode[] {
  const first = chunk.last - chunk.keys.length + 1;
  const end = Math.min(chunk.last, high) - first;
  for (let i = Math.max(low - first, 0); i <= end; i++) {
    const identity = chunk.identities?.[i];
    const stored = chunk.links[i]!;
    let links = stored as readonly string[];
    for (let j = 0; j < stored.length; j++) {
      if (typeof stored[j] !== "number") continue;
      // Numbers: resolve into a copy (the record is never handed out as links).
      const keys: string[] = [];
      for (const link of stored) {
        keys.push(
          typeof link === "string" ? link : link >= first && link <= chunk.last ? chunk.keys[link - first]! : keyOf(link),
        );
      }
      links = keys;
      break;
    }
    const node = { key: chunk.keys[i]!, links, value: chunk.values[i]!, change: first + i };
    // Records come out of IndexedDB in the shape they went in; freezing is the log's business.
    out.push(identity === undefined ? node : { ...node, identity, signature: chunk.signatures![i]! });
  }
  return out;
}

export function explain(err: unknown): string {
  if (err instanceof Error || (typeof DOMException !== "undefined" && err instanceof DOMException)) {
    return `${(err as Error).name}: ${(err as Error).message}`;
  }
  return String(err);
}

/** The key range of a view's pairs within `view_data`, from the bounds of `range`. */
export function viewKeyRange(name: string, range: ViewRange): IDBKeyRange | null {
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
