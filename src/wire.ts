/**
 * The replication wire format: varint length-prefixed frames, and the binary encoding of messages and nodes.
 *
 * A frame is an unsigned LEB128 varint (the byte length of the body), then the body. A body starts with one byte,
 * the message type; the rest depends on the type (see `replicate.ts` for the protocol).
 *
 * A node is encoded as its `32`-byte key (the receiver recomputes it from the content and refuses a mismatch, which
 * catches corruption on the way), `varint linkCount`, `linkCount x 32` raw link digests, `u8 flags` (bit 0:
 * signed), when signed `32` bytes of identity and `64` bytes of signature, then `varint valueLength` and the value.
 *
 * @module
 */
import { InvalidNodeError, ProtocolError } from "./errors.ts";
import { hexInto } from "./hex.ts";
import type { RawNode } from "./log.ts";

/** The largest frame a peer accepts by default: 16 MiB. */
export const DEFAULT_MAX_FRAME = 16 * 1024 * 1024;

/**
 * The byte length of `n` as a varint.
 *
 * @example
 * ```ts
 * import { varintLength } from "./wire.ts";
 * console.assert(varintLength(127) === 1 && varintLength(128) === 2);
 * ```
 */
export function varintLength(n: number): number {
  let len = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

/**
 * Writes `n` as a varint at `at`; returns the offset after it.
 *
 * @example
 * ```ts
 * import { writeVarint } from "./wire.ts";
 * const buf = new Uint8Array(2);
 * console.assert(writeVarint(buf, 0, 300) === 2 && buf[0] === 0xac && buf[1] === 0x02);
 * ```
 */
export function writeVarint(buf: Uint8Array, at: number, n: number): number {
  while (n >= 128) {
    buf[at++] = (n % 128) | 128;
    n = Math.floor(n / 128);
  }
  buf[at++] = n;
  return at;
}

/**
 * Reads a varint at `at`: `[value, nextOffset]`, or `undefined` if the bytes end first. Throws an
 * `InvalidNodeError` for a varint longer than 7 bytes (more than 2^49: no frame or count is that big).
 *
 * @example
 * ```ts
 * import { readVarint } from "./wire.ts";
 * console.assert(readVarint(new Uint8Array([0xac, 0x02]), 0)?.[0] === 300);
 * ```
 */
export function readVarint(buf: Uint8Array, at: number): [number, number] | undefined {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 7; i++) {
    if (at >= buf.length) return undefined;
    const byte = buf[at++]!;
    value += (byte & 127) * scale;
    if (byte < 128) return [value, at];
    scale *= 128;
  }
  throw new ProtocolError("Malformed frame: a varint is longer than 7 bytes");
}

/**
 * Prefixes a body with its varint length.
 *
 * @example
 * ```ts
 * import { frame } from "./wire.ts";
 * console.assert(frame(new Uint8Array([7])).join() === "1,7");
 * ```
 */
export function frame(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(varintLength(body.length) + body.length);
  out.set(body, writeVarint(out, 0, body.length));
  return out;
}

/**
 * Splits a byte stream into frame bodies. Feed it chunks as they come; it returns the complete bodies so far and
 * keeps the rest. A length over `maxFrame` throws at once, before the body arrives.
 *
 * @example
 * ```ts
 * import { FrameDecoder, frame } from "./wire.ts";
 * const decoder = new FrameDecoder();
 * const bytes = frame(new Uint8Array([1, 2, 3]));
 * console.assert(decoder.push(bytes.subarray(0, 2)).length === 0);
 * console.assert(decoder.push(bytes.subarray(2))[0]?.length === 3);
 * ```
 */
export class FrameDecoder {
  #chunks: Uint8Array[] = [];
  #size = 0;
  #need = 0;
  #maxFrame: number;

  /** Creates a decoder that refuses frames longer than `maxFrame` bytes. */
  constructor(maxFrame: number = DEFAULT_MAX_FRAME) {
    this.#maxFrame = maxFrame;
  }

  /** Bytes received but not yet part of a complete frame. */
  get buffered(): number {
    return this.#size;
  }

  /** Adds bytes and returns every frame body they complete. Each byte is copied at most twice. */
  push(chunk: Uint8Array): Uint8Array[] {
    if (chunk.length === 0) return [];
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    if (this.#size < this.#need) return [];
    const buf = this.#chunks.length === 1 ? chunk : concatBytes(this.#chunks, this.#size);
    const bodies: Uint8Array[] = [];
    let at = 0;
    this.#need = 0;
    for (;;) {
      const header = readVarint(buf, at);
      if (header === undefined) break;
      const [length, start] = header;
      if (length > this.#maxFrame) {
        throw new ProtocolError(`Frame of ${length} bytes is over the limit of ${this.#maxFrame} bytes`);
      }
      if (start + length > buf.length) {
        this.#need = start + length - at;
        break;
      }
      bodies.push(buf.subarray(start, start + length));
      at = start + length;
    }
    const rest = buf.length - at;
    this.#chunks = rest === 0 ? [] : [buf.slice(at)];
    this.#size = rest;
    return bodies;
  }
}

/**
 * Concatenates byte arrays whose total length is `size`.
 *
 * @example
 * ```ts
 * import { concatBytes } from "./wire.ts";
 * console.assert(concatBytes([new Uint8Array([1]), new Uint8Array([2])], 2).join() === "1,2");
 * ```
 */
export function concatBytes(chunks: readonly Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

function nodeBodySize(node: RawNode): number {
  return 1 + 32 + varintLength(node.links.length) + 32 * node.links.length + 1 +
    (node.identity !== undefined ? 96 : 0) + varintLength(node.value.length) + node.value.length;
}

function writeNodeBody(out: Uint8Array, at: number, type: number, node: RawNode & { key: string }): number {
  out[at++] = type;
  hexInto(node.key, out, at);
  at = writeVarint(out, at + 32, node.links.length);
  for (const link of node.links) {
    hexInto(link, out, at);
    at += 32;
  }
  const signed = node.identity !== undefined;
  out[at++] = signed ? 1 : 0;
  if (signed) {
    hexInto(node.identity!, out, at);
    hexInto(node.signature!, out, at + 32);
    at += 96;
  }
  at = writeVarint(out, at, node.value.length);
  out.set(node.value, at);
  return at + node.value.length;
}

/**
 * Encodes a node as a message body of type `type` (see the module doc for the layout).
 *
 * @example
 * ```ts
 * import { decodeNode, encodeNodeBody } from "./wire.ts";
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
 * import { encodeNodeFrames, FrameDecoder } from "./wire.ts";
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
 * import { decodeNode, encodeNodeBody } from "./wire.ts";
 * const link = "ab".repeat(32);
 * const node = decodeNode(encodeNodeBody(5, { key: link, links: [link], value: new Uint8Array() }), 1);
 * console.assert(node.links[0] === link);
 * ```
 */
export function decodeNode(body: Uint8Array, at: number): RawNode & { key: string } {
  return decodeNodes([body], at)[0]!;
}

/**
 * The message types of the replication protocol (the first byte of every message; see `replicate.ts`).
 *
 * @example
 * ```ts
 * import { NODE, NODES } from "./wire.ts";
 * console.assert(NODE === 4 && NODES === 8);
 * ```
 */
export const HELLO = 1;
/** CHECK: the checkpoint and fingerprint (see {@link HELLO}). */
export const CHECK = 2;
/** RECON: set reconciliation entries (see {@link HELLO}). */
export const RECON = 3;
/** NODE: one node (see {@link HELLO}). */
export const NODE = 4;
/** SYNCED: every node the peer lacked was sent (see {@link HELLO}). */
export const SYNCED = 5;
/** ACK: every node the peer sent was stored (see {@link HELLO}). */
export const ACK = 6;
/** ERROR: the sender stops the session (see {@link HELLO}). */
export const ERROR = 7;
/** NODES: several NODE messages, each framed as on a byte stream, in one message (see {@link HELLO}). */
export const NODES = 8;

const HEX_PAIRS = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  const pair = i.toString(16).padStart(2, "0");
  HEX_PAIRS[i] = pair.charCodeAt(0) | (pair.charCodeAt(1) << 8);
}
const asciiDecoder = new TextDecoder("utf-8");

/**
 * Decodes the nodes of many message bodies (each starting at `at`). The hex of every key, link, identity and
 * signature is made in one string and sliced, which costs a fraction of one string per field. Throws an
 * `InvalidNodeError` for the first malformed node.
 *
 * @example
 * ```ts
 * import { decodeNodes, encodeNodeBody } from "./wire.ts";
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
 * Packs nodes into NODES messages of at most about `maxBytes` each (a node bigger than that alone in one), framed
 * for a byte stream: `[8, frame(NODE body), frame(NODE body), ...]` per message. Over a WebSocket each becomes one
 * message, so a page of nodes costs a few messages instead of one per node.
 *
 * @example
 * ```ts
 * import { encodeNodesMessages, FrameDecoder, splitNodes } from "./wire.ts";
 * const node = { key: "ab".repeat(32), links: [], value: new Uint8Array([1]) };
 * const [message] = new FrameDecoder().push(encodeNodesMessages([node, node, node], 1 << 16));
 * console.assert(message![0] === 8 && splitNodes(message!).length === 3);
 * ```
 */
export function encodeNodesMessages(nodes: readonly (RawNode & { key: string })[], maxBytes: number): Uint8Array {
  const parts: Uint8Array[] = [];
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
    parts.push(frame(message));
    start = end;
  }
  return parts.length === 1 ? parts[0]! : concatBytes(parts, parts.reduce((n, p) => n + p.length, 0));
}

/**
 * The NODE message bodies inside a NODES message. Throws a `ProtocolError` if the message is malformed (a frame
 * cut short, an empty message, or something other than a NODE inside).
 *
 * @example
 * ```ts
 * import { encodeNodeBody, frame, splitNodes } from "./wire.ts";
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
