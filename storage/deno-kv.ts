/**
 * Deno KV storage: keeps a log in a Deno KV database (`Deno.openKv()`: a SQLite file or memory locally, the
 * replicated store on Deno Deploy). Several logs share one database, each under its own key prefix: give each log
 * a prefix that is not the start of another log's (`["logs", name]` for every name is fine).
 *
 * Deno KV commits an atomic operation of at most 1 000 mutations and ~800 KiB, with values of at most 64 KiB and
 * keys of at most 2 KiB. The layout under the log's prefix `P` (`deno-kv-codec.ts` describes each key) keeps a tip
 * (the length, the pieces of the heads, the journal being applied), which every commit changes, so an atomic
 * `check` of its versionstamp is how a commit knows that nothing was committed since it read the store: a commit
 * that loses the race is refused with a `StorageConflictError`, and stores nothing. Nodes go in chunks of
 * consecutive changes with a key list each, so a node takes no mutation of its own: a commit of 1 000 small nodes
 * writes about six keys.
 *
 * A commit that fits Deno KV's limits is one atomic operation. A larger one (1 000 nodes and up, or big values)
 * writes its mutations first as a journal, `[...P, "j", id, seq]`, which nothing reads yet; then one atomic step
 * (checked against the tip, or the view's checkpoint) sets the new tip with the journal's id: from then the commit
 * is done, all of it. The journal's writes are then put in place, in as many atomic operations as needed, and the
 * id is cleared. Whoever reads a tip (or checkpoint) with a journal id, in this process or another, puts the
 * journal in place first, so a process killed at any point leaves either nothing visible (its journal is garbage,
 * deleted by an `open` ten minutes later) or the whole commit.
 *
 * Every value is stored as bytes, which any Deno KV client reads (Node with the npm `@deno/kv` client too).
 *
 * Stored nodes never change, so a storage keeps some in memory and trusts them without asking the database:
 * - the nodes of its recent chunks (the ones it committed or read, up to 20 000 nodes or 16 MB of values);
 * - once `has` or `get` meets a key it does not hold, or a commit needs to know which of its keys are stored (it
 *   skips those, and reports them as not new), every stored key, to its chunk (`deno-kv-keys.ts`; about 130 bytes
 *   of memory per node: 13 MB for a log of 100 000): the first time it lists the key lists (32 bytes a node: a log
 *   of 100 000 reads 3.2 MB), then each call reads the tip and the key lists committed since, by any process. A
 *   commit checks the versionstamp of the tip it read them with, so what it found still holds when it lands.
 * `length`, `heads` and `read` ask the database each time, so every call sees what other processes committed.
 *
 * @module
 */
import { ClosedError, HyperlogError, StorageConflictError, StorageError } from "../src/errors.ts";
import { hexInto } from "../src/hex.ts";
import { isKey, isSignature } from "../src/keys.ts";
import { ChunkCache } from "./chunk-cache.ts";
import { type StoredNode, withChange } from "../src/node.ts";
import { join, pieces, utf8 } from "./deno-kv-bytes.ts";
import { ChunkBytes, cutChunks, decodeChunk, encodeChunk } from "./deno-kv-chunk.ts";
import {
  decodeTip,
  type DenoKvKey,
  type DenoKvKeyPart,
  encodeTip,
  keyBytes,
  type KvWrite,
  type Tip,
} from "./deno-kv-codec.ts";
import { bytesOf, type DenoKvAtomicLike, type DenoKvEntryLike, type DenoKvLike, KvWriter } from "./deno-kv-journal.ts";
import { KvKeys } from "./deno-kv-keys.ts";
import { recover } from "./deno-kv-recover.ts";
import { commitHeads, type HeadPieces, parseHeads } from "./deno-kv-heads.ts";
import { KvViews } from "./deno-kv-views.ts";
import { type DenoKvStorageOptions, openKvAt } from "./deno-kv-open.ts";
import type { ReadRange, Storage, ViewRange, ViewState, ViewWrite } from "../src/storage.ts";

export type { DenoKvAtomicLike, DenoKvEntryLike, DenoKvKey, DenoKvKeyPart, DenoKvLike, DenoKvStorageOptions };

/** The `TypeError`s this file throws for bad input; Deno KV's own failures (also `TypeError`s) become `StorageError`s. */
const OWN_ERRORS = new WeakSet<object>();
function own(err: TypeError): TypeError {
  OWN_ERRORS.add(err);
  return err;
}
/** Nodes of recent chunks kept in memory: at most this many... */
const CACHE_NODES = 20_000;
/** ...and this many bytes of values. */
const CACHE_BYTES = 16 * 1024 * 1024;
const ABSENT_TIP: Tip = { length: 0, headPieces: 0, journal: "" };

/**
 * Keeps a log in a Deno KV database, under a key prefix. Open one with {@link DenoKvStorage.open} (a path, or
 * none for Deno's default database), or give it a database you opened.
 *
 * @example
 * ```ts ignore
 * import { Hyperlog } from "@hyperlog/hyperlog";
 * import { DenoKvStorage } from "@hyperlog/hyperlog/deno-kv";
 * const kv = await Deno.openKv();   // deno run --unstable-kv
 * const log = new Hyperlog(new DenoKvStorage(kv, { prefix: ["logs", "chat"] }), { valueEncoding: "json" });
 * await log.append({ text: "hello" });
 * ```
 */
export class DenoKvStorage implements Storage {
  /** The database. */
  readonly kv: DenoKvLike;
  /** This log's key prefix. */
  readonly prefix: DenoKvKey;
  /** The database's path, when known (see {@link DenoKvStorageOptions.path}). */
  readonly path: string | undefined;
  readonly #closeKv: boolean;
  readonly #watch: boolean;
  #opening: Promise<void> | undefined;
  #closed = false;
  readonly #writer: KvWriter;
  readonly #views: KvViews;
  /** The nodes of recent chunks (see the module doc). */
  readonly #cache: ChunkCache = new ChunkCache(CACHE_NODES, CACHE_BYTES);
  /** The generation of each view's pairs, as last read. */
  #gens = new Map<string, string>();
  /** The versionstamps of this storage's latest commits, which `watch` does not report. */
  #ownStamps = new Set<string>();
  /** The heads, by piece, as of the tip with versionstamp `stamp`. */
  #headCache: HeadPieces | undefined;
  /** Every stored key, to its change (see the module doc). */
  readonly #keys: KvKeys;
  /** The bytes of chunks read by `get`. */
  readonly #raw: ChunkBytes;

  /**
   * A storage over `kv`, under `options.prefix`.
   *
   * @example
   * ```ts ignore
   * const storage = new DenoKvStorage(await Deno.openKv(":memory:"), { prefix: ["a"], closeKv: true });
   * ```
   */
  constructor(kv: DenoKvLike, options: DenoKvStorageOptions = {}) {
    if (kv === null || typeof kv !== "object" || typeof kv.atomic !== "function") {
      throw new TypeError("DenoKvStorage needs a Deno KV database: the result of Deno.openKv()");
    }
    const prefix = options.prefix ?? ["hyperlog"];
    if (!Array.isArray(prefix) || prefix.length === 0 || keyBytes(prefix) > 512) {
      throw new TypeError("The prefix must be a non-empty array of key parts of at most 512 bytes");
    }
    this.kv = kv;
    this.prefix = [...prefix];
    this.#closeKv = options.closeKv ?? false;
    this.#watch = options.watch ?? "Deno" in globalThis;
    this.path = options.path;
    this.#writer = new KvWriter(kv, (...parts) => this.#key(...parts), () => this.#closed);
    this.#views = new KvViews(kv, (...parts) => this.#key(...parts), this.#writer);
    this.#keys = new KvKeys(kv, (...parts) => this.#key(...parts), this.prefix.length);
    this.#raw = new ChunkBytes(kv, (...parts) => this.#key(...parts), CACHE_BYTES * 2);
  }

  /**
   * Opens the Deno KV database at `path` (a file, `:memory:`, or Deno's default database when omitted) with
   * `Deno.openKv`, which Deno 2 still gates behind `--unstable-kv`, and a storage over it that closes it.
   *
   * @example
   * ```ts ignore
   * import { DenoKvStorage } from "@hyperlog/hyperlog/deno-kv";
   * const storage = await DenoKvStorage.open("./chat.kv", { prefix: ["chat"] });
   * ```
   */
  static async open(
    path?: string,
    options: Omit<DenoKvStorageOptions, "closeKv" | "path"> = {},
  ): Promise<DenoKvStorage> {
    const storage = new DenoKvStorage(await openKvAt(path), { ...options, closeKv: true, path });
    await storage.open();
    return storage;
  }

  #key(...parts: DenoKvKeyPart[]): DenoKvKey {
    return [...this.prefix, ...parts];
  }

  /** Runs `fn`, turning Deno KV's own failures into a `StorageError` (typed errors pass through). */
  async #guard<R>(fn: () => Promise<R>): Promise<R> {
    if (this.#closed) throw new ClosedError("The storage is closed");
    try {
      return await fn();
    } catch (err) {
      if (err instanceof HyperlogError || OWN_ERRORS.has(err as object)) throw err;
      if (this.#closed) throw new ClosedError("The storage is closed");
      throw new StorageError(`Deno KV failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
  }

  /** Opens the store: finishes an interrupted commit or drop, deletes old orphan journals. */
  open(): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError("The storage is closed"));
    this.#opening ??= this.#guard(() => this.#open());
    return this.#opening;
  }

  async #open(): Promise<void> {
    const tip = await this.#tip();
    await recover(this.kv, (...parts) => this.#key(...parts), tip.value.journal, this.#views, this.#writer);
  }

  /** The tip and its entry, after putting an interrupted commit in place. */
  async #tip(entries?: DenoKvEntryLike[]): Promise<{ value: Tip; entry: DenoKvEntryLike }> {
    for (;;) {
      const entry = entries?.[0] ?? await this.kv.get(this.#key("tip"));
      entries = undefined;
      const bytes = bytesOf(entry, "The tip of the log");
      const value = bytes === undefined ? ABSENT_TIP : decodeTip(bytes);
      if (value.journal === "") return { value, entry };
      await this.#writer.apply(entry, value.journal, encodeTip({ ...value, journal: "" }));
    }
  }

  /** Reads keys with the tip in the same snapshot (at most 9 per call, each call with the tip). */
  async #withTip(keys: DenoKvKey[]): Promise<{ tip: Tip; tipEntry: DenoKvEntryLike; entries: DenoKvEntryLike[] }> {
    for (;;) {
      const calls: Promise<DenoKvEntryLike[]>[] = [];
      for (let i = 0; i < keys.length || calls.length === 0; i += 9) {
        calls.push(this.kv.getMany([this.#key("tip"), ...keys.slice(i, i + 9)]));
      }
      const results = await Promise.all(calls);
      const stamp = results[0]![0]!.versionstamp;
      if (results.some((result) => result[0]!.versionstamp !== stamp)) continue; // A commit came between.
      const { value, entry } = await this.#tip([results[0]![0]!]);
      if (entry.versionstamp !== stamp) continue; // An interrupted commit was put in place: read again.
      return { tip: value, tipEntry: entry, entries: results.flatMap((result) => result.slice(1)) };
    }
  }

  /** Reads a metadata value. */
  getMeta(name: string): Promise<string | undefined> {
    return this.#guard(async () => {
      const bytes = bytesOf(await this.kv.get(this.#key("m", name)), `Metadata ${name}`);
      return bytes === undefined ? undefined : utf8.decode(bytes);
    });
  }

  /** Writes a metadata value (at most 64 KiB). */
  setMeta(name: string, value: string): Promise<void> {
    return this.#guard(async () => {
      const bytes = utf8.encode(value);
      if (bytes.length > 65_000) throw new StorageError(`Metadata ${name} is too large for Deno KV (over 64 KiB)`);
      await this.#writer.run([{ key: this.#key("m", name), value: bytes }]);
    });
  }

  /** The number of nodes. */
  length(): Promise<number> {
    return this.#guard(async () => (await this.#tip()).value.length);
  }

  /** The node with this key, or `undefined`. */
  get(key: string): Promise<StoredNode | undefined> {
    return this.#guard(async () => {
      const known = this.#cache.get(key);
      if (known !== undefined) return known;
      if (!isKey(key)) return undefined;
      // A key in memory is stored (nodes never leave); only an unknown key needs the tip, to catch up.
      const change = this.#keys.known(key) ?? (await this.#keys.upTo((await this.#tip()).value.length)).get(key);
      if (change === undefined) return undefined;
      const last = this.#keys.chunkOf(change);
      return decodeChunk(await this.#raw.get(last), last, change)[0];
    });
  }

  /** Whether each key is stored. */
  has(keys: readonly string[]): Promise<boolean[]> {
    return this.#guard(() => this.#has(keys));
  }

  async #has(keys: readonly string[]): Promise<boolean[]> {
    const found = keys.map((key) => this.#cache.has(key) || this.#keys.known(key) !== undefined);
    if (found.every(Boolean)) return found;
    const map = await this.#keys.upTo((await this.#tip()).value.length);
    return keys.map((key, i) => found[i]! || map.has(key));
  }

  /** The current heads. */
  heads(): Promise<string[]> {
    return this.#guard(async () => (await this.#heads()).heads.pieces.flatMap((piece) => [...piece]));
  }

  /**
   * The tip and the heads, by piece. The heads are kept in memory for the tip's versionstamp: while the tip has
   * not changed (no commit, by anyone), they cost one read of the tip.
   */
  async #heads(): Promise<{ tip: Tip; tipEntry: DenoKvEntryLike; heads: HeadPieces }> {
    const { value: tip, entry } = await this.#tip();
    const cached = this.#headCache;
    if (cached !== undefined && cached.stamp === entry.versionstamp) return { tip, tipEntry: entry, heads: cached };
    for (;;) {
      const { tip, tipEntry, entries } = await this.#withTip(
        Array.from({ length: 9 }, (_, i) => this.#key("h", i)),
      );
      let parts = entries.slice(0, tip.headPieces);
      if (tip.headPieces > 9) {
        const more = await this.#withTip(
          Array.from({ length: tip.headPieces - 9 }, (_, i) => this.#key("h", 9 + i)),
        );
        if (more.tipEntry.versionstamp !== tipEntry.versionstamp) continue;
        parts = [...parts, ...more.entries];
      }
      const heads = parseHeads(tipEntry.versionstamp, parts);
      this.#headCache = heads;
      return { tip, tipEntry, heads };
    }
  }

  /** One page of nodes in change order. */
  read(range: ReadRange): Promise<StoredNode[]> {
    return this.#guard(async () => {
      const { since, limit, reverse } = range;
      if (!(limit > 0) || !(range.until > since)) return [];
      const { value: tip } = await this.#tip();
      const high = Math.min(Math.floor(range.until), tip.length);
      let low = Math.max(Math.floor(since), 0) + 1;
      let top = high;
      if (reverse) low = limit === Infinity ? low : Math.max(low, high - Math.floor(limit) + 1);
      else top = limit === Infinity ? high : Math.min(high, low + Math.floor(limit) - 1);
      if (top < low) return [];
      const out: StoredNode[] = [];
      let parts: Uint8Array[] = [];
      let current = -1;
      const flush = () => {
        if (parts.length === 0) return;
        const nodes = decodeChunk(join(parts), current);
        for (const node of nodes) if (node.change >= low && node.change <= top) out.push(node);
        parts = [];
      };
      const batchSize = Math.min(500, 4 + Math.ceil((top - low + 1) / 200));
      const selector = { start: this.#key("c", low), end: this.#key("c", tip.length + 1) };
      for await (const entry of this.kv.list(selector, { batchSize })) {
        const last = entry.key[this.prefix.length + 1] as number;
        if (last !== current) {
          flush();
          if (current >= top) break;
          current = last;
        }
        parts.push(bytesOf(entry, "A chunk")!);
      }
      flush();
      return reverse ? out.reverse() : out;
    });
  }

  /** Stores the new nodes atomically and says which of the given nodes were new (see the module doc). */
  commit(nodes: readonly StoredNode[]): Promise<boolean[]> {
    return this.#guard(() => this.#commit(nodes));
  }

  async #commit(given: readonly StoredNode[]): Promise<boolean[]> {
    if (given.length === 0) return [];
    const first = given[0]!.change;
    for (let i = 0; i < given.length; i++) {
      const node = given[i]!;
      if (node.change !== first + i) {
        throw new StorageConflictError(
          `Commit expected change ${first + i} for node ${node.key} but got ${node.change}; ` +
            "change numbers within a commit must be consecutive",
        );
      }
      if (!isKey(node.key) || !node.links.every(isKey)) {
        throw own(new TypeError(`Node ${node.key} has a key or a link that is not 64 lower-case hex characters`));
      }
      if (node.identity !== undefined && !(isKey(node.identity) && isSignature(node.signature))) {
        throw own(new TypeError(`Node ${node.key} has a malformed identity or signature`));
      }
    }
    const { tip, tipEntry, heads } = await this.#heads();
    if (first !== tip.length + 1) {
      throw new StorageConflictError(
        `Commit expected change ${tip.length + 1} for node ${given[0]!.key} but got ${first}; ` +
          "another writer may share this store",
      );
    }
    // The keys stored up to the tip just read: the commit checks that tip's versionstamp, so what is found here is
    // still true when it lands. A stored key, or one repeated in the commit, is skipped; the new nodes are numbered
    // on from the tip.
    const map = await this.#keys.upTo(tip.length);
    const fresh: boolean[] = new Array(given.length);
    const inCommit = new Set<string>();
    const nodes: StoredNode[] = [];
    for (let i = 0; i < given.length; i++) {
      let node = given[i]!;
      fresh[i] = !inCommit.has(node.key) && !map.has(node.key) && !this.#cache.has(node.key);
      inCommit.add(node.key);
      if (!fresh[i]) continue;
      const change = first + nodes.length;
      if (node.change !== change) node = withChange(node, change);
      nodes.push(node);
    }
    if (nodes.length === 0) return fresh;

    // The heads change in place (the cache is dropped meanwhile): only the pieces that change are written.
    this.#headCache = undefined;
    const headWrites = commitHeads(heads, nodes, (...parts) => this.#key(...parts));
    const writes: KvWrite[] = [];
    const chunks = cutChunks(nodes);
    for (const [last, chunk] of chunks) {
      pieces(encodeChunk(chunk)).forEach((value, seq) => writes.push({ key: this.#key("c", last, seq), value }));
      const list = new Uint8Array(chunk.length * 32);
      chunk.forEach((node, i) => hexInto(node.key, list, i * 32));
      writes.push({ key: this.#key("x", last), value: list });
    }
    const headPieces = heads.pieces.length;
    writes.push(...headWrites);
    const length = nodes[nodes.length - 1]!.change;
    const { ok, stamp, marked } = await this.#writer.commit(
      tipEntry,
      writes,
      (journal) => encodeTip({ length, headPieces, journal }),
    );
    if (ok && stamp !== null) this.#headCache = { ...heads, stamp };
    for (const own of [stamp, marked]) if (ok && typeof own === "string") this.#own(own);
    if (!ok) {
      throw new StorageConflictError(
        `Commit of changes ${first} to ${length} lost the race: another writer committed to this log first`,
      );
    }
    for (const [, chunk] of chunks) this.#cache.remember(chunk);
    this.#keys.committed(chunks, first, length);
    return fresh;
  }

  /** The checkpoint of a view, or `undefined`. */
  viewState(name: string): Promise<ViewState | undefined> {
    return this.#guard(() => this.#views.state(name));
  }

  /** The value of a key in a view, or `undefined`. */
  viewGet(name: string, key: string): Promise<string | undefined> {
    return this.#guard(() => this.#views.get(name, key));
  }

  /** Pairs of a view in key order (Deno KV orders keys by UTF-8 bytes; see the README). */
  viewRange(name: string, range: ViewRange): Promise<Array<[string, string]>> {
    return this.#guard(() => this.#views.range(name, range));
  }

  /** Applies writes and sets the checkpoint of a view, in one atomic step (see the module doc). */
  viewCommit(name: string, writes: readonly ViewWrite[], state: ViewState): Promise<void> {
    return this.#guard(() => this.#views.commit(name, writes, state));
  }

  /** Removes a view's pairs and checkpoint: one atomic step hides them, then they are deleted. */
  viewDrop(name: string): Promise<void> {
    return this.#guard(() => this.#views.drop(name));
  }

  #own(stamp: string): void {
    if (this.#ownStamps.size >= 64) this.#ownStamps.clear();
    this.#ownStamps.add(stamp);
  }

  /**
   * Calls `onChange` when the tip changes by a commit that is not this storage's own, through Deno KV's `watch`:
   * within one process (storages on one database), and across isolates on Deno Deploy; a local file does not tell
   * other processes. Returns a function that stops watching. The log calls it, then `refresh()` on each change.
   */
  watch(onChange: () => void): () => void {
    if (!this.#watch || typeof this.kv.watch !== "function" || this.#closed) return () => {};
    const reader = this.kv.watch([this.#key("tip")]).getReader();
    let stopped = false;
    void (async () => {
      for (;;) {
        const next = await reader.read().catch(() => undefined);
        if (next === undefined || next.done || stopped || this.#closed) return;
        const stamp = next.value[0]?.versionstamp ?? null;
        if (stamp === null || !this.#ownStamps.has(stamp)) onChange();
      }
    })();
    return () => {
      stopped = true;
      reader.cancel().catch(() => {});
    };
  }

  /** Closes the storage (and the database, if the storage opened it). */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#cache.clear();
    this.#keys.clear();
    this.#raw.clear();
    if (this.#closeKv) {
      try {
        this.kv.close();
      } catch {
        // Already closed.
      }
    }
    return Promise.resolve();
  }
}
