/**
 * The in-memory storage backend: the reference implementation of {@link Storage} and the default.
 *
 * @module
 */
import { wasChecked } from "./checked-commits.ts";
import { ChunkedList } from "./chunked-list.ts";
import { GET_KEPT, type Kept, keptOf, READ_KEPT, storedView } from "./log-values.ts";
import { ClosedError, StorageConflictError } from "./errors.ts";
import { type Node, type StoredNode, withChange } from "./node.ts";
import type { ReadRange, Storage, ViewRange, ViewState, ViewWrite } from "./storage.ts";
import { checkViewCommit, SortedKeys } from "./view-keys.ts";

/**
 * Keeps a log in memory. Nothing survives the process; use it for tests, caches and short-lived peers. For a node a
 * json log added it keeps the node the log returned, and `get` and `read` make its stored node anew each time
 * (every field a getter): copy it field by field (`withChange`), not by spreading it. The log's own `get`, `heads`
 * and read streams take the kept node as it is, unless `get` or `read` was replaced.
 *
 * @example
 * ```ts
 * import { Hyperlog, MemoryStorage } from "../mod.ts";
 * const log = new Hyperlog(new MemoryStorage(), { valueEncoding: "json" });
 * const node = await log.add(null, { hello: "world" });
 * console.assert(node.change === 1);
 * ```
 */
export class MemoryStorage implements Storage {
  /**
   * The key index: an open-addressing hash table (linear probing, at most half full) of change numbers, 0 for an
   * empty slot; the key of change `c` is `#order.at(c - 1).key`. Integers rather than a `Map` of strings: ~8 bytes
   * a node instead of ~50, and no pointer per node for the garbage collector to trace or remember. Slot `s` is the
   * pair at `2 * s`: the change number, then the slot hash of its key, which a probe compares before it reads the
   * node's key, so that passing an occupied slot or looking up a key not stored touches no node (those reads were
   * most of a commit); side by side, a probe's first slot costs one cache miss, not two.
   */
  #table = new Int32Array(2 * 1024);
  /** The hash of the key `#slotOf` looked up last (what a commit writes into the table). */
  #lastHash = 0;
  /** The slot hashes of the keys of the commit under way (see `commit`), reused from one commit to the next. */
  #hashes = new Int32Array(1024);
  /** What the first pass of a commit read from the table (kept, so that the reads are not left out as unused). */
  #touched = 0;
  /** A random seed of the slot hash, so that keys cannot be chosen to pile up in one run of slots. */
  #seed = (Math.random() * 0x100000000) | 0;
  /**
   * The nodes by change number, as kept ({@link keptOf}): the node a json log returned for one it added, which its
   * stored-node object only pointed to (a stored object is made again when `get` or `read` hands it out), or the
   * stored node as committed.
   */
  #order = new ChunkedList<Kept>();
  /** 1 at index `change - 1` while the node of that change is a head (no node links to it). */
  #isHead = new Uint8Array(1024);
  /**
   * The change numbers of the heads, and of nodes that stopped being heads since `heads()` last dropped them: a
   * commit only flips flags, whatever the number of heads.
   */
  #headList = new ChunkedList<number>();
  #meta = new Map<string, string>();
  #views = new Map<string, { state: ViewState; data: Map<string, string>; keys: SortedKeys }>();
  #closed = false;

  #check(): void {
    if (this.#closed) throw new ClosedError("The storage is closed");
  }

  /** Opens the store; nothing to do in memory. */
  open(): Promise<void> {
    return this.#closed ? Promise.reject(new ClosedError("The storage is closed")) : Promise.resolve();
  }

  /** Reads a metadata value. */
  getMeta(name: string): Promise<string | undefined> {
    this.#check();
    return Promise.resolve(this.#meta.get(name));
  }

  /** Writes a metadata value. */
  setMeta(name: string, value: string): Promise<void> {
    this.#check();
    this.#meta.set(name, value);
    return Promise.resolve();
  }

  /** The number of nodes. */
  length(): Promise<number> {
    this.#check();
    return Promise.resolve(this.#order.length);
  }

  /** The node with this key, or `undefined`. */
  get(key: string): Promise<StoredNode | undefined> {
    this.#check();
    const kept = this.#kept(key);
    return Promise.resolve(kept === undefined ? undefined : storedView(kept));
  }

  /**
   * {@link get}, handing out what the store keeps (see `GET_KEPT` in log-values.ts); through `get` itself when a
   * subclass or the caller replaced it, so that the log reads what they meant it to.
   */
  [GET_KEPT](key: string): Promise<StoredNode | Node<unknown> | undefined> {
    if (this.get !== MemoryStorage.prototype.get) return this.get(key);
    this.#check();
    return Promise.resolve(this.#kept(key));
  }

  /** What the store keeps for `key` (see {@link keptOf}), or `undefined`. */
  #kept(key: string): Kept | undefined {
    if (typeof key !== "string") return undefined;
    const slot = this.#slotOf(key);
    return slot < 0 ? undefined : this.#order.at(this.#table[2 * slot]! - 1);
  }

  /** Whether each key is stored. */
  has(keys: readonly string[]): Promise<boolean[]> {
    this.#check();
    return Promise.resolve(keys.map((key) => typeof key === "string" && this.#slotOf(key) >= 0));
  }

  /** The current heads. */
  heads(): Promise<string[]> {
    this.#check();
    const list = this.#headList;
    const isHead = this.#isHead;
    const order = this.#order;
    const keys: string[] = [];
    let kept = 0;
    const count = list.length;
    for (let i = 0; i < count; i++) {
      const change = list.at(i);
      if (isHead[change - 1] === 1) {
        list.set(kept++, change);
        keys.push(order.at(change - 1).key);
      }
    }
    list.truncate(kept);
    return Promise.resolve(keys);
  }

  /** One page of nodes in change order (a json node a log added as a stored node made anew, see `#order`). */
  read(range: ReadRange): Promise<StoredNode[]> {
    return Promise.resolve(this.#page(range, true) as StoredNode[]);
  }

  /**
   * {@link read}, handing out what the store keeps (see `READ_KEPT` in log-values.ts); through `read` itself when a
   * subclass or the caller replaced it, so that the log reads what they meant it to.
   */
  [READ_KEPT](range: ReadRange): Promise<(StoredNode | Node<unknown>)[]> {
    if (this.read !== MemoryStorage.prototype.read) return this.read(range);
    return Promise.resolve(this.#page(range, false));
  }

  /** The nodes of one page, in change order: as kept, or (`view`) as stored nodes (see {@link storedView}). */
  #page(range: ReadRange, view: boolean): Kept[] {
    this.#check();
    const { since, limit, reverse } = range;
    const until = Math.min(range.until, this.#order.length);
    const out: Kept[] = [];
    if (reverse) {
      for (let change = until; change > since && out.length < limit; change--) out.push(this.#node(change, view));
    } else {
      const end = Math.min(until, since + limit);
      for (let change = Math.max(since, 0) + 1; change <= end; change++) out.push(this.#node(change, view));
    }
    return out;
  }

  /** The node of change `change`: as kept, or (`view`) as a stored node. */
  #node(change: number, view: boolean): Kept {
    const kept = this.#order.at(change - 1);
    return view ? storedView(kept) : kept;
  }

  /**
   * Stores the new nodes atomically: checks every node first (so nothing can fail halfway), then applies them in
   * order, skipping the keys already stored (or stored earlier in this commit).
   */
  commit(nodes: readonly StoredNode[]): Promise<boolean[]> {
    this.#check();
    const base = this.#order.length;
    // The fields of nodes a log made are well-formed (see checked-commits.ts): only their change numbers are asked.
    const checked = wasChecked(nodes);
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i]!;
      if (checked) {
        if (node.change !== base + i + 1) return Promise.reject(this.#conflict(node, base + i + 1));
        continue;
      }
      if (typeof node.key !== "string") {
        return Promise.reject(new TypeError(`Commit holds a node whose key is not a string (change ${node.change})`));
      }
      // An index, not `for...of`: the iterator of each node's (frozen) links array cost a third of the commit.
      const links = node.links;
      for (let j = 0; j < links.length; j++) {
        if (typeof links[j] !== "string") {
          return Promise.reject(new TypeError(`Commit holds node ${node.key}, whose links are not all strings`));
        }
      }
      if (node.change !== base + i + 1) return Promise.reject(this.#conflict(node, base + i + 1));
    }
    if (this.#isHead.length < base + nodes.length) {
      const grown = new Uint8Array(Math.max(this.#isHead.length * 2, base + nodes.length));
      grown.set(this.#isHead);
      this.#isHead = grown;
    }
    const isHead = this.#isHead;
    this.#reserve(base + nodes.length);
    // The table, the order and the head list in locals: the loop below is the whole cost of a commit.
    const table = this.#table;
    const order = this.#order;
    const headList = this.#headList;
    const fresh: boolean[] = new Array(nodes.length);
    // Each key's hash, then a read of the slot where its probe starts, in passes of their own: a probe's first read
    // of a large table misses the cache (most of a commit's time in a 300 000-node store), and in a loop that does
    // nothing else the processor has many of those reads in flight at once, where the loop below waited for each.
    if (this.#hashes.length < nodes.length) {
      this.#hashes = new Int32Array(Math.max(nodes.length, 2 * this.#hashes.length));
    }
    const hashes = this.#hashes;
    const mask = (table.length >> 1) - 1;
    let touched = 0;
    for (let i = 0; i < nodes.length; i++) hashes[i] = this.#hash(nodes[i]!.key);
    for (let i = 0; i < nodes.length; i++) touched |= table[2 * (hashes[i]! & mask)]!;
    this.#touched = touched;
    for (let i = 0; i < nodes.length; i++) {
      let node = nodes[i]!;
      const slot = this.#probe(node.key, hashes[i]!);
      if (slot >= 0) {
        fresh[i] = false;
        continue;
      }
      fresh[i] = true;
      const change = order.length + 1;
      // A node after a skipped one takes the next change number, in a copy: the caller's object is left as given.
      if (node.change !== change) node = withChange(node, change);
      // The probe ended on the empty slot where the key goes (`-1 - slot`).
      table[2 * (-1 - slot)] = change;
      table[2 * (-1 - slot) + 1] = this.#lastHash;
      order.push(keptOf(node));
      const links = node.links;
      for (let j = 0; j < links.length; j++) {
        const at = this.#slotOf(links[j]!);
        if (at >= 0) isHead[table[2 * at]! - 1] = 0;
      }
      isHead[change - 1] = 1;
      headList.push(change);
    }
    return Promise.resolve(fresh);
  }

  /** The error of a commit whose node is not numbered `expected`: another writer may share the store. */
  #conflict(node: StoredNode, expected: number): StorageConflictError {
    return new StorageConflictError(
      `Commit expected change ${expected} for node ${node.key} but got ${node.change}; another writer may share this store`,
    );
  }

  /** The slot hash of a key: its first 16 characters (64 random bits of a hex SHA-256 key), mixed with the seed. */
  #hash(key: string): number {
    let h = this.#seed;
    const n = key.length < 16 ? key.length : 16;
    for (let i = 0; i < n; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x9e3779b1);
    return h ^ (h >>> 16);
  }

  /** The slot that holds `key`, or `-1 - s` where `s` is the empty slot it would go to. */
  #slotOf(key: string): number {
    return this.#probe(key, this.#hash(key));
  }

  /** {@link #slotOf} of a key whose slot hash is known. */
  #probe(key: string, hash: number): number {
    const table = this.#table;
    const mask = (table.length >> 1) - 1;
    const order = this.#order;
    this.#lastHash = hash;
    for (let i = hash & mask;; i = (i + 1) & mask) {
      const change = table[2 * i]!;
      if (change === 0) return -1 - i;
      if (table[2 * i + 1] === hash && order.at(change - 1).key === key) return i;
    }
  }

  /** Makes room for `count` keys in all: doubles the table until it is at most half full, and puts the keys back. */
  #reserve(count: number): void {
    let size = this.#table.length >> 1;
    if (count * 2 <= size) return;
    while (count * 2 > size) size *= 2;
    const table = new Int32Array(2 * size);
    const mask = size - 1;
    const old = this.#table;
    // Every key's hash is in the old table: moved with its change number, no key is read or hashed again.
    for (let j = 0; j < old.length; j += 2) {
      const c = old[j]!;
      if (c === 0) continue;
      const hash = old[j + 1]!;
      let i = hash & mask;
      while (table[2 * i] !== 0) i = (i + 1) & mask;
      table[2 * i] = c;
      table[2 * i + 1] = hash;
    }
    this.#table = table;
  }

  /** The checkpoint of a view, or `undefined`. */
  viewState(name: string): Promise<ViewState | undefined> {
    this.#check();
    return Promise.resolve(this.#views.get(name)?.state);
  }

  /** The value of a key in a view, or `undefined`. */
  viewGet(name: string, key: string): Promise<string | undefined> {
    this.#check();
    return Promise.resolve(this.#views.get(name)?.data.get(key));
  }

  /** Pairs of a view in key order. */
  viewRange(name: string, range: ViewRange): Promise<Array<[string, string]>> {
    this.#check();
    const view = this.#views.get(name);
    if (view === undefined) return Promise.resolve([]);
    return Promise.resolve(view.keys.range(range).map((key) => [key, view.data.get(key)!]));
  }

  /** Applies writes and sets the checkpoint of a view in one step. */
  viewCommit(name: string, writes: readonly ViewWrite[], state: ViewState): Promise<void> {
    this.#check();
    checkViewCommit(name, writes, state);
    let view = this.#views.get(name);
    if (view === undefined) {
      view = { state, data: new Map(), keys: new SortedKeys() };
      this.#views.set(name, view);
    }
    const { data, keys } = view;
    for (const { key, value } of writes) {
      if (value === undefined) {
        if (data.delete(key)) keys.delete(key);
      } else {
        if (!data.has(key)) keys.add(key);
        data.set(key, value);
      }
    }
    view.state = { version: state.version, change: state.change };
    return Promise.resolve();
  }

  /** Removes a view's pairs and checkpoint. */
  viewDrop(name: string): Promise<void> {
    this.#check();
    this.#views.delete(name);
    return Promise.resolve();
  }

  /** Closes the store and drops its contents. */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
