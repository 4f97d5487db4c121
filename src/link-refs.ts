/**
 * Links that cost what they say on the wire (issue 21): inside a session, a link to a node already sent or received
 * in that session travels as a short reference instead of its 32-byte key. Keys, hashes and signatures do not
 * change: the receiver resolves every reference to the key before it checks and stores the node.
 *
 * Both sides say in their HELLO whether they take references (`refs: true`, a capability of protocol version 2: a
 * peer without it gets plain NODES messages). A side whose peer takes them sends `NODES_REFS` messages (type 10):
 * the layout of NODES (type 8), each node framed, but without the node's key (the receiver computes it from the
 * content, as it would to check it: the key is the SHA-256 of the links, value and identity, so sending it only
 * repeated it) and with each link written as a varint tag:
 *
 * - `0`: the 32-byte key follows;
 * - odd `2d - 1`: the `d`-th latest node the sender sent in this session before this one (`d >= 1`; the sender
 *   refers only to its last {@link REF_RING} nodes, which the receiver keeps in the same order);
 * - even `2(i + 1)`: the `i`-th node (from 0) that the receiver sent in this session. The receiver keeps its last
 *   {@link REF_RING} keys and, for older ones, the change numbers it sent (a few numbers per run of consecutive
 *   changes), so it reads such a key back from its log.
 *
 * A reference to no such node is a `ProtocolError`. Each side records every node it sends or receives, in wire
 * order (messages arrive in order, so both sides agree on both lists).
 *
 * @module
 */
import { InvalidNodeError, ProtocolError } from "./errors.ts";
import { varintLength, writeVarint } from "./frame.ts";
import { hexInto } from "./hex.ts";
import { keyAt, type StoredNode } from "./node.ts";
import {
  encodeNodesBodies,
  NODE,
  NODES_REFS,
  nodeTailSize,
  nodeWireSize,
  type WireNode,
  writeNodeTail,
} from "./node-codec.ts";
import { keyedNode } from "./keyed-nodes.ts";
import { keyHash } from "./key-places.ts";
import { linksOfChange, type PageLinks } from "./page-links.ts";
import { cursor, hexOf, type NodeTail, readNodeTail, varintAt } from "./wire-read.ts";

export { NODES_REFS };
/** How many of the latest keys each side keeps per direction (sent, received) to resolve references. */
export const REF_RING = 4096;

/** The buffer `encode` writes a message into (kept while at most {@link SCRATCH_MAX} bytes), its first byte the type. */
let scratch = new Uint8Array(64 * 1024 + 1024);
scratch[0] = NODES_REFS;
const SCRATCH_MAX = 1 << 20;
/** The tags of one node's links (`encode`), reused. */
const TAGS: number[] = [];

/** One direction's list of nodes: the latest keys in a ring, a key's place, and (for sent nodes) every change. */
class NodeList {
  count = 0;
  readonly ring: string[] = new Array(REF_RING);
  /**
   * List indexes by key (open addressing: index + 1 per slot, 0 empty), of every node up to {@link NodeList.#placed}
   * that was in the ring then (stale ones too, until the table is rebuilt); hashed with a seed of the session's own.
   */
  #slots = new Int32Array(0);
  #used = 0;
  #placed = 0;
  readonly #seed = crypto.getRandomValues(new Int32Array(1))[0]! | 0;
  /** Runs of consecutive changes: first change, and the list index of that first node. */
  readonly runStart: number[] = [];
  readonly runIndex: number[] = [];
  #lastChange = -2;
  /** Whether every node was added with a change above the one before (then each change is in the list once). */
  #ascending = true;

  add(key: string, change?: number): void {
    const i = this.count++;
    this.ring[i % REF_RING] = key;
    if (change === undefined) return;
    if (change !== this.#lastChange + 1) {
      if (change <= this.#lastChange) this.#ascending = false;
      this.runStart.push(change);
      this.runIndex.push(i);
    }
    this.#lastChange = change;
  }

  /**
   * The list index of the node of `change` (sent nodes only) if it is in the ring and the last run of changes, -1 if
   * it is not in the ring or was not sent, `undefined` when only its key can tell (an earlier run).
   */
  indexOfChange(change: number): number | undefined {
    const r = this.runStart.length - 1;
    if (r < 0) return -1;
    const first = this.runStart[r]!;
    // Past the last run: not sent, unless the list went back to earlier changes before.
    const i = this.runIndex[r]! + change - first;
    if (change < first || (i >= this.count && !this.#ascending)) return undefined;
    return i < this.count && i >= this.count - REF_RING ? i : -1;
  }

  /**
   * The list index of the latest node with `key`, if it is in the ring. Keys are placed only when asked (a side
   * that only receives never asks): the ring's nodes added since the last time.
   */
  placeOf(key: string): number | undefined {
    // The latest node is the one most often linked (a chain, a node after the page it follows): it is the latest
    // place of its key by definition, found without hashing every key into the table.
    const last = this.count - 1;
    if (last >= 0 && this.ring[last % REF_RING] === key) return last;
    const oldest = this.count - REF_RING;
    if (this.#placed < this.count) this.#placeNew(oldest);
    const slots = this.#slots;
    if (slots.length === 0) return undefined;
    const mask = slots.length - 1;
    let found = -1;
    // A key sent twice is in the table twice: the latest place counts.
    for (let s = this.#hash(key) & mask;; s = (s + 1) & mask) {
      const i = slots[s]! - 1;
      if (i < 0) return found < 0 ? undefined : found;
      if (i > found && i >= oldest && this.ring[i % REF_RING] === key) found = i;
    }
  }

  /** The first 8 characters of a key (32 bits of a SHA-256 digest: a prefix shared on purpose costs 2^32 hashes). */
  #hash(key: string): number {
    return keyHash(key, this.#seed);
  }

  /** Puts the ring's nodes added since the last lookup in the table (rebuilt when half its slots are used). */
  #placeNew(oldest: number): void {
    let from = Math.max(this.#placed, oldest, 0);
    if (this.#used + (this.count - from) > this.#slots.length / 2) {
      const live = Math.min(this.count, REF_RING);
      let size = 64;
      while (size < 4 * live) size *= 2;
      this.#slots = new Int32Array(size);
      this.#used = 0;
      from = Math.max(oldest, 0);
    }
    const slots = this.#slots;
    const mask = slots.length - 1;
    for (let i = from; i < this.count; i++) {
      let s = this.#hash(this.ring[i % REF_RING]!) & mask;
      while (slots[s] !== 0) s = (s + 1) & mask;
      slots[s] = i + 1;
      this.#used++;
    }
    this.#placed = this.count;
  }

  /** The key at list index `i` if still in the ring. */
  recent(i: number): string | undefined {
    return i >= 0 && i < this.count && i >= this.count - REF_RING ? this.ring[i % REF_RING] : undefined;
  }

  /** The change of the node at list index `i` (sent nodes only). */
  changeAt(i: number): number {
    let lo = 0;
    let hi = this.runIndex.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.runIndex[mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    return this.runStart[lo]! + (i - this.runIndex[lo]!);
  }
}

/** A link of a decoded node still to be read back from the log: node, link slot, change. */
interface Pending {
  links: string[];
  slot: number;
  change: number;
}

/**
 * A session's link references: the nodes it sent and received, in wire order, and the codec of `NODES_REFS`.
 *
 * @example
 * ```ts
 * import { LinkRefs } from "./link-refs.ts";
 * import { computeKey } from "./node.ts";
 * const a = new LinkRefs(), b = new LinkRefs();
 * const value = new Uint8Array([1]);
 * const first = { key: computeKey([], value), links: [], value, change: 1 };
 * const second = { key: computeKey([first.key], value), links: [first.key], value, change: 2 };
 * const [message] = a.encode([first, second], 1 << 16);
 * console.assert(message!.length === 1 + 6 + 7, "no key, and the link costs a byte, not 32");
 * const nodes = await b.decode(message!, () => Promise.reject(new Error("not needed")));
 * console.assert(nodes[1]!.links[0] === first.key && nodes[1]!.key === second.key);
 * ```
 */
export class LinkRefs {
  readonly #sent = new NodeList();
  readonly #received = new NodeList();
  /** Whether the peer takes references (else `encode` makes plain NODES messages and only notes the nodes). */
  readonly peerTakesRefs: boolean;

  /** A session's references; `peerTakesRefs` from the peer's HELLO. */
  constructor(peerTakesRefs = true) {
    this.peerTakesRefs = peerTakesRefs;
  }

  /** Notes nodes sent in a plain NODES message. */
  sent(nodes: readonly StoredNode[]): void {
    for (const node of nodes) this.#sent.add(node.key, node.change);
  }

  /** Notes nodes received in a plain NODES or NODE message. */
  received(nodes: readonly WireNode[]): void {
    for (const node of nodes) this.#received.add(node.key);
  }

  /** The list index of the latest node with `key` received in this session, if among the last {@link REF_RING}. */
  receivedIndex(key: string): number | undefined {
    return this.#received.placeOf(key);
  }

  /**
   * The key of the `i`-th node (from 0) sent in this session, or the change to read it back from the log when it is
   * older than the ring; `undefined` when no such node was sent.
   */
  sentAt(i: number): string | number | undefined {
    if (!(i >= 0 && i < this.#sent.count)) return undefined;
    return this.#sent.recent(i) ?? this.#sent.changeAt(i);
  }

  /**
   * The tag of `link`; `stored` is what the storage holds for it, when it says (see `page-links.ts`): the change of
   * the linked node, found among the nodes sent by number rather than by its key.
   */
  #tag(link: string, stored: number | string | undefined): number {
    if (typeof stored === "number") {
      const i = this.#sent.indexOfChange(stored);
      if (i !== undefined) {
        if (i >= 0) return 2 * (this.#sent.count - i) - 1;
        const r = this.#received.count === 0 ? undefined : this.#received.placeOf(link);
        return r === undefined ? 0 : 2 * (r + 1);
      }
    }
    const s = this.#sent.placeOf(link);
    if (s !== undefined) return 2 * (this.#sent.count - s) - 1;
    const r = this.#received.placeOf(link);
    if (r !== undefined) return 2 * (r + 1);
    return 0;
  }

  /**
   * One node framed as it goes inside a `NODES_REFS` message (its frame length, then its body, the bytes
   * {@link LinkRefs.encode} writes for it), noted as sent; `links`, the page's links by change if the storage gave
   * them (see `page-links.ts`).
   */
  frame(node: StoredNode, links?: PageLinks): Uint8Array {
    const body = this.#measure(node, TAGS, links === undefined ? undefined : linksOfChange(links, node.change));
    const framed = new Uint8Array(varintLength(body) + body);
    this.#write(node, TAGS, body, framed, 0);
    return framed;
  }

  /** The body size of `node` in a `NODES_REFS` message, its links' tags put in `tags` (`stored`: see `#tag`). */
  #measure(node: StoredNode, tags: number[], stored: readonly (number | string)[] | undefined | null): number {
    const links = node.links;
    let body = 1 + varintLength(links.length) + nodeTailSize(node);
    const known = stored !== null && stored !== undefined && stored.length === links.length ? stored : undefined;
    for (let i = 0; i < links.length; i++) {
      const tag = this.#tag(links[i]!, known?.[i]);
      tags[i] = tag;
      body += tag === 0 ? 1 + 32 : varintLength(tag);
    }
    return body;
  }

  /** Writes `node` framed (its `body` size, then the body with `tags`) into `buf` at `at`, noted as sent; the end. */
  #write(node: StoredNode, tags: readonly number[], body: number, buf: Uint8Array, at: number): number {
    const links = node.links;
    at = writeVarint(buf, at, body);
    buf[at++] = NODE;
    at = writeVarint(buf, at, links.length);
    for (let i = 0; i < links.length; i++) {
      const tag = tags[i]!;
      at = writeVarint(buf, at, tag);
      if (tag === 0) {
        hexInto(links[i]!, buf, at);
        at += 32;
      }
    }
    this.#sent.add(node.key, node.change);
    return writeNodeTail(buf, at, node);
  }

  /**
   * Whether this side sent exactly the log's changes 1 to `since`, in order, and received nothing, and the peer
   * takes references: then the nodes after `since` go out framed exactly as a fresh session that sends the log from
   * its start frames them, which an `EncodedPages` cache (`encoded-pages.ts`) holds.
   */
  pristine(since: number): boolean {
    const sent = this.#sent;
    return this.peerTakesRefs && this.#received.count === 0 && sent.count === since &&
      (since === 0 || (sent.runStart.length === 1 && sent.runStart[0] === 1));
  }

  /** Notes as sent the nodes of `keys`, of consecutive changes from `first` (framed by an `EncodedPages` cache). */
  sentRun(keys: readonly string[], first: number): void {
    for (let i = 0; i < keys.length; i++) this.#sent.add(keys[i]!, first + i);
  }

  /**
   * Encodes nodes (in the order they go to the peer) into `NODES_REFS` messages, each of at most about `maxBytes`
   * once its nodes are expanded to plain `NODES` (so that the receiver can bound what a message expands to), noting
   * them as sent. `links`: the links by change of the page the nodes were read from, if the storage gave them
   * (`pageLinksOf`, see `page-links.ts`).
   */
  encode(nodes: readonly StoredNode[], maxBytes: number, links?: PageLinks): Uint8Array[] {
    if (!this.peerTakesRefs) {
      this.sent(nodes);
      return encodeNodesBodies(nodes, maxBytes);
    }
    // Each message is written in place into one scratch buffer, then copied out once.
    const out: Uint8Array[] = [];
    let buf = scratch;
    let at = 1;
    let expanded = 1;
    const tags = TAGS;
    for (const node of nodes) {
      const body = this.#measure(node, tags, links === undefined ? undefined : linksOfChange(links, node.change));
      const plain = nodeWireSize(node);
      if (at > 1 && expanded + plain > maxBytes) {
        out.push(buf.slice(0, at));
        at = 1;
        expanded = 1;
      }
      if (buf.length < at + 8 + body) {
        const bigger = new Uint8Array(Math.max(2 * buf.length, at + 8 + body));
        bigger.set(buf.subarray(0, at));
        buf = bigger;
        if (bigger.length <= SCRATCH_MAX) scratch = bigger;
      }
      at = this.#write(node, tags, body, buf, at);
      expanded += plain;
    }
    if (at > 1) out.push(buf.slice(0, at));
    return out;
  }

  /**
   * Decodes a `NODES_REFS` message, resolving every reference (the oldest of this side's own nodes through
   * `readChange`, which reads the node stored at a change), and notes the nodes as received. Throws a
   * `ProtocolError` for a reference to no node or a message that expands (as plain `NODES`: 32 bytes a link and a
   * key) past `maxFrame`, so that a message costs no more memory and hashing than a plain one of the same limit,
   * and an `InvalidNodeError` for a malformed node.
   */
  async decode(
    message: Uint8Array,
    readChange: (change: number) => Promise<string>,
    maxFrame: number = 2 ** 31,
  ): Promise<WireNode[]> {
    const nodes: WireNode[] = [];
    let expanded = 1;
    // Every value of the message is copied into one buffer (a buffer per value costs more than its bytes).
    const values = new Uint8Array(message.length);
    let valuesAt = 0;
    const tail: NodeTail = { signer: undefined, valuesAt: 0 };
    let pending: Pending[] | undefined;
    // The node frames are read in place (as `splitNodes` would cut them, with its errors).
    let next = 1;
    if (message.length <= 1) throw new ProtocolError("Malformed NODES message: it holds no node");
    while (next < message.length) {
      const length = varintAt(message, next, message.length);
      const body = cursor.end;
      if (length < 0 || body + length > message.length) {
        throw new ProtocolError("Malformed NODES message: a node is cut short");
      }
      const end = body + length;
      next = end;
      if (length === 0 || message[body] !== NODE) {
        throw new ProtocolError("Malformed NODES message: it holds something other than a node");
      }
      const count = varintAt(message, body + 1, end);
      if (count < 0) throw new InvalidNodeError("Malformed node: truncated link count");
      let at = cursor.end;
      if (count > end - at) throw new InvalidNodeError("Malformed node: truncated links");
      // What the node weighs as plain NODES: its body here, the key, and each link's 32 bytes for what it took here.
      let plain = end - body + 32;
      const links: string[] = new Array(count);
      for (let i = 0; i < count; i++) {
        const tag = varintAt(message, at, end);
        if (tag < 0) throw new InvalidNodeError("Malformed node: truncated links");
        plain += 32 - (cursor.end - at);
        at = cursor.end;
        if (tag === 0) {
          if (at + 32 > end) throw new InvalidNodeError("Malformed node: truncated links");
          plain -= 32;
          links[i] = hexOf(message, at, 32);
          at += 32;
        } else if (tag % 2 === 1) {
          const d = (tag + 1) / 2;
          const link = this.#received.recent(this.#received.count - d);
          if (link === undefined) {
            throw new ProtocolError(
              `Link reference to the peer's node ${d} back, of ${this.#received.count} it sent (at most ${REF_RING} back)`,
            );
          }
          links[i] = link;
        } else {
          const index = tag / 2 - 1;
          if (index >= this.#sent.count) {
            throw new ProtocolError(
              `Link reference to node ${index} this side sent, but it sent ${this.#sent.count} in this session`,
            );
          }
          const link = this.#sent.recent(index);
          if (link !== undefined) links[i] = link;
          else (pending ??= []).push({ links, slot: i, change: this.#sent.changeAt(index) });
        }
      }
      expanded += varintLength(plain) + plain;
      if (expanded > maxFrame) {
        throw new ProtocolError(
          `Malformed NODES_REFS message: as plain NODES it would be over ${maxFrame} bytes, the largest message this side takes`,
        );
      }
      readNodeTail(message, at, end, values, valuesAt, tail);
      const from = valuesAt;
      valuesAt = tail.valuesAt;
      const signer = tail.signer;
      // The rare reference to an own node older than the ring, read back before the key is computed.
      if (pending !== undefined) {
        for (const { links, slot, change } of pending) links[slot] = await readChange(change);
        pending = undefined;
      }
      // The key comes from the content: the log's check need not hash the node again (`keyed-nodes.ts`).
      const key = keyAt(links, values, from, valuesAt - from, signer?.identity);
      nodes.push(keyedNode(key, links, values, from, valuesAt - from, signer));
      this.#received.add(key);
    }
    return nodes;
  }
}
