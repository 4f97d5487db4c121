/**
 * The sending side of `NODES_LIVE` (see `live-decode.ts`), for a relay: each node it stores is framed once, its
 * links referring to the log's own recent changes, and every live session that fans it out copies those bytes,
 * instead of framing the node with its own per-session references (issue 21: the relay's CPU per live node).
 *
 * A session's receiver learns the change of every entry the session sends in `NODES_LIVE` messages from the change
 * its live phase started at (a node, or a "yours" entry for a change that came from it), so a shared frame serves a
 * session when every change it refers to is at or after that start. A frame that refers further back (a session
 * that went live after the nodes it links), a change no longer held (a session that fell far behind), or a
 * session that sent some live nodes the ordinary way: those are framed for the session, or go the ordinary way.
 *
 * @module
 */
import type { LinkRefs } from "./link-refs.ts";
import { LIVE_RING, NODES_LIVE, YOURS } from "./live-decode.ts";
import { varintLength, writeVarint } from "./frame.ts";
import { hexInto } from "./hex.ts";
import { type StoredNode, valueSize } from "./node.ts";
import { NODE, nodeTailSize, nodeWireSize, writeNodeTailHead } from "./node-codec.ts";
import type { ReplicationStats } from "./replicate-types.ts";

/** A node framed once for every session: the entry's bytes up to its value, then the node's value. */
interface Frame {
  readonly node: StoredNode;
  /**
   * The node's value, read once: a log's own node makes a view each time `value` is read, and a relay sends a node
   * to every live session.
   */
  readonly value: Uint8Array;
  /** The entry's length, `NODE`, the links, the flags, identity and signature, the value's length. */
  readonly head: Uint8Array;
  /** The lowest change a link refers to (Infinity when none does). */
  readonly lowest: number;
  /** The node's size as plain NODES (what a message's size is cut by). */
  readonly plain: number;
}

/**
 * What {@link LiveFrames.live} reads and moves of a session's outbox (`Outbox` in `session-send.ts`, named by shape
 * so that this module and the session's do not import each other).
 */
export interface LiveOutbox {
  /** The session's link references (this path is only for a peer that takes them). */
  refs: LinkRefs | undefined;
  /** Nodes read and not yet sent. */
  buffer: { length: number };
  /** Every node up to this change was sent or skipped. */
  liveCursor: number;
  /** Bytes of node messages sent. */
  sentBytes: number;
  /** Live sends not yet credited: `[sentBytes after, last change]`. */
  unacked: [number, number][];
}

/** Where a session's `NODES_LIVE` stream stands. */
interface Stream {
  /** The outbox's live cursor when this module last moved it (else the session sent the ordinary way since). */
  cursor: number;
  /** The last change the receiver learned (changes after it, up to `cursor`, are its own, not announced yet). */
  announced: number;
  /** The first change of the receiver's unbroken run of learned changes. */
  start: number;
}

/** The most bytes of values and heads the frames keep (the oldest go first past it). */
const MAX_BYTES = 16 * 1024 * 1024;
/** The most changes of the peer's own a stream holds back before it starts again. */
const HELD_BACK = 256;
/** A key's 32 bytes with its tag. */
const KEY_TAG = 33;

/** The entry head of `node`, its links referring to changes at or after `start` that `changeOf` knows. */
function frameHead(
  node: StoredNode,
  changeOf: ReadonlyMap<string, number>,
  start: number,
): { head: Uint8Array; lowest: number } {
  const links = node.links;
  const change = node.change;
  const tags: number[] = new Array(links.length);
  let lowest = Infinity;
  let body = 1 + varintLength(links.length) + nodeTailSize(node);
  for (let i = 0; i < links.length; i++) {
    const linked = changeOf.get(links[i]!);
    const d = linked === undefined || linked < start ? 0 : change - linked;
    if (d > 0 && d < LIVE_RING) {
      tags[i] = d;
      if (linked! < lowest) lowest = linked!;
      body += varintLength(d);
    } else {
      tags[i] = 0;
      body += KEY_TAG;
    }
  }
  const head = new Uint8Array(varintLength(body) + body - valueSize(node));
  let at = writeVarint(head, 0, body);
  head[at++] = NODE;
  at = writeVarint(head, at, links.length);
  for (let i = 0; i < links.length; i++) {
    const tag = tags[i]!;
    at = writeVarint(head, at, tag);
    if (tag === 0) {
      hexInto(links[i]!, head, at);
      at += 32;
    }
  }
  writeNodeTailHead(head, at, node);
  return { head, lowest };
}

/**
 * The entries of the message being made (reused: no object per entry): entry `i` is change `first + i`, its head
 * (a "yours" entry whole), and its frame (none for a "yours" entry).
 */
const HEADS: Uint8Array[] = [];
const FRAMES: (Frame | undefined)[] = [];

const ONE: string[] = [""];

/**
 * A log's latest nodes framed once for every live session (see the module doc). Fed every stored node in change
 * order ({@link LiveFrames.follow}); sessions copy from it ({@link LiveFrames.live}).
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { LiveFrames } from "./live-frames.ts";
 * import { decodeLive } from "./live-decode.ts";
 * import { LinkRefs } from "./link-refs.ts";
 * import { Ranges } from "./checkpoint.ts";
 * const log = new Hyperlog<Uint8Array>(undefined, { valueEncoding: "binary" });
 * const frames = new LiveFrames();
 * log.addEventListener("add", (e) => frames.follow((e as CustomEvent).detail));
 * await log.append(new Uint8Array([1]));
 * await log.append(new Uint8Array([2]));
 * const out = { refs: new LinkRefs(), buffer: [], liveCursor: 0, sentBytes: 0, unacked: [] };
 * const stats = { nodesSent: 0, nodesReceived: 0, bytesSent: 0, bytesReceived: 0, roundTrips: 0 };
 * const [message] = frames.live(out, 1 << 16, new Ranges(), 1 << 16, stats)!;
 * const nodes = await decodeLive(new LinkRefs(), message!, () => Promise.reject(new Error("not needed")));
 * console.assert(nodes[1]!.links[0] === nodes[0]!.key && out.liveCursor === 2 && stats.nodesSent === 2);
 * console.assert(message!.length < 2 + 2 * 10, "a link costs a byte");
 * ```
 */
export class LiveFrames {
  /** The latest frames, by change (slot `change % LIVE_RING`). */
  readonly #frames: (Frame | undefined)[] = new Array(LIVE_RING);
  /** The change of each of the latest keys, and the keys by slot (to forget them as the ring turns). */
  readonly #changeOf = new Map<string, number>();
  readonly #keys: (string | undefined)[] = new Array(LIVE_RING);
  readonly #keyChanges: Float64Array = new Float64Array(LIVE_RING).fill(-1);
  /** The oldest change whose frame may still be held, and the bytes held. */
  #oldest = 0;
  #bytes = 0;
  readonly #maxBytes: number;
  /** Each session's stream, by its link references. */
  #streams = new WeakMap<LinkRefs, Stream>();

  /** Frames holding at most about `maxBytes` of heads and values (default 16 MiB; the oldest go first). */
  constructor(maxBytes: number = MAX_BYTES) {
    this.#maxBytes = maxBytes;
  }

  /** Bytes of heads and values the frames hold, about. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Frames a node the log just stored (in change order; a node of a log that decodes its values is left out). */
  follow(node: StoredNode): void {
    const value = node.value;
    if (!(value instanceof Uint8Array)) return;
    const change = node.change;
    const slot = change % LIVE_RING;
    const old = this.#keys[slot];
    if (old !== undefined && this.#changeOf.get(old) === this.#keyChanges[slot]) this.#changeOf.delete(old);
    this.#drop(slot);
    const { head, lowest } = frameHead(node, this.#changeOf, 0);
    this.#keys[slot] = node.key;
    this.#keyChanges[slot] = change;
    this.#changeOf.set(node.key, change);
    this.#frames[slot] = { node, value, head, lowest, plain: nodeWireSize(node) };
    this.#bytes += head.length + value.length;
    if (this.#oldest === 0 || change < this.#oldest) this.#oldest = change;
    // Changes more than the ring back were dropped as it turned.
    if (this.#oldest <= change - LIVE_RING) this.#oldest = change - LIVE_RING + 1;
    while (this.#bytes > this.#maxBytes && this.#oldest < change) this.#drop(this.#oldest++ % LIVE_RING);
  }

  /** Forgets every frame (a log with no session). */
  clear(): void {
    this.#frames.fill(undefined);
    this.#keys.fill(undefined);
    this.#keyChanges.fill(-1);
    this.#changeOf.clear();
    this.#oldest = 0;
    this.#bytes = 0;
    this.#streams = new WeakMap();
  }

  #drop(slot: number): void {
    const frame = this.#frames[slot];
    if (frame === undefined) return;
    this.#bytes -= frame.head.length + frame.value.length;
    this.#frames[slot] = undefined;
  }

  #frame(change: number): Frame | undefined {
    const frame = this.#frames[change % LIVE_RING];
    return frame?.node.change === change ? frame : undefined;
  }

  #key(change: number): string | undefined {
    const slot = change % LIVE_RING;
    return this.#keyChanges[slot] === change ? this.#keys[slot] : undefined;
  }

  /**
   * The next live `NODES_LIVE` messages of session `out` (up to `budget` bytes of nodes as plain NODES, at least
   * one node, each message of at most `max` bytes as plain NODES), the changes from the peer (`fromPeer`) sent as
   * "yours" entries, moving the session's live cursor: `undefined` when the session does not take them or the next
   * change is not framed (then it goes on the ordinary way), empty when only the peer's own nodes came. Not for
   * applications: the session's outbox calls it, hence left out of the documentation.
   *
   * @ignore
   */
  live(
    out: LiveOutbox,
    budget: number,
    fromPeer: { has(change: number): boolean },
    max: number,
    stats: ReplicationStats,
  ): Uint8Array[] | undefined {
    const refs = out.refs;
    const cursor = out.liveCursor;
    if (refs === undefined || !refs.peerTakesRefs || out.buffer.length > 0) return undefined;
    if (this.#frame(cursor + 1) === undefined) return undefined;
    let stream = this.#streams.get(refs);
    // A new stream, one after nodes sent the ordinary way, or one that held back too many of the peer's own nodes
    // (a message of nothing else is not sent) starts again: the receiver knows no change before it.
    if (stream === undefined || stream.cursor !== cursor || cursor - stream.announced > HELD_BACK) {
      stream = { cursor, announced: cursor, start: cursor + 1 };
      this.#streams.set(refs, stream);
    }
    for (let c = stream.announced + 1; c <= cursor; c++) {
      if (this.#key(c) === undefined) {
        stream.announced = cursor;
        stream.start = cursor + 1;
        break;
      }
    }
    const first = stream.announced + 1;
    let n = 0;
    let taken = 0;
    let nodes = 0;
    let lastNode = 0;
    for (let c = first;; c++) {
      if (c <= cursor || fromPeer.has(c)) {
        const key = c <= cursor ? this.#key(c) : this.#frame(c)?.node.key;
        if (key === undefined) break;
        HEADS[n] = yours(refs, key);
        FRAMES[n++] = undefined;
        continue;
      }
      const frame = this.#frame(c);
      if (frame === undefined || (taken > 0 && taken + frame.plain > budget)) break;
      taken += frame.plain;
      HEADS[n] = frame.lowest >= stream.start ? frame.head : frameHead(frame.node, this.#changeOf, stream.start).head;
      FRAMES[n++] = frame;
      nodes++;
      lastNode = n;
    }
    out.liveCursor = stream.cursor = Math.max(cursor, first + n - 1);
    if (nodes === 0) {
      FRAMES.fill(undefined, 0, n);
      return [];
    }
    // Trailing entries of the peer's own wait for the next node.
    stream.announced = first + lastNode - 1;
    const messages = this.#messages(first, lastNode, max, refs);
    FRAMES.fill(undefined, 0, n);
    for (const message of messages) out.sentBytes += message.length;
    stats.nodesSent += nodes;
    out.unacked.push([out.sentBytes, stream.announced]);
    return messages;
  }

  /**
   * The `count` entries from change `first` as messages of at most `max` bytes as plain NODES each; the nodes noted
   * as sent.
   */
  #messages(first: number, count: number, max: number, refs: LinkRefs): Uint8Array[] {
    const messages: Uint8Array[] = [];
    let from = 0;
    while (from < count) {
      let expanded = 1;
      let size = 1 + varintLength(first + from);
      let to = from;
      for (; to < count; to++) {
        const frame = FRAMES[to];
        // A "yours" entry weighs as a key in the receiver's bound (live-decode.ts).
        const plain = frame === undefined ? HEADS[to]!.length + 32 : frame.plain;
        if (to > from && expanded + plain > max) break;
        expanded += plain;
        size += HEADS[to]!.length + (frame === undefined ? 0 : frame.value.length);
      }
      const message = new Uint8Array(size);
      message[0] = NODES_LIVE;
      let at = writeVarint(message, 1, first + from);
      for (let i = from; i < to; i++) {
        const head = HEADS[i]!;
        message.set(head, at);
        at += head.length;
        const frame = FRAMES[i];
        if (frame !== undefined) {
          message.set(frame.value, at);
          at += frame.value.length;
          ONE[0] = frame.node.key;
          refs.sentRun(ONE, first + i);
        }
      }
      messages.push(message);
      from = to;
    }
    return messages;
  }
}

/** A "yours" entry: the receiver's own node `key`, by its place among the nodes it sent, or by its key. */
function yours(refs: LinkRefs, key: string): Uint8Array {
  const index = refs.receivedIndex(key);
  if (index === undefined) {
    const entry = new Uint8Array(2 + 1 + 32);
    entry[0] = 1 + 1 + 32;
    entry[1] = YOURS;
    entry[2] = 0;
    hexInto(key, entry, 3);
    return entry;
  }
  const tag = 2 * (index + 1);
  const body = 1 + varintLength(tag);
  const entry = new Uint8Array(1 + body);
  entry[0] = body;
  entry[1] = YOURS;
  writeVarint(entry, 2, tag);
  return entry;
}
