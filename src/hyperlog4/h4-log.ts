/**
 * A new log seen the way hyperlog 4 sees it: every node with its writer's `log` id and `seq`, nodes written with
 * hyperlog 4's rules (a node already stored gets a new entry in the writer's log; a remote node must come next in
 * its log), and hyperlog 4's opaque `identity`/`signature` bytes kept beside the node. The compat entry's
 * `hyperlog()` and the hyperlog 4 replication protocol are built on it; the nodes themselves are stored by the new
 * log (`Hyperlog.ingest`), which checks every key against its content and every link as usual.
 *
 * @module
 */
import { HyperlogError } from "../errors.ts";
import type { Hyperlog } from "../log.ts";
import { Mutex } from "../mutex.ts";
import { computeKey, type StoredNode } from "../node.ts";
import { H4LogIndex, type H4Place, type H4Record } from "./log-index.ts";
import type { H4Node } from "./messages.ts";

/**
 * An error that hyperlog 4 callers test with `err.notFound` (a missing node or link, a node out of log order).
 *
 * @example
 * ```ts
 * import { H4NotFoundError } from "./h4-log.ts";
 * const err = new H4NotFoundError("Key not found in database [x]");
 * console.assert(err.notFound && err.status === 404 && err.name === "NotFoundError");
 * ```
 */
export class H4NotFoundError extends HyperlogError {
  /** Always true: hyperlog 4 callers test this. */
  readonly notFound = true;
  /** 404, as levelup's NotFoundError has. */
  readonly status = 404;
  /** An error with `message`. */
  constructor(message: string) {
    super(message);
    this.name = "NotFoundError";
  }
}

/**
 * How a write of {@link H4Log.write} is placed and checked.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../log.ts";
 * import { H4Log, H4NotFoundError, type H4WriteOptions } from "./h4-log.ts";
 * const h4 = new H4Log(new Hyperlog());
 * const draft = () => h4.draft([], new TextEncoder().encode("hi"));
 * const early: H4WriteOptions = { log: "peer", seq: 2, bubble: true }; // "peer" is at 0: 1 comes next
 * console.assert((await h4.write([draft()], early).catch((e) => e)) instanceof H4NotFoundError);
 * const [node] = await h4.write([draft()], { log: "peer", seq: 1 });
 * console.assert(node!.log === "peer" && node!.seq === 1);
 * ```
 */
export interface H4WriteOptions {
  /** The log to place the nodes in (the local log by default). */
  log?: string | undefined;
  /** For a remote node: the seq it has in its log, which must be the next one here. */
  seq?: number | undefined;
  /** For a remote node: the key it claims, which must match its content. */
  hash?: string | undefined;
  /** Fail the call on the first bad node (what hyperlog 4 does for a single node) rather than skip it. */
  bubble?: boolean | undefined;
  /** Call the `preadd` hook for each draft now and the `add` hook for each node written (remote writes). */
  events?: boolean | undefined;
  /** Link the (single) draft to the log's current heads, read under the write lock (hyperlog 4's `append`). */
  heads?: boolean | undefined;
}

/**
 * Callbacks that carry hyperlog 4's `sign`/`verify` options and its `preadd`/`add`/`reject` events.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../log.ts";
 * import { H4Log, type H4Hooks } from "./h4-log.ts";
 * const rejected: string[] = [];
 * const hooks: H4Hooks = { verify: async () => false, reject: (node) => void rejected.push(node.key) };
 * const h4 = new H4Log(new Hyperlog(), { hooks });
 * const written = await h4.write([h4.draft([], new TextEncoder().encode("forged"))], { log: "peer" });
 * console.assert(written.length === 0 && rejected.length === 1 && h4.log.length === 0);
 * ```
 */
export interface H4Hooks {
  /** Signs a local node: returns the signature bytes (and the node's identity is kept). */
  sign?(node: H4Node): Promise<Uint8Array>;
  /** Checks a remote node: resolves false for an invalid signature. */
  verify?(node: H4Node): Promise<boolean>;
  /** A node that was not stored. */
  reject?(node: H4Node): void;
  /** A draft about to be written (for writes with `events`), before its key is known. */
  preadd?(draft: H4Draft): void;
  /** A node written (for writes with `events`). */
  add?(node: H4Node): void;
}

/** A pre-node as hyperlog 4's `preadd` shows it: no key yet. */
export interface H4Draft {
  /** The writer's log. */
  log: string;
  /** Always null before hashing. */
  key: string | null;
  /** The encoded value. */
  value: Uint8Array;
  /** The keys it links to. */
  links: string[];
  /** Opaque identity bytes. */
  identity: Uint8Array | null;
  /** Opaque signature bytes. */
  signature: Uint8Array | null;
}

/**
 * The hyperlog 4 view of a new log (see the module doc).
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../log.ts";
 * import { H4Log } from "./h4-log.ts";
 * const h4 = new H4Log(new Hyperlog());
 * await h4.ready();
 * const [node] = await h4.write([h4.draft([], new TextEncoder().encode("hello"))], {});
 * console.assert(node!.seq === 1 && node!.log === h4.id);
 * ```
 */
export class H4Log {
  /** The new log underneath. */
  // deno-lint-ignore no-explicit-any
  readonly log: Hyperlog<any>;
  /** hyperlog 4's hooks. */
  readonly hooks: H4Hooks;
  readonly #mutex = new Mutex();
  readonly #opening: Promise<void>;
  readonly #wanted: string | undefined;
  #id: string | undefined;
  #index: H4LogIndex | undefined;
  #changes = 0;
  #waiters = new Set<() => void>();

  /** Wraps `log`; `id` overrides the local log id (the new log's id by default). */
  // deno-lint-ignore no-explicit-any
  constructor(log: Hyperlog<any>, options: { id?: string | undefined; hooks?: H4Hooks } = {}) {
    this.log = log;
    this.hooks = options.hooks ?? {};
    this.#wanted = options.id;
    this.#opening = (async () => {
      await log.ready();
      this.#id = this.#wanted ?? log.id;
      this.#index = new H4LogIndex(log.storage, this.#id);
      await this.#mutex.run(() => this.#catchUp());
    })();
    this.#opening.catch(() => {});
  }

  /** Resolves once the log is open and indexed. */
  ready(): Promise<void> {
    return this.#opening;
  }

  /** The local log id (after `ready`). */
  get id(): string {
    if (this.#id === undefined) throw new HyperlogError("The log is not open yet; wait for ready()");
    return this.#id;
  }

  /** The id, or null before `ready` (hyperlog 4's `log.id`). */
  get idOrNull(): string | null {
    return this.#id ?? null;
  }

  /** The index (after `ready`). */
  get index(): H4LogIndex {
    if (this.#index === undefined) throw new HyperlogError("The log is not open yet; wait for ready()");
    return this.#index;
  }

  /** The highest change number indexed (hyperlog 4's `log.changes`). */
  get changes(): number {
    return this.#changes;
  }

  /** Runs `fn` under the write lock (hyperlog 4's `log.lock`). */
  lock<R>(fn: () => Promise<R>): Promise<R> {
    return this.#mutex.run(fn);
  }

  async #catchUp(): Promise<void> {
    if (this.#changes === this.log.length && this.#changes !== 0) return;
    await this.index.catchUp();
    this.#setChanges(await this.log.storage.length());
  }

  #setChanges(changes: number): void {
    if (changes <= this.#changes) return;
    this.#changes = changes;
    const waiters = this.#waiters;
    this.#waiters = new Set();
    for (const wake of waiters) wake();
  }

  /** Indexes nodes the new log got another way (under the lock). */
  async sync(): Promise<void> {
    await this.ready();
    if (this.log.length > this.#changes) await this.#mutex.run(() => this.#catchUp());
  }

  /** Resolves once `changes` is above `changes`, or `signal` aborts. */
  waitForChange(changes: number, signal?: AbortSignal): Promise<void> {
    if (this.#changes > changes || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        this.#waiters.delete(wake);
        resolve();
      };
      this.#waiters.add(wake);
      signal?.addEventListener("abort", wake, { once: true });
      // Nodes added through the new API are indexed when they land.
      this.log.waitForLength(this.#changes, signal).then(() => this.sync()).catch(() => {});
    });
  }

  /** A pre-node for `write` (before `ready`, its log is filled in by `write`). */
  draft(links: readonly string[], value: Uint8Array, identity: Uint8Array | null = null): H4Draft {
    return { log: this.#id ?? "", key: null, value, links: [...links], identity, signature: null };
  }

  /** The node with its place, or `undefined`. */
  async node(key: string): Promise<H4Node | undefined> {
    await this.ready();
    const stored = await this.log.storage.get(key);
    if (stored === undefined) return undefined;
    let place = await this.index.place(key);
    if (place === undefined) {
      await this.sync();
      place = await this.index.place(key);
    }
    return toH4(stored, place ?? { log: this.id, seq: 0 });
  }

  /** A page of nodes in change order (`since < change < until`, hyperlog 4's bounds), with their places. */
  async read(since: number, until: number, limit: number, reverse: boolean): Promise<H4Node[]> {
    await this.sync();
    const page = await this.log.storage.read({
      since,
      until: Math.min(until - 1, this.#changes),
      limit,
      reverse,
    });
    const out: H4Node[] = [];
    for (const stored of page) out.push(toH4(stored, (await this.index.place(stored.key)) ?? { log: this.id, seq: 0 }));
    return out;
  }

  /**
   * Writes drafts with hyperlog 4's rules (see the module doc). Resolves with the nodes written (a draft that
   * duplicates an earlier one of the call is dropped, as are bad drafts unless `bubble`); rejects with the first
   * bad draft's error when `bubble` is set, storing none of the call.
   */
  async write(drafts: readonly H4Draft[], options: H4WriteOptions): Promise<H4Node[]> {
    if (options.events) { for (const draft of drafts) this.hooks.preadd?.(draft); }
    await this.ready();
    return await this.#mutex.run(async () => {
      await this.#catchUp();
      if (options.heads) { for (const draft of drafts) draft.links = (await this.log.storage.heads()).sort(); }
      const index = this.index;
      const logId = options.log ?? this.id;
      let seq = await index.head(logId);
      const good: H4Node[] = [];
      const added = new Map<string, H4Node>();
      const reject = (node: H4Draft | H4Node, err: Error) => {
        this.hooks.reject?.(node as H4Node);
        if (options.bubble) throw err;
      };
      const fresh: H4Node[] = [];
      for (const draft of drafts) {
        if (!draft.log) draft.log = logId;
        const key = computeKey(draft.links, draft.value);
        const node: H4Node = {
          change: 0,
          key,
          log: logId,
          seq: 0,
          value: draft.value,
          links: draft.links,
          identity: draft.identity ?? undefined,
          signature: draft.signature ?? undefined,
        };
        if (options.hash !== undefined && key !== options.hash) {
          reject(node, new HyperlogError("Checksum mismatch"));
          continue;
        }
        const present = await this.log.storage.has(draft.links);
        const missing = draft.links.filter((link, i) => !present[i] && !added.has(link));
        if (missing.length > 0) {
          reject(node, new H4NotFoundError(`Key not found in database [${missing[0]}]`));
          continue;
        }
        const clone = await this.log.storage.get(key);
        const earlier = added.get(key);
        if (earlier !== undefined) {
          this.hooks.reject?.(node);
          continue;
        }
        node.seq = seq + 1;
        if (options.seq !== undefined && node.seq !== options.seq) {
          // An entry already at that place for this node is a repeat (a live peer echoing it): nothing to do.
          const there = await index.entry(logId, options.seq);
          if (there !== undefined && there.node === key) {
            if (options.events) this.hooks.reject?.(node);
            continue;
          }
          reject(node, new H4NotFoundError(`Invalid log sequence: ${logId} is at ${seq}, got ${options.seq}`));
          continue;
        }
        node.change = clone !== undefined ? clone.change : this.#changes + fresh.length + 1;
        try {
          if (logId === this.id) {
            if (this.hooks.sign !== undefined && node.signature === undefined) {
              node.signature = await this.hooks.sign(node);
            }
          } else if (this.hooks.verify !== undefined) {
            if (!(await this.hooks.verify(node))) throw new HyperlogError("Invalid signature");
          }
        } catch (err) {
          reject(node, err as Error);
          continue;
        }
        seq = node.seq;
        added.set(key, node);
        good.push(node);
        if (clone === undefined) fresh.push(node);
      }
      if (good.length === 0) return good;
      if (fresh.length > 0) {
        const stored = await this.log.ingest(
          fresh.map((node) => ({ key: node.key, links: node.links, value: node.value })),
        );
        const changes = new Map(stored.map((s) => [s.key, s.change]));
        for (const node of good) node.change = changes.get(node.key) ?? node.change;
      }
      const records: H4Record[] = [];
      for (const node of good) {
        const first = fresh.includes(node);
        const links = await index.logLinks(node.links, node.log);
        const record: H4Record = { key: node.key, change: node.change, log: node.log, seq: node.seq, links, first };
        if (first && node.identity !== undefined) record.identity = node.identity;
        if (first && node.signature !== undefined) record.signature = node.signature;
        records.push(record);
      }
      const length = await this.log.storage.length();
      await index.record(records, length);
      this.#setChanges(length);
      if (options.events) { for (const node of good) this.hooks.add?.(node); }
      return good;
    });
  }

  /** Closes the new log underneath. */
  async close(): Promise<void> {
    await this.#opening.catch(() => {});
    await this.#mutex.idle();
    for (const wake of this.#waiters) wake();
    await this.log.close();
  }
}

/**
 * A stored node with its place, as hyperlog 4 shows it.
 *
 * @example
 * ```ts
 * import { toH4 } from "./h4-log.ts";
 * const node = toH4({ key: "k", links: [], value: new Uint8Array(), change: 1 }, { log: "me", seq: 1 });
 * console.assert(node.log === "me");
 * ```
 */
export function toH4(stored: StoredNode, place: H4Place): H4Node {
  return {
    change: stored.change,
    key: stored.key,
    log: place.log,
    seq: place.seq,
    value: stored.value,
    links: [...stored.links],
    identity: place.identity,
    signature: place.signature,
  };
}
