/**
 * The hyperlog 4 log index of a log: where each node sits in its writer's log (`log` id and `seq`), and the opaque
 * `identity`/`signature` bytes hyperlog 4's `sign` option attached. hyperlog 4's API (`node.log`, `node.seq`) and
 * its replication protocol (which exchanges per-writer log heads) need it; the new log does not, so it is kept
 * beside the log in a view namespace of the same storage (`hyperlog4`), with the view checkpoint recording how far
 * the log is indexed. Nodes the log got another way (the new API, the new protocol, a crash between a node's commit
 * and its index entry) are indexed on the next use as nodes of the local log, in change order.
 *
 * Layout: `n<key>` holds a node's first place `{ l: log, s: seq, i?: identity hex, g?: signature hex }`;
 * `e<log>!<seq, 10 digits>` holds a log entry `{ c: change, n: node key, l: other logs linked }` (a node that
 * arrived through two logs has an entry in each, as in hyperlog 4).
 *
 * @module
 */
import { fromHex, toHex } from "../hex.ts";
import type { StoredNode } from "../node.ts";
import type { Storage, ViewWrite } from "../storage.ts";

/** The view namespace of the index. */
export const H4_VIEW = "hyperlog4";

/**
 * Where a node first entered this log in hyperlog 4 terms, and hyperlog 4's signature data.
 *
 * @example
 * ```ts
 * import { H4LogIndex, type H4Place } from "./log-index.ts";
 * import { MemoryStorage } from "../memory-storage.ts";
 * const index = new H4LogIndex(new MemoryStorage(), "me");
 * const key = "ab".repeat(32);
 * await index.record([{ key, change: 1, log: "peer", seq: 4, links: [], first: true }], 1);
 * const place: H4Place | undefined = await index.place(key);
 * console.assert(place!.log === "peer" && place!.seq === 4);
 * ```
 */
export interface H4Place {
  /** The writer's log id. */
  log: string;
  /** The position in that log, from 1. */
  seq: number;
  /** hyperlog 4's opaque identity bytes. */
  identity?: Uint8Array | undefined;
  /** hyperlog 4's opaque signature bytes. */
  signature?: Uint8Array | undefined;
}

/**
 * One entry of a writer's log.
 *
 * @example
 * ```ts
 * import { H4LogIndex, type H4LogEntry } from "./log-index.ts";
 * import { MemoryStorage } from "../memory-storage.ts";
 * const index = new H4LogIndex(new MemoryStorage(), "me");
 * await index.record([{ key: "cd".repeat(32), change: 3, log: "peer", seq: 1, links: [], first: true }], 3);
 * const entry: H4LogEntry | undefined = await index.entry("peer", 1);
 * console.assert(entry!.change === 3 && entry!.node === "cd".repeat(32));
 * console.assert((await index.entry("peer", 2)) === undefined);
 * ```
 */
export interface H4LogEntry {
  /** The node's change number in this log. */
  change: number;
  /** The node's key. */
  node: string;
  /** The other writers' logs that the node links into. */
  links: string[];
}

/**
 * A write to the index: a node placed at `seq` of `log` (and its first place when it is new to the log).
 *
 * @example
 * ```ts
 * import { H4LogIndex, type H4Record } from "./log-index.ts";
 * import { MemoryStorage } from "../memory-storage.ts";
 * const index = new H4LogIndex(new MemoryStorage(), "me");
 * const records: H4Record[] = [
 *   { key: "ab".repeat(32), change: 1, log: "me", seq: 1, links: [], first: true },
 *   { key: "cd".repeat(32), change: 2, log: "me", seq: 2, links: ["ab".repeat(32)], first: true },
 * ];
 * await index.record(records, 2);
 * console.assert((await index.indexed()) === 2 && (await index.head("me")) === 2);
 * ```
 */
export interface H4Record {
  /** The node's key. */
  key: string;
  /** Its change number. */
  change: number;
  /** The log it is placed in. */
  log: string;
  /** Its position in that log. */
  seq: number;
  /** The other logs it links into. */
  links: string[];
  /** True when this is the node's first place (its `n` record is written). */
  first: boolean;
  /** hyperlog 4's opaque identity bytes. */
  identity?: Uint8Array | undefined;
  /** hyperlog 4's opaque signature bytes. */
  signature?: Uint8Array | undefined;
}

/**
 * What the index of a storage knows without reading it: the checkpoint and each log's head seq, shared by every
 * index object over the same storage object (all writes go through `record`, which keeps it current).
 */
interface Cache {
  indexed: number | undefined;
  heads: Map<string, number>;
}
const CACHES = new WeakMap<Storage, Cache>();

function escapeLog(log: string): string {
  return encodeURIComponent(log).replace(/!/g, "%21");
}

function entryKey(log: string, seq: number): string {
  return `e${escapeLog(log)}!${String(seq).padStart(10, "0")}`;
}

/**
 * The index over a storage (see the module doc). Callers serialize writes (the compat log holds its lock).
 *
 * @example
 * ```ts
 * import { H4LogIndex } from "./log-index.ts";
 * import { MemoryStorage } from "../memory-storage.ts";
 * const storage = new MemoryStorage();
 * const index = new H4LogIndex(storage, "me");
 * await index.catchUp();
 * console.assert((await index.head("me")) === 0);
 * ```
 */
export class H4LogIndex {
  /** The storage holding the log and the index. */
  readonly storage: Storage;
  /** The local log id: nodes indexed by catch-up go into this log. */
  readonly id: string;
  readonly #cache: Cache;

  /** An index of `storage`'s log, whose local writer is `id`. */
  constructor(storage: Storage, id: string) {
    this.storage = storage;
    this.id = id;
    let cache = CACHES.get(storage);
    if (cache === undefined) CACHES.set(storage, cache = { indexed: undefined, heads: new Map() });
    this.#cache = cache;
  }

  /** The change number up to which the log is indexed. */
  async indexed(): Promise<number> {
    this.#cache.indexed ??= (await this.storage.viewState(H4_VIEW))?.change ?? 0;
    return this.#cache.indexed;
  }

  /** A node's first place, or `undefined` when it is not indexed. */
  async place(key: string): Promise<H4Place | undefined> {
    const raw = await this.storage.viewGet(H4_VIEW, `n${key}`);
    if (raw === undefined) return undefined;
    const record = JSON.parse(raw) as { l: string; s: number; i?: string; g?: string };
    const place: H4Place = { log: record.l, seq: record.s };
    if (record.i !== undefined) place.identity = fromHex(record.i);
    if (record.g !== undefined) place.signature = fromHex(record.g);
    return place;
  }

  /** The highest seq of a log (0 when the log has no entry). */
  async head(log: string): Promise<number> {
    const cached = this.#cache.heads.get(log);
    if (cached !== undefined) return cached;
    const prefix = `e${escapeLog(log)}!`;
    const last = await this.storage.viewRange(H4_VIEW, {
      gte: prefix,
      lt: `e${escapeLog(log)}"`,
      limit: 1,
      reverse: true,
    });
    const head = last.length === 0 ? 0 : Number(last[0]![0].slice(prefix.length));
    this.#cache.heads.set(log, head);
    return head;
  }

  /** The entry at `seq` of `log`, or `undefined`. */
  async entry(log: string, seq: number): Promise<H4LogEntry | undefined> {
    const raw = await this.storage.viewGet(H4_VIEW, entryKey(log, seq));
    if (raw === undefined) return undefined;
    const record = JSON.parse(raw) as { c: number; n: string; l: string[] };
    return { change: record.c, node: record.n, links: record.l };
  }

  /** The logs, other than `log`, that the nodes `links` were first placed in. */
  async logLinks(links: readonly string[], log: string): Promise<string[]> {
    const out: string[] = [];
    for (const link of links) {
      const place = await this.place(link);
      if (place !== undefined && place.log !== log && !out.includes(place.log)) out.push(place.log);
    }
    return out;
  }

  /** Writes records and moves the checkpoint to `indexed`, in one view commit. */
  async record(records: readonly H4Record[], indexed: number): Promise<void> {
    const writes: ViewWrite[] = [];
    for (const r of records) {
      if (r.first) {
        const place: { l: string; s: number; i?: string; g?: string } = { l: r.log, s: r.seq };
        if (r.identity !== undefined) place.i = toHex(r.identity);
        if (r.signature !== undefined) place.g = toHex(r.signature);
        writes.push({ key: `n${r.key}`, value: JSON.stringify(place) });
      }
      writes.push({ key: entryKey(r.log, r.seq), value: JSON.stringify({ c: r.change, n: r.key, l: r.links }) });
    }
    const change = Math.max(indexed, await this.indexed());
    try {
      await this.storage.viewCommit(H4_VIEW, writes, { version: 1, change });
    } catch (err) {
      this.#cache.indexed = undefined;
      this.#cache.heads.clear();
      throw err;
    }
    this.#cache.indexed = change;
    for (const r of records) {
      const head = this.#cache.heads.get(r.log);
      if (head !== undefined && r.seq > head) this.#cache.heads.set(r.log, r.seq);
    }
  }

  /** Indexes every node of the log that is not yet, as a node of the local log (see the module doc). */
  async catchUp(): Promise<void> {
    let from = await this.indexed();
    const length = await this.storage.length();
    let seq = from < length ? await this.head(this.id) : 0;
    while (from < length) {
      const page: StoredNode[] = await this.storage.read({ since: from, until: length, limit: 512, reverse: false });
      if (page.length === 0) break;
      const records: H4Record[] = [];
      const placed = new Map<string, string>();
      for (const node of page) {
        if (await this.place(node.key) !== undefined) continue;
        const links: string[] = [];
        for (const link of node.links) {
          const log = placed.get(link) ?? (await this.place(link))?.log;
          if (log !== undefined && log !== this.id && !links.includes(log)) links.push(log);
        }
        records.push({ key: node.key, change: node.change, log: this.id, seq: ++seq, links, first: true });
        placed.set(node.key, this.id);
      }
      from = page[page.length - 1]!.change;
      await this.record(records, from);
    }
  }
}
