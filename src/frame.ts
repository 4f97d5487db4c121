/**
 * Framing on a byte stream: each message is an unsigned LEB128 varint (the byte length of the body), then the body.
 * Over a WebSocket or a message channel each message is one transport message and needs no prefix.
 *
 * @module
 */
import { ProtocolError } from "./errors.ts";

/** The largest frame a peer accepts by default: 16 MiB. */
export const DEFAULT_MAX_FRAME = 16 * 1024 * 1024;

/**
 * The byte length of `n` as a varint.
 *
 * @example
 * ```ts
 * import { varintLength } from "./frame.ts";
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
 * import { writeVarint } from "./frame.ts";
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
 * import { readVarint } from "./frame.ts";
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
 * import { frame } from "./frame.ts";
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
 * import { FrameDecoder, frame } from "./frame.ts";
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
 * import { concatBytes } from "./frame.ts";
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
