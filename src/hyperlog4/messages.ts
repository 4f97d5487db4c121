/**
 * hyperlog 4.12.1's wire and storage messages (its `schema.proto`), encoded and decoded as protocol buffers, and the
 * varint length framing of its replication stream. Only what hyperlog 4 uses: varints (uint32, bool) and
 * length-delimited fields (string, bytes); unknown fields are skipped as protocol buffers require.
 *
 * @module
 */
import { ProtocolError } from "../errors.ts";

/**
 * A node as hyperlog 4 stores and sends it (`message Node`): `log` and `seq` place it in the writer's log.
 *
 * @example
 * ```ts
 * import { decodeH4Node, encodeH4Node, type H4Node } from "./messages.ts";
 * const node: H4Node = { change: 1, key: "k", log: "l", seq: 1, value: new Uint8Array([1]), links: [] };
 * console.assert(decodeH4Node(encodeH4Node(node)).log === "l");
 * ```
 */
export interface H4Node {
  /** The sender's change number of the node. */
  change: number;
  /** The node's key (hex). */
  key: string;
  /** The id of the log (the writer) the node belongs to. */
  log: string;
  /** The node's position in that log, from 1. */
  seq: number;
  /** The encoded value. */
  value: Uint8Array;
  /** The keys the node links to. */
  links: string[];
  /** hyperlog 4's opaque identity bytes, when the writer signed. */
  identity?: Uint8Array | undefined;
  /** hyperlog 4's opaque signature bytes, when the writer signed. */
  signature?: Uint8Array | undefined;
}

/**
 * An entry of a writer's log (`message Entry`), as hyperlog 4 keeps it under `!logs!`.
 *
 * @example
 * ```ts
 * import { decodeH4Entry, type H4Entry } from "./messages.ts";
 * const entry: H4Entry = { change: 1, node: "k", links: [] };
 * console.assert(entry.node === "k" && typeof decodeH4Entry === "function");
 * ```
 */
export interface H4Entry {
  /** The change number of the node in the log that holds this entry. */
  change: number;
  /** The node's key. */
  node: string;
  /** The other logs the node links into. */
  links: string[];
}

/**
 * The handshake that opens a hyperlog 4 replication stream (`message Handshake`).
 *
 * @example
 * ```ts
 * import { decodeH4Handshake, encodeH4Handshake } from "./messages.ts";
 * const back = decodeH4Handshake(encodeH4Handshake({ version: 1, mode: "sync", live: false }), 1);
 * console.assert(back.mode === "sync");
 * ```
 */
export interface H4Handshake {
  /** The protocol version (1). */
  version: number;
  /** "sync", "push" or "pull". */
  mode: string;
  /** Opaque bytes from the peer's `metadata` option. */
  metadata?: Uint8Array | undefined;
  /** Whether the peer asks to stay live. */
  live?: boolean | undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

class Writer {
  bytes: number[] = [];
  varint(n: number): void {
    while (n > 127) {
      this.bytes.push((n & 127) | 128);
      n = Math.floor(n / 128);
    }
    this.bytes.push(n);
  }
  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }
  uint(field: number, n: number): void {
    this.tag(field, 0);
    this.varint(n);
  }
  data(field: number, data: Uint8Array): void {
    this.tag(field, 2);
    this.varint(data.length);
    for (const byte of data) this.bytes.push(byte);
  }
  string(field: number, text: string): void {
    this.data(field, encoder.encode(text));
  }
  done(prefix?: number): Uint8Array {
    const out = new Uint8Array(this.bytes.length + (prefix === undefined ? 0 : 1));
    if (prefix !== undefined) out[0] = prefix;
    out.set(this.bytes, prefix === undefined ? 0 : 1);
    return out;
  }
}

/** Calls `field(number, value)` for each field of a message; varints as numbers, length-delimited as bytes. */
function readFields(buf: Uint8Array, start: number, field: (n: number, value: number | Uint8Array) => void): void {
  let at = start;
  const varint = (): number => {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (at >= buf.length) throw new ProtocolError("A hyperlog 4 message ends inside a number");
      const byte = buf[at++]!;
      n += (byte & 127) * scale;
      if (byte < 128) return n;
      scale *= 128;
    }
    throw new ProtocolError("A hyperlog 4 message has a number longer than 10 bytes");
  };
  while (at < buf.length) {
    const tag = varint();
    const wire = tag % 8;
    const n = Math.floor(tag / 8);
    if (wire === 0) field(n, varint());
    else if (wire === 2) {
      const length = varint();
      if (at + length > buf.length) throw new ProtocolError("A hyperlog 4 message ends inside a field");
      field(n, buf.subarray(at, at + length));
      at += length;
    } else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else throw new ProtocolError(`A hyperlog 4 message has a field of unknown wire type ${wire}`);
  }
  if (at > buf.length) throw new ProtocolError("A hyperlog 4 message ends inside a field");
}

function text(value: number | Uint8Array, name: string): string {
  if (typeof value === "number") throw new ProtocolError(`A hyperlog 4 message has a number where ${name} belongs`);
  try {
    return decoder.decode(value);
  } catch {
    throw new ProtocolError(`A hyperlog 4 message has a ${name} that is not utf-8`);
  }
}

function bytes(value: number | Uint8Array, name: string): Uint8Array {
  if (typeof value === "number") throw new ProtocolError(`A hyperlog 4 message has a number where ${name} belongs`);
  return value.slice();
}

function uint(value: number | Uint8Array, name: string): number {
  if (typeof value !== "number") throw new ProtocolError(`A hyperlog 4 message has bytes where ${name} belongs`);
  return value;
}

function required(seen: Set<number>, fields: Record<number, string>, message: string): void {
  for (const [n, name] of Object.entries(fields)) {
    if (!seen.has(Number(n))) throw new ProtocolError(`A hyperlog 4 ${message} message has no ${name}`);
  }
}

/**
 * Encodes a node as hyperlog 4 does (fields in `schema.proto` order), after an optional one-byte message type.
 *
 * @example
 * ```ts
 * import { encodeH4Node } from "./messages.ts";
 * const bytes = encodeH4Node({ change: 1, key: "k", log: "l", seq: 1, value: new Uint8Array(), links: [] });
 * console.assert(bytes[0] === 8 && bytes[1] === 1);
 * ```
 */
export function encodeH4Node(node: H4Node, type?: number): Uint8Array {
  const w = new Writer();
  w.uint(1, node.change);
  w.string(2, node.key);
  w.string(3, node.log);
  w.uint(4, node.seq);
  if (node.identity) w.data(7, node.identity);
  if (node.signature) w.data(8, node.signature);
  w.data(5, node.value);
  for (const link of node.links) w.string(6, link);
  return w.done(type);
}

/**
 * Decodes a node (from `start`, after a message type byte when there is one).
 *
 * @example
 * ```ts
 * import { decodeH4Node, encodeH4Node } from "./messages.ts";
 * const node = { change: 2, key: "k", log: "l", seq: 3, value: new Uint8Array([7]), links: ["a"] };
 * console.assert(decodeH4Node(encodeH4Node(node, 3), 1).links[0] === "a");
 * ```
 */
export function decodeH4Node(buf: Uint8Array, start = 0): H4Node {
  const node: H4Node = { change: 0, key: "", log: "", seq: 0, value: new Uint8Array(), links: [] };
  const seen = new Set<number>();
  readFields(buf, start, (n, value) => {
    seen.add(n);
    if (n === 1) node.change = uint(value, "change");
    else if (n === 2) node.key = text(value, "key");
    else if (n === 3) node.log = text(value, "log");
    else if (n === 4) node.seq = uint(value, "seq");
    else if (n === 5) node.value = bytes(value, "value");
    else if (n === 6) node.links.push(text(value, "link"));
    else if (n === 7) node.identity = bytes(value, "identity");
    else if (n === 8) node.signature = bytes(value, "signature");
  });
  required(seen, { 1: "change", 2: "key", 3: "log", 5: "value" }, "node");
  return node;
}

/**
 * Decodes a log entry (`message Entry`).
 *
 * @example
 * ```ts
 * import { decodeH4Entry } from "./messages.ts";
 * // change 1, node "k"
 * console.assert(decodeH4Entry(new Uint8Array([8, 1, 18, 1, 107])).node === "k");
 * ```
 */
export function decodeH4Entry(buf: Uint8Array): H4Entry {
  const entry: H4Entry = { change: 0, node: "", links: [] };
  const seen = new Set<number>();
  readFields(buf, 0, (n, value) => {
    seen.add(n);
    if (n === 1) entry.change = uint(value, "change");
    else if (n === 2) entry.node = text(value, "node");
    else if (n === 3) entry.links.push(text(value, "link"));
  });
  required(seen, { 1: "change", 2: "node" }, "entry");
  return entry;
}

/**
 * Encodes a `have` or `want` (`message Log`: a log id and a seq) after its message type byte.
 *
 * @example
 * ```ts
 * import { decodeH4Log, encodeH4Log } from "./messages.ts";
 * console.assert(decodeH4Log(encodeH4Log(1, { log: "a", seq: 4 }), 1).seq === 4);
 * ```
 */
export function encodeH4Log(type: number, head: { log: string; seq: number }): Uint8Array {
  const w = new Writer();
  w.string(1, head.log);
  w.uint(2, head.seq);
  return w.done(type);
}

/**
 * Decodes a `have` or `want`.
 *
 * @example
 * ```ts
 * import { decodeH4Log, encodeH4Log } from "./messages.ts";
 * console.assert(decodeH4Log(encodeH4Log(2, { log: "b", seq: 0 }), 1).log === "b");
 * ```
 */
export function decodeH4Log(buf: Uint8Array, start = 0): { log: string; seq: number } {
  const head = { log: "", seq: 0 };
  const seen = new Set<number>();
  readFields(buf, start, (n, value) => {
    seen.add(n);
    if (n === 1) head.log = text(value, "log");
    else if (n === 2) head.seq = uint(value, "seq");
  });
  required(seen, { 1: "log", 2: "seq" }, "log");
  return head;
}

/**
 * Encodes a handshake after its message type byte (0).
 *
 * @example
 * ```ts
 * import { encodeH4Handshake } from "./messages.ts";
 * console.assert(encodeH4Handshake({ version: 1, mode: "sync" })[0] === 0);
 * ```
 */
export function encodeH4Handshake(handshake: H4Handshake): Uint8Array {
  const w = new Writer();
  w.uint(1, handshake.version);
  w.string(2, handshake.mode);
  if (handshake.metadata) w.data(3, handshake.metadata);
  if (handshake.live !== undefined) w.uint(4, handshake.live ? 1 : 0);
  return w.done(0);
}

/**
 * Decodes a handshake (mode "sync" when absent, as the schema's default says).
 *
 * @example
 * ```ts
 * import { decodeH4Handshake } from "./messages.ts";
 * console.assert(decodeH4Handshake(new Uint8Array([8, 1])).mode === "sync");
 * ```
 */
export function decodeH4Handshake(buf: Uint8Array, start = 0): H4Handshake {
  const handshake: H4Handshake = { version: 0, mode: "sync" };
  const seen = new Set<number>();
  readFields(buf, start, (n, value) => {
    seen.add(n);
    if (n === 1) handshake.version = uint(value, "version");
    else if (n === 2) handshake.mode = text(value, "mode");
    else if (n === 3) handshake.metadata = bytes(value, "metadata");
    else if (n === 4) handshake.live = uint(value, "live") !== 0;
  });
  required(seen, { 1: "version" }, "handshake");
  return handshake;
}

/**
 * Prefixes a message with its varint length (length-prefixed-stream's framing).
 *
 * @example
 * ```ts
 * import { frameH4 } from "./messages.ts";
 * console.assert(frameH4(new Uint8Array(300)).length === 302);
 * ```
 */
export function frameH4(message: Uint8Array): Uint8Array {
  const w = new Writer();
  w.varint(message.length);
  const out = new Uint8Array(w.bytes.length + message.length);
  out.set(w.bytes, 0);
  out.set(message, w.bytes.length);
  return out;
}

/**
 * Splits a byte stream into varint-length-prefixed messages; refuses a message longer than `maxMessage` bytes.
 *
 * @example
 * ```ts
 * import { frameH4, H4Deframer } from "./messages.ts";
 * const deframer = new H4Deframer(1024);
 * const framed = frameH4(new Uint8Array([1, 2, 3]));
 * console.assert(deframer.push(framed.subarray(0, 2)).length === 0);
 * console.assert(deframer.push(framed.subarray(2))[0]!.length === 3);
 * ```
 */
export class H4Deframer {
  #buffer: Uint8Array = new Uint8Array();
  readonly #max: number;

  /** Makes a deframer that refuses messages over `maxMessage` bytes. */
  constructor(maxMessage: number) {
    this.#max = maxMessage;
  }

  /** Adds bytes; returns the messages they complete. */
  push(chunk: Uint8Array): Uint8Array[] {
    let buf: Uint8Array;
    if (this.#buffer.length === 0) buf = chunk;
    else {
      buf = new Uint8Array(this.#buffer.length + chunk.length);
      buf.set(this.#buffer, 0);
      buf.set(chunk, this.#buffer.length);
    }
    const out: Uint8Array[] = [];
    let at = 0;
    for (;;) {
      let length = 0;
      let scale = 1;
      let i = at;
      let complete = false;
      while (i < buf.length && i - at < 5) {
        const byte = buf[i++]!;
        length += (byte & 127) * scale;
        scale *= 128;
        if (byte < 128) {
          complete = true;
          break;
        }
      }
      if (!complete) {
        if (i - at >= 5) throw new ProtocolError("A hyperlog 4 frame has a length prefix longer than 5 bytes");
        break;
      }
      if (length > this.#max) {
        throw new ProtocolError(`A hyperlog 4 message of ${length} bytes is over the limit of ${this.#max} bytes`);
      }
      if (i + length > buf.length) break;
      out.push(buf.slice(i, i + length));
      at = i + length;
    }
    this.#buffer = at === buf.length ? new Uint8Array() : buf.slice(at);
    return out;
  }

  /** Bytes received that do not make a whole message yet. */
  get buffered(): number {
    return this.#buffer.length;
  }
}
