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
import { readVarint, varintLength, writeVarint } from "./frame.ts";
import { HEX_PAIRS, hexInto } from "./hex.ts";
import { sha256Hex } from "./sha256.ts";
import { computeKey, type StoredNode } from "./node.ts";
import { encodeNodesBodies, NODE, NODES_REFS, nodeWireSize, splitNodes, type WireNode } from "./node-codec.ts";
import { markKeyed } from "./keyed-nodes.ts";

export { NODES_REFS };
/** How many of the latest keys each side keeps per direction (sent, received) to resolve references. */
export const REF_RING = 4096;

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function hexOf(bytes: Uint8Array, from: number, length: number): string {
  let s = "";
  for (let i = from; i < from + length; i++) s += HEX[bytes[i]!]!;
  return s;
}

/** One direction's list of nodes: the latest keys in a ring, a key's place, and (for sent nodes) every change. */
class NodeList {
  count = 0;
  readonly ring: string[] = new Array(REF_RING);
  readonly place = new Map<string, number>();
  /** Runs of consecutive changes: first change, and the list index of that first node. */
  readonly runStart: number[] = [];
  readonly runIndex: number[] = [];
  #lastChange = -2;

  add(key: string, change?: number): void {
    const i = this.count++;
    const slot = i % REF_RING;
    if (i >= REF_RING) {
      const old = this.ring[slot]!;
      if (this.place.get(old) === i - REF_RING) this.place.delete(old);
    }
    this.ring[slot] = key;
    this.place.set(key, i);
    if (change === undefined) return;
    if (change !== this.#lastChange + 1) {
      this.runStart.push(change);
      this.runIndex.push(i);
    }
    this.#lastChange = change;
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

/** Scratch of `decode`: where each link's hex comes from, and the key's preimage. */
let sources = new Float64Array(64);
let preimage = new Uint8Array(4096);

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
  /** The ASCII hex of the latest received keys, 64 bytes a slot (grown as they come, up to REF_RING slots). */
  #ascii: Uint8Array = new Uint8Array(0);
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
    for (const node of nodes) this.#noteReceived(node.key);
  }

  #tag(link: string): number {
    const s = this.#sent.place.get(link);
    if (s !== undefined) return 2 * (this.#sent.count - s) - 1;
    const r = this.#received.place.get(link);
    if (r !== undefined) return 2 * (r + 1);
    return 0;
  }

  /**
   * One node framed as it goes inside a `NODES_REFS` message (its frame length, then its body), noted as sent.
   * {@link LinkRefs.encode} is these, cut into messages.
   */
  frame(node: StoredNode): Uint8Array {
    const tags = node.links.map((link) => this.#tag(link));
    let body = 1 + varintLength(tags.length) + 1 + (node.identity !== undefined ? 96 : 0) +
      varintLength(node.value.length) + node.value.length;
    for (const tag of tags) body += tag === 0 ? 1 + 32 : varintLength(tag);
    const framed = new Uint8Array(varintLength(body) + body);
    let at = writeVarint(framed, 0, body);
    framed[at++] = NODE;
    at = writeVarint(framed, at, tags.length);
    for (let i = 0; i < tags.length; i++) {
      at = writeVarint(framed, at, tags[i]!);
      if (tags[i] === 0) {
        hexInto(node.links[i]!, framed, at);
        at += 32;
      }
    }
    const signed = node.identity !== undefined;
    framed[at++] = signed ? 1 : 0;
    if (signed) {
      hexInto(node.identity!, framed, at);
      hexInto(node.signature!, framed, at + 32);
      at += 96;
    }
    at = writeVarint(framed, at, node.value.length);
    framed.set(node.value, at);
    this.#sent.add(node.key, node.change);
    return framed;
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
   * them as sent.
   */
  encode(nodes: readonly StoredNode[], maxBytes: number): Uint8Array[] {
    if (!this.peerTakesRefs) {
      this.sent(nodes);
      return encodeNodesBodies(nodes, maxBytes);
    }
    const out: Uint8Array[] = [];
    let parts: Uint8Array[] = [];
    let size = 1;
    let expanded = 1;
    const flush = () => {
      const message = new Uint8Array(size);
      message[0] = NODES_REFS;
      let at = 1;
      for (const part of parts) {
        message.set(part, at);
        at += part.length;
      }
      out.push(message);
      parts = [];
      size = 1;
      expanded = 1;
    };
    for (const node of nodes) {
      const framed = this.frame(node);
      const plain = nodeWireSize(node);
      if (parts.length > 0 && expanded + plain > maxBytes) flush();
      parts.push(framed);
      size += framed.length;
      expanded += plain;
    }
    if (parts.length > 0) flush();
    return out;
  }

  /** Notes a received key, and its ASCII hex in the ring the next keys' preimages copy it from. */
  #noteReceived(key: string): void {
    const slot = this.#received.count % REF_RING;
    this.#received.add(key);
    const need = (slot + 1) * 64;
    if (this.#ascii.length < need) {
      const grown = new Uint8Array(Math.min(REF_RING * 64, Math.max(need, this.#ascii.length * 2)));
      grown.set(this.#ascii);
      this.#ascii = grown;
    }
    const ascii = this.#ascii;
    for (let i = 0, at = slot * 64; i < 64; i++) ascii[at + i] = key.charCodeAt(i);
  }

  /**
   * The key of an unsigned node just decoded (what `computeKey` computes: for each link, its length, a newline and
   * its hex; then the value's), its preimage made from the ASCII ring, the raw keys in `body` and, for this side's
   * own nodes, the key strings.
   */
  #keyOf(links: readonly string[], body: Uint8Array, value: Uint8Array): string {
    const n = links.length;
    const size = n * 67 + String(value.length).length + 1 + value.length;
    if (preimage.length < size) preimage = new Uint8Array(Math.max(size, preimage.length * 2));
    const out = preimage;
    const ascii = this.#ascii;
    let at = 0;
    for (let i = 0; i < n; i++) {
      out[at++] = 54; // "6"
      out[at++] = 52; // "4"
      out[at++] = 10; // "\n"
      const source = sources[i]!;
      if (source >= 0) {
        for (let j = 0, from = source * 64; j < 64; j++) out[at + j] = ascii[from + j]!;
      } else if (source < 0) {
        for (let j = 0, from = -1 - source; j < 32; j++) {
          const pair = HEX_PAIRS[body[from + j]!]!;
          out[at + 2 * j] = pair & 0xff;
          out[at + 2 * j + 1] = pair >> 8;
        }
      } else {
        const link = links[i]!;
        for (let j = 0; j < 64; j++) out[at + j] = link.charCodeAt(j);
      }
      at += 64;
    }
    const digits = String(value.length);
    for (let i = 0; i < digits.length; i++) out[at++] = digits.charCodeAt(i);
    out[at++] = 10;
    out.set(value, at);
    return sha256Hex(out.subarray(0, at + value.length));
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
    for (const body of splitNodes(message)) {
      let at = 1;
      const pending: Pending[] = [];
      const count = readVarint(body, at);
      if (count === undefined) throw new InvalidNodeError("Malformed node: truncated link count");
      at = count[1];
      if (count[0] > body.length - at) throw new InvalidNodeError("Malformed node: truncated links");
      // What the node weighs as plain NODES: its body here, the key, and each link's 32 bytes for what it took here.
      let plain = body.length + 32;
      const n = count[0];
      const links: string[] = new Array(n);
      // Where each link's hex comes from for the key's preimage: >= 0 a slot of the received keys' ASCII ring,
      // -1 - offset the raw key in `body`, or NaN its string (in `links`).
      if (sources.length < n) sources = new Float64Array(Math.max(n, sources.length * 2));
      for (let i = 0; i < n; i++) {
        let tag: number;
        const first = body[at];
        if (first !== undefined && first < 128) {
          tag = first;
          at++;
          plain += 31;
        } else {
          const tagged = readVarint(body, at);
          if (tagged === undefined) throw new InvalidNodeError("Malformed node: truncated links");
          tag = tagged[0];
          plain += 32 - (tagged[1] - at);
          at = tagged[1];
        }
        if (tag === 0) {
          if (at + 32 > body.length) throw new InvalidNodeError("Malformed node: truncated links");
          plain -= 32;
          links[i] = hexOf(body, at, 32);
          sources[i] = -1 - at;
          at += 32;
        } else if (tag % 2 === 1) {
          const d = (tag + 1) / 2;
          const index = this.#received.count - d;
          const link = this.#received.recent(index);
          if (link === undefined) {
            throw new ProtocolError(
              `Link reference to the peer's node ${d} back, of ${this.#received.count} it sent (at most ${REF_RING} back)`,
            );
          }
          links[i] = link;
          sources[i] = index % REF_RING;
        } else {
          const index = tag / 2 - 1;
          if (index >= this.#sent.count) {
            throw new ProtocolError(
              `Link reference to node ${index} this side sent, but it sent ${this.#sent.count} in this session`,
            );
          }
          const link = this.#sent.recent(index);
          if (link !== undefined) links[i] = link;
          else pending.push({ links, slot: i, change: this.#sent.changeAt(index) });
          sources[i] = NaN;
        }
      }
      expanded += varintLength(plain) + plain;
      if (expanded > maxFrame) {
        throw new ProtocolError(
          `Malformed NODES_REFS message: as plain NODES it would be over ${maxFrame} bytes, the largest message this side takes`,
        );
      }
      if (at >= body.length) throw new InvalidNodeError("Malformed node: truncated flags");
      const flags = body[at++]!;
      if (flags > 1) throw new InvalidNodeError(`Malformed node: unknown flags ${flags}`);
      let signer: { identity: string; signature: string } | undefined;
      if (flags === 1) {
        if (at + 96 > body.length) throw new InvalidNodeError("Malformed node: truncated signature");
        signer = { identity: hexOf(body, at, 32), signature: hexOf(body, at + 32, 64) };
        at += 96;
      }
      const len = readVarint(body, at);
      if (len === undefined) throw new InvalidNodeError("Malformed node: truncated value length");
      if (len[1] + len[0] !== body.length) {
        throw new InvalidNodeError(
          `Malformed node: the value is ${len[0]} bytes but the frame holds ${body.length - len[1]}`,
        );
      }
      const value = body.slice(len[1]);
      // The rare reference to an own node older than the ring, read back before the key is computed.
      for (const { links, slot, change } of pending) links[slot] = await readChange(change);
      // (After an await, another session's decode may have used the shared scratch: then the plain way.)
      const key = signer === undefined && pending.length === 0
        ? this.#keyOf(links, body, value)
        : computeKey(links, value, signer?.identity);
      const node: WireNode = signer === undefined ? { key, links, value } : { key, links, value, ...signer };
      markKeyed(node);
      nodes.push(node);
      this.#noteReceived(key);
    }
    return nodes;
  }
}
