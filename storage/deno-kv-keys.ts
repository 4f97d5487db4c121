/**
 * The key map of `DenoKvStorage`: every stored key to its change, loaded from the key lists `[...P, "x", last]`
 * (the 32-byte keys of the chunk whose last change is `last`) the first time it is needed, then brought up to date
 * from the key lists committed since, by any process. About 100 bytes of memory per node of the log.
 *
 * @module
 */
import { toHex } from "../src/hex.ts";
import type { StoredNode } from "../src/node.ts";
import type { DenoKvKey, DenoKvKeyPart } from "./deno-kv-codec.ts";
import { bytesOf, type DenoKvLike } from "./deno-kv-journal.ts";

/** Every stored key to its change, up to some change, and the last change of every chunk up to it. */
export class KvKeys {
  readonly #kv: DenoKvLike;
  readonly #key: (...parts: DenoKvKeyPart[]) => DenoKvKey;
  /** Where the chunk's last change is, within a key list's key. */
  readonly #at: number;
  #map: Map<string, number> | undefined;
  #upTo = 0;
  /** The last change of every chunk up to `#upTo`, ascending. */
  #lasts: number[] = [];

  /** The key map of the log whose keys `key` makes, under a prefix of `prefixLength` parts. */
  constructor(kv: DenoKvLike, key: (...parts: DenoKvKeyPart[]) => DenoKvKey, prefixLength: number) {
    this.#kv = kv;
    this.#key = key;
    this.#at = prefixLength + 1;
  }

  /** The change of `key` if the map, as loaded so far, holds it (a key once stored stays stored). */
  known(key: string): number | undefined {
    return this.#map?.get(key);
  }

  /** Every key stored up to change `length` (the tip's), loading the key lists it lacks. */
  async upTo(length: number): Promise<Map<string, number>> {
    const map = this.#map ??= new Map();
    if (length <= this.#upTo) return map;
    const selector = { start: this.#key("x", this.#upTo + 1), end: this.#key("x", length + 1) };
    for await (const entry of this.#kv.list(selector, { batchSize: 100 })) {
      const last = entry.key[this.#at] as number;
      const bytes = bytesOf(entry, "A key list")!;
      const first = last - bytes.length / 32 + 1;
      for (let i = 0; i < bytes.length; i += 32) map.set(toHex(bytes.subarray(i, i + 32)), first + i / 32);
      this.#lasts.push(last);
    }
    this.#upTo = length;
    return map;
  }

  /** The last change of the chunk that holds `change` (a change the map holds): the first not below it. */
  chunkOf(change: number): number {
    const lasts = this.#lasts;
    let lo = 0;
    let hi = lasts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (lasts[mid]! < change) lo = mid + 1;
      else hi = mid;
    }
    return lasts[lo]!;
  }

  /** Adds the chunks of this storage's own commit, when the map is loaded and reaches up to just before them. */
  committed(chunks: ReadonlyArray<readonly [number, readonly StoredNode[]]>, first: number, length: number): void {
    if (this.#map === undefined || this.#upTo !== first - 1) return;
    for (const [last, chunk] of chunks) {
      for (const node of chunk) this.#map.set(node.key, node.change);
      this.#lasts.push(last);
    }
    this.#upTo = length;
  }

  /** Forgets every key. */
  clear(): void {
    this.#map = undefined;
    this.#upTo = 0;
    this.#lasts = [];
  }
}
