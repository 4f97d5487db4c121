/**
 * The receiving side of `NODES_LIVE` (message type 11, issue 21: the relay's CPU per live node). A relay fans each
 * node it stores out to every live session; with per-session link references (`NODES_REFS`, `link-refs.ts`) it
 * framed the node once per session. A `NODES_LIVE` message instead refers to links by the sender's own change
 * numbers, which are the same for every session, so the sender frames each node once for all of them
 * (`live-frames.ts`) and copies the bytes into each session's message.
 *
 * The message: its type byte, a varint `first` (the sender's change of the first entry), then entries, each framed
 * by its varint length, one per consecutive change of the sender's log from `first`:
 *
 * - a node (body starting with `NODE`, 4): as in `NODES_REFS` (no key, links as tags, flags, identity and signature
 *   when signed, value), but each link tag is `0` and the 32-byte key, or `d >= 1`: the node at this entry's change
 *   minus `d` (`d <` {@link LIVE_RING}), which the receiver learned from an earlier entry of this session;
 * - yours (body starting with {@link YOURS}, 0): the change holds a node this side sent (the sender does not send it
 *   back), then a varint tag: `0` and the 32-byte key, or even `2(i + 1)` for the `i`-th node this side sent in the
 *   session (as in `NODES_REFS`).
 *
 * The receiver keeps the keys of the last {@link LIVE_RING} changes it learned (about 0.3 MB), by change number:
 * a link to a change it does not hold is a `ProtocolError`. Every node of a `NODES_LIVE` message is noted as
 * received for the session's `NODES_REFS` (both sides count them the same way). Only a peer whose HELLO says `refs`
 * gets these messages.
 *
 * @module
 */
import { InvalidNodeError, ProtocolError } from "./errors.ts";
import { varintLength } from "./frame.ts";
import { keyedNode } from "./keyed-nodes.ts";
import type { LinkRefs } from "./link-refs.ts";
import { keyAt } from "./node.ts";
import { NODE, type WireNode } from "./node-codec.ts";
import { cursor, hexOf, type NodeTail, readNodeTail, varintAt } from "./wire-read.ts";

/** The message type of nodes framed with links by the sender's change numbers. */
export const NODES_LIVE = 11;
/** The first byte of an entry for a change that holds the receiver's own node. */
export const YOURS = 0;
/** How many of the latest changes a receiver keeps the keys of; a link reference goes at most this far back. */
export const LIVE_RING = 4096;

/** The keys of the latest changes learned in a session, by change number. */
class ChangeRing {
  readonly changes: Float64Array = new Float64Array(LIVE_RING).fill(-1);
  readonly keys: string[] = new Array<string>(LIVE_RING);

  set(change: number, key: string): void {
    const slot = change % LIVE_RING;
    this.changes[slot] = change;
    this.keys[slot] = key;
  }

  get(change: number): string | undefined {
    const slot = change % LIVE_RING;
    return this.changes[slot] === change ? this.keys[slot] : undefined;
  }
}

/** Each session's ring, by its link references (so that the session carries no field of its own for it). */
const rings = new WeakMap<LinkRefs, ChangeRing>();

/**
 * The varint of `buf` at `at`, which must end by `end` (else an `InvalidNodeError` saying `what`), with nothing
 * allocated per call: where it ends is left in `cursor` (wire-read.ts).
 */
function varint(buf: Uint8Array, at: number, end: number, what: string): number {
  const value = varintAt(buf, at, end);
  if (value < 0) throw new InvalidNodeError(`Malformed NODES_LIVE message: ${what} is cut short`);
  return value;
}

/**
 * Decodes a `NODES_LIVE` message of session `refs` (see the module doc): the nodes, their references resolved and
 * their keys computed from their content, noted as received. `readChange` reads back this side's own node at a
 * change (a "yours" entry older than the session's ring). Throws a `ProtocolError` for a reference to no change
 * this side learned, or a message that would be over `maxFrame` as plain `NODES`, and an `InvalidNodeError` for a
 * malformed node.
 *
 * @example
 * ```ts
 * import { decodeLive, NODES_LIVE } from "./live-decode.ts";
 * import { LinkRefs } from "./link-refs.ts";
 * import { computeKey } from "./node.ts";
 * const refs = new LinkRefs();
 * // Changes 7 and 8 of the sender: a root node with value [1], then one linking it (1 change back), value [2].
 * const message = new Uint8Array([NODES_LIVE, 7, 5, 4, 0, 0, 1, 1, 6, 4, 1, 1, 0, 1, 2]);
 * const [a, b] = await decodeLive(refs, message, () => Promise.reject(new Error("not needed")));
 * console.assert(a!.key === computeKey([], new Uint8Array([1])) && b!.links[0] === a!.key);
 * ```
 */
export async function decodeLive(
  refs: LinkRefs,
  message: Uint8Array,
  readChange: (change: number) => Promise<string>,
  maxFrame: number = 2 ** 31,
): Promise<WireNode[]> {
  let ring = rings.get(refs);
  if (ring === undefined) rings.set(refs, ring = new ChangeRing());
  const end = message.length;
  let change = varint(message, 1, end, "its first change");
  let next = cursor.end;
  if (change < 1) throw new ProtocolError("Malformed NODES_LIVE message: its first change is 0");
  if (next >= end) throw new ProtocolError("Malformed NODES_LIVE message: it holds no entry");
  const nodes: WireNode[] = [];
  const values = new Uint8Array(end);
  let valuesAt = 0;
  const tail: NodeTail = { signer: undefined, valuesAt: 0 };
  let expanded = 1;
  for (; next < end; change++) {
    const length = varint(message, next, end, "an entry");
    const body = cursor.end;
    const stop = body + length;
    if (length === 0 || stop > end) throw new ProtocolError("Malformed NODES_LIVE message: an entry is cut short");
    next = stop;
    if (message[body] === YOURS) {
      const tag = varint(message, body + 1, stop, "an entry of this side's own");
      const at = cursor.end;
      let key: string | number | undefined;
      if (tag === 0 && at + 32 === stop) key = hexOf(message, at, 32);
      else if (tag > 0 && tag % 2 === 0 && at === stop) key = refs.sentAt(tag / 2 - 1);
      else throw new ProtocolError("Malformed NODES_LIVE message: an entry of this side's own is not a reference");
      if (key === undefined) {
        throw new ProtocolError(`Reference to node ${tag / 2 - 1} this side sent, but it sent no such node`);
      }
      // Weighed as a key (it may cost a read of the log), so a message holds no more of them than of links.
      expanded += length + 1 + 32;
      if (expanded > maxFrame) {
        throw new ProtocolError(
          `Malformed NODES_LIVE message: as plain NODES it would be over ${maxFrame} bytes, the largest message this side takes`,
        );
      }
      ring.set(change, typeof key === "string" ? key : await readChange(key));
      continue;
    }
    if (message[body] !== NODE) {
      throw new ProtocolError("Malformed NODES_LIVE message: it holds something other than a node");
    }
    const count = varint(message, body + 1, stop, "a link count");
    let at = cursor.end;
    if (count > stop - at) throw new InvalidNodeError("Malformed node: truncated links");
    // What the node weighs as plain NODES: its body here, the key, and each link's 32 bytes for what it took here.
    let plain = length + 32;
    const links: string[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const tag = varint(message, at, stop, "a link");
      plain += 32 - (cursor.end - at);
      at = cursor.end;
      if (tag === 0) {
        if (at + 32 > stop) throw new InvalidNodeError("Malformed node: truncated links");
        plain -= 32;
        links[i] = hexOf(message, at, 32);
        at += 32;
        continue;
      }
      const link = tag < LIVE_RING ? ring.get(change - tag) : undefined;
      if (link === undefined) {
        throw new ProtocolError(
          `Link reference to the peer's change ${change - tag}, which this session did not learn (at most ${LIVE_RING} back)`,
        );
      }
      links[i] = link;
    }
    expanded += varintLength(plain) + plain;
    if (expanded > maxFrame) {
      throw new ProtocolError(
        `Malformed NODES_LIVE message: as plain NODES it would be over ${maxFrame} bytes, the largest message this side takes`,
      );
    }
    readNodeTail(message, at, stop, values, valuesAt, tail);
    const from = valuesAt;
    valuesAt = tail.valuesAt;
    const signer = tail.signer;
    const key = keyAt(links, values, from, valuesAt - from, signer?.identity);
    nodes.push(keyedNode(key, links, values, from, valuesAt - from, signer));
    ring.set(change, key);
  }
  refs.received(nodes);
  return nodes;
}
