/**
 * The Hyperlog class: a Merkle-DAG log of nodes that link to earlier nodes by hash.
 *
 * @module
 */
import { type Codec, resolveEncoding, textForm, type ValueEncoding } from "./encoding.ts";
import {
  ClosedError,
  HyperlogError,
  InvalidNodeError,
  MissingLinksError,
  NotFoundError,
  SignatureError,
  StorageConflictError,
} from "./errors.ts";
import { fromHex, isKey, toHex } from "./hex.ts";
import { type Identity, verifySignature } from "./identity.ts";
import { KEY_INDEX, KEYED_NODES, LOG_CODEC, READ_NODES, WIRE_NODES } from "./internal.ts";
import { EAGER_KEYS, KeyIndex } from "./key-index.ts";
import { Mutex } from "./mutex.ts";
import { encodeNode, type Node, type RawNode, type StoredNode } from "./node.ts";
import { replicate } from "./replicate.ts";
import type { ReplicateOptions, Replication } from "./replicate-types.ts";
import type { Hyperlog4ReplicateOptions } from "./hyperlog4/replicate.ts";
import { View, type ViewOptions } from "./view.ts";
import { readStream, type StreamSource } from "./log-read-stream.ts";
import { checkLinks, checkRaw, checkWire, type Draft, label, NO_LINKS } from "./log-checks.ts";
import { type Cacheable, DECODED, DECODED_BY, deepFreeze, lazyNode, VALUE, withValue } from "./log-values.ts";
import { MemoryStorage } from "./memory-storage.ts";
import type { Storage } from "./storage.ts";

/**
 * Options for {@link Hyperlog}.
 *
 * @example
 * ```ts
 * import { Hyperlog, type HyperlogOptions } from "./log.ts";
 * const options: HyperlogOptions<string> = { valueEncoding: "utf-8" };
 * const log = new Hyperlog(options);
 * const node = await log.append("héllo");
 * const stored = await log.storage.get(node.key);
 * console.assert(node.value === "héllo" && stored?.value.length === 6); // kept as UTF-8 bytes, not JSON
 * ```
 */
export interface HyperlogOptions<T = unknown> {
  /** How values become bytes: "json" (the default), "utf-8", "binary" or an `{ encode, decode }` codec. */
  valueEncoding?: ValueEncoding<T>;
  /** Sign every node this log adds with this identity. */
  identity?: Identity;
  /** Refuse unsigned nodes (local adds need an `identity`). */
  requireSignatures?: boolean;
  /** Accept only nodes signed by these public keys (hex); implies `requireSignatures`. */
  writers?: Iterable<string>;
}

/** Replication protocols other than hyperlog's own, by name, as {@link registerProtocol} adds them. */
const OTHER_PROTOCOLS = new Map<string, (log: Hyperlog<any>, options: object) => Replication>();

/**
 * Makes `log.replicate({ protocol: name })` run `session`: how hyperlog 4's protocol (src/hyperlog4/replicate.ts)
 * plugs in when it is loaded, so that the core does not carry it in every bundle. Not part of the public entry.
 *
 * @example
 * ```ts
 * import { Hyperlog, registerProtocol } from "./log.ts";
 * const log = new Hyperlog();
 * registerProtocol("echo", (_log, _options) => log.replicate());
 * const session = log.replicate({ protocol: "echo" } as never);
 * console.assert(session.readable instanceof ReadableStream);
 * await session.readable.cancel();
 * ```
 */
export function registerProtocol(
  name: string,
  session: (log: Hyperlog<any>, options: object) => Replication,
): void {
  OTHER_PROTOCOLS.set(name, session);
}

/**
 * Options of `log.replicate({ protocol: "hyperlog4" })`: a session in hyperlog 4.12.1's protocol, with a peer that
 * still runs hyperlog 4 (see `src/hyperlog4/replicate.ts`).
 *
 * @example
 * ```ts
 * import { Hyperlog, type Hyperlog4Replicate } from "./log.ts";
 * import "./hyperlog4/replicate.ts"; // registers the protocol (the compat entry and the CLI load it)
 * const [a, b] = [new Hyperlog(), new Hyperlog()];
 * await a.append("hello");
 * const options: Hyperlog4Replicate = { protocol: "hyperlog4" };
 * const [ra, rb] = [a.replicate(options), b.replicate(options)];
 * await Promise.all([ra.readable.pipeTo(rb.writable), rb.readable.pipeTo(ra.writable), ra.done, rb.done]);
 * console.assert(b.length === 1);
 * ```
 */
export interface Hyperlog4Replicate extends Hyperlog4ReplicateOptions {
  /** Speak hyperlog 4.12.1's replication protocol. */
  protocol: "hyperlog4";
}

/**
 * One document of {@link Hyperlog.batch}. A link is a node key, or the index of an earlier document of the same
 * batch.
 *
 * @example
 * ```ts
 * import { type BatchDoc, Hyperlog } from "./log.ts";
 * const docs: BatchDoc<string>[] = [{ value: "a" }, { links: [0], value: "b" }]; // b links to the first document
 * const [a, b] = await new Hyperlog<string>().batch(docs);
 * console.assert(b!.links.length === 1 && b!.links[0] === a!.key);
 * ```
 */
export interface BatchDoc<T = unknown> {
  /** Keys (or batch indexes) of the nodes this one links to; none when omitted. */
  links?: readonly (string | number)[] | null;
  /** The value to store. */
  value: T;
}

/**
 * Options for {@link Hyperlog.createReadStream}.
 *
 * @example
 * ```ts
 * import { Hyperlog, type ReadStreamOptions } from "./log.ts";
 * const log = new Hyperlog<number>();
 * for (let i = 1; i <= 12; i++) await log.append(i);
 * const lastTen: ReadStreamOptions = { reverse: true, limit: 10 };
 * const values = (await Array.fromAsync(log.createReadStream(lastTen))).map((node) => node.value);
 * console.assert(values.length === 10 && values[0] === 12 && values[9] === 3);
 * ```
 */
export interface ReadStreamOptions {
  /** Only nodes with a change number greater than this (default 0). */
  since?: number;
  /** Only nodes with a change number up to this, inclusive (default: no bound). */
  until?: number;
  /** At most this many nodes. */
  limit?: number;
  /** Newest first. Cannot be combined with `live`. */
  reverse?: boolean;
  /** Keep the stream open and deliver nodes as they are added, until cancelled or the log closes. */
  live?: boolean;
}

/**
 * The `detail` of a `reject` event: a node (or document) that was refused, and why.
 *
 * @example
 * ```ts
 * import { Hyperlog, type RejectDetail } from "./log.ts";
 * const log = new Hyperlog();
 * let detail: RejectDetail | undefined;
 * log.addEventListener("reject", (e) => detail = (e as CustomEvent<RejectDetail>).detail);
 * await log.add(["ff".repeat(32)], "orphan").catch(() => {}); // links to a node the log does not have
 * console.assert(detail?.error.name === "MissingLinksError");
 * ```
 */
export interface RejectDetail {
  /** Why it was refused. */
  error: Error;
  /** The key of the refused node, when it had one. */
  key?: string;
}

export type { RawNode } from "./node.ts";

const JSON_CODEC = resolveEncoding("json");

/** What the caller of `Hyperlog.#store` knows about its drafts (see there). */
type Known = typeof CHECK | typeof LINKS_STORED | typeof TRY_FRESH;
const CHECK = 0;
const LINKS_STORED = 1;
const TRY_FRESH = 2;

/** The last open in progress per storage object (see `Hyperlog.#open`). */
const OPENING = new WeakMap<Storage, Promise<void>>();

/**
 * A Merkle-DAG log. Every node has a key (the hash of its links and value), links to earlier nodes, and a local
 * change number. Logs replicate by exchanging the nodes the other side lacks.
 *
 * Events (an `EventTarget`): `preadd` (a node is about to be stored), `add` (a node was stored), `reject` (a node or
 * document was refused); the node, or a {@link RejectDetail}, is in `event.detail`.
 *
 * @example Add, link, list
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * const log = new Hyperlog({ valueEncoding: "utf-8" });
 * const hello = await log.add(null, "hello");
 * const world = await log.add([hello.key], "world");
 * console.assert(hello.key === "8c7efb22472592f561a7a7647f8c5ee93134880b4ca0c92889a61848cd5c4602");
 * console.assert((await log.heads())[0]?.key === world.key);
 * for await (const node of log.createReadStream()) console.log(node.change, node.value);
 * await log.close();
 * ```
 */
export class Hyperlog<T = unknown> extends EventTarget {
  /** The storage backend this log lives in. */
  readonly storage: Storage;
  /** The identity that signs local nodes, if any. */
  readonly identity: Identity | undefined;
  readonly #codec: Codec<T>;
  readonly #text: ((value: T) => string) | undefined;
  readonly #immutable: boolean;
  readonly #requireSignatures: boolean;
  readonly #writers: ReadonlySet<string> | undefined;
  readonly #mutex = new Mutex();
  readonly #opening: Promise<void>;
  readonly #listeners = new Map<string, Set<unknown>>();
  #waiters = new Set<() => void>();
  /** Live read streams, each with what delivers the nodes it has not read yet when the log closes. */
  readonly #liveStreams = new Set<() => Promise<void>>();
  #streamSource: StreamSource<T> | undefined;
  #id: string | undefined;
  #length = 0;
  #keyIndex: KeyIndex | undefined;
  #keyIndexBuilt: Promise<KeyIndex> | undefined;
  #closed = false;
  #unwatch: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  /** Writes called before `close()` that have not settled yet, and what wakes `close()` when none is left. */
  #writing = 0;
  #drained: (() => void) | undefined;
  readonly #settled = (): void => {
    if (--this.#writing === 0 && this.#drained !== undefined) {
      this.#drained();
      this.#drained = undefined;
    }
  };
  readonly #views = new Set<View<T>>();

  /**
   * Opens a log in `storage` (a fresh {@link MemoryStorage} when omitted).
   *
   * @example
   * ```ts
   * import { Hyperlog, MemoryStorage } from "../mod.ts";
   * const log = new Hyperlog(new MemoryStorage(), { valueEncoding: "json" });
   * await log.ready();
   * console.assert(log.id.length === 32);
   * ```
   */
  constructor(storage?: Storage | HyperlogOptions<T> | null, options: HyperlogOptions<T> = {}) {
    super();
    if (storage !== null && storage !== undefined && typeof (storage as Storage).commit !== "function") {
      options = storage as HyperlogOptions<T>;
      storage = undefined;
    }
    if (typeof options !== "object" || options === null) throw new TypeError("Options must be an object");
    this.storage = (storage as Storage | null | undefined) ?? new MemoryStorage();
    this.#codec = resolveEncoding(options.valueEncoding);
    this.#text = textForm(this.#codec);
    this.#immutable = this.#text !== undefined;
    this.identity = options.identity;
    if (options.writers !== undefined) {
      const writers = new Set<string>();
      for (const writer of options.writers) {
        if (!isKey(writer)) {
          throw new TypeError(
            `Writer ${JSON.stringify(writer)} is not a public key: expected 64 lower-case hex characters`,
          );
        }
        writers.add(writer);
      }
      this.#writers = writers;
    }
    this.#requireSignatures = options.requireSignatures === true || this.#writers !== undefined;
    this.#opening = this.#open();
    this.#opening.catch(() => {});
  }

  #open(): Promise<void> {
    // Logs opened on the same storage object open one after the other, so they agree on the id it keeps.
    const previous = OPENING.get(this.storage) ?? Promise.resolve();
    const opened = previous.catch(() => {}).then(async () => {
      await this.storage.open();
      let id = await this.storage.getMeta("id");
      if (id === undefined) {
        id = toHex(crypto.getRandomValues(new Uint8Array(16)));
        await this.storage.setMeta("id", id);
      }
      this.#id = id;
      this.#length = await this.storage.length();
      // A store that other writers share (Deno KV) says when they commit: their nodes then reach this log.
      this.#unwatch = this.storage.watch?.(() => void this.refresh().catch(() => {}));
    });
    OPENING.set(this.storage, opened);
    return opened;
  }

  /**
   * Resolves once the storage is open. Every method waits for it, so calling it is optional.
   *
   * @example
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * const log = new Hyperlog();
   * await log.ready();
   * ```
   */
  async ready(): Promise<void> {
    await this.#opening;
    if (this.#closed) throw new ClosedError();
  }

  /**
   * This log's stable id (32 hex characters), created once and kept in storage. Available after `ready()`.
   *
   * @example
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * const log = new Hyperlog();
   * await log.ready();
   * console.log(log.id);
   * ```
   */
  get id(): string {
    if (this.#id === undefined) {
      throw new HyperlogError("The log is not open yet; await log.ready() before reading log.id");
    }
    return this.#id;
  }

  /**
   * The number of nodes in the log (the highest change number). Available after `ready()`.
   *
   * @example
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * const log = new Hyperlog();
   * await log.append("x");
   * console.assert(log.length === 1);
   * ```
   */
  get length(): number {
    return this.#length;
  }

  /**
   * Reads the length again from storage, for a store that other writers share (another process on the same file,
   * another isolate on the same Deno KV database): the nodes they committed since become part of this log, for
   * reads, live streams and replication, and each fires an `add` event. The log calls it itself when its storage
   * can tell (`Storage.watch`: Deno KV). Resolves with the length; runs between this log's own writes.
   *
   * @example
   * ```ts
   * import { Hyperlog, MemoryStorage } from "../mod.ts";
   * const storage = new MemoryStorage();
   * const log = new Hyperlog(storage);
   * console.assert((await log.refresh()) === 0);
   * ```
   */
  async refresh(): Promise<number> {
    await this.ready();
    return await this.#mutex.run(async () => {
      const length = await this.storage.length();
      if (length <= this.#length) return this.#length;
      const fresh: StoredNode[] = [];
      if (this.#hasListeners("add")) {
        for (let since = this.#length; since < length;) {
          const page = await this.storage.read({ since, until: length, limit: 1000, reverse: false });
          if (page.length === 0) break;
          fresh.push(...page);
          since = page[page.length - 1]!.change;
        }
      }
      this.#length = length;
      // Commits made elsewhere: the key index is rebuilt when next needed.
      this.#keyIndex = undefined;
      this.#keyIndexBuilt = undefined;
      const waiters = this.#waiters;
      this.#waiters = new Set();
      for (const wake of waiters) wake();
      for (const node of fresh) this.dispatchEvent(new CustomEvent("add", { detail: this.#toNode(node) }));
      return length;
    });
  }

  /**
   * True once `close()` has finished.
   *
   * @example
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * const log = new Hyperlog();
   * await log.close();
   * console.assert(log.closed);
   * ```
   */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Starts a replication session with a peer: pipe `readable` to the peer and the peer's bytes into `writable`
   * (`stdin.pipeThrough(log.replicate()).pipeTo(stdout)` works too). `done` resolves with stats when both sides
   * have what the mode asks for, and rejects, on both sides, with the reason if anything goes wrong.
   *
   * @example
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * const a = new Hyperlog();
   * const b = new Hyperlog();
   * await a.append("hello");
   * const ra = a.replicate();
   * const rb = b.replicate({ mode: "sync" });
   * ra.readable.pipeTo(rb.writable);
   * rb.readable.pipeTo(ra.writable);
   * const [sa, sb] = await Promise.all([ra.done, rb.done]);
   * console.assert(sa.nodesSent === 1 && sb.nodesReceived === 1);
   * ```
   */
  replicate(options: ReplicateOptions | Hyperlog4Replicate = {}): Replication {
    const protocol = (options as { protocol?: unknown }).protocol;
    if (protocol !== undefined) {
      // hyperlog 4.12.1's protocol, for peers that still run it: src/hyperlog4/replicate.ts registers it when
      // loaded (the compat entry and the CLI load it), so that a browser bundle does not carry it.
      const other = typeof protocol === "string" ? OTHER_PROTOCOLS.get(protocol) : undefined;
      if (other === undefined) {
        throw new TypeError(
          protocol === "hyperlog4"
            ? 'The hyperlog 4 protocol is not loaded: import "@hyperlog/hyperlog/compat" once before ' +
              'log.replicate({ protocol: "hyperlog4" })'
            : `Unknown replication protocol ${JSON.stringify(protocol)}: leave it out for hyperlog's own, or ` +
              'give "hyperlog4"',
        );
      }
      return other(this, options);
    }
    return replicate(this, options as ReplicateOptions);
  }

  /**
   * Adds a node with the given links (keys of nodes already in the log) and value. Resolves with the stored node;
   * if an identical node is already stored, resolves with that one and changes nothing.
   *
   * @example
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * const log = new Hyperlog();
   * const a = await log.add(null, { hello: "world" });
   * const b = await log.add([a.key], "second");
   * console.assert(b.links[0] === a.key && b.change === 2);
   * ```
   */
  add(links: readonly string[] | null, value: T): Promise<Node<T>> {
    return this.#track(async () => {
      const nodes = await this.#addDrafts([this.#draft(checkLinks(links, "add"), this.#encode(value, "add"))]);
      return nodes[0]!;
    });
  }

  /**
   * Adds a node that links to every current head (the seed's "append to the log").
   *
   * @example
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * const log = new Hyperlog();
   * const a = await log.append(1);
   * const b = await log.append(2);
   * console.assert(b.links[0] === a.key);
   * ```
   */
  append(value: T): Promise<Node<T>> {
    return this.#track(() => this.#append(value));
  }

  async #append(value: T): Promise<Node<T>> {
    const encoded = this.#encode(value, "append");
    try {
      if (!this.#canWriteNow()) await this.#checkCanWrite();
      return await this.#mutex.run(async () => {
        this.#assertOpen();
        const draft = this.#draft((await this.storage.heads()).sort(), encoded);
        if (this.identity !== undefined) await this.#sign([draft]);
        // The links are the heads just read under the mutex, so they are stored; and the node cannot be, since a
        // stored node that links to every head would have made them stop being heads.
        if (this.#hasListeners("preadd")) return (await this.#storeLocal([draft], LINKS_STORED))[0]!;
        const stored = this.#freshNode(draft, this.#length + 1);
        await this.#commit([stored]);
        const node = this.#decodeDraft(draft, stored);
        if (this.#hasListeners("add")) this.dispatchEvent(new CustomEvent("add", { detail: node }));
        return node;
      });
    } catch (err) {
      this.#reject(err as Error, undefined);
      throw err;
    }
  }

  /**
   * Adds many nodes atomically: all are stored, or none (the promise rejects and nothing changes). A document may
   * link to an earlier document of the batch by its key or by its index in `docs`. Runs in time linear in the
   * batch. Resolves with the nodes in the order of `docs`.
   *
   * @example
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * const log = new Hyperlog();
   * const [a, b] = await log.batch([{ value: "a" }, { links: [0], value: "b" }]);
   * console.assert(b!.links[0] === a!.key);
   * ```
   */
  batch(docs: readonly BatchDoc<T>[]): Promise<Node<T>[]> {
    return this.#track(() => this.#batch(docs));
  }

  async #batch(docs: readonly BatchDoc<T>[]): Promise<Node<T>[]> {
    if (!Array.isArray(docs)) throw new TypeError("batch takes an array of { links, value } documents");
    const drafts: Draft[] = [];
    for (let i = 0; i < docs.length; i++) {
      const doc = docs[i];
      if (typeof doc !== "object" || doc === null || !("value" in doc)) {
        throw new TypeError(`batch document ${i} must be an object with a value (and optional links)`);
      }
      const raw = doc.links;
      let links: readonly string[];
      if (Array.isArray(raw) && raw.some((link) => typeof link === "number")) {
        links = raw.map((link, j) => {
          if (typeof link !== "number") return link;
          if (!Number.isInteger(link) || link < 0 || link >= i) {
            throw new TypeError(
              `batch document ${i}: link ${j} refers to document ${link}, which is not an earlier document of the batch`,
            );
          }
          return drafts[link]!.key;
        });
      } else {
        links = raw as readonly string[];
      }
      drafts.push(this.#draft(checkLinks(links, "batch document", i), this.#encode(doc.value, "batch document", i)));
    }
    return await this.#addDrafts(drafts);
  }

  #encode(value: T, where: string, index?: number): Uint8Array | string {
    try {
      return this.#text !== undefined ? this.#text(value) : this.#codec.encode(value);
    } catch (err) {
      if (err instanceof HyperlogError) err.message = `${label(where, index)}: ${err.message}`;
      throw err;
    }
  }

  #draft(links: readonly string[], value: Uint8Array | string): Draft {
    const identity = this.identity?.publicKey;
    const encoded = encodeNode(links, value, identity);
    // One shape for every local draft: all its fields at once.
    const draft: Draft = {
      key: encoded.key,
      links,
      value: encoded.value,
      text: typeof value === "string" ? value : undefined,
    };
    if (identity !== undefined) draft.identity = identity;
    return draft;
  }

  async #sign(drafts: Draft[]): Promise<void> {
    const identity = this.identity;
    if (identity === undefined) return;
    await Promise.all(drafts.map(async (draft) => {
      draft.signature = toHex(await identity.sign(fromHex(draft.key)));
    }));
  }

  /** Whether a local write may go ahead without waiting: the log is open and needs no signature checks. */
  #canWriteNow(): boolean {
    return this.#id !== undefined && !this.#closed && !this.#requireSignatures;
  }

  async #checkCanWrite(): Promise<void> {
    await this.ready();
    if (!this.#requireSignatures) return;
    if (this.identity === undefined) {
      throw new SignatureError("This log requires signed nodes; open it with an identity to add nodes");
    }
    if (this.#writers !== undefined && !this.#writers.has(this.identity.publicKey)) {
      throw new SignatureError(
        `This log accepts only listed writers, and ${this.identity.publicKey} is not one of them`,
      );
    }
  }

  /** Signs and stores drafts whose links are fixed; emits `reject` and rethrows on failure. */
  async #addDrafts(drafts: Draft[]): Promise<Node<T>[]> {
    try {
      if (!this.#canWriteNow()) await this.#checkCanWrite();
      if (this.identity !== undefined) await this.#sign(drafts);
      return await this.#mutex.run(() => this.#storeLocal(drafts, TRY_FRESH));
    } catch (err) {
      this.#reject(err as Error, undefined);
      throw err;
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError();
  }

  /** Runs a write that was called before `close()`: close waits for it. Writes called after `close()` reject. */
  #track<R>(write: () => Promise<R>): Promise<R> {
    if (this.#closing !== undefined) return Promise.reject(new ClosedError());
    const promise = write();
    this.#writing++;
    promise.then(this.#settled, this.#settled);
    return promise;
  }

  /**
   * Under the mutex: stores the drafts that are new, in order, in one commit. A draft's links must be stored or
   * belong to an earlier draft. When `partial` is false a draft with a missing link fails the whole call; when true
   * the drafts before it are stored and then the call fails (what a receiving peer does). Returns, for each draft
   * that was considered, its stored node, and the nodes this call stored.
   *
   * `known` says what the caller knows. {@link LINKS_STORED}: every link is stored and no key is (an append of the
   * heads just read), so nothing is looked up. {@link TRY_FRESH}: when every link of the call points to an earlier
   * draft of it (a batch of new documents), the drafts are committed without looking their keys up first; the
   * storage refuses a commit that holds a stored key, and then (the length being unchanged, so no other writer
   * came in between) the call is done again with the lookup.
   */
  async #store(
    drafts: readonly Draft[],
    partial: boolean,
    known: Known = CHECK,
  ): Promise<{ results: StoredNode[]; fresh: StoredNode[] }> {
    this.#assertOpen();
    const count = drafts.length;
    let linked = false;
    for (let i = 0; i < count && !linked; i++) linked = drafts[i]!.links.length > 0;
    const hopeful = known === TRY_FRESH && !partial && !this.#hasListeners("preadd");
    // The first draft of each key (a key may come twice in a call). Without links to check, a hopeful call takes
    // its keys as distinct: the storage refuses a commit that holds a key twice, and the call is then done again.
    const firstAt = count === 1 || (hopeful && !linked) ? undefined : new Map<string, number>();
    const only = count === 1 ? drafts[0]!.key : undefined;
    const firstOf = (key: string): number | undefined =>
      firstAt === undefined ? (key === only ? 0 : undefined) : firstAt.get(key);
    const firstIndex = (i: number): number => firstAt === undefined ? i : firstAt.get(drafts[i]!.key)!;
    if (firstAt !== undefined) {
      for (let i = 0; i < count; i++) {
        const key = drafts[i]!.key;
        if (!firstAt.has(key)) firstAt.set(key, i);
      }
    }
    let unchecked = known === LINKS_STORED;
    if (hopeful) {
      unchecked = true;
      for (let i = 0; i < count && unchecked && linked; i++) {
        for (const link of drafts[i]!.links) {
          if (!((firstOf(link) ?? Infinity) < i)) {
            unchecked = false;
            break;
          }
        }
      }
    }
    let stored: Set<string> | undefined;
    if (!unchecked) {
      const probe: string[] = [];
      if (firstAt === undefined) {
        probe.push(only!);
        for (const link of drafts[0]!.links) probe.push(link);
      } else {
        for (let i = 0; i < count; i++) if (firstAt.get(drafts[i]!.key) === i) probe.push(drafts[i]!.key);
        if (linked) {
          const linkSeen = new Set<string>();
          for (let i = 0; i < count; i++) {
            for (const link of drafts[i]!.links) {
              if (!firstAt.has(link) && !linkSeen.has(link)) {
                linkSeen.add(link);
                probe.push(link);
              }
            }
          }
          // Links to later drafts of the call were left out of the probe; they are only satisfied if already stored.
          for (let i = 0; i < count; i++) {
            for (const link of drafts[i]!.links) {
              const at = firstAt.get(link);
              if (at !== undefined && at >= i && !linkSeen.has(link)) {
                linkSeen.add(link);
                probe.push(link);
              }
            }
          }
        }
      }
      const present = await this.storage.has(probe);
      for (let i = 0; i < probe.length; i++) {
        if (present[i]) (stored ??= new Set()).add(probe[i]!);
      }
    }
    const missingOf = (i: number): string[] => {
      const out: string[] = [];
      if (unchecked) return out;
      for (const link of drafts[i]!.links) {
        if (!stored?.has(link) && !((firstOf(link) ?? Infinity) < i)) out.push(link);
      }
      return out;
    };

    let end = count;
    let missing: string[] = [];
    for (let i = 0; i < count; i++) {
      if (drafts[i]!.links.length === 0) continue;
      missing = missingOf(i);
      if (missing.length > 0) {
        end = i;
        break;
      }
    }
    if (missing.length > 0 && !partial) {
      // Name every missing link of the call, not just the first draft's.
      const all = new Set<string>();
      for (let i = end; i < count; i++) for (const link of missingOf(i)) all.add(link);
      throw new MissingLinksError([...all]);
    }

    // For each draft: the index of its node in `fresh`, or -1 when it was stored before this call.
    const fresh: StoredNode[] = [];
    const freshOf: number[] = new Array(end);
    let change = this.#length;
    for (let i = 0; i < end; i++) {
      const draft = drafts[i]!;
      if (stored?.has(draft.key)) {
        freshOf[i] = -1;
        continue;
      }
      const first = firstIndex(i);
      if (first < i) {
        freshOf[i] = freshOf[first]!;
        continue;
      }
      const node = this.#freshNode(draft, ++change);
      freshOf[i] = fresh.length;
      fresh.push(node);
    }
    if (this.#hasListeners("preadd")) {
      for (let i = 0; i < end; i++) {
        if (freshOf[i]! >= 0 && firstIndex(i) === i) {
          this.dispatchEvent(new CustomEvent("preadd", { detail: this.#decodeDraft(drafts[i]!, fresh[freshOf[i]!]!) }));
        }
      }
    }
    const length = this.#length;
    try {
      await this.#commit(fresh);
    } catch (err) {
      if (unchecked && known === TRY_FRESH && err instanceof StorageConflictError && this.#length === length) {
        return await this.#store(drafts, partial, CHECK);
      }
      throw err;
    }
    const results: StoredNode[] = new Array(end);
    for (let i = 0; i < end; i++) {
      results[i] = freshOf[i]! >= 0 ? fresh[freshOf[i]!]! : (await this.storage.get(drafts[i]!.key))!;
    }
    if (this.#hasListeners("add")) {
      for (let i = 0; i < end; i++) {
        if (freshOf[i]! >= 0 && firstIndex(i) === i) {
          this.dispatchEvent(new CustomEvent("add", { detail: this.#decodeDraft(drafts[i]!, fresh[freshOf[i]!]!) }));
        }
      }
    }
    if (missing.length > 0) throw new MissingLinksError(missing);
    return { results, fresh };
  }

  /** The stored node of a draft, with its change number: its own frozen copy of the links, and the cache slots. */
  #freshNode(draft: Draft, change: number): Cacheable {
    const links = draft.links.length === 0 ? NO_LINKS : Object.freeze(draft.links.slice());
    return draft.identity === undefined
      ? {
        key: draft.key,
        links,
        value: draft.value,
        change,
        [DECODED]: undefined,
        [DECODED_BY]: undefined,
        [VALUE]: undefined,
      }
      : {
        key: draft.key,
        links,
        value: draft.value,
        change,
        identity: draft.identity,
        signature: draft.signature!,
        [DECODED]: undefined,
        [DECODED_BY]: undefined,
        [VALUE]: undefined,
      };
  }

  /**
   * A stored node as the API returns it, from the draft's text when the log still has it: a json value is decoded
   * from its bytes when first read (see `lazyNode`), a utf-8 value is the text itself.
   */
  #decodeDraft(draft: Draft, stored: StoredNode): Node<T> {
    if (draft.text === undefined || !this.#immutable) return this.#toNode(stored);
    const cached = this.#cached(stored);
    if (cached !== undefined) return cached;
    if (this.#codec !== JSON_CODEC) return this.#cache(stored, withValue(stored, draft.text as T));
    // A json node is decoded lazily only from an object this log made (it has the slot for the value), not from
    // one a storage made when it read a node stored before.
    return VALUE in stored && Object.isExtensible(stored)
      ? this.#cache(stored, lazyNode(stored as Cacheable))
      : this.#toNode(stored);
  }

  /** Under the mutex: stores local drafts atomically and returns their nodes. */
  async #storeLocal(drafts: readonly Draft[], known: Known): Promise<Node<T>[]> {
    const { results } = await this.#store(drafts, false, known);
    const nodes: Node<T>[] = new Array(results.length);
    for (let i = 0; i < results.length; i++) nodes[i] = this.#decodeDraft(drafts[i]!, results[i]!);
    return nodes;
  }

  async #commit(nodes: readonly StoredNode[]): Promise<void> {
    if (nodes.length === 0) return;
    try {
      await this.storage.commit(nodes);
    } catch (err) {
      if (err instanceof StorageConflictError) {
        this.#length = await this.storage.length();
        // Another writer on the same storage: the key index is rebuilt when next needed.
        this.#keyIndex = undefined;
        this.#keyIndexBuilt = undefined;
      }
      throw err;
    }
    this.#length += nodes.length;
    // The key index moves with the length, in the same step: a session reads both at once.
    const index = this.#keyIndex;
    if (index !== undefined) {
      for (const node of nodes) index.add(node.key);
      // Grown past what is kept for the asking, and no reconciliation needed it: built again when one does.
      if (!index.keep && Math.max(index.size, index.coming) > EAGER_KEYS) {
        this.#keyIndex = undefined;
        this.#keyIndexBuilt = undefined;
      }
    }
    if (this.#waiters.size === 0) return;
    const waiters = this.#waiters;
    this.#waiters = new Set();
    for (const wake of waiters) wake();
  }

  #reject(error: Error, key: string | undefined): void {
    if (!this.#hasListeners("reject")) return;
    const detail: RejectDetail = key === undefined ? { error } : { error, key };
    this.dispatchEvent(new CustomEvent("reject", { detail }));
  }

  /**
   * The API form of a stored node. Nodes of the built-in text encodings are immutable (frozen, values deeply), so
   * they are decoded once per stored object and shared: a backend that keeps its objects (memory) reads at the
   * speed of the stream. Binary and custom values are decoded afresh each time, since they may be mutable.
   */
  #toNode(stored: StoredNode): Node<T> {
    if (!this.#immutable) return withValue(stored, this.#codec.decode(stored.value));
    return this.#cached(stored) ?? this.#cache(stored, withValue(stored, deepFreeze(this.#codec.decode(stored.value))));
  }

  /** The node decoded from this stored object by this log, if any (see {@link DECODED}). */
  #cached(stored: StoredNode): Node<T> | undefined {
    return (stored as Cacheable)[DECODED_BY] === this ? (stored as Cacheable)[DECODED] as Node<T> : undefined;
  }

  /** Remembers the node decoded from a stored object in it, unless the storage handed out a frozen object. */
  #cache(stored: StoredNode, node: Node<T>): Node<T> {
    if (!Object.isExtensible(stored)) return node;
    (stored as Cacheable)[DECODED_BY] = this;
    (stored as Cacheable)[DECODED] = node;
    return node;
  }

  /**
   * The node with this key; rejects with a `NotFoundError` (`err.name === "NotFoundError"`) if the log lacks it.
   *
   * @example
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * const log = new Hyperlog();
   * const a = await log.add(null, "x");
   * console.assert((await log.get(a.key)).value === "x");
   * ```
   */
  async get(key: string): Promise<Node<T>> {
    if (!isKey(key)) {
      throw new TypeError(`get takes a node key: 64 lower-case hex characters, got ${JSON.stringify(key)}`);
    }
    if (this.#id === undefined || this.#closed) await this.ready();
    const stored = await this.storage.get(key);
    if (stored === undefined) throw new NotFoundError(key);
    return this.#toNode(stored);
  }

  /**
   * The nodes no other node links to, sorted by key.
   *
   * @example
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * const log = new Hyperlog();
   * await log.add(null, "a");
   * await log.add(null, "b");
   * console.assert((await log.heads()).length === 2);
   * ```
   */
  async heads(): Promise<Node<T>[]> {
    await this.ready();
    const keys = (await this.storage.heads()).sort();
    const nodes: Node<T>[] = [];
    for (const key of keys) {
      const stored = await this.storage.get(key);
      if (stored !== undefined) nodes.push(this.#toNode(stored));
    }
    return nodes;
  }

  /**
   * Streams nodes in change order (ancestors before the nodes that link to them). With `live: true` the stream
   * stays open and delivers nodes as they are added; cancel it, or close the log, to end it.
   *
   * @example
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * const log = new Hyperlog();
   * await log.append("a");
   * await log.append("b");
   * const values = [];
   * for await (const node of log.createReadStream({ reverse: true })) values.push(node.value);
   * console.assert(values.join() === "b,a");
   * ```
   */
  createReadStream(options: ReadStreamOptions = {}): ReadableStream<Node<T>> {
    return readStream(
      this.#streamSource ??= {
        opening: this.#opening,
        storage: this.storage,
        closed: () => this.#closed,
        length: () => this.#length,
        deliver: (page, controller) => {
          for (const stored of page) controller.enqueue(this.#toNode(stored));
        },
        waiters: () => this.#waiters,
        live: this.#liveStreams,
      },
      options,
    );
  }

  /**
   * Checks a node as a receiving peer would: its key matches its links, value and identity; its signature verifies;
   * and it meets this log's signature rules (`requireSignatures`, `writers`). Rejects with an `InvalidNodeError` or
   * a `SignatureError` that says what is wrong. Does not check that the links are present.
   *
   * @example
   * ```ts
   * import { Hyperlog, Identity } from "../mod.ts";
   * const log = new Hyperlog({ identity: await Identity.generate() });
   * const node = await log.append("signed");
   * await log.verify(node);
   * ```
   */
  async verify(node: Pick<Node<T>, "key" | "links" | "value" | "identity" | "signature">): Promise<void> {
    if (typeof node !== "object" || node === null) {
      throw new InvalidNodeError("A node must be an object with key, links and value");
    }
    const encoded = this.#encode(node.value, `node ${String(node.key)}`);
    const value = typeof encoded === "string" ? new TextEncoder().encode(encoded) : encoded;
    const raw: { key: string; links: readonly string[]; value: Uint8Array; identity?: string; signature?: string } = {
      key: node.key,
      links: node.links,
      value,
    };
    if (node.identity !== undefined) raw.identity = node.identity;
    if (node.signature !== undefined) raw.signature = node.signature;
    await this.verifyDraft(raw);
  }

  /**
   * Checks a node whose value is still encoded (as it arrives from a peer). See {@link Hyperlog.verify}.
   *
   * @example
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * const log = new Hyperlog({ valueEncoding: "utf-8" });
   * const key = "8c7efb22472592f561a7a7647f8c5ee93134880b4ca0c92889a61848cd5c4602";
   * await log.verifyDraft({ key, links: [], value: new TextEncoder().encode("hello") });
   * ```
   */
  async verifyDraft(draft: RawNode): Promise<void> {
    await this.#checkSignature(checkRaw(draft));
  }

  /** Checks a draft's signature against the log's rules. */
  async #checkSignature(draft: Draft): Promise<void> {
    const { identity, signature } = draft;
    if (identity === undefined || signature === undefined) {
      if (this.#requireSignatures) {
        throw new SignatureError(`Node ${draft.key} is not signed, and this log requires signatures`);
      }
      return;
    }
    if (typeof signature !== "string" || !/^[0-9a-f]{128}$/.test(signature)) {
      throw new SignatureError(`Node ${draft.key} has a signature that is not 128 lower-case hex characters`);
    }
    if (!(await verifySignature(identity, fromHex(draft.key), signature))) {
      throw new SignatureError(`Node ${draft.key} has a signature that does not verify for identity ${identity}`);
    }
    if (this.#writers !== undefined && !this.#writers.has(identity)) {
      throw new SignatureError(`Node ${draft.key} is signed by ${identity}, which is not a listed writer of this log`);
    }
  }

  /**
   * Adds nodes made elsewhere (by a peer, a backup, an export), checking each one as {@link Hyperlog.verifyDraft}
   * does and requiring its links to be in the log or earlier in `nodes`. Nodes the log already has are skipped.
   * Nodes are stored in order up to the first bad one; then the call rejects with that node's error, having stored
   * the good nodes before it and nothing of the bad one. Resolves with the nodes it stored, with their new change
   * numbers. Replication is built on this (it passes an internal `token`; leave it out).
   *
   * @example Copy a log into another, values still encoded
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * const a = new Hyperlog();
   * await a.append("one");
   * await a.append("two");
   * const b = new Hyperlog();
   * const page = await a.storage.read({ since: 0, until: Infinity, limit: 100, reverse: false });
   * const stored = await b.ingest(page);
   * console.assert(stored.length === 2 && (await b.heads())[0]?.value === "two");
   * ```
   */
  ingest(nodes: readonly RawNode[], token?: symbol): Promise<StoredNode[]> {
    const keyed = token === KEYED_NODES;
    const fromWire = keyed || token === WIRE_NODES;
    return this.#track(async () => {
      if (!Array.isArray(nodes)) throw new TypeError("ingest takes an array of nodes");
      await this.ready();
      const drafts: Draft[] = [];
      let failure: { error: Error; key?: string } | undefined;
      for (const raw of nodes) {
        try {
          drafts.push(fromWire ? checkWire(raw, keyed) : checkRaw(raw));
        } catch (error) {
          failure = { error: error as Error };
          if (typeof raw?.key === "string") failure.key = raw.key;
          break;
        }
      }
      if (this.#requireSignatures || drafts.some((draft) => draft.identity !== undefined)) {
        const checks = await Promise.allSettled(drafts.map((draft) => this.#checkSignature(draft)));
        const bad = checks.findIndex((check) => check.status === "rejected");
        if (bad >= 0) {
          failure = { error: (checks[bad] as PromiseRejectedResult).reason as Error, key: drafts[bad]!.key };
          drafts.length = bad;
        }
      }
      let fresh: StoredNode[];
      try {
        fresh = (await this.#mutex.run(() => this.#store(drafts, true))).fresh;
      } catch (error) {
        this.#reject(error as Error, undefined);
        throw error;
      }
      if (failure !== undefined) {
        this.#reject(failure.error, failure.key);
        throw failure.error;
      }
      return fresh;
    });
  }

  /**
   * Resolves once the log holds more than `length` nodes (at once if it already does), or when the log closes, or
   * when `signal` aborts. Live readers (replication, views) use it to wait for new nodes.
   *
   * @example
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * const log = new Hyperlog();
   * await log.ready();
   * const grown = log.waitForLength(0);
   * await log.append("x");
   * await grown;
   * ```
   */
  waitForLength(length: number, signal?: AbortSignal): Promise<void> {
    if (this.#length > length || this.#closed || signal?.aborted === true) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const wake = () => {
        this.#waiters.delete(wake);
        signal?.removeEventListener("abort", wake);
        resolve();
      };
      this.#waiters.add(wake);
      signal?.addEventListener("abort", wake, { once: true });
    });
  }

  /**
   * Opens a materialized view of this log (see {@link View}): `map` applies every node, in change order, to the
   * view's key/value data, which commits atomically with the view's checkpoint.
   *
   * @example
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * const log = new Hyperlog<string>();
   * const byValue = log.view({
   *   name: "by-value",
   *   version: 1,
   *   map: (nodes, store) => { for (const node of nodes) store.put(node.value, node.key); },
   * });
   * const node = await log.append("hello");
   * await byValue.ready();
   * console.assert(await byValue.get("hello") === node.key);
   * ```
   */
  view(options: ViewOptions<T>): View<T> {
    if (this.#closed || this.#closing !== undefined) throw new ClosedError();
    const view = new View(this, options);
    this.#views.add(view);
    return view;
  }

  /**
   * The index of every key of the log (see {@link KEY_INDEX}): built once, then kept up to date on commit; with
   * `build` false, only if it is built already.
   */
  [KEY_INDEX](build = true): Promise<KeyIndex | undefined> {
    if (!build && this.#keyIndexBuilt === undefined) return Promise.resolve(undefined);
    this.#keyIndexBuilt ??= (async () => {
      await this.ready();
      const index = new KeyIndex();
      // Commits from now on add to it; the read below covers what was there before.
      this.#keyIndex = index;
      const until = this.#length;
      let cursor = 0;
      while (cursor < until) {
        const page = await this.storage.read({ since: cursor, until, limit: 1024, reverse: false });
        if (page.length === 0) break;
        for (const node of page) index.add(node.key);
        cursor = page[page.length - 1]!.change;
      }
      return index;
    })();
    const built = this.#keyIndexBuilt;
    built.catch(() => {
      if (this.#keyIndexBuilt === built) {
        this.#keyIndex = undefined;
        this.#keyIndexBuilt = undefined;
      }
    });
    return built;
  }

  /** The codec of this log's values (see {@link LOG_CODEC}). */
  get [LOG_CODEC](): Codec<T> {
    return this.#codec;
  }

  /** Reads decoded nodes for views (see {@link READ_NODES}). */
  async [READ_NODES](since: number, limit: number): Promise<Node<T>[]> {
    const page = await this.storage.read({ since, until: Infinity, limit, reverse: false });
    const nodes: Node<T>[] = new Array(page.length);
    for (let i = 0; i < page.length; i++) nodes[i] = this.#toNode(page[i]!);
    return nodes;
  }

  /**
   * Closes the log: waits for writes in flight, ends live read streams, and closes the storage. Later calls reject
   * with a `ClosedError`. Calling it again is harmless.
   *
   * @example
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * const log = new Hyperlog();
   * await log.close();
   * ```
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#opening.catch(() => {});
      await Promise.allSettled([...this.#views].map((view) => view.close()));
      if (this.#writing > 0) await new Promise<void>((resolve) => this.#drained = resolve);
      this.#unwatch?.();
      await this.#mutex.idle();
      this.#closed = true;
      const waiters = this.#waiters;
      this.#waiters = new Set();
      for (const wake of waiters) wake();
      // Live read streams get what was committed before the close and they had not read yet.
      await Promise.allSettled([...this.#liveStreams].map((finalize) => finalize()));
      await this.storage.close();
    })();
    return this.#closing;
  }

  #hasListeners(type: string): boolean {
    const set = this.#listeners.get(type);
    return set !== undefined && set.size > 0;
  }

  /** Adds an event listener (`preadd`, `add` or `reject`); see the class doc. */
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    if (listener !== null) {
      let set = this.#listeners.get(type);
      if (set === undefined) this.#listeners.set(type, set = new Set());
      set.add(listener);
    }
    super.addEventListener(type, listener, options);
  }

  /** Removes an event listener. */
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void {
    if (listener !== null) this.#listeners.get(type)?.delete(listener);
    super.removeEventListener(type, listener, options);
  }
}
