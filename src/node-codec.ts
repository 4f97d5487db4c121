/**
 * The binary encoding of a node inside NODE and NODES messages.
 *
 * A node is encoded as its `32`-byte key (the receiver recomputes it from the content and refuses a mismatch, which
 * catches corruption on the way), `varint linkCount`, `linkCount x 32` raw link digests, `u8 flags` (bit 0:
 * signed), when signed `32` bytes of identity and `64` bytes of signature, then `varint valueLength` and the value.
 *
 * @module
 */
import { InvalidNodeError, ProtocolError } from "./errors.ts";
import { HEX_PAIRS, hexInto } from "./hex.ts";
import { type RawNode, valueSize } from "./node.ts";
import { FrameDecoder, readVarint, varintLength, writeVarint } from "./frame.ts";

/** NODE: the message type of one node. */
export const NODE = 4;
/** NODES: the message type of several nodes, each framed as on a byte stream. */
export const NODES = 8;
/** NODES_REFS: several nodes framed as in NODES, their links possibly references (see link-refs.ts). */
export const NODES_REFS = 10;

/**
 * A node as it travels: key, links, value bytes, and identity and signature when signed.
 *
 * @example
 * ```ts
 * import { decodeNode, encodeNodeBody, NODE, type WireNode } from "./node-codec.ts";
 * const node: WireNode = { key: "ab".repeat(32), links: ["cd".repeat(32)], value: new Uint8Array([7]) };
 * const back: WireNode = decodeNode(encodeNodeBody(NODE, node), 1);
 * console.assert(back.key === node.key && back.links[0] === node.links[0] && back.value[0] === 7);
 * ```
 */
export type WireNode = RawNode & { key: string };

/**
 * The byte length of a node's NODE message body (type byte included).
 *
 * @example
 * ```ts
 * import { nodeBodySize } from "./node-codec.ts";
 * console.assert(nodeBodySize({ links: [], value: new Uint8Array(3) }) === 1 + 32 + 1 + 1 + 1 + 3);
 * ```
 */
export function nodeBodySize(node: RawNode): number {
  return 1 + 32 + varintLength(node.links.length) + 32 * node.links.length + nodeTailSize(node);
}

/**
 * The byte length of what follows a node's links in both node layouts (NODES and `NODES_REFS`): flags, identity and
 * signature when signed, value length and value.
 *
 * @example
 * ```ts
 * import { nodeTailSize } from "./node-codec.ts";
 * console.assert(nodeTailSize({ links: [], value: new Uint8Array(3) }) === 1 + 1 + 3);
 * ```
 */
export function nodeTailSize(node: RawNode): number {
  const size = valueSize(node);
  return 1 + (node.identity !== undefined ? 96 : 0) + varintLength(size) + size;
}

/**
 * Writes what follows a node's links (see {@link nodeTailSize}) into `out` at `at`; returns where it ends.
 *
 * @example
 * ```ts
 * import { nodeTailSize, writeNodeTail } from "./node-codec.ts";
 * const node = { links: [], value: new Uint8Array([7]) };
 * const out = new Uint8Array(nodeTailSize(node));
 * console.assert(writeNodeTail(out, 0, node) === 3 && out[0] === 0 && out[1] === 1 && out[2] === 7);
 * ```
 */
export function writeNodeTail(out: Uint8Array, at: number, node: RawNode): number {
  const value = node.value;
  at = writeNodeTailHead(out, at, node);
  out.set(value, at);
  return at + value.length;
}

/**
 * Writes what follows a node's links up to its value (flags, signer, the value's length), for a writer that copies
 * the value itself; returns where the value goes.
 *
 * @example
 * ```ts
 * import { writeNodeTailHead } from "./node-codec.ts";
 * const out = new Uint8Array(2);
 * console.assert(writeNodeTailHead(out, 0, { links: [], value: new Uint8Array(5) }) === 2 && out[1] === 5);
 * ```
 */
export function writeNodeTailHead(out: Uint8Array, at: number, node: RawNode): number {
  const signed = node.identity !== undefined;
  out[at++] = signed ? 1 : 0;
  if (signed) {
    hexInto(node.identity!, out, at);
    hexInto(node.signature!, out, at + 32);
    at += 96;
  }
  return writeVarint(out, at, valueSize(node));
}

function writeNodeBody(out: Uint8Array, at: number, type: number, node: RawNode & { key: string }): number {
  out[at++] = type;
  hexInto(node.key, out, at);
  at = writeVarint(out, at + 32, node.links.length);
  for (const link of node.links) {
    hexInto(link, out, at);
    at += 32;
  }
  return writeNodeTail(out, at, node);
}

/**
 * Encodes a node as a message body of type `type` (see the module doc for the layout).
 *
 * @example
 * ```ts
 * import { decodeNode, encodeNodeBody } from "./node-codec.ts";
 * const body = encodeNodeBody(5, { key: "ab".repeat(32), links: [], value: new Uint8Array([1, 2]) });
 * console.assert(body[0] === 5 && decodeNode(body, 1).value.length === 2);
 * ```
 */
export function encodeNodeBody(type: number, node: RawNode & { key: string }): Uint8Array {
  const out = new Uint8Array(nodeBodySize(node));
  writeNodeBody(out, 0, type, node);
  return out;
}

/**
 * Encodes many nodes as consecutive frames in one buffer (one allocation and one stream chunk for a whole page).
 *
 * @example
 * ```ts
 * import { FrameDecoder } from "./frame.ts";
 * import { encodeNodeFrames } from "./node-codec.ts";
 * const node = { key: "ab".repeat(32), links: [], value: new Uint8Array([1]) };
 * const bytes = encodeNodeFrames(4, [node, node]);
 * console.assert(new FrameDecoder().push(bytes).length === 2);
 * ```
 */
export function encodeNodeFrames(type: number, nodes: readonly (RawNode & { key: string })[]): Uint8Array {
  let size = 0;
  const sizes = new Array<number>(nodes.length);
  for (let i = 0; i < nodes.length; i++) {
    const body = nodeBodySize(nodes[i]!);
    sizes[i] = body;
    size += varintLength(body) + body;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (let i = 0; i < nodes.length; i++) {
    at = writeVarint(out, at, sizes[i]!);
    at = writeNodeBody(out, at, type, nodes[i]!);
  }
  return out;
}

/**
 * Decodes a node from a message body, starting at `at`. Throws an `InvalidNodeError` for a malformed node.
 *
 * @example
 * ```ts
 * import { decodeNode, encodeNodeBody } from "./node-codec.ts";
 * const link = "ab".repeat(32);
 * const node = decodeNode(encodeNodeBody(5, { key: link, links: [link], value: new Uint8Array() }), 1);
 * console.assert(node.links[0] === link);
 * ```
 */
export function decodeNode(body: Uint8Array, at: number): RawNode & { key: string } {
  return decodeNodes([body], at)[0]!;
}

const asciiDecoder = new TextDecoder("utf-8");

/**
 * Decodes the nodes of many message bodies (each starting at `at`). The hex of every key, link, identity and
 * signature is made in one string and sliced, which costs a fraction of one string per field. Throws an
 * `InvalidNodeError` for the first malformed node.
 *
 * @example
 * ```ts
 * import { decodeNodes, encodeNodeBody } from "./node-codec.ts";
 * const body = encodeNodeBody(4, { key: "cd".repeat(32), links: ["ab".repeat(32)], value: new Uint8Array([1]) });
 * const [node] = decodeNodes([body, body], 1);
 * console.assert(node?.key === "cd".repeat(32) && node.links[0] === "ab".repeat(32));
 * ```
 */
export function decodeNodes(bodies: readonly Uint8Array[], at0: number): (RawNode & { key: string })[] {
  // First pass: check the layout and note where each hex field is.
  interface Layout {
    body: Uint8Array;
    links: number;
    signed: boolean;
    fields: number;
    valueAt: number;
  }
  const layouts: Layout[] = [];
  let hexBytes = 0;
  for (const body of bodies) {
    let at = at0;
    if (at + 32 > body.length) throw new InvalidNodeError("Malformed node: truncated key");
    at += 32;
    const count = readVarint(body, at);
    if (count === undefined) throw new InvalidNodeError("Malformed node: truncated link count");
    const [linkCount, afterCount] = count;
    at = afterCount;
    if (at + linkCount * 32 + 1 > body.length) throw new InvalidNodeError("Malformed node: truncated links");
    const fields = at;
    at += linkCount * 32;
    const flags = body[at++]!;
    if (flags > 1) throw new InvalidNodeError(`Malformed node: unknown flags ${flags}`);
    const signed = flags === 1;
    if (signed) {
      if (at + 96 > body.length) throw new InvalidNodeError("Malformed node: truncated signature");
      at += 96;
    }
    const len = readVarint(body, at);
    if (len === undefined) throw new InvalidNodeError("Malformed node: truncated value length");
    const [valueLength, valueAt] = len;
    if (valueAt + valueLength !== body.length) {
      throw new InvalidNodeError(
        `Malformed node: the value is ${valueLength} bytes but the frame holds ${body.length - valueAt}`,
      );
    }
    layouts.push({ body, links: linkCount, signed, fields, valueAt });
    hexBytes += 32 * (1 + linkCount) + (signed ? 96 : 0);
  }
  // Second pass: all hex in one buffer, one string.
  const ascii = new Uint8Array(hexBytes * 2);
  let out = 0;
  const put = (body: Uint8Array, from: number, length: number) => {
    for (let i = from; i < from + length; i++) {
      const pair = HEX_PAIRS[body[i]!]!;
      ascii[out++] = pair & 255;
      ascii[out++] = pair >> 8;
    }
  };
  for (const { body, links, signed, fields } of layouts) {
    put(body, at0, 32);
    put(body, fields, links * 32);
    if (signed) put(body, fields + links * 32 + 1, 96);
  }
  const hex = asciiDecoder.decode(ascii);
  let cursor = 0;
  const take = (chars: number) => hex.slice(cursor, cursor += chars);
  return layouts.map(({ body, links: linkCount, signed, valueAt }) => {
    const key = take(64);
    const links: string[] = new Array(linkCount);
    for (let i = 0; i < linkCount; i++) links[i] = take(64);
    const value = body.slice(valueAt);
    if (!signed) return { key, links, value };
    const identity = take(64);
    return { key, links, value, identity, signature: take(128) };
  });
}

/**
 * Packs nodes into NODES message bodies of at most about `maxBytes` each (a node bigger than that alone in one):
 * `[8, frame(NODE body), frame(NODE body), ...]` per message, so a page of nodes costs a few messages.
 *
 * @example
 * ```ts
 * import { encodeNodesBodies, splitNodes } from "./node-codec.ts";
 * const node = { key: "ab".repeat(32), links: [], value: new Uint8Array([1]) };
 * const [message] = encodeNodesBodies([node, node, node], 1 << 16);
 * console.assert(message![0] === 8 && splitNodes(message!).length === 3);
 * ```
 */
export function encodeNodesBodies(nodes: readonly WireNode[], maxBytes: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  while (start < nodes.length) {
    let end = start;
    let size = 1;
    while (end < nodes.length) {
      const body = nodeBodySize(nodes[end]!);
      const framed = varintLength(body) + body;
      if (end > start && size + framed > maxBytes) break;
      size += framed;
      end++;
    }
    const inner = encodeNodeFrames(NODE, nodes.slice(start, end));
    const message = new Uint8Array(1 + inner.length);
    message[0] = NODES;
    message.set(inner, 1);
    out.push(message);
    start = end;
  }
  return out;
}

/**
 * The encoded size of a node inside a NODES message (its NODE body and that body's length prefix).
 *
 * @example
 * ```ts
 * import { nodeWireSize } from "./node-codec.ts";
 * console.assert(nodeWireSize({ key: "ab".repeat(32), links: [], value: new Uint8Array(3) }) === 1 + 1 + 32 + 1 + 1 + 1 + 3);
 * ```
 */
export function nodeWireSize(node: RawNode): number {
  const body = nodeBodySize(node);
  return varintLength(body) + body;
}

/**
 * The NODE message bodies inside a NODES message. Throws a `ProtocolError` if the message is malformed (a frame
 * cut short, an empty message, or something other than a NODE inside).
 *
 * @example
 * ```ts
 * import { frame } from "./frame.ts";
 * import { encodeNodeBody, splitNodes } from "./node-codec.ts";
 * const body = encodeNodeBody(4, { key: "ab".repeat(32), links: [], value: new Uint8Array() });
 * const message = Uint8Array.of(8, ...frame(body), ...frame(body));
 * console.assert(splitNodes(message).length === 2);
 * ```
 */
export function splitNodes(message: Uint8Array): Uint8Array[] {
  const decoder = new FrameDecoder(2 ** 31);
  const bodies = decoder.push(message.subarray(1));
  if (decoder.buffered > 0) throw new ProtocolError("Malformed NODES message: a node is cut short");
  if (bodies.length === 0) throw new ProtocolError("Malformed NODES message: it holds no node");
  for (const body of bodies) {
    if (body[0] !== NODE) throw new ProtocolError("Malformed NODES message: it holds something other than a node");
  }
  return bodies;
}
