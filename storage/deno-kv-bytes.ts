/**
 * The byte primitives of the Deno KV layouts (`deno-kv-codec.ts`, `deno-kv-chunk.ts`): a growable writer, a reader
 * that refuses data that ends early, pieces of at most one Deno KV value, and UTF-8.
 *
 * @module
 */
import { HEX_VALUE, toHex } from "../src/hex.ts";

/** The largest value Deno KV stores is 64 KiB; pieces of split values stay a little below it. */
export const PIECE_BYTES = 65_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A growable byte writer. */
export class Writer {
  /** The bytes written so far, and room after them. */
  buf: Uint8Array = new Uint8Array(256);
  /** How many bytes are written. */
  at: number = 0;
  room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.at + n));
    next.set(this.buf.subarray(0, this.at));
    this.buf = next;
  }
  byte(b: number): void {
    this.room(1);
    this.buf[this.at++] = b;
  }
  varint(n: number): void {
    this.room(8);
    while (n >= 0x80) {
      this.buf[this.at++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.at++] = n;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }
  hex(hex: string): void {
    this.room(hex.length / 2);
    for (let i = 0; i < hex.length; i += 2) {
      this.buf[this.at++] = (HEX_VALUE[hex.charCodeAt(i)]! << 4) | HEX_VALUE[hex.charCodeAt(i + 1)]!;
    }
  }
  f64(n: number): void {
    this.room(8);
    new DataView(this.buf.buffer).setFloat64(this.at, n);
    this.at += 8;
  }
  text(s: string): void {
    const b = encoder.encode(s);
    this.varint(b.length);
    this.bytes(b);
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.at);
  }
}

/** A byte reader that throws on data that ends early. */
export class Reader {
  /** Where the next read starts. */
  at: number = 0;
  readonly buf: Uint8Array;
  readonly what: string;
  constructor(buf: Uint8Array, what: string) {
    this.buf = buf;
    this.what = what;
  }
  need(n: number): void {
    if (this.at + n > this.buf.length) throw new RangeError(`${this.what} ends early: the stored data is damaged`);
  }
  byte(): number {
    this.need(1);
    return this.buf[this.at++]!;
  }
  varint(): number {
    let n = 0;
    let scale = 1;
    for (;;) {
      const b = this.byte();
      n += (b & 0x7f) * scale;
      if (b < 0x80) return n;
      scale *= 0x80;
    }
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  hex(n: number): string {
    return toHex(this.bytes(n));
  }
  f64(): number {
    this.need(8);
    const n = new DataView(this.buf.buffer, this.buf.byteOffset).getFloat64(this.at);
    this.at += 8;
    return n;
  }
  text(): string {
    return decoder.decode(this.bytes(this.varint()));
  }
}

/**
 * Splits bytes into pieces of at most {@link PIECE_BYTES} (one empty piece for no bytes).
 *
 * @example
 * ```ts
 * import { pieces } from "./deno-kv-bytes.ts";
 * console.assert(pieces(new Uint8Array(140_000)).length === 3);
 * ```
 */
export function pieces(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length || out.length === 0; at += PIECE_BYTES) {
    out.push(bytes.subarray(at, at + PIECE_BYTES));
  }
  return out;
}

/**
 * Joins pieces back into one byte array.
 *
 * @example
 * ```ts
 * import { join, pieces } from "./deno-kv-bytes.ts";
 * console.assert(join(pieces(new Uint8Array(70_000))).length === 70_000);
 * ```
 */
export function join(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * UTF-8 text as bytes, and back.
 *
 * @example
 * ```ts
 * import { utf8 } from "./deno-kv-bytes.ts";
 * console.assert(utf8.decode(utf8.encode("h\u00e9")) === "h\u00e9");
 * ```
 */
export const utf8: { encode(text: string): Uint8Array; decode(bytes: Uint8Array): string } = {
  encode: (text) => encoder.encode(text),
  decode: (bytes) => decoder.decode(bytes),
};
