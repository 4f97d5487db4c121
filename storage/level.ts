/**
 * A storage backend over a LevelDB-style database: an abstract-level database (classic-level on Node, browser-level
 * in browsers, memory-level anywhere) or a levelup one (what `level()` returned up to level 7, memdb, leveldown
 * behind levelup), which is what hyperlog 4 programs hold. The log keeps its data in that database, so it is there
 * on the next run. The database is only reached through `get`, `batch` and ordered range reads; everything a commit
 * writes (nodes, change order, heads, the length) is one `batch`, which LevelDB applies atomically.
 *
 * Keys (all under `prefix`, default `hl!`, so a database can hold other data beside the log):
 * `m!<name>` metadata, `c!<change, 12 hex>` the node record in change order, `k!<key>` a node key's change,
 * `h!<key>` heads, `v!<view>!<key>` view pairs and `s!<view>` view checkpoints. A node record is binary:
 * a 4-byte length, a JSON header (key, links, identity, signature), then the value bytes.
 *
 * View keys range in UTF-8 byte order on LevelDB, which is JavaScript's order except for characters above U+FFFF
 * against U+E000–U+FFFF (as for SQLite).
 *
 * @module
 */
import { ClosedError } from "../src/errors.ts";
import { type StoredNode, withChange } from "../src/node.ts";
import {
  checkCommitChanges,
  type ReadRange,
  type Storage,
  type ViewRange,
  type ViewState,
  type ViewWrite,
} from "../src/storage.ts";
import { checkViewCommit } from "../src/view-keys.ts";
import {
  isAbstractLevel,
  type LevelDatabase,
  levelGet,
  type LevelRange,
  levelRange,
  toBytes,
  toText,
} from "./level-database.ts";

export type { ReadRange, Storage, StoredNode, ViewRange, ViewState, ViewWrite };
export { type LevelDatabase, levelGet, type LevelRange, levelRange };

/**
 * Options for {@link LevelStorage}.
 *
 * @example
 * ```ts
 * import { LevelStorage, type LevelStorageOptions } from "./level.ts";
 * const keys: string[] = [];
 * let closed = 0;
 * const get = async (key: string) => void keys.push(key);
 * const db = { get, batch: async () => {}, iterator: () => [].values(), close: async () => void closed++ };
 * const options: LevelStorageOptions = { prefix: "mylog!", closeDatabase: false }; // a database shared with others
 * const storage = new LevelStorage(db, options);
 * console.assert((await storage.get("ab".repeat(32))) === undefined);
 * await storage.close();
 * console.assert(keys.length > 0 && keys.every((key) => key.startsWith("mylog!")) && closed === 0);
 * ```
 */
export interface LevelStorageOptions {
  /** Prefix of every key the log writes (default `hl!`). */
  prefix?: string;
  /** Close the database when the storage closes (default true). */
  closeDatabase?: boolean;
}

type Op = { type: "put"; key: string; value: string | Uint8Array } | { type: "del"; key: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function changeKey(change: number): string {
  return change.toString(16).padStart(12, "0");
}

function escapeName(name: string): string {
  return encodeURIComponent(name).replace(/!/g, "%21");
}

function encodeRecord(node: StoredNode): Uint8Array {
  const header: { k: string; l: readonly string[]; i?: string; s?: string } = { k: node.key, l: node.links };
  if (node.identity !== undefined) header.i = node.identity;
  if (node.signature !== undefined) header.s = node.signature;
  const head = encoder.encode(JSON.stringify(header));
  const out = new Uint8Array(4 + head.length + node.value.length);
  new DataView(out.buffer).setUint32(0, head.length);
  out.set(head, 4);
  out.set(node.value, 4 + head.length);
  return out;
}

function decodeRecord(bytes: Uint8Array, change: number): StoredNode {
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  const header = JSON.parse(decoder.decode(bytes.subarray(4, 4 + length))) as {
    k: string;
    l: string[];
    i?: string;
    s?: string;
  };
  const value = bytes.slice(4 + length);
  const node: StoredNode = header.i === undefined
    ? { key: header.k, links: header.l, value, change }
    : { key: header.k, links: header.l, value, change, identity: header.i, signature: header.s! };
  return node;
}

/**
 * Keeps a log in a LevelDB-style database (see the module doc).
 *
 * @example A log in memory-level (an abstract-level database)
 * ```ts ignore
 * import { MemoryLevel } from "memory-level";
 * import { Hyperlog } from "../mod.ts";
 * import { LevelStorage } from "./level.ts";
 * const log = new Hyperlog(new LevelStorage(new MemoryLevel()), { valueEncoding: "json" });
 * const node = await log.add(null, { hello: "world" });
 * console.assert(node.change === 1);
 * ```
 */
export class LevelStorage implements Storage {
  /** The database the log lives in. */
  readonly db: LevelDatabase;
  readonly #prefix: string;
  readonly #closeDatabase: boolean;
  readonly #abstract: boolean;
  #length = 0;
  #heads: Set<string> | undefined;
  #opened: Promise<void> | undefined;
  #closed = false;
  #tail: Promise<unknown> = Promise.resolve();

  /**
   * A storage over `db`, which may be open or opening.
   *
   * @example
   * ```ts ignore
   * import { ClassicLevel } from "classic-level";
   * import { LevelStorage } from "./level.ts";
   * const storage = new LevelStorage(new ClassicLevel("/tmp/log.db"), { prefix: "hl!" });
   * ```
   */
  constructor(db: LevelDatabase, options: LevelStorageOptions = {}) {
    if (typeof db !== "object" || db === null || typeof db.get !== "function" || typeof db.batch !== "function") {
      throw new TypeError("LevelStorage takes an abstract-level or levelup database (with get and batch)");
    }
    this.db = db;
    this.#prefix = options.prefix ?? "hl!";
    this.#closeDatabase = options.closeDatabase ?? true;
    this.#abstract = isAbstractLevel(db);
  }

  #check(): void {
    if (this.#closed) throw new ClosedError("The storage is closed");
  }

  /** Runs writes one at a time, so a commit's length check and its batch are not interleaved. */
  #serial<R>(fn: () => Promise<R>): Promise<R> {
    const run = this.#tail.then(fn, fn);
    this.#tail = run.catch(() => {});
    return run;
  }

  #rawGet(key: string, binary: boolean): Promise<unknown> {
    return levelGet(this.db, key, binary);
  }

  async #batch(ops: Op[]): Promise<void> {
    if (ops.length === 0) return;
    const withEncoding = ops.map((op) =>
      op.type === "put" ? { ...op, valueEncoding: op.value instanceof Uint8Array ? "binary" : "utf8" } : op
    );
    if (this.#abstract) {
      await this.db.batch(withEncoding);
      return;
    }
    await new Promise<void>((resolve, reject) => {
      this.db.batch(withEncoding, (err: unknown) => (err ? reject(err) : resolve()));
    });
  }

  #range(range: LevelRange, binary: boolean): Promise<Array<[string, unknown]>> {
    return levelRange(this.db, range, binary);
  }

  /** Opens the database (if it is not already) and reads the log's length. */
  open(): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError("The storage is closed"));
    this.#opened ??= (async () => {
      const db = this.db as { status?: string; open?: (...args: unknown[]) => unknown; isOpen?: () => boolean };
      if (this.#abstract && db.status !== "open" && typeof db.open === "function") await db.open();
      const last = await this.#range(
        { gte: `${this.#prefix}c!`, lt: `${this.#prefix}c"`, limit: 1, reverse: true },
        true,
      );
      this.#length = last.length === 0 ? 0 : parseInt(last[0]![0].slice(this.#prefix.length + 2), 16);
    })();
    return this.#opened;
  }

  /** Reads a metadata value. */
  async getMeta(name: string): Promise<string | undefined> {
    this.#check();
    const value = await this.#rawGet(`${this.#prefix}m!${name}`, false);
    return value === undefined ? undefined : toText(value);
  }

  /** Writes a metadata value. */
  async setMeta(name: string, value: string): Promise<void> {
    this.#check();
    await this.#batch([{ type: "put", key: `${this.#prefix}m!${name}`, value }]);
  }

  /** The number of nodes. */
  length(): Promise<number> {
    this.#check();
    return Promise.resolve(this.#length);
  }

  /** The node with this key, or `undefined`. */
  async get(key: string): Promise<StoredNode | undefined> {
    this.#check();
    const change = await this.#rawGet(`${this.#prefix}k!${key}`, false);
    if (change === undefined) return undefined;
    const n = parseInt(toText(change), 16);
    const record = await this.#rawGet(`${this.#prefix}c!${changeKey(n)}`, true);
    return record === undefined ? undefined : decodeRecord(toBytes(record), n);
  }

  /** Whether each key is stored. */
  async has(keys: readonly string[]): Promise<boolean[]> {
    this.#check();
    return await Promise.all(
      keys.map(async (key) => (await this.#rawGet(`${this.#prefix}k!${key}`, false)) !== undefined),
    );
  }

  /** The current heads (read once, then kept current by `commit`). */
  async heads(): Promise<string[]> {
    this.#check();
    if (this.#heads === undefined) {
      // Loaded between commits (they run one at a time), so no commit is missed.
      await this.#serial(async () => {
        if (this.#heads !== undefined) return;
        const rows = await this.#range(
          { gte: `${this.#prefix}h!`, lt: `${this.#prefix}h"`, limit: Infinity, reverse: false },
          false,
        );
        this.#heads = new Set(rows.map(([key]) => key.slice(this.#prefix.length + 2)));
      });
    }
    return [...this.#heads!];
  }

  /** One page of nodes in change order. */
  async read(range: ReadRange): Promise<StoredNode[]> {
    this.#check();
    const p = `${this.#prefix}c!`;
    const bounds: { gt: string; lte?: string; lt?: string } = { gt: p + changeKey(Math.max(range.since, 0)) };
    if (Number.isFinite(range.until)) bounds.lte = p + changeKey(range.until);
    else bounds.lt = `${this.#prefix}c"`;
    const rows = await this.#range({ ...bounds, limit: range.limit, reverse: range.reverse }, true);
    return rows.map(([key, value]) => decodeRecord(toBytes(value), parseInt(key.slice(p.length), 16)));
  }

  /**
   * Stores the new nodes, their change order, heads and length in one batch, after checking the rules, and says
   * which of the given nodes were new (commits run one at a time, so the lookup made here still holds when the
   * batch is written).
   */
  commit(given: readonly StoredNode[]): Promise<boolean[]> {
    this.#check();
    return this.#serial(async () => {
      this.#check();
      const base = this.#length;
      checkCommitChanges(given, base);
      const stored = await this.has(given.map((node) => node.key));
      const fresh: boolean[] = new Array(given.length);
      const keys = new Set<string>();
      const nodes: StoredNode[] = [];
      for (let i = 0; i < given.length; i++) {
        let node = given[i]!;
        fresh[i] = !stored[i] && !keys.has(node.key);
        keys.add(node.key);
        if (!fresh[i]) continue;
        const change = base + nodes.length + 1;
        if (node.change !== change) node = withChange(node, change);
        nodes.push(node);
      }
      if (nodes.length === 0) return fresh;
      const ops: Op[] = [];
      for (const node of nodes) {
        ops.push({ type: "put", key: `${this.#prefix}c!${changeKey(node.change)}`, value: encodeRecord(node) });
        ops.push({ type: "put", key: `${this.#prefix}k!${node.key}`, value: changeKey(node.change) });
        for (const link of node.links) ops.push({ type: "del", key: `${this.#prefix}h!${link}` });
        ops.push({ type: "put", key: `${this.#prefix}h!${node.key}`, value: "" });
      }
      // A node linked to by a later node of the same commit is not a head: drop its put (LevelDB applies in order).
      const linked = new Set(nodes.flatMap((node) => node.links));
      const final = ops.filter((op) =>
        !(op.type === "put" && op.key.startsWith(`${this.#prefix}h!`) &&
          linked.has(op.key.slice(this.#prefix.length + 2)))
      );
      await this.#batch(final);
      this.#length = base + nodes.length;
      if (this.#heads !== undefined) {
        for (const node of nodes) {
          for (const link of node.links) this.#heads.delete(link);
          this.#heads.add(node.key);
        }
      }
      return fresh;
    });
  }

  /** The checkpoint of a view, or `undefined`. */
  async viewState(name: string): Promise<ViewState | undefined> {
    this.#check();
    const raw = await this.#rawGet(`${this.#prefix}s!${escapeName(name)}`, false);
    return raw === undefined ? undefined : JSON.parse(toText(raw)) as ViewState;
  }

  /** The value of a key in a view, or `undefined`. */
  async viewGet(name: string, key: string): Promise<string | undefined> {
    this.#check();
    const raw = await this.#rawGet(`${this.#prefix}v!${escapeName(name)}!${key}`, false);
    return raw === undefined ? undefined : toText(raw);
  }

  /** Pairs of a view in key order. */
  async viewRange(name: string, range: ViewRange): Promise<Array<[string, string]>> {
    this.#check();
    const p = `${this.#prefix}v!${escapeName(name)}!`;
    const bounds: { gt?: string; gte?: string; lt?: string; lte?: string } = {};
    if (range.gt !== undefined) bounds.gt = p + range.gt;
    if (range.gte !== undefined) bounds.gte = p + range.gte;
    if (bounds.gt === undefined && bounds.gte === undefined) bounds.gte = p;
    if (range.lt !== undefined) bounds.lt = p + range.lt;
    if (range.lte !== undefined) bounds.lte = p + range.lte;
    if (bounds.lt === undefined && bounds.lte === undefined) bounds.lt = `${this.#prefix}v!${escapeName(name)}"`;
    const rows = await this.#range({ ...bounds, limit: range.limit, reverse: range.reverse }, false);
    return rows.map(([key, value]) => [key.slice(p.length), toText(value)]);
  }

  /** Applies writes and sets the checkpoint of a view in one batch. */
  async viewCommit(name: string, writes: readonly ViewWrite[], state: ViewState): Promise<void> {
    this.#check();
    checkViewCommit(name, writes, state);
    const p = `${this.#prefix}v!${escapeName(name)}!`;
    const ops: Op[] = writes.map(({ key, value }) =>
      value === undefined ? { type: "del", key: p + key } : { type: "put", key: p + key, value }
    );
    ops.push({
      type: "put",
      key: `${this.#prefix}s!${escapeName(name)}`,
      value: JSON.stringify({ version: state.version, change: state.change }),
    });
    await this.#serial(() => this.#batch(ops));
  }

  /** Removes a view's pairs and checkpoint in one batch. */
  async viewDrop(name: string): Promise<void> {
    this.#check();
    await this.#serial(async () => {
      const rows = await this.viewRange(name, { limit: Infinity, reverse: false });
      const p = `${this.#prefix}v!${escapeName(name)}!`;
      const ops: Op[] = rows.map(([key]) => ({ type: "del", key: p + key }));
      ops.push({ type: "del", key: `${this.#prefix}s!${escapeName(name)}` });
      await this.#batch(ops);
    });
  }

  /** Closes the storage, and the database unless `closeDatabase` was false. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#tail;
    if (!this.#closeDatabase || typeof this.db.close !== "function") return;
    if (this.#abstract) await this.db.close();
    else await new Promise<void>((resolve) => this.db.close!(() => resolve()));
  }
}
