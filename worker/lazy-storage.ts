/**
 * A {@link Storage} that costs nothing until the first write: while the log it stands for does not exist, it answers
 * every read as an empty store and keeps metadata writes (the log id, checkpoints) in memory; the first commit of
 * nodes creates the real store (a SQLite file, a Durable Object's tables), copies the metadata there and goes on as
 * the real one. The relay gives each log one, so that reads and idle sockets of unknown logs create nothing.
 *
 * @module
 */
import {
  ClosedError,
  type ReadRange,
  type Storage,
  type StoredNode,
  type ViewRange,
  type ViewState,
  type ViewWrite,
} from "../mod.ts";

/**
 * How a {@link LazyStorage} finds and makes the real store.
 *
 * @example
 * ```ts
 * import { MemoryStorage } from "../mod.ts";
 * import type { LazySource } from "./lazy-storage.ts";
 * const source: LazySource = { exists: () => false, create: () => new MemoryStorage() };
 * console.assert(source.exists() === false);
 * ```
 */
export interface LazySource {
  /** Whether the real store exists (it is opened at once, then). */
  exists(): boolean | Promise<boolean>;
  /** Makes the real store (not yet opened). Called once, at the first write, or at open when it exists. */
  create(): Storage | Promise<Storage>;
  /** Called before the first write creates the store: throw to refuse it (a cap on the number of logs). */
  beforeCreate?: (() => void) | undefined;
}

/**
 * A store that creates its real store at the first commit (see the module doc).
 *
 * @example
 * ```ts
 * import { Hyperlog, MemoryStorage } from "../mod.ts";
 * import { LazyStorage } from "./lazy-storage.ts";
 * let made = 0;
 * const storage = new LazyStorage({ exists: () => false, create: () => (made++, new MemoryStorage()) });
 * const log = new Hyperlog(storage);
 * await log.ready();
 * console.assert(made === 0 && log.length === 0);
 * await log.append("first");
 * console.assert(made === 1 && storage.created);
 * await log.close();
 * ```
 */
export class LazyStorage implements Storage {
  readonly #source: LazySource;
  #real: Storage | undefined;
  #creating: Promise<Storage> | undefined;
  #opened: Promise<void> | undefined;
  #meta = new Map<string, string>();
  #closed = false;

  /** `source` says whether the real store exists and how to make it. */
  constructor(source: LazySource) {
    this.#source = source;
  }

  /** Whether the real store exists now (it existed at open, or a write created it). */
  get created(): boolean {
    return this.#real !== undefined;
  }

  /** Opens the real store if it exists; otherwise nothing. */
  open(): Promise<void> {
    this.#opened ??= (async () => {
      if (await this.#source.exists()) await this.#make(false);
    })();
    return this.#opened;
  }

  async #make(fresh: boolean): Promise<Storage> {
    this.#creating ??= (async () => {
      if (fresh) this.#source.beforeCreate?.();
      const real = await this.#source.create();
      await real.open();
      for (const [name, value] of this.#meta) await real.setMeta(name, value);
      this.#meta.clear();
      this.#real = real;
      return real;
    })();
    try {
      return await this.#creating;
    } catch (error) {
      this.#creating = undefined;
      throw error;
    }
  }

  #check(): void {
    if (this.#closed) throw new ClosedError("The storage is closed");
  }

  /** The real store, made now if it does not exist yet (for writes). */
  async #write(): Promise<Storage> {
    this.#check();
    await this.open();
    return this.#real ?? await this.#make(true);
  }

  /** The real store, or `undefined` while there is none (for reads). */
  async #read(): Promise<Storage | undefined> {
    this.#check();
    await this.open();
    return this.#real;
  }

  /**
   * Watches the real store for commits made elsewhere (`Storage.watch`: Deno KV shared by several relays), when it
   * exists and can; otherwise watches nothing. A store that can be watched exists from the open on (`openLog`).
   */
  watch(onChange: () => void): () => void {
    return this.#real?.watch?.(onChange) ?? (() => {});
  }

  /** Reads a metadata value. */
  async getMeta(name: string): Promise<string | undefined> {
    const real = await this.#read();
    return real === undefined ? this.#meta.get(name) : await real.getMeta(name);
  }

  /** Writes a metadata value: in memory until the store exists. */
  async setMeta(name: string, value: string): Promise<void> {
    const real = await this.#read();
    if (real === undefined) this.#meta.set(name, value);
    else await real.setMeta(name, value);
  }

  /** The number of nodes. */
  async length(): Promise<number> {
    return (await (await this.#read())?.length()) ?? 0;
  }

  /** One node. */
  async get(key: string): Promise<StoredNode | undefined> {
    return await (await this.#read())?.get(key);
  }

  /** Which keys are stored. */
  async has(keys: readonly string[]): Promise<boolean[]> {
    return (await (await this.#read())?.has(keys)) ?? keys.map(() => false);
  }

  /** The heads. */
  async heads(): Promise<string[]> {
    return (await (await this.#read())?.heads()) ?? [];
  }

  /** A page of nodes. */
  async read(range: ReadRange): Promise<StoredNode[]> {
    return (await (await this.#read())?.read(range)) ?? [];
  }

  /** Stores the new nodes and says which were new: the first commit creates the store. */
  async commit(nodes: readonly StoredNode[]): Promise<boolean[]> {
    if (nodes.length === 0) return [];
    return await (await this.#write()).commit(nodes);
  }

  /** A view's checkpoint. */
  async viewState(name: string): Promise<ViewState | undefined> {
    return await (await this.#read())?.viewState(name);
  }

  /** A view's value. */
  async viewGet(name: string, key: string): Promise<string | undefined> {
    return await (await this.#read())?.viewGet(name, key);
  }

  /** A view's pairs. */
  async viewRange(name: string, range: ViewRange): Promise<Array<[string, string]>> {
    return (await (await this.#read())?.viewRange(name, range)) ?? [];
  }

  /** Writes a view (creates the store). */
  async viewCommit(name: string, writes: readonly ViewWrite[], state: ViewState): Promise<void> {
    await (await this.#write()).viewCommit(name, writes, state);
  }

  /** Drops a view. */
  async viewDrop(name: string): Promise<void> {
    await (await this.#read())?.viewDrop(name);
  }

  /** Closes the real store, if any. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#opened?.catch(() => {});
    const creating = this.#creating;
    if (creating !== undefined) await (await creating.catch(() => undefined))?.close();
  }
}
