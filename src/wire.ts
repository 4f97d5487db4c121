/**
 * The replication protocol's messages (version 2), each with one codec: {@link encodeMessage} and
 * {@link decodeMessage}. A message is a body whose first byte is its type; over a byte stream each body is framed
 * (see `frame.ts`), over a WebSocket or a message channel each is one transport message.
 *
 * | type | name | body after the type byte |
 * |---|---|---|
 * | 1 | HELLO | utf-8 JSON `{"protocol":"hyperlog","version":2,"h":"..."}`, `h` the fields in binary: mode, live, `refs` (the sender takes types 10 and 11), id, nonce, length, count, xor, maxFrame, window (see `wire-hello.ts`) |
 * | 2 | CHECK | nothing, or the 16-byte session id of the checkpoint the sender keeps for the receiver |
 * | 3 | RECON | `u8 flags` (bit 0: the last message of the sender's turn), then reconciliation entries |
 * | 4 | NODE | one node (see `node-codec.ts`) |
 * | 5 | SYNCED | nothing, or `u8 1`: the sender has sent every node the receiver lacked (with `1`: and the receiver credited every byte of them, so no ACK is wanted) |
 * | 6 | ACK | nothing: the sender has stored every node the peer sent before its SYNCED |
 * | 7 | ERROR | utf-8 JSON `{ name, message }`: the sender stops the session for this reason |
 * | 8 | NODES | several NODE bodies, each varint-framed |
 * | 9 | CREDIT | `varint bytes`: the sender stored this many more bytes of node messages; the peer may send that much more |
 * | 10 | NODES_REFS | as NODES, each link a varint reference or a key (see `link-refs.ts`); only to a peer whose HELLO says `refs` |
 * | 11 | NODES_LIVE | `varint first` (the sender's change of the first entry), then an entry per change: a node as in NODES_REFS, its links by the sender's change numbers, or the receiver's own node (see `live-decode.ts`); only to a peer whose HELLO says `refs` |
 *
 * A reconciliation entry is `u8 kind`, `u8 prefixNibbles`, the prefix packed two nibbles per byte (high first),
 * then by kind: `FP` (1) `varint count` and `16` bytes of XOR; `KEYS` (2) and `NEED` (3) `varint count` and
 * `count x 32` bytes of keys; `ALL` (4) nothing.
 *
 * @module
 */
import { ProtocolError } from "./errors.ts";
import { HEX_VALUE, hexInto, toHex } from "./hex.ts";
import type { Fingerprint } from "./key-index.ts";
import { decodeNodes, NODE, NODES, NODES_REFS, splitNodes, type WireNode } from "./node-codec.ts";
import { readVarint, varintLength, writeVarint } from "./frame.ts";
import { NODES_LIVE } from "./live-decode.ts";
import { decodeHello, encodeHello, type Hello } from "./wire-hello.ts";

export { concatBytes, DEFAULT_MAX_FRAME, frame, FrameDecoder, readVarint, varintLength, writeVarint } from "./frame.ts";
export {
  decodeNodes,
  encodeNodeBody,
  encodeNodeFrames,
  encodeNodesBodies,
  NODE,
  nodeBodySize,
  NODES,
  nodeWireSize,
  splitNodes,
  type WireNode,
} from "./node-codec.ts";
export { type Hello, PROTOCOL_VERSION, type ReplicationMode } from "./wire-hello.ts";

/** HELLO: the first message of each side (see the module doc). */
export const HELLO = 1;
/** CHECK: the checkpoint the sender keeps for the receiver. */
export const CHECK = 2;
/** RECON: set reconciliation entries. */
export const RECON = 3;
/** SYNCED: every node the peer lacked was sent. */
export const SYNCED = 5;
/** ACK: every node the peer sent before its SYNCED was stored. */
export const ACK = 6;
/** ERROR: the sender stops the session. */
export const ERROR = 7;
/** CREDIT: the sender stored more of the peer's nodes. */
export const CREDIT = 9;

/**
 * One entry of a reconciliation message.
 *
 * @example
 * ```ts
 * import { decodeMessage, encodeMessage, type ReconEntry } from "./wire.ts";
 * const entries: ReconEntry[] = [{ kind: "all", prefix: "a" }, { kind: "keys", prefix: "b", keys: ["b".repeat(64)] }];
 * const back = decodeMessage(encodeMessage({ type: "recon", entries }));
 * console.assert(back.type === "recon" && back.entries.length === 2 && back.entries[0]!.kind === "all");
 * ```
 */
export type ReconEntry =
  | { kind: "fp"; prefix: string; fp: Fingerprint }
  | { kind: "keys"; prefix: string; keys: string[] }
  | { kind: "need"; prefix: string; keys: string[] }
  | { kind: "all"; prefix: string };

/**
 * A decoded message.
 *
 * @example
 * ```ts
 * import { decodeMessage, encodeMessage, type Message } from "./wire.ts";
 * const message: Message = { type: "credit", bytes: 100 };
 * if (message.type === "nodes") throw new Error("NODES messages are made by encodeNodesBodies");
 * const back = decodeMessage(encodeMessage(message));
 * console.assert(back.type === "credit" && back.bytes === 100);
 * ```
 */
export type Message =
  | { type: "hello"; hello: Hello }
  | { type: "check"; checkpoint: string | null }
  | { type: "recon"; end: boolean; entries: ReconEntry[] }
  | { type: "nodes"; nodes: WireNode[]; bytes: number }
  | { type: "synced"; credited?: boolean }
  | { type: "ack" }
  | { type: "credit"; bytes: number }
  | { type: "error"; name: string; message: string };

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();
const FP = 1;
const KEYS = 2;
const NEED = 3;
const ALL = 4;
const KIND_CODE = { fp: FP, keys: KEYS, need: NEED, all: ALL } as const;

function json(type: number, value: unknown): Uint8Array {
  const bytes = textEncoder.encode(JSON.stringify(value));
  const body = new Uint8Array(1 + bytes.length);
  body[0] = type;
  body.set(bytes, 1);
  return body;
}

function parseJson(body: Uint8Array, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(textDecoder.decode(body.subarray(1)));
    if (typeof value === "object" && value !== null) return value as Record<string, unknown>;
  } catch {
    // Fall through to the error.
  }
  throw new ProtocolError(`The peer's ${what} is not valid JSON; is it a hyperlog peer?`);
}

/**
 * The byte length of the RECON entries once encoded (without the type and flags bytes).
 *
 * @example
 * ```ts
 * import { reconSize } from "./wire.ts";
 * console.assert(reconSize({ kind: "all", prefix: "abc" }) === 4);
 * ```
 */
export function reconSize(entry: ReconEntry): number {
  let size = 2 + Math.ceil(entry.prefix.length / 2);
  if (entry.kind === "fp") size += varintLength(entry.fp.count) + 16;
  else if (entry.kind !== "all") size += varintLength(entry.keys.length) + 32 * entry.keys.length;
  return size;
}

function encodeRecon(end: boolean, entries: readonly ReconEntry[]): Uint8Array {
  let size = 2;
  for (const entry of entries) size += reconSize(entry);
  const out = new Uint8Array(size);
  out[0] = RECON;
  out[1] = end ? 1 : 0;
  let at = 2;
  for (const entry of entries) {
    out[at++] = KIND_CODE[entry.kind];
    out[at++] = entry.prefix.length;
    for (let i = 0; i < entry.prefix.length; i += 2) {
      const high = HEX_VALUE[entry.prefix.charCodeAt(i)]!;
      const low = i + 1 < entry.prefix.length ? HEX_VALUE[entry.prefix.charCodeAt(i + 1)]! : 0;
      out[at++] = (high << 4) | low;
    }
    if (entry.kind === "fp") {
      at = writeVarint(out, at, entry.fp.count);
      out.set(entry.fp.xor, at);
      at += 16;
    } else if (entry.kind !== "all") {
      at = writeVarint(out, at, entry.keys.length);
      for (const key of entry.keys) {
        hexInto(key, out, at);
        at += 32;
      }
    }
  }
  return out;
}

function decodeRecon(body: Uint8Array): ReconEntry[] {
  const entries: ReconEntry[] = [];
  const fail = (what: string): never => {
    throw new ProtocolError(`Malformed reconciliation message: ${what}`);
  };
  let at = 2;
  while (at < body.length) {
    const kind = body[at++]!;
    if (at >= body.length) fail("truncated entry");
    const nibbles = body[at++]!;
    if (nibbles > 63) fail(`a prefix of ${nibbles} hex digits`);
    const bytes = Math.ceil(nibbles / 2);
    if (at + bytes > body.length) fail("truncated prefix");
    const prefix = toHex(body.subarray(at, at + bytes)).slice(0, nibbles);
    if (nibbles % 2 === 1 && (body[at + bytes - 1]! & 15) !== 0) fail("a prefix with stray bits");
    at += bytes;
    if (kind === ALL) {
      entries.push({ kind: "all", prefix });
      continue;
    }
    if (kind !== FP && kind !== KEYS && kind !== NEED) fail(`unknown entry kind ${kind}`);
    const count = readVarint(body, at);
    if (count === undefined) fail("truncated count");
    const [n, next] = count!;
    at = next;
    if (kind === FP) {
      if (at + 16 > body.length) fail("truncated fingerprint");
      entries.push({ kind: "fp", prefix, fp: { count: n, xor: body.slice(at, at + 16) } });
      at += 16;
      continue;
    }
    if (at + 32 * n > body.length) fail("truncated key list");
    const keys: string[] = [];
    for (let i = 0; i < n; i++, at += 32) {
      const key = toHex(body.subarray(at, at + 32));
      if (!key.startsWith(prefix)) fail(`key ${key} is not under prefix ${prefix}`);
      keys.push(key);
    }
    entries.push(kind === KEYS ? { kind: "keys", prefix, keys } : { kind: "need", prefix, keys });
  }
  return entries;
}

/**
 * Encodes a message as a body (type byte first). NODES messages are made by `encodeNodesBodies`.
 *
 * @example
 * ```ts
 * import { decodeMessage, encodeMessage } from "./wire.ts";
 * const body = encodeMessage({ type: "credit", bytes: 300 });
 * const message = decodeMessage(body);
 * console.assert(message.type === "credit" && message.bytes === 300);
 * ```
 */
export function encodeMessage(message: Exclude<Message, { type: "nodes" }>): Uint8Array {
  switch (message.type) {
    case "hello":
      return encodeHello(HELLO, message.hello);
    case "check": {
      if (message.checkpoint === null) return Uint8Array.of(CHECK);
      const out = new Uint8Array(17);
      out[0] = CHECK;
      hexInto(message.checkpoint, out, 1);
      return out;
    }
    case "recon":
      return encodeRecon(message.end, message.entries);
    case "synced":
      return message.credited === true ? Uint8Array.of(SYNCED, 1) : Uint8Array.of(SYNCED);
    case "ack":
      return Uint8Array.of(ACK);
    case "credit": {
      const out = new Uint8Array(1 + varintLength(message.bytes));
      out[0] = CREDIT;
      writeVarint(out, 1, message.bytes);
      return out;
    }
    case "error":
      return json(ERROR, { name: message.name, message: message.message });
  }
}

/**
 * Decodes a message body. Throws a `ProtocolError` (or an `InvalidNodeError` for a malformed node) saying what is
 * wrong.
 *
 * @example
 * ```ts
 * import { decodeMessage, encodeMessage } from "./wire.ts";
 * const body = encodeMessage({ type: "recon", end: true, entries: [{ kind: "all", prefix: "ab" }] });
 * const message = decodeMessage(body);
 * console.assert(message.type === "recon" && message.end && message.entries[0]?.prefix === "ab");
 * ```
 */
export function decodeMessage(body: Uint8Array): Message {
  if (body.length === 0) throw new ProtocolError("The peer sent an empty frame");
  const type = body[0]!;
  switch (type) {
    case HELLO:
      return { type: "hello", hello: decodeHello(body) };
    case CHECK:
      if (body.length !== 1 && body.length !== 17) throw new ProtocolError("Malformed CHECK message");
      return { type: "check", checkpoint: body.length === 1 ? null : toHex(body.subarray(1)) };
    case RECON:
      if (body.length < 2 || body[1]! > 1) throw new ProtocolError("Malformed reconciliation message: bad flags");
      return { type: "recon", end: body[1] === 1, entries: decodeRecon(body) };
    case NODE:
      return { type: "nodes", nodes: decodeNodes([body], 1), bytes: body.length };
    case NODES:
      return { type: "nodes", nodes: decodeNodes(splitNodes(body), 1), bytes: body.length };
    case SYNCED:
      if (body.length === 2 && body[1] === 1) return { type: "synced", credited: true };
      if (body.length !== 1) throw new ProtocolError("Malformed SYNCED message");
      return { type: "synced" };
    case ACK:
      if (body.length !== 1) throw new ProtocolError("Malformed ACK message");
      return { type: "ack" };
    case CREDIT: {
      const value = readVarint(body, 1);
      if (value === undefined || value[1] !== body.length) throw new ProtocolError("Malformed CREDIT message");
      return { type: "credit", bytes: value[0] };
    }
    case ERROR: {
      let info: Record<string, unknown> = {};
      try {
        info = parseJson(body, "ERROR");
      } catch {
        // Keep the generic message.
      }
      return {
        type: "error",
        name: typeof info.name === "string" ? info.name : "ProtocolError",
        message: typeof info.message === "string" ? info.message : "no reason given",
      };
    }
    default:
      throw new ProtocolError(`The peer sent an unknown message type ${type}`);
  }
}

/**
 * How many nodes a message body carries, counted without decoding them: 1 for NODE, the number of varint-framed
 * bodies for NODES (and NODES_REFS; for NODES_LIVE, those that are nodes), 0 for every other message. What a relay
 * counts for its metrics as it sends.
 *
 * @example
 * ```ts
 * import { encodeMessage, nodesInMessage } from "./wire.ts";
 * console.assert(nodesInMessage(encodeMessage({ type: "credit", bytes: 300 })) === 0);
 * console.assert(nodesInMessage(new Uint8Array([8, 2, 0, 0, 1, 0])) === 2);
 * ```
 */
export function nodesInMessage(body: Uint8Array): number {
  if (body[0] === NODE) return 1;
  // NODES_REFS (link-refs.ts) frames its nodes as NODES does; NODES_LIVE (live-decode.ts) after its first change.
  const live = body[0] === NODES_LIVE;
  if (body[0] !== NODES && body[0] !== NODES_REFS && !live) return 0;
  let count = 0;
  let at = live ? (readVarint(body, 1)?.[1] ?? body.length) : 1;
  while (at < body.length) {
    const header = readVarint(body, at);
    if (header === undefined) break;
    if (!live || body[header[1]] === NODE) count++;
    at = header[1] + header[0];
  }
  return count;
}
