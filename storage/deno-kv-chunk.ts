/**
 * The chunks of `DenoKvStorage`: nodes of consecutive changes encoded together, cut to fit Deno KV's values.
 *
 * @module
 */
import type { StoredNode } from "../src/node.ts";
import { StorageError } from "../src/errors.ts";
import { join, Reader, Writer } from "./deno-kv-bytes.ts";
import type { DenoKvKey, DenoKvKeyPart } from "./deno-kv-codec.ts";
import { bytesOf, type DenoKvLike } from "./deno-kv-journal.ts";

/** A chunk takes no more node once its encoding reaches this many bytes (so most chunks are one piece). */
export const CHUNK_BYTES = 60_000;
/** A chunk holds at most this many nodes. */
export const CHUNK_NODES = 1000;
/** The encoded size of a node within a chunk, near enough to cut chunks. */
function nodeBytes(node: StoredNode): number {
  return 32 + 1 + 2 + node.links.length * 32 + (node.identity === undefined ? 0 : 96) + 5 + node.value.length;
}

/**
 * Cuts nodes of consecutive changes into chunks: at most {@link CHUNK_NODES} nodes, and no more node once the
 * encoding reaches {@link CHUNK_BYTES}. Each chunk is `[last change, nodes]`.
 *
 * @example
 * ```ts
 * import { cutChunks } from "./deno-kv-chunk.ts";
 * import { chain } from "./conformance.ts";
 * const chunks = cutChunks(chain(2500));
 * console.assert(chunks.length > 2 && chunks.every(([last, nodes]) => nodes.at(-1)!.change === last));
 * ```
 */
export function cutChunks(nodes: readonly StoredNode[]): Array<[number, StoredNode[]]> {
  const out: Array<[number, StoredNode[]]> = [];
  let chunk: StoredNode[] = [];
  let bytes = 0;
  for (const node of nodes) {
    if (chunk.length > 0 && (chunk.length >= CHUNK_NODES || bytes >= CHUNK_BYTES)) {
      out.push([chunk[chunk.length - 1]!.change, chunk]);
      chunk = [];
      bytes = 0;
    }
    chunk.push(node);
    bytes += nodeBytes(node);
  }
  if (chunk.length > 0) out.push([chunk[chunk.length - 1]!.change, chunk]);
  return out;
}

/**
 * Encodes nodes of consecutive changes as one chunk: a version byte, the count, then per node its key, a flag byte
 * (1: signed), its links, its identity and signature when signed, and its value, length-prefixed.
 *
 * @example
 * ```ts
 * import { decodeChunk, encodeChunk } from "./deno-kv-chunk.ts";
 * import { chain } from "./conformance.ts";
 * const nodes = chain(3);
 * console.assert(decodeChunk(encodeChunk(nodes), 3)[2]!.key === nodes[2]!.key);
 * ```
 */
export function encodeChunk(nodes: readonly StoredNode[]): Uint8Array {
  const w = new Writer();
  w.room(nodes.reduce((n, node) => n + nodeBytes(node), 8));
  w.byte(1);
  w.varint(nodes.length);
  for (const node of nodes) {
    w.hex(node.key);
    w.byte(node.identity === undefined ? 0 : 1);
    w.varint(node.links.length);
    for (const link of node.links) w.hex(link);
    if (node.identity !== undefined) {
      w.hex(node.identity);
      w.hex(node.signature!);
    }
    w.varint(node.value.length);
    w.bytes(node.value);
  }
  return w.done();
}

/**
 * Decodes a chunk whose last change is `last`: all its nodes, or with `only`, just the node of that change.
 *
 * @example
 * ```ts
 * import { decodeChunk, encodeChunk } from "./deno-kv-chunk.ts";
 * import { chain } from "./conformance.ts";
 * const bytes = encodeChunk(chain(5));
 * console.assert(decodeChunk(bytes, 5, 4).length === 1 && decodeChunk(bytes, 5, 4)[0]!.change === 4);
 * ```
 */
export function decodeChunk(bytes: Uint8Array, last: number, only?: number): StoredNode[] {
  const r = new Reader(bytes, `The chunk of changes up to ${last}`);
  if (r.byte() !== 1) throw new RangeError(`The chunk of changes up to ${last} has an unknown format`);
  const count = r.varint();
  const first = last - count + 1;
  const out: StoredNode[] = [];
  for (let i = 0; i < count; i++) {
    const change = first + i;
    if (only !== undefined && change !== only) {
      r.bytes(32);
      const signed = r.byte() === 1;
      r.bytes(r.varint() * 32 + (signed ? 96 : 0));
      r.bytes(r.varint());
      continue;
    }
    const key = r.hex(32);
    const signed = r.byte() === 1;
    const links: string[] = new Array(r.varint());
    for (let j = 0; j < links.length; j++) links[j] = r.hex(32);
    if (signed) {
      const identity = r.hex(32);
      const signature = r.hex(64);
      out.push({ key, links, value: r.bytes(r.varint()), change, identity, signature });
    } else out.push({ key, links, value: r.bytes(r.varint()), change });
    if (only !== undefined) break;
  }
  return out;
}

/** The bytes of the chunks `get` reads, by their last change, the oldest dropped beyond a number of bytes. */
export class ChunkBytes {
  readonly #kv: DenoKvLike;
  readonly #key: (...parts: DenoKvKeyPart[]) => DenoKvKey;
  readonly #most: number;
  readonly #raw = new Map<number, Uint8Array>();
  #bytes = 0;

  /** Chunks of the log whose keys `key` makes, keeping at most `most` bytes of them. */
  constructor(kv: DenoKvLike, key: (...parts: DenoKvKeyPart[]) => DenoKvKey, most: number) {
    this.#kv = kv;
    this.#key = key;
    this.#most = most;
  }

  /** The bytes of the chunk whose last change is `last`, read once while kept. */
  async get(last: number): Promise<Uint8Array> {
    let raw = this.#raw.get(last);
    if (raw !== undefined) return raw;
    const parts: Uint8Array[] = [];
    for await (const entry of this.#kv.list({ prefix: this.#key("c", last) }, { batchSize: 20 })) {
      parts.push(bytesOf(entry, "A chunk")!);
    }
    if (parts.length === 0) throw new StorageError(`The chunk of changes up to ${last} is missing from Deno KV`);
    raw = join(parts);
    this.#raw.set(last, raw);
    this.#bytes += raw.length;
    for (const [oldest, bytes] of this.#raw) {
      if (this.#bytes <= this.#most) break;
      this.#raw.delete(oldest);
      this.#bytes -= bytes.length;
    }
    return raw;
  }

  /** Forgets every chunk. */
  clear(): void {
    this.#raw.clear();
    this.#bytes = 0;
  }
}
