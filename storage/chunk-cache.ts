/**
 * The nodes of recently read or written chunks, kept in memory by the chunked storages (IndexedDB, Deno KV): whole
 * chunks, oldest dropped first once the cache holds more than its node or byte limit.
 *
 * @module
 */
import type { StoredNode } from "../src/node.ts";

/**
 * Recent chunks of nodes, by the chunk's last change, with their nodes by key.
 *
 * @example
 * ```ts
 * import { ChunkCache } from "./chunk-cache.ts";
 * const node = (change: number) => ({ key: String(change).padStart(64, "0"), change, links: [], value: new Uint8Array(10) });
 * const cache = new ChunkCache(3, 1 << 20);
 * cache.remember([node(1), node(2)]);
 * cache.remember([node(3), node(4)]); // 4 nodes > 3: the oldest chunk goes
 * console.assert(cache.get(node(1).key) === undefined && cache.get(node(4).key)?.change === 4);
 * ```
 */
export class ChunkCache {
  readonly #maxNodes: number;
  readonly #maxBytes: number;
  /** The nodes of recent chunks, by the chunk's last change, oldest first. */
  readonly #chunks = new Map<number, StoredNode[]>();
  /** The nodes of `#chunks` by key. */
  readonly #known = new Map<string, StoredNode>();
  #bytes = 0;

  /** Keeps at most `maxNodes` nodes and `maxBytes` bytes of values (but always the newest chunk). */
  constructor(maxNodes: number, maxBytes: number) {
    this.#maxNodes = maxNodes;
    this.#maxBytes = maxBytes;
  }

  /** Keeps the nodes of a chunk (in change order, not empty), dropping the oldest chunks beyond the limits. */
  remember(nodes: StoredNode[]): void {
    const last = nodes[nodes.length - 1]!.change;
    if (this.#chunks.has(last)) return;
    this.#chunks.set(last, nodes);
    for (const node of nodes) {
      this.#known.set(node.key, node);
      this.#bytes += node.value.byteLength;
    }
    for (const [oldest, dropped] of this.#chunks) {
      if (this.#known.size <= this.#maxNodes && this.#bytes <= this.#maxBytes) break;
      this.#chunks.delete(oldest);
      for (const node of dropped) {
        this.#known.delete(node.key);
        this.#bytes -= node.value.byteLength;
      }
    }
  }

  /** The node with `key`, if its chunk is kept. */
  get(key: string): StoredNode | undefined {
    return this.#known.get(key);
  }

  /** Whether the node with `key` is kept. */
  has(key: string): boolean {
    return this.#known.has(key);
  }

  /** Drops everything. */
  clear(): void {
    this.#chunks.clear();
    this.#known.clear();
    this.#bytes = 0;
  }
}
