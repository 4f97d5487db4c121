/**
 * A log's writes: local adds (`add`, `append`, `batch`: encode, link, sign) and nodes made elsewhere (`ingest`:
 * check, verify), each tracked so that `close()` waits for the writes called before it and refuses later ones; a
 * refused write fires a `reject` event. The store engine (log-store.ts) then stores what they give it.
 *
 * @module
 */
import { ClosedError } from "./errors.ts";
import type { Identity } from "./identity.ts";
import { batchLinks, checkLinks, type Draft, makeDraft } from "./log-checks.ts";
import type { LogEvents } from "./log-events.ts";
import { type SignatureRules, signDrafts } from "./log-signatures.ts";
import type { LogStore } from "./log-store.ts";
import type { BatchDoc } from "./log-types.ts";
import type { LogValues } from "./log-values.ts";
import type { Node, RawNode, StoredNode } from "./node.ts";

/** What a log's writes need of it. */
export interface WriteContext<T> {
  store: LogStore<T>;
  values: LogValues<T>;
  rules: SignatureRules;
  events: LogEvents;
  identity: Identity | undefined;
  /** Resolves once the log is open; rejects once it is closed. */
  ready(): Promise<void>;
}

/** The writes of one log (see the module doc). */
export class LogWrites<T> {
  readonly #store: LogStore<T>;
  readonly #values: LogValues<T>;
  readonly #rules: SignatureRules;
  readonly #events: LogEvents;
  readonly #identity: Identity | undefined;
  readonly #ready: () => Promise<void>;
  /** Set by `close()`: later writes reject. */
  #closing = false;
  /** Writes called before `close()` that have not settled yet, and what wakes `close()` when none is left. */
  #writing = 0;
  #drained: (() => void) | undefined;
  readonly #settled = (): void => {
    if (--this.#writing === 0 && this.#drained !== undefined) {
      this.#drained();
      this.#drained = undefined;
    }
  };

  constructor(context: WriteContext<T>) {
    this.#store = context.store;
    this.#values = context.values;
    this.#rules = context.rules;
    this.#events = context.events;
    this.#identity = context.identity;
    this.#ready = context.ready;
  }

  /** Refuses the writes called from now on. */
  close(): void {
    this.#closing = true;
  }

  /** Resolves once the writes called before `close()` have settled. */
  async drained(): Promise<void> {
    if (this.#writing > 0) await new Promise<void>((resolve) => this.#drained = resolve);
  }

  /** `log.add`: a node with the given links and value. */
  add(links: readonly string[] | null, value: T): Promise<Node<T>> {
    return this.#track(async () => {
      const draft = this.#draft(checkLinks(links, "add"), this.#values.encode(value, "add"));
      const nodes = await this.#addDrafts([draft]);
      return nodes[0]!;
    });
  }

  /** `log.append`: a node that links to every current head. */
  append(value: T): Promise<Node<T>> {
    return this.#track(() => this.#append(value));
  }

  async #append(value: T): Promise<Node<T>> {
    const encoded = this.#values.encode(value, "append");
    try {
      if (!this.#canWriteNow()) await this.#checkCanWrite();
      return await this.#store.append(encoded, this.#identity);
    } catch (err) {
      this.#events.reject(err as Error, undefined);
      throw err;
    }
  }

  /** `log.batch`: many nodes, atomically. */
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
      const links = checkLinks(batchLinks(doc.links, i, drafts), "batch document", i);
      drafts.push(this.#draft(links, this.#values.encode(doc.value, "batch document", i)));
    }
    return await this.#addDrafts(drafts);
  }

  /**
   * `log.ingest`: nodes made elsewhere, stored in order up to the first bad one (see there); `fromWire` when the
   * wire decoder made them.
   */
  ingest(nodes: readonly RawNode[], fromWire: boolean): Promise<StoredNode[]> {
    return this.#track(async () => {
      if (!Array.isArray(nodes)) throw new TypeError("ingest takes an array of nodes");
      await this.#ready();
      const { drafts, failure } = await this.#rules.checkNodes(nodes, fromWire);
      let fresh: StoredNode[];
      try {
        fresh = await this.#store.ingest(drafts);
      } catch (error) {
        this.#events.reject(error as Error, undefined);
        throw error;
      }
      if (failure !== undefined) {
        this.#events.reject(failure.error, failure.key);
        throw failure.error;
      }
      return fresh;
    });
  }

  #draft(links: readonly string[], value: Uint8Array | string): Draft {
    return makeDraft(links, value, this.#identity?.publicKey);
  }

  /** Whether a local write may go ahead without waiting: the log is open and needs no signature checks. */
  #canWriteNow(): boolean {
    return this.#store.id !== undefined && !this.#store.closed && !this.#rules.required;
  }

  async #checkCanWrite(): Promise<void> {
    await this.#ready();
    this.#rules.checkWriter(this.#identity);
  }

  /** Signs and stores drafts whose links are fixed; emits `reject` and rethrows on failure. */
  async #addDrafts(drafts: Draft[]): Promise<Node<T>[]> {
    try {
      if (!this.#canWriteNow()) await this.#checkCanWrite();
      if (this.#identity !== undefined) await signDrafts(drafts, this.#identity);
      return await this.#store.addDrafts(drafts);
    } catch (err) {
      this.#events.reject(err as Error, undefined);
      throw err;
    }
  }

  /** Runs a write that was called before `close()`: close waits for it. Writes called after `close()` reject. */
  #track<R>(write: () => Promise<R>): Promise<R> {
    if (this.#closing) return Promise.reject(new ClosedError());
    const promise = write();
    this.#writing++;
    promise.then(this.#settled, this.#settled);
    return promise;
  }
}
