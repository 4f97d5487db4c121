/**
 * A log's store engine: the state of what is stored (length, key index) and the write path, under one mutex:
 * which drafts are new, whether their links are present, change numbers, one atomic commit, `preadd` and `add`
 * events, and waking whoever waits for the log to grow.
 *
 * @module
 */
import { markChecked, unmarkChecked } from "./checked-commits.ts";
import { ClosedError, MissingLinksError, StorageConflictError } from "./errors.ts";
import type { Identity } from "./identity.ts";
import { toHex } from "./hex.ts";
import { EAGER_KEYS, KeyIndex } from "./key-index.ts";
import { KeyPlaces } from "./key-places.ts";
import { type Draft, makeDraft, NO_LINKS } from "./log-checks.ts";
import { type LogEvents, Waiters } from "./log-events.ts";
import { signDrafts } from "./log-signatures.ts";
import { type Cacheable, type LogValues, renumbered } from "./log-values.ts";
import { Mutex } from "./mutex.ts";
import type { Node, StoredNode } from "./node.ts";
import type { Storage } from "./storage.ts";

/** What the caller of `LogStore.#store` knows about its drafts (see there). */
type Known = typeof CHECK | typeof LINKS_STORED;
const CHECK = 0;
const LINKS_STORED = 1;

/** What `LogStore.#store` did (see there). */
interface Stored {
  /** For each draft considered, the node it is stored as (none when the call asked for no results). */
  results: StoredNode[];
  /** The nodes this call stored. */
  fresh: StoredNode[];
}

/** What `LogStore.#plan` found out before a commit (see there). */
interface Plan {
  /** The nodes to commit. */
  proposed: Cacheable[];
  /** For each draft considered (those before the first with a missing link), its node in `proposed`, or -1. */
  freshOf: number[];
  /** For each draft considered, whether it is the first of its key in the call. */
  first: boolean[];
  /** The missing links of the first draft that has some (then the drafts from it on are not considered). */
  missing: string[];
}

/** At most this many keys of the last commit (its newest) are kept as known stored (see `LogStore.#recent`). */
const RECENT_KEYS = 8192;

/** The last open in progress per storage object (see `LogStore.open`). */
const OPENING = new WeakMap<Storage, Promise<void>>();

/** The store engine of one log (see the module doc); the log holds one and owns the API around it. */
export class LogStore<T> {
  /** The storage backend. */
  readonly storage: Storage;
  /** Writes (and refreshes) run one at a time under it. */
  readonly mutex: Mutex = new Mutex();
  /** The log's stable id, kept in storage; known once open. */
  id: string | undefined;
  /** The number of nodes stored (the highest change number). */
  length = 0;
  /** Set once the log has closed: writes then throw a `ClosedError`. */
  closed = false;
  /** Whoever waits for the log to grow or close. */
  readonly waiters: Waiters = new Waiters();
  readonly #events: LogEvents;
  readonly #values: LogValues<T>;
  readonly #ready: () => Promise<void>;
  #keyIndex: KeyIndex | undefined;
  /**
   * The nodes of the last commit, all stored once it resolved: the next page a peer sends links to them, and they
   * are known stored without a lookup. Their keys (the newest {@link RECENT_KEYS}) go into `#recent` only when a
   * call first looks a link up there: a local batch without links, or an append, builds no table.
   */
  #recentNodes: readonly StoredNode[] = [];
  #recent: KeyPlaces | undefined;
  #keyIndexBuilt: Promise<KeyIndex> | undefined;
  #unwatch: (() => void) | undefined;

  constructor(storage: Storage, events: LogEvents, values: LogValues<T>, ready: () => Promise<void>) {
    this.storage = storage;
    this.#events = events;
    this.#values = values;
    this.#ready = ready;
  }

  /**
   * Opens the storage, reads (or creates) the id and reads the length. `changed` is called when other writers of a
   * shared store commit (`Storage.watch`).
   */
  open(changed: () => void): Promise<void> {
    // Logs opened on the same storage object open one after the other, so they agree on the id it keeps.
    const previous = OPENING.get(this.storage) ?? Promise.resolve();
    const opened = previous.catch(() => {}).then(async () => {
      await this.storage.open();
      let id = await this.storage.getMeta("id");
      if (id === undefined) {
        id = toHex(crypto.getRandomValues(new Uint8Array(16)));
        await this.storage.setMeta("id", id);
      }
      this.id = id;
      this.length = await this.storage.length();
      // A store that other writers share (Deno KV) says when they commit: their nodes then reach this log.
      this.#unwatch = this.storage.watch?.(changed);
    });
    OPENING.set(this.storage, opened);
    return opened;
  }

  /** Throws a `ClosedError` once the log has closed. */
  assertOpen(): void {
    if (this.closed) throw new ClosedError();
  }

  /** Stores a local node that links to every current head, signed by `identity` if given. */
  append(encoded: Uint8Array | string, identity: Identity | undefined): Promise<Node<T>> {
    return this.mutex.run(async () => {
      this.assertOpen();
      const draft = makeDraft((await this.storage.heads()).sort(), encoded, identity?.publicKey);
      if (identity !== undefined) await signDrafts([draft], identity);
      // The links are the heads just read under the mutex, so they are stored; and the node cannot be, since a
      // stored node that links to every head would have made them stop being heads.
      return (await this.#storeLocal([draft], LINKS_STORED))[0]!;
    });
  }

  /** Stores local drafts (signed already, links fixed) atomically; resolves with their nodes. */
  addDrafts(drafts: readonly Draft[]): Promise<Node<T>[]> {
    return this.mutex.run(() => this.#storeLocal(drafts, CHECK));
  }

  /**
   * Stores checked drafts made elsewhere, in order, up to the first with a missing link (then throws a
   * `MissingLinksError` having stored the ones before it); resolves with the nodes stored.
   */
  async ingest(drafts: readonly Draft[]): Promise<StoredNode[]> {
    return (await this.mutex.run(() => this.#store(drafts, true, CHECK, false))).fresh;
  }

  /**
   * Reads the length again from storage, for a store that other writers share: the nodes committed since fire
   * `add` events and wake the waiters. Resolves with the length.
   */
  async refresh(): Promise<number> {
    return await this.mutex.run(async () => {
      const length = await this.storage.length();
      if (length <= this.length) return this.length;
      const fresh: StoredNode[] = [];
      if (this.#events.listening("add")) {
        for (let since = this.length; since < length;) {
          const page = await this.storage.read({ since, until: length, limit: 1000, reverse: false });
          if (page.length === 0) break;
          fresh.push(...page);
          since = page[page.length - 1]!.change;
        }
      }
      this.length = length;
      // Commits made elsewhere: the key index is rebuilt when next needed.
      this.#keyIndex = undefined;
      this.#keyIndexBuilt = undefined;
      this.waiters.wake();
      for (const node of fresh) this.#events.emit("add", this.#values.toNode(node));
      return length;
    });
  }

  /** Reads up to `limit` decoded nodes after change `since`, in change order. */
  async readNodes(since: number, limit: number): Promise<Node<T>[]> {
    const page = await this.storage.read({ since, until: Infinity, limit, reverse: false });
    const nodes: Node<T>[] = new Array(page.length);
    for (let i = 0; i < page.length; i++) nodes[i] = this.#values.toNode(page[i]!);
    return nodes;
  }

  /**
   * The index of every key of the log (see `LogInternals.keyIndex` in `internal.ts`): built once, then kept up to date on commit; with `build`
   * false, only if it is built already.
   */
  keyIndex(build: boolean): Promise<KeyIndex | undefined> {
    if (!build && this.#keyIndexBuilt === undefined) return Promise.resolve(undefined);
    this.#keyIndexBuilt ??= (async () => {
      await this.#ready();
      const index = new KeyIndex();
      // Commits from now on add to it; the read below covers what was there before.
      this.#keyIndex = index;
      const until = this.length;
      let cursor = 0;
      while (cursor < until) {
        const page = await this.storage.read({ since: cursor, until, limit: 1024, reverse: false });
        if (page.length === 0) break;
        // Each key once: the pages hold what was committed before the index took commits (which add the rest).
        for (const node of page) index.addNew(node.key);
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

  /** Resolves once the log holds more than `length` nodes, or has closed, or `signal` aborts. */
  waitForLength(length: number, signal?: AbortSignal): Promise<void> {
    if (this.length > length || this.closed || signal?.aborted === true) return Promise.resolve();
    return this.waiters.wait(signal);
  }

  /** Stops watching the storage, waits for the writes under the mutex, marks the log closed, wakes every waiter. */
  async close(): Promise<void> {
    this.#unwatch?.();
    await this.mutex.idle();
    this.closed = true;
    this.waiters.wake();
  }

  /**
   * Under the mutex: stores the drafts that are new, in order, in one commit. A draft's links must be stored or
   * belong to an earlier draft. When `partial` is false a draft with a missing link fails the whole call; when true
   * the drafts before it are stored and then the call fails (what a receiving peer does). Returns, for each draft
   * that was considered, its stored node (unless `withResults` is false: a draft stored before costs a `get`), and
   * the nodes this call stored; with `local` (a local write), the API node of each draft instead.
   *
   * Which drafts are new is what the commit answers (`Storage.commit` skips stored keys and repeats, and says so):
   * keys are looked up before it only when `preadd` listeners must hear of the new nodes first. Links are looked up
   * only when they do not point to an earlier draft of the call, so a batch of new documents, or a page of nodes
   * that come ancestors first, commits in one round trip; `known` = {@link LINKS_STORED} (an append of the heads
   * just read) looks nothing up. Drafts without links (a `batch` of documents, the common bulk write) or whose links
   * are known stored, with no `preadd` listener, have nothing to look up or check before the commit: they are
   * proposed as they come, with no plan (see {@link #plan}): no map, set, closure or index of the drafts is made.
   */
  #store(drafts: readonly Draft[], partial: boolean, known: Known, withResults: boolean): Promise<Stored>;
  #store(drafts: readonly Draft[], partial: false, known: Known, withResults: true, local: true): Promise<Node<T>[]>;
  async #store(
    drafts: readonly Draft[],
    partial: boolean,
    known: Known,
    withResults: boolean,
    local = false,
  ): Promise<Stored | Node<T>[]> {
    this.assertOpen();
    const count = drafts.length;
    let linked = false;
    for (let i = 0; i < count && !linked; i++) linked = drafts[i]!.links.length > 0;
    const announce = this.#events.listening("preadd");
    // Links known to be stored (an append of the heads just read) need no plan either.
    const plan = announce || (linked && known !== LINKS_STORED)
      ? await this.#plan(drafts, partial, known, announce)
      : undefined;
    const proposed = plan === undefined ? this.#propose(drafts) : plan.proposed;
    const end = plan === undefined ? count : plan.freshOf.length;
    let report: boolean[];
    try {
      report = await this.#startCommit(proposed);
    } catch (err) {
      await this.#commitFailed(err);
      throw err;
    }
    // The node each proposed one is stored as, or `undefined` when the commit found it stored already.
    const committed = this.#committed(proposed, report);
    const freshOf = plan?.freshOf;
    // Without `withResults` (ingest), a draft stored before is not read back: a peer resending nodes costs a lookup.
    let before: StoredNode[] | undefined;
    if (withResults) {
      for (const i of this.#storedBefore(end, committed, freshOf)) {
        (before ??= new Array(end))[i] = (await this.storage.get(drafts[i]!.key))!;
      }
    }
    // A local write's nodes are decoded here (the API nodes, in place of the stored ones), not by an async caller:
    // an append is one promise hop shorter. The loops over the drafts are in plain methods, which every engine
    // compiles as it does any function (loops in an async function are compiled less well by some).
    const results = withResults ? this.#results(drafts, end, committed, before, freshOf, local) : [];
    if (this.#events.listening("add")) {
      for (let i = 0; i < end; i++) {
        const at = freshOf === undefined ? i : freshOf[i]!;
        // A repeated key is announced once: without a plan the commit reports the repeats as not new.
        const node = at >= 0 && (plan === undefined || plan.first[i]) ? committed[at] : undefined;
        // Decoded already for a local write (see above), and cached in the node when immutable.
        if (node !== undefined) this.#events.emit("add", this.#values.decodeDraft(drafts[i]!, node));
      }
    }
    if (plan !== undefined && plan.missing.length > 0) throw new MissingLinksError(plan.missing);
    if (local) return results as Node<T>[];
    let fresh = committed as StoredNode[];
    if (committed.includes(undefined)) fresh = committed.filter((node) => node !== undefined);
    return { results: results as StoredNode[], fresh };
  }

  /** The nodes proposed for drafts without a plan: draft `i` is node `i`, numbered on from the length. */
  #propose(drafts: readonly Draft[]): Cacheable[] {
    const proposed: Cacheable[] = new Array(drafts.length);
    for (let i = 0; i < drafts.length; i++) proposed[i] = this.#freshNode(drafts[i]!, this.length + i + 1);
    return proposed;
  }

  /** The drafts (of the first `end`) whose node the commit did not store: stored before, or repeated. */
  #storedBefore(
    end: number,
    committed: readonly (StoredNode | undefined)[],
    freshOf: readonly number[] | undefined,
  ): number[] {
    const out: number[] = [];
    for (let i = 0; i < end; i++) {
      const at = freshOf === undefined ? i : freshOf[i]!;
      if (at < 0 || committed[at] === undefined) out.push(i);
    }
    return out;
  }

  /**
   * For each of the first `end` drafts, its stored node (committed now, or read back `before`), or with `local` its
   * API node: for a json node the log made, the one its stored object holds (see `lazyStoredObject`).
   */
  #results(
    drafts: readonly Draft[],
    end: number,
    committed: readonly (StoredNode | undefined)[],
    before: readonly StoredNode[] | undefined,
    freshOf: readonly number[] | undefined,
    local: boolean,
  ): (StoredNode | Node<T>)[] {
    const results: (StoredNode | Node<T>)[] = new Array(end);
    for (let i = 0; i < end; i++) {
      const at = freshOf === undefined ? i : freshOf[i]!;
      const node = (at >= 0 ? committed[at] : undefined) ?? before![i]!;
      results[i] = local ? this.#values.decodeDraft(drafts[i]!, node) : node;
    }
    return results;
  }

  /**
   * {@link #store}'s look-ups and checks before the commit, for drafts with links or when `preadd` listeners must
   * hear of the new nodes: which drafts repeat a key, which links are stored (throws a `MissingLinksError` naming
   * every missing link unless `partial`), the nodes to propose (announced to `preadd` listeners), and for each draft
   * considered where its node is among them.
   */
  async #plan(drafts: readonly Draft[], partial: boolean, known: Known, announce: boolean): Promise<Plan> {
    const count = drafts.length;
    // The first draft of each key (a key may come twice in a call), to check links within the call and to announce
    // each new node once.
    const firstAt = count === 1 ? undefined : new KeyPlaces(drafts);
    const only = count === 1 ? drafts[0]!.key : undefined;
    /** Whether a draft before draft `i` has `key`. */
    const earlier = (key: string, i: number): boolean => {
      const at = firstAt === undefined ? (key === only ? 0 : -1) : firstAt.first(key);
      return at >= 0 && at < i;
    };
    const firstIndex = (i: number): number => firstAt === undefined ? i : firstAt.first(drafts[i]!.key);
    const unchecked = known === LINKS_STORED;
    let stored: Set<string> | undefined;
    const probe: string[] = [];
    /** The drafts with a link that no earlier draft of the call satisfies: only they can miss one. */
    const outside: number[] = [];
    if (announce) { for (let i = 0; i < count; i++) if (firstIndex(i) === i) probe.push(drafts[i]!.key); }
    if (!unchecked) {
      // Links that no earlier draft of the call satisfies (to a later draft, or outside the call), unless known to
      // be stored: in the key index, or stored by the last commit (nodes are never removed).
      const linkSeen = new Set<string>();
      const index = this.#keyIndex;
      for (let i = 0; i < count; i++) {
        const links = drafts[i]!.links;
        let within = true;
        for (let j = 0; j < links.length; j++) {
          const link = links[j]!;
          if (earlier(link, i)) continue;
          if (within) outside.push(i);
          within = false;
          if (linkSeen.has(link)) continue;
          linkSeen.add(link);
          if (this.#recentKeys().first(link) >= 0 || index?.has(link) === true) (stored ??= new Set()).add(link);
          else probe.push(link);
        }
      }
    }
    if (probe.length > 0) {
      const present = await this.storage.has(probe);
      for (let i = 0; i < probe.length; i++) {
        if (present[i]) (stored ??= new Set()).add(probe[i]!);
      }
    }
    const missingOf = (i: number): string[] => {
      const out: string[] = [];
      if (unchecked) return out;
      for (const link of drafts[i]!.links) {
        if (!stored?.has(link) && !earlier(link, i)) out.push(link);
      }
      return out;
    };

    let end = count;
    let missing: string[] = [];
    for (const i of outside) {
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

    // For each draft: the index of its node in `proposed`, or -1 when it is known to be stored before this call.
    const proposed: Cacheable[] = [];
    const freshOf: number[] = new Array(end);
    const first: boolean[] = new Array(end);
    let change = this.length;
    // Drafts known stored: with `preadd` listeners every key was looked up; otherwise the commit says which are
    // new (a draft's key is in `stored` only when another draft links to it, and hashing every key to ask costs
    // more than the commit's skip of the rare resent one).
    const storedDrafts = announce ? stored : undefined;
    for (let i = 0; i < end; i++) {
      const draft = drafts[i]!;
      const at = firstIndex(i);
      first[i] = at === i;
      if (storedDrafts?.has(draft.key)) {
        freshOf[i] = -1;
        continue;
      }
      if (at < i) {
        freshOf[i] = freshOf[at]!;
        continue;
      }
      freshOf[i] = proposed.length;
      proposed.push(this.#freshNode(draft, ++change));
    }
    if (announce) {
      for (let i = 0; i < end; i++) {
        if (freshOf[i]! >= 0 && first[i]) {
          this.#events.emit("preadd", this.#values.decodeDraft(drafts[i]!, proposed[freshOf[i]!]!));
        }
      }
    }
    return { proposed, freshOf, first, missing };
  }

  /** The stored node of a draft, with its change number: its own frozen copy of the links, and the cache slots. */
  #freshNode(draft: Draft, change: number): Cacheable {
    const links = draft.links.length === 0 ? NO_LINKS : Object.freeze(draft.links.slice());
    return this.#values.storedOf(draft, links, change);
  }

  /** Under the mutex: stores local drafts atomically and returns their nodes. */
  #storeLocal(drafts: readonly Draft[], known: Known): Promise<Node<T>[]> {
    return this.#store(drafts, false, known, true, true);
  }

  /** The keys of the last commit's newest {@link RECENT_KEYS} nodes (see `#recentNodes`). */
  #recentKeys(): KeyPlaces {
    if (this.#recent !== undefined) return this.#recent;
    const nodes = this.#recentNodes;
    return this.#recent = new KeyPlaces(nodes, Math.max(0, nodes.length - RECENT_KEYS));
  }

  /**
   * Starts the commit of nodes numbered on from the length: resolves with the storage's report (see
   * {@link #committed}). Not an async function of its own: `#store` awaits the storage's promise itself, one promise
   * hop less per write.
   */
  #startCommit(nodes: readonly StoredNode[]): Promise<boolean[]> {
    if (nodes.length === 0) return Promise.resolve([]);
    markChecked(nodes);
    try {
      return this.storage.commit(nodes);
    } finally {
      unmarkChecked(nodes);
    }
  }

  /** After a failed commit: a conflict (another writer on the same storage) makes the log read its length again. */
  async #commitFailed(err: unknown): Promise<void> {
    if (err instanceof StorageConflictError) {
      this.length = await this.storage.length();
      // Another writer on the same storage: the key index is rebuilt when next needed.
      this.#keyIndex = undefined;
      this.#keyIndexBuilt = undefined;
    }
  }

  /**
   * After the storage committed nodes numbered on from the length (`report` says which were new): returns, for
   * each, the node stored, or `undefined` when the storage had it already (or it repeats an earlier one): the new
   * nodes after a skipped one take lower change numbers, in copies (their decode cache slots come along).
   */
  #committed(nodes: readonly StoredNode[], report: readonly boolean[]): (StoredNode | undefined)[] {
    if (nodes.length === 0) return [];
    let committed: (StoredNode | undefined)[] = nodes as StoredNode[];
    let added = nodes.length;
    if (report.includes(false)) {
      committed = new Array(nodes.length);
      added = 0;
      for (let i = 0; i < nodes.length; i++) {
        if (!report[i]) continue;
        const node = nodes[i]!;
        const change = this.length + ++added;
        committed[i] = node.change === change ? node : renumbered(node as Cacheable, change);
      }
    }
    this.length += added;
    // Every node of the commit is stored now, new or not.
    this.#recentNodes = nodes;
    this.#recent = undefined;
    // The key index moves with the length, in the same step: a session reads both at once.
    const index = this.#keyIndex;
    if (index !== undefined) {
      // New keys (the storage said so; an index being built reads only what was committed before it began).
      for (const node of committed) if (node !== undefined) index.addNew(node.key);
      // Grown past what is kept for the asking, and no reconciliation needed it: built again when one does.
      if (!index.keep && Math.max(index.size, index.coming) > EAGER_KEYS) {
        this.#keyIndex = undefined;
        this.#keyIndexBuilt = undefined;
      }
    }
    this.waiters.wake();
    return committed;
  }
}
