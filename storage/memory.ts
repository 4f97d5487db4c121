/**
 * The in-memory storage backend: the reference implementation of {@link Storage} and the default.
 *
 * @module
 */
import { ClosedError, StorageConflictError } from "../src/errors.ts";
import type { StoredNode } from "../src/node.ts";
import type { ReadRange, Storage, ViewRange, ViewState, ViewWrite } from "./storage.ts";
import { checkViewCommit, SortedKeys } from "./view-keys.ts";

/**
 * Keeps a log in memory. Nothing survives the process; use it for tests, caches and short-lived peers.
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
  #nodes = new Map<string, StoredNode>();
  #order: StoredNode[] = [];
  /** 1 at index `change - 1` while the node of that change is a head (no node links to it). */
  #isHead = new Uint8Array(1024);
  /**
   * The change numbers of the heads, and of nodes that stopped being heads since `heads()` last dropped them: a
   * commit only flips flags, whatever the number of heads.
   */
  #headList: number[] = [];
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
    return Promise.resolve(this.#nodes.get(key));
  }

  /** Whether each key is stored. */
  has(keys: readonly string[]): Promise<boolean[]> {
    this.#check();
    return Promise.resolve(keys.map((key) => this.#nodes.has(key)));
  }

  /** The current heads. */
  heads(): Promise<string[]> {
    this.#check();
    const list = this.#headList;
    const isHead = this.#isHead;
    const order = this.#order;
    const keys: string[] = [];
    let kept = 0;
    for (let i = 0; i < list.length; i++) {
      const change = list[i]!;
      if (isHead[change - 1] === 1) {
        list[kept++] = change;
        keys.push(order[change - 1]!.key);
      }
    }
    list.length = kept;
    return Promise.resolve(keys);
  }

  /** One page of nodes in change order. */
  read(range: ReadRange): Promise<StoredNode[]> {
    this.#check();
    const { since, limit, reverse } = range;
    const until = Math.min(range.until, this.#order.length);
    const out: StoredNode[] = [];
    if (reverse) {
      for (let change = until; change > since && out.length < limit; change--) out.push(this.#order[change - 1]!);
    } else {
      const end = Math.min(until, since + limit);
      for (let change = Math.max(since, 0) + 1; change <= end; change++) out.push(this.#order[change - 1]!);
    }
    return Promise.resolve(out);
  }

  /** Stores nodes atomically: applies them in order and undoes everything if one breaks a rule. */
  commit(nodes: readonly StoredNode[]): Promise<void> {
    this.#check();
    const base = this.#order.length;
    const listed = this.#headList.length;
    if (this.#isHead.length < base + nodes.length) {
      const grown = new Uint8Array(Math.max(this.#isHead.length * 2, base + nodes.length));
      grown.set(this.#isHead);
      this.#isHead = grown;
    }
    const isHead = this.#isHead;
    const unheaded: number[] = [];
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i]!;
      let problem: string | undefined;
      if (node.change !== base + i + 1) {
        problem = `Commit expected change ${
          base + i + 1
        } for node ${node.key} but got ${node.change}; another writer may share this store`;
      } else {
        // One lookup per node: set, and see whether the map grew. A key already stored was overwritten; the
        // undo puts its node back (rare: a batch retried with the lookup, or a conflicting writer).
        const size = this.#nodes.size;
        this.#nodes.set(node.key, node);
        if (this.#nodes.size === size) problem = `Commit holds node ${node.key}, which is already stored`;
      }
      if (problem !== undefined) {
        this.#undo(base, listed, unheaded, node.key);
        return Promise.reject(new StorageConflictError(problem));
      }
      this.#order.push(node);
      const links = node.links;
      for (let j = 0; j < links.length; j++) {
        const change = this.#nodes.get(links[j]!)?.change;
        if (change !== undefined && isHead[change - 1] === 1) {
          isHead[change - 1] = 0;
          unheaded.push(change);
        }
      }
      isHead[base + i] = 1;
      this.#headList.push(base + i + 1);
    }
    return Promise.resolve();
  }

  #undo(base: number, listed: number, unheaded: readonly number[], overwritten?: string): void {
    for (const node of this.#order.splice(base)) {
      this.#nodes.delete(node.key);
      this.#isHead[node.change - 1] = 0;
    }
    if (overwritten !== undefined) {
      // The commit overwrote this key's entry: put back the node stored before it, if any (not one of this commit).
      this.#nodes.delete(overwritten);
      for (let i = 0; i < base; i++) {
        if (this.#order[i]!.key === overwritten) {
          this.#nodes.set(overwritten, this.#order[i]!);
          break;
        }
      }
    }
    this.#headList.length = listed;
    for (const change of unheaded) if (change <= base) this.#isHead[change - 1] = 1;
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
