/**
 * The Hyperlog class: a Merkle-DAG log of nodes that link to earlier nodes by hash. This file is its public API;
 * the parts behind it live beside it: the shapes it takes and gives (log-types.ts), its writes (log-writes.ts),
 * the store engine (log-store.ts), signature rules (log-signatures.ts), checks of what it is given (log-checks.ts),
 * values and their decode cache (log-values.ts), events and waiters (log-events.ts), read streams
 * (log-read-stream.ts) and other replication protocols (log-protocols.ts).
 *
 * @module
 */
import { ClosedError, HyperlogError, NotFoundError } from "./errors.ts";
import { isKey } from "./hex.ts";
import type { Identity } from "./identity.ts";
import { registerInternals } from "./internal.ts";
import { checkRaw } from "./log-checks.ts";
import { LogEvents } from "./log-events.ts";
import type { LogHandle } from "./log-handle.ts";
import { otherProtocol } from "./log-protocols.ts";
import { readStream, type StreamSource } from "./log-read-stream.ts";
import { SignatureRules } from "./log-signatures.ts";
import { LogStore } from "./log-store.ts";
import type { BatchDoc, Hyperlog4Replicate, HyperlogOptions, ReadStreamOptions } from "./log-types.ts";
import { getKept, LogValues, readKept } from "./log-values.ts";
import { LogWrites } from "./log-writes.ts";
import { MemoryStorage } from "./memory-storage.ts";
import type { Node, RawNode, StoredNode } from "./node.ts";
import { replicate } from "./replicate.ts";
import type { ReplicateOptions, Replication } from "./replicate-types.ts";
import type { Storage } from "./storage.ts";
import { View, type ViewOptions } from "./view.ts";

export type { BatchDoc, Hyperlog4Replicate, HyperlogOptions, ReadStreamOptions, RejectDetail } from "./log-types.ts";
export type { RawNode } from "./node.ts";
export { registerProtocol } from "./log-protocols.ts";

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
export class Hyperlog<T = unknown> extends EventTarget implements LogHandle {
  /** The storage backend this log lives in. */
  readonly storage: Storage;
  /** The identity that signs local nodes, if any. */
  readonly identity: Identity | undefined;
  readonly #values: LogValues<T>;
  readonly #rules: SignatureRules;
  readonly #events: LogEvents = new LogEvents(this);
  readonly #store: LogStore<T>;
  readonly #writes: LogWrites<T>;
  readonly #opening: Promise<void>;
  /** Live read streams, each with what delivers the nodes it has not read yet when the log closes. */
  readonly #liveStreams = new Set<() => Promise<void>>();
  #streamSource: StreamSource<T> | undefined;
  #closing: Promise<void> | undefined;
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
    this.#values = new LogValues(options.valueEncoding);
    this.identity = options.identity;
    this.#rules = new SignatureRules(options);
    this.#store = new LogStore(this.storage, this.#events, this.#values, () => this.ready());
    this.#writes = new LogWrites({
      store: this.#store,
      values: this.#values,
      rules: this.#rules,
      events: this.#events,
      identity: this.identity,
      ready: () => this.ready(),
    });
    this.#opening = this.#store.open(() => void this.refresh().catch(() => {}));
    this.#opening.catch(() => {});
    const store = this.#store;
    const writes = this.#writes;
    registerInternals<T>(this, {
      ingestWire: (nodes) => writes.ingest(nodes, true),
      readNodes: (since, limit) => store.readNodes(since, limit),
      codec: this.#values.codec,
      keyIndex: (build) => store.keyIndex(build),
    });
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
    if (this.#store.closed) throw new ClosedError();
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
    const id = this.#store.id;
    if (id === undefined) {
      throw new HyperlogError("The log is not open yet; await log.ready() before reading log.id");
    }
    return id;
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
    return this.#store.length;
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
    return await this.#store.refresh();
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
    return this.#store.closed;
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
    if (protocol !== undefined) return otherProtocol(protocol)(this, options);
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
    return this.#writes.add(links, value);
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
    return this.#writes.append(value);
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
    return this.#writes.batch(docs);
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
    if (this.#store.id === undefined || this.#store.closed) await this.ready();
    const kept = await getKept(this.storage, key);
    if (kept === undefined) throw new NotFoundError(key);
    return this.#values.keptNode(kept);
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
      const kept = await getKept(this.storage, key);
      if (kept !== undefined) nodes.push(this.#values.keptNode(kept));
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
        read: (range) => readKept(this.storage, range),
        closed: () => this.#store.closed,
        length: () => this.#store.length,
        deliver: (page, controller) => {
          const values = this.#values;
          // An index, not `for...of`: a 10 000-node read runs mostly before the engine compiles this loop.
          for (let i = 0; i < page.length; i++) controller.enqueue(values.keptNode(page[i]!));
        },
        waiters: () => this.#store.waiters.set,
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
    await this.verifyDraft(this.#values.rawNode(node));
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
    await this.#rules.check(checkRaw(draft));
  }

  /**
   * Adds nodes made elsewhere (by a peer, a backup, an export), checking each one as {@link Hyperlog.verifyDraft}
   * does and requiring its links to be in the log or earlier in `nodes`. Nodes the log already has are skipped.
   * Nodes are stored in order up to the first bad one; then the call rejects with that node's error, having stored
   * the good nodes before it and nothing of the bad one. Resolves with the nodes it stored, with their new change
   * numbers. Replication is built on this.
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
  ingest(nodes: readonly RawNode[]): Promise<StoredNode[]> {
    return this.#writes.ingest(nodes, false);
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
    return this.#store.waitForLength(length, signal);
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
    if (this.#store.closed || this.#closing !== undefined) throw new ClosedError();
    const view = new View(this, options);
    this.#views.add(view);
    return view;
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
    this.#writes.close();
    this.#closing ??= (async () => {
      await this.#opening.catch(() => {});
      await Promise.allSettled([...this.#views].map((view) => view.close()));
      await this.#writes.drained();
      await this.#store.close();
      // Live read streams get what was committed before the close and they had not read yet.
      await Promise.allSettled([...this.#liveStreams].map((finalize) => finalize()));
      await this.storage.close();
    })();
    return this.#closing;
  }

  /** Adds an event listener (`preadd`, `add` or `reject`); see the class doc. */
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    this.#events.added(type, listener);
    super.addEventListener(type, listener, options);
  }

  /** Removes an event listener. */
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void {
    this.#events.removed(type, listener);
    super.removeEventListener(type, listener, options);
  }
}
