/**
 * The HELLO message's codec (protocol version 2): what each side says first.
 *
 * The body after the type byte is utf-8 JSON `{"protocol":"hyperlog","version":2,"h":"..."}`: the two keys every
 * version reads first (so a peer of another version, 1 included, says "upgrade the older side" instead of failing
 * to parse), and `h`, the fields in binary, base64url without padding:
 *
 * | bytes | field |
 * |---|---|
 * | 1 | flags: bits 0-1 the mode (0 sync, 1 push, 2 pull), bit 2 `live`, bit 3 `refs`, bit 4 the id is 32 lower-case hex digits (packed), bit 5 the XOR is all zeros (omitted) |
 * | 16, or varint n + n | the log id: packed hex, or its utf-8 bytes |
 * | 16 | the nonce |
 * | varints | `length`, `count` |
 * | 16 (unless bit 5) | the XOR of the sender's keys |
 * | varints | `maxFrame`, `window` |
 *
 * A reader ignores flag bits and bytes after these fields it does not know (room for additions within version 2).
 * This is about 125 bytes where the JSON of every field was about 210, which is most of what a resync costs beyond
 * its new nodes.
 *
 * @module
 */
import { ProtocolError } from "./errors.ts";
import { readVarint, varintLength, writeVarint } from "./frame.ts";
import { fromBase64Url, toBase64Url } from "./base64url.ts";
import { hexInto, toHex } from "./hex.ts";

/** The protocol version this implementation speaks. */
export const PROTOCOL_VERSION = 2;

/**
 * Which way nodes flow: `sync` both ways, `push` only to the peer, `pull` only from it.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import type { ReplicationMode } from "./wire.ts";
 * const a = new Hyperlog<string>();
 * const b = new Hyperlog<string>();
 * await a.append("from a");
 * await b.append("from b");
 * const mode: ReplicationMode = "push";
 * const ra = a.replicate({ mode });
 * const rb = b.replicate({ mode: "pull" });
 * ra.readable.pipeTo(rb.writable);
 * rb.readable.pipeTo(ra.writable);
 * await Promise.all([ra.done, rb.done]);
 * console.assert(b.length === 2 && a.length === 1, "push sends, and receives nothing");
 * ```
 */
export type ReplicationMode = "sync" | "push" | "pull";

/**
 * What a HELLO says.
 *
 * @example
 * ```ts
 * import { decodeMessage, encodeMessage, type Hello } from "./wire.ts";
 * const hello: Hello = {
 *   mode: "sync", live: false, id: "a".repeat(32), nonce: "b".repeat(32), length: 0, count: 0,
 *   xor: new Uint8Array(16), maxFrame: 1 << 20, window: 1 << 19,
 * };
 * const back = decodeMessage(encodeMessage({ type: "hello", hello }));
 * console.assert(back.type === "hello" && back.hello.mode === "sync" && back.hello.window === 1 << 19);
 * ```
 */
export interface Hello {
  /** The sender's mode. */
  mode: ReplicationMode;
  /** Whether the sender stays open after the initial exchange. */
  live: boolean;
  /** The sender's log id. */
  id: string;
  /** 32 hex digits, fresh per session. */
  nonce: string;
  /** The sender's length (its snapshot for this session). */
  length: number;
  /** How many keys the sender holds (its fingerprint of the empty prefix)... */
  count: number;
  /** ...and their XOR (16 bytes). */
  xor: Uint8Array;
  /** The largest message the sender accepts. */
  maxFrame: number;
  /** The most bytes of node messages the sender takes before it grants more with CREDIT. */
  window: number;
  /**
   * Whether the sender takes links as references (`NODES_REFS`, see `link-refs.ts`, and `NODES_LIVE`, see
   * `live-decode.ts`); absent means no.
   */
  refs?: boolean;
}

const MODES: readonly ReplicationMode[] = ["sync", "push", "pull"];
const LIVE = 4;
const REFS = 8;
const HEX_ID = 16;
const ZERO_XOR = 32;
const HEX32 = /^[0-9a-f]{32}$/;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Encodes a HELLO as a message body (type byte `type` first).
 *
 * @example
 * ```ts
 * import { decodeHello, encodeHello } from "./wire-hello.ts";
 * const hello = {
 *   mode: "pull", live: true, id: "0f".repeat(16), nonce: "b".repeat(32), length: 100_000, count: 100_000,
 *   xor: new Uint8Array(16).fill(7), maxFrame: 1 << 20, window: 1 << 19, refs: true,
 * } as const;
 * const body = encodeHello(1, hello);
 * console.assert(body.length < 130, "about 125 bytes");
 * const back = decodeHello(body);
 * console.assert(back.id === hello.id && back.mode === "pull" && back.live && back.refs && back.xor[15] === 7);
 * ```
 */
export function encodeHello(type: number, hello: Hello): Uint8Array {
  const hexId = HEX32.test(hello.id);
  const idBytes = hexId ? undefined : textEncoder.encode(hello.id);
  const zeroXor = hello.xor.every((byte) => byte === 0);
  const size = 1 + (idBytes === undefined ? 16 : varintLength(idBytes.length) + idBytes.length) + 16 +
    varintLength(hello.length) + varintLength(hello.count) + (zeroXor ? 0 : 16) + varintLength(hello.maxFrame) +
    varintLength(hello.window);
  const bin = new Uint8Array(size);
  bin[0] = MODES.indexOf(hello.mode) | (hello.live ? LIVE : 0) | (hello.refs === true ? REFS : 0) |
    (hexId ? HEX_ID : 0) | (zeroXor ? ZERO_XOR : 0);
  let at = 1;
  if (idBytes === undefined) {
    hexInto(hello.id, bin, at);
    at += 16;
  } else {
    at = writeVarint(bin, at, idBytes.length);
    bin.set(idBytes, at);
    at += idBytes.length;
  }
  hexInto(hello.nonce, bin, at);
  at += 16;
  at = writeVarint(bin, at, hello.length);
  at = writeVarint(bin, at, hello.count);
  if (!zeroXor) {
    bin.set(hello.xor, at);
    at += 16;
  }
  at = writeVarint(bin, at, hello.maxFrame);
  writeVarint(bin, at, hello.window);
  const json = textEncoder.encode(`{"protocol":"hyperlog","version":${PROTOCOL_VERSION},"h":"${toBase64Url(bin)}"}`);
  const body = new Uint8Array(1 + json.length);
  body[0] = type;
  body.set(json, 1);
  return body;
}

/**
 * Decodes a HELLO body (type byte first). Throws a `ProtocolError` saying what is wrong: another protocol, another
 * version (version 1's JSON HELLO included), or a field missing or out of range.
 *
 * @example
 * ```ts
 * import { decodeHello } from "./wire-hello.ts";
 * const v1 = new TextEncoder().encode('\x01{"protocol":"hyperlog","version":1,"mode":"sync"}');
 * let message = "";
 * try {
 *   decodeHello(v1);
 * } catch (err) {
 *   message = (err as Error).message;
 * }
 * console.assert(message.startsWith("The peer speaks protocol version 1, this peer speaks version 2"));
 * ```
 */
export function decodeHello(body: Uint8Array): Hello {
  let parsed: Record<string, unknown> | undefined;
  try {
    const value: unknown = JSON.parse(textDecoder.decode(body.subarray(1)));
    if (typeof value === "object" && value !== null) parsed = value as Record<string, unknown>;
  } catch {
    // Fall through to the error.
  }
  if (parsed === undefined) throw new ProtocolError("The peer's HELLO is not valid JSON; is it a hyperlog peer?");
  if (parsed.protocol !== "hyperlog") throw new ProtocolError("The peer is not speaking the hyperlog protocol");
  if (parsed.version !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      `The peer speaks protocol version ${String(parsed.version)}, this peer speaks version ${PROTOCOL_VERSION}; ` +
        "upgrade the older side",
    );
  }
  const bin = typeof parsed.h === "string" ? fromBase64Url(parsed.h) : undefined;
  const fail = (what: string): never => {
    throw new ProtocolError(`The peer's HELLO has no valid ${what}`);
  };
  if (bin === undefined || bin.length === 0) return fail("fields (h)");
  const flags = bin[0]!;
  const mode = MODES[flags & 3];
  if (mode === undefined) throw new ProtocolError("The peer asked for an unknown mode (3)");
  let at = 1;
  const bytes = (n: number, what: string): Uint8Array => {
    if (at + n > bin.length) fail(what);
    at += n;
    return bin.subarray(at - n, at);
  };
  const varint = (what: string, min = 0): number => {
    const read = readVarint(bin, at);
    if (read === undefined || !Number.isSafeInteger(read[0]) || read[0] < min) return fail(what);
    at = read[1];
    return read[0];
  };
  let id: string;
  if (flags & HEX_ID) id = toHex(bytes(16, "log id"));
  else {
    const idBytes = bytes(varint("log id", 1), "log id");
    try {
      id = textDecoder.decode(idBytes);
    } catch {
      return fail("log id");
    }
    if (id.length > 128) fail("log id");
  }
  const nonce = toHex(bytes(16, "nonce"));
  const length = varint("length");
  const count = varint("count");
  const xor = flags & ZERO_XOR ? new Uint8Array(16) : bytes(16, "fingerprint").slice();
  const maxFrame = varint("maxFrame", 1024);
  const window = varint("window", 1024);
  return {
    mode,
    live: (flags & LIVE) !== 0,
    id,
    nonce,
    length,
    count,
    xor,
    maxFrame,
    window,
    ...(flags & REFS ? { refs: true } : {}),
  };
}
