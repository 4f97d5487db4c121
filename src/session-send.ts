/**
 * The sending half of a replication session (see `session.ts`): which nodes go to the peer, in change order, a page
 * at a time, within the transport's room and the peer's window.
 *
 * @module
 */
import { Ranges } from "./checkpoint.ts";
import { ProtocolError } from "./errors.ts";
import type { LogHandle } from "./log-handle.ts";
import type { StoredNode } from "./node.ts";
import type { ReplicationStats } from "./replicate-types.ts";
import type { Plan } from "./session-types.ts";
import { encodeMessage, encodeNodesBodies, type Hello, nodeWireSize } from "./wire.ts";
import type { LinkRefs } from "./link-refs.ts";
import type { EncodedPages } from "./encoded-pages.ts";
import { type PageLinks, pageLinksOf } from "./page-links.ts";

/** The most bytes of nodes packed into one NODES message. */
const NODES_MESSAGE_BYTES = 64 * 1024;
const PAGE = 256;
/** Bytes of the peer's window that must be free before more nodes go (at most a quarter of the window). */
const SEND_AT_LEAST = 64 * 1024;
/** A reconciliation turn sends the nodes it found the peer lacks at once while at most this many wait... */
const EARLY_KEYS = 256;
/** ...and at most this many bytes of them per turn (one NODES message). */
const EARLY_BYTES = NODES_MESSAGE_BYTES;

/**
 * The sending half of a session: the plan of the initial nodes, the buffer of one page, the live cursor, and the
 * window's accounting (bytes sent, credited, the live sends not yet credited).
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { Outbox } from "./session-send.ts";
 * const log = new Hyperlog();
 * await log.append("x");
 * const out = new Outbox(log, (since, until, limit) => log.storage.read({ since, until, limit, reverse: false }));
 * out.plan = { kind: "range", since: 0, skip: new (await import("./checkpoint.ts")).Ranges() };
 * console.assert((await out.initialNodes(1 << 16, 1)).length === 1);
 * ```
 */
export class Outbox {
  /** What is left of the initial nodes; undefined until both sides decided. */
  plan: Plan | undefined;
  /** Nodes read and not yet sent (one page at most). */
  buffer: StoredNode[] = [];
  /** Live: every node up to this change was sent or skipped. */
  liveCursor = 0;
  /** Bytes of node messages sent, and credited by the peer. */
  sentBytes = 0;
  credited = 0;
  /** Whether SYNCED went, and the bytes sent by then (ACK credits them all). */
  sentSynced = false;
  syncedAt = 0;
  /** Live sends not yet credited: `[sentBytes after, last change]`. */
  unacked: [number, number][] = [];
  /** The peer holds every node of this side up to this change. */
  acked = 0;
  /** The session's link references, once both HELLOs say to keep them. */
  refs: LinkRefs | undefined;
  /** A relay's cache of its log framed as a fresh session sends it (`encoded-pages.ts`), if it keeps one. */
  pages: EncodedPages | undefined;
  /** Keys sent during the reconciliation (see {@link Outbox.early}): the plan it ends with leaves them out. */
  readonly sentEarly: Set<string> = new Set();
  /** Whether the peer had credited every byte sent when SYNCED went (it then sends no ACK). */
  syncedCredited = false;
  /** The links by change of the latest page read, if the storage gave them (`page-links.ts`): for the encoder. */
  #pageLinks: PageLinks | undefined;
  readonly #log: LogHandle;
  readonly #read: (since: number, until: number, limit: number) => Promise<StoredNode[]>;

  /** Reads `log` through `read`. */
  constructor(log: LogHandle, read: (since: number, until: number, limit: number) => Promise<StoredNode[]>) {
    this.#log = log;
    this.#read = read;
  }

  /**
   * Whether nodes wait for CREDIT from a peer of `window` bytes: they go only when a good part of it is free, since
   * sending into every few bytes credited back would make a message (and a CREDIT back) per node.
   */
  windowShut(window: number): boolean {
    return window - (this.sentBytes - this.credited) < Math.min(SEND_AT_LEAST, window / 4);
  }

  /**
   * The next messages for the transport's room of about `maxBytes`, within the peer's window: the initial nodes up
   * to `snapshot`, then SYNCED, then (once `live` names the changes from the peer, never sent back) new nodes.
   */
  async produce(
    maxBytes: number,
    peer: Hello,
    snapshot: number,
    live: Ranges | undefined,
    stats: ReplicationStats,
  ): Promise<Uint8Array[]> {
    // SYNCED needs no window.
    if (this.windowShut(peer.window) && (this.sentSynced || !this.initialDone(snapshot))) return [];
    const budget = Math.max(1, Math.min(maxBytes, peer.window - (this.sentBytes - this.credited)));
    if (!this.sentSynced) {
      // A relay's cache of its log as a fresh session sends it (encoded-pages.ts): copies, when this one is fresh.
      const copied = await this.pages?.initial(this, budget, snapshot, this.#messageBytes(peer.maxFrame), stats);
      if (copied !== undefined) return copied;
      const nodes = await this.initialNodes(budget, snapshot);
      if (nodes.length > 0) return this.encode(nodes, false, peer.maxFrame, stats);
      this.sentSynced = true;
      this.syncedAt = this.sentBytes;
      // Every byte credited already: the peer's ACK would say nothing new, so the peer sends none.
      this.syncedCredited = this.credited >= this.sentBytes;
      stats.roundTrips++;
      return [encodeMessage({ type: "synced", credited: this.syncedCredited })];
    }
    if (live === undefined) return [];
    // A relay's live nodes framed once for all its sessions (live-frames.ts), when they serve this one.
    const framed = this.pages?.frames.live(this, budget, live, this.#messageBytes(peer.maxFrame), stats);
    if (framed !== undefined) return framed;
    const nodes = await this.liveNodes(budget, live);
    return nodes.length === 0 ? [] : this.encode(nodes, true, peer.maxFrame, stats);
  }

  /**
   * During a reconciliation, between turns: the nodes found so far that the peer lacks (`toSend`), up to `snapshot`,
   * that can go now rather than once it is over, saving the turn that would name them: in change order, each one
   * whose every link the peer holds (a key of a range settled and not in `toSend`, see `unsettled`) or was sent
   * before it. At most {@link EARLY_BYTES} per turn, within the peer's window, and only while at most
   * {@link EARLY_KEYS} keys wait (more go as the plan sends them). The plan the reconciliation ends with leaves out
   * what went ({@link Outbox.sentEarly}).
   */
  async early(
    { toSend, unsettled }: { toSend: Set<string>; unsettled: (key: string) => boolean },
    snapshot: number,
    peer: Hello,
    stats: ReplicationStats,
  ): Promise<Uint8Array[]> {
    const waiting = toSend.size - this.sentEarly.size;
    if (waiting <= 0 || waiting > EARLY_KEYS) return [];
    const budget = Math.min(EARLY_BYTES, peer.window - (this.sentBytes - this.credited));
    const found: StoredNode[] = [];
    for (const key of toSend) {
      if (this.sentEarly.has(key)) continue;
      const node = await this.#log.storage.get(key);
      if (node !== undefined && node.change <= snapshot) found.push(node);
    }
    found.sort((a, b) => a.change - b.change);
    const nodes: StoredNode[] = [];
    let size = 0;
    for (const node of found) {
      if (!node.links.every((link) => this.sentEarly.has(link) || (!toSend.has(link) && !unsettled(link)))) continue;
      size += nodeWireSize(node);
      if (size > budget) break;
      nodes.push(node);
      this.sentEarly.add(node.key);
    }
    return nodes.length === 0 ? [] : this.encode(nodes, false, peer.maxFrame, stats);
  }

  /** The peer credited `bytes` (beyond what was sent, it would only let this side send more than it can take). */
  credit(bytes: number): void {
    this.credited = Math.min(this.sentBytes, this.credited + bytes);
    while (this.unacked.length > 0 && this.unacked[0]![0] <= this.credited) this.acked = this.unacked.shift()![1];
  }

  /** How big a message of nodes may be (about, as plain NODES) for a peer that takes `peerMaxFrame`. */
  #messageBytes(peerMaxFrame: number): number {
    return Math.min(NODES_MESSAGE_BYTES, Math.floor(peerMaxFrame / 2));
  }

  /** Encodes nodes into NODES messages for the peer, counting them. */
  encode(nodes: StoredNode[], live: boolean, peerMaxFrame: number, stats: ReplicationStats): Uint8Array[] {
    const max = this.#messageBytes(peerMaxFrame);
    const bodies = this.refs?.encode(nodes, max, this.#pageLinks) ?? encodeNodesBodies(nodes, max);
    for (const body of bodies) this.sentBytes += body.length;
    stats.nodesSent += nodes.length;
    if (live) this.unacked.push([this.sentBytes, nodes[nodes.length - 1]!.change]);
    return bodies;
  }

  /** Takes nodes from the buffer up to `budget` bytes (at least one). */
  take(budget: number): StoredNode[] {
    let size = 0;
    let n = 0;
    while (n < this.buffer.length) {
      const next = nodeWireSize(this.buffer[n]!);
      if (n > 0 && size + next > budget) break;
      size += next;
      n++;
    }
    return this.buffer.splice(0, n);
  }

  /** Whether every initial node up to `snapshot` was sent (nothing buffered, nothing left in the plan). */
  initialDone(snapshot: number): boolean {
    const plan = this.plan;
    if (plan === undefined || this.buffer.length > 0) return false;
    return plan.kind === "none" || (plan.kind === "range" && plan.since >= snapshot);
  }

  /** The next initial nodes (up to `budget` bytes, at least one) the plan holds, up to `snapshot`. */
  async initialNodes(budget: number, snapshot: number): Promise<StoredNode[]> {
    while (this.buffer.length === 0) {
      const plan = this.plan!;
      if (plan.kind === "none") return [];
      if (plan.kind === "keys") {
        if (plan.keys.length * 8 > snapshot) {
          const filter = new Set(plan.keys.filter((key) => !this.sentEarly.has(key)));
          this.plan = { kind: "range", since: 0, skip: new Ranges(), filter };
          return await this.initialNodes(budget, snapshot);
        }
        // Few keys: look each up, then send in change order (ancestors first).
        const nodes: StoredNode[] = [];
        for (const key of plan.keys) {
          if (this.sentEarly.has(key)) continue;
          const node = await this.#log.storage.get(key);
          if (node === undefined) throw new ProtocolError(`Node ${key} was offered to the peer but is not in the log`);
          if (node.change <= snapshot) nodes.push(node);
        }
        nodes.sort((a, b) => a.change - b.change);
        this.buffer = nodes;
        this.plan = { kind: "none" };
        continue;
      }
      if (plan.since >= snapshot) return [];
      const page = await this.#read(plan.since, snapshot, PAGE);
      if (page.length === 0) return [];
      this.#pageLinks = pageLinksOf(page);
      plan.since = page[page.length - 1]!.change;
      this.buffer = page.filter((node) =>
        !plan.skip.has(node.change) && (plan.filter === undefined || plan.filter.has(node.key))
      );
    }
    return this.take(budget);
  }

  /** The next live nodes, none of them from the peer. */
  async liveNodes(budget: number, fromPeer: Ranges): Promise<StoredNode[]> {
    const log = this.#log;
    while (this.buffer.length === 0) {
      const until = log.length;
      if (this.liveCursor >= until || log.closed) return [];
      const page = await this.#read(this.liveCursor, until, PAGE);
      if (page.length === 0) return [];
      this.#pageLinks = pageLinksOf(page);
      this.liveCursor = page[page.length - 1]!.change;
      this.buffer = page.filter((node) => !fromPeer.has(node.change));
    }
    return this.take(budget);
  }
}
