/**
 * The log's change order as a fresh session sends it (issue 21: a late joiner as fast as the transport allows). A
 * session that sent the log's changes 1 to n in order and received nothing frames node n + 1 the same way whoever
 * its peer is (`NODES_REFS`, see `link-refs.ts`: a link is a reference counted back from the node, or its key when
 * more than `REF_RING` back), so a relay frames each node once for every late joiner, and each one's messages are
 * copies of consecutive framed nodes: no node is read, decoded or encoded again per session. The log is append-only,
 * so nothing invalidates a framed node; the cache holds a prefix of the change order, up to a byte bound, and a
 * session goes on past it (or when it is not pristine) the ordinary way.
 *
 * @module
 */
import { LinkRefs, NODES_REFS } from "./link-refs.ts";
import { LiveFrames } from "./live-frames.ts";
import type { StoredNode } from "./node.ts";
import { nodeWireSize } from "./node-codec.ts";
import { type PageLinks, pageLinksOf } from "./page-links.ts";
import type { ReplicationStats } from "./replicate-types.ts";

/** Nodes framed per run (one read of the log). */
const RUN = 512;
/** What a run's key costs in memory, about (a 64-character string and its slot). */
const KEY_BYTES = 96;

/** Consecutive changes from `first`, framed as a pristine session sends them. */
export interface EncodedRun {
  /** The change of the first node. */
  readonly first: number;
  /** The nodes' keys, in change order. */
  readonly keys: readonly string[];
  /** The framed nodes, one after the other. */
  readonly framed: Uint8Array;
  /** Where node `i` ends in `framed` (it starts where node `i - 1` ends, or at 0). */
  readonly ends: Uint32Array;
  /** Node `i`'s size as plain NODES (what a message's size is cut by). */
  readonly plain: Uint32Array;
}

/** Nodes framed and not yet made into a run. */
interface Tail {
  first: number;
  keys: string[];
  parts: Uint8Array[];
  size: number;
  ends: number[];
  plain: number[];
}

/**
 * What {@link EncodedPages.initial} reads and moves of a session's outbox (`Outbox` in `session-send.ts`, named by
 * shape so that this module and the session's do not import each other).
 */
interface PagesOutbox {
  /** What the session sends in its initial exchange: a range of changes is what the cache can copy. */
  plan:
    | { kind: "range"; since: number; skip: { count: number }; filter?: unknown }
    | { kind: "none" | "keys" }
    | undefined;
  /** The session's link references. */
  refs: LinkRefs | undefined;
  /** Nodes taken but not sent yet. */
  buffer: { length: number };
  /** Bytes the session sent. */
  sentBytes: number;
}

function emptyTail(): Tail {
  return { first: 0, keys: [], parts: [], size: 0, ends: [], plain: [] };
}

/** One `NODES_REFS` message of nodes `from` to `to` (excluded) of `run`, counted as sent by `out`. */
function copyMessage(out: PagesOutbox, run: EncodedRun, from: number, to: number): Uint8Array {
  const start = from === 0 ? 0 : run.ends[from - 1]!;
  const end = run.ends[to - 1]!;
  const message = new Uint8Array(1 + end - start);
  message[0] = NODES_REFS;
  message.set(run.framed.subarray(start, end), 1);
  out.sentBytes += message.length;
  return message;
}

/**
 * Bytes that several {@link EncodedPages} caches share (a relay's logs, all together): a cache frames no more nodes
 * while `used` is at `max` or over, and gives back what it held when it is cleared.
 *
 * @example
 * ```ts
 * import { EncodedPages, type SharedBytes } from "./encoded-pages.ts";
 * const shared: SharedBytes = { max: 64 * 1024 * 1024, used: 0 };
 * const pages = new EncodedPages(() => Promise.resolve([]), 32 * 1024 * 1024, shared);
 * console.assert(pages.bytes === 0 && shared.used === 0);
 * ```
 */
export interface SharedBytes {
  /** The most bytes the caches hold together, about (each may go one node past it). */
  readonly max: number;
  /** The bytes they hold now. */
  used: number;
}

/**
 * A cache of the log's nodes framed as a fresh session sends them, built a run at a time as sessions ask for it,
 * up to `maxBytes` and, with `shared`, while the caches sharing it hold less than its `max` (then
 * {@link EncodedPages.run} answers `undefined` past what it holds).
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { EncodedPages } from "./encoded-pages.ts";
 * import { LinkRefs, NODES_REFS } from "./link-refs.ts";
 * const log = new Hyperlog();
 * await log.append("a");
 * await log.append("b");
 * const pages = new EncodedPages((since, until, limit) => log.storage.read({ since, until, limit, reverse: false }));
 * const run = (await pages.run(0, log.length))!;
 * const nodes = await log.storage.read({ since: 0, until: 2, limit: 2, reverse: false });
 * const [message] = new LinkRefs().encode(nodes, 1 << 16);
 * console.assert(run.first === 1 && run.framed.length === message!.length - 1, "the same bytes as a session's");
 * ```
 */
export class EncodedPages {
  readonly #read: (since: number, until: number, limit: number) => Promise<StoredNode[]>;
  readonly #maxBytes: number;
  readonly #shared: SharedBytes | undefined;
  readonly #runs: EncodedRun[] = [];
  /** The encoder that framed every change up to `#frontier`, in order. */
  #refs = new LinkRefs();
  #frontier = 0;
  #bytes = 0;
  /** Bumped by `clear`, so that a run framed before it is not added after it. */
  #generation = 0;
  #busy: Promise<unknown> = Promise.resolve();
  /** Whether `run` is reading the log (then `follow` leaves the new nodes to it). */
  #building = false;
  /** The nodes framed and not yet made into a run. */
  #tail: Tail = emptyTail();
  /**
   * The latest nodes framed once for every live session (`live-frames.ts`): the session's outbox takes its live
   * messages from them. Not for applications.
   *
   * @ignore
   */
  readonly frames: LiveFrames = new LiveFrames();

  /**
   * A cache reading the log through `read`, holding at most about `maxBytes` (default 16 MiB), and framing nothing
   * more while the caches that count their bytes in `shared` hold its `max`.
   */
  constructor(
    read: (since: number, until: number, limit: number) => Promise<StoredNode[]>,
    maxBytes: number = 16 * 1024 * 1024,
    shared?: SharedBytes,
  ) {
    this.#read = read;
    this.#maxBytes = maxBytes;
    this.#shared = shared;
  }

  /** Whether the cache may frame no more nodes: its own bound, or the shared one, is reached. */
  #full(): boolean {
    return this.#bytes >= this.#maxBytes || (this.#shared !== undefined && this.#shared.used >= this.#shared.max);
  }

  /** Bytes the cache holds, about. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The last change framed. */
  get frontier(): number {
    return this.#frontier;
  }

  /**
   * The run holding change `since + 1`, framing the log up to it if need be (never past `until`, the log's length
   * the caller knows), or `undefined` when that change is past what the cache may hold or past `until`.
   */
  run(since: number, until: number): Promise<EncodedRun | undefined> {
    if (since < this.#frontier) return Promise.resolve(this.#find(since + 1));
    const next = this.#busy.then(async () => {
      const generation = this.#generation;
      this.#building = true;
      try {
        while (this.#frontier <= since) {
          if (this.#frontier >= until || this.#full()) return undefined;
          const nodes = await this.#read(this.#frontier, until, RUN);
          if (generation !== this.#generation) return undefined;
          if (nodes.length === 0 || nodes[0]!.change !== this.#frontier + 1) return undefined;
          this.#seal();
          const links = pageLinksOf(nodes);
          for (const node of nodes) this.#frame(node, links);
          this.#seal();
        }
      } finally {
        this.#building = false;
      }
      return this.#find(since + 1);
    });
    this.#busy = next.catch(() => {});
    return next;
  }

  /**
   * The next initial `NODES_REFS` messages of session `out`, copied from this cache (up to `budget` bytes of nodes
   * as plain NODES, at least one node, each message of at most `max` bytes as plain NODES, cut as
   * {@link LinkRefs.encode} cuts them), when the session sends the log from its start in change order and received
   * nothing: `undefined` when it does not, or the cache does not hold the next change (then the session goes on the
   * ordinary way). Not for applications: the session's outbox calls it (the code lives here, with the cache only a
   * relay keeps, so that a client's bundle does not carry it), hence left out of the documentation.
   *
   * @ignore
   */
  async initial(
    out: PagesOutbox,
    budget: number,
    snapshot: number,
    max: number,
    stats: ReplicationStats,
  ): Promise<Uint8Array[] | undefined> {
    const { plan, refs } = out;
    if (
      refs === undefined || plan?.kind !== "range" || plan.filter !== undefined || plan.skip.count > 0 ||
      out.buffer.length > 0 || plan.since >= snapshot || !refs.pristine(plan.since)
    ) return undefined;
    const run = await this.run(plan.since, snapshot);
    if (run === undefined || !refs.pristine(plan.since)) return undefined;
    const from = plan.since + 1 - run.first;
    const last = Math.min(run.keys.length, snapshot - run.first + 1);
    const messages: Uint8Array[] = [];
    let taken = 0;
    let start = from;
    let expanded = 1;
    let i = from;
    for (; i < last; i++) {
      const plain = run.plain[i]!;
      if (i > from && taken + plain > budget) break;
      if (i > start && expanded + plain > max) {
        messages.push(copyMessage(out, run, start, i));
        start = i;
        expanded = 1;
      }
      taken += plain;
      expanded += plain;
    }
    messages.push(copyMessage(out, run, start, i));
    refs.sentRun(run.keys.slice(from, i), run.first + from);
    plan.since = run.first + i - 1;
    stats.nodesSent += i - from;
    return messages;
  }

  /**
   * Frames a node just added to the log (as a binary log's "add" event has it): for the live sessions, and, when it
   * is the next change after what the cache holds (and the cache is not reading the log itself, and has room), for
   * the late joiners: a relay calls it for every node it stores, so that its late joiners find the whole log framed.
   */
  follow(node: StoredNode): void {
    this.frames.follow(node);
    if (this.#building || node.change !== this.#frontier + 1 || this.#full()) return;
    // A node of a log that decodes its values (not "binary") is not what the log stores: left to `run`.
    if (!(node.value instanceof Uint8Array)) return;
    this.#frame(node);
    if (this.#tail.keys.length >= RUN) this.#seal();
  }

  /** Drops what the cache holds (it frames again from the start when asked). */
  clear(): void {
    this.frames.clear();
    this.#runs.length = 0;
    this.#tail = emptyTail();
    this.#refs = new LinkRefs();
    this.#frontier = 0;
    if (this.#shared !== undefined) this.#shared.used -= this.#bytes;
    this.#bytes = 0;
    this.#generation++;
  }

  /** Frames `node` (the next change) into the run being made. */
  #frame(node: StoredNode, links?: PageLinks): void {
    const tail = this.#tail;
    if (tail.keys.length === 0) tail.first = node.change;
    const framed = this.#refs.frame(node, links);
    tail.parts.push(framed);
    tail.size += framed.length;
    tail.ends.push(tail.size);
    tail.plain.push(nodeWireSize(node));
    tail.keys.push(node.key);
    this.#frontier = node.change;
    const bytes = framed.length + 8 + KEY_BYTES;
    this.#bytes += bytes;
    if (this.#shared !== undefined) this.#shared.used += bytes;
  }

  /** Makes a run of the nodes framed since the last one. */
  #seal(): void {
    const tail = this.#tail;
    if (tail.keys.length === 0) return;
    const framed = new Uint8Array(tail.size);
    let at = 0;
    for (const part of tail.parts) {
      framed.set(part, at);
      at += part.length;
    }
    this.#runs.push({
      first: tail.first,
      keys: tail.keys,
      framed,
      ends: Uint32Array.from(tail.ends),
      plain: Uint32Array.from(tail.plain),
    });
    this.#tail = emptyTail();
  }

  /** The run holding `change` (which is framed). */
  #find(change: number): EncodedRun | undefined {
    if (change >= this.#tail.first && this.#tail.keys.length > 0) this.#seal();
    const runs = this.#runs;
    let lo = 0;
    let hi = runs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (runs[mid]!.first <= change) lo = mid;
      else hi = mid - 1;
    }
    const run = runs[lo];
    return run !== undefined && run.first <= change && change < run.first + run.keys.length ? run : undefined;
  }
}
