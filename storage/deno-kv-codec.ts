/**
 * The byte layouts of {@link DenoKvStorage} (`deno-kv.ts`): chunks of nodes, the index entry of a key, the tip of a
 * log, the state of a view, and the journal of a commit too large for one atomic operation; and the arithmetic of
 * Deno KV's limits, which cuts a list of writes into atomic operations that each fit. Every value is stored as
 * bytes (`Uint8Array`), which Deno KV keeps as they are, so any Deno KV client (the npm `@deno/kv` under Node
 * too) reads them; other JavaScript values would be V8-serialized, in a format an older V8 cannot read.
 *
 * @module
 */
import { HEX_VALUE, toHex } from "../src/hex.ts";
import type { StoredNode } from "../src/node.ts";

/**
 * One part of a Deno KV key, as `Deno.KvKeyPart` is.
 *
 * @example
 * ```ts
 * import { keyBytes, type DenoKvKeyPart } from "./deno-kv-codec.ts";
 * const parts: DenoKvKeyPart[] = ["chat", 1, true, new Uint8Array([0, 1])];
 * console.assert(keyBytes(parts) > keyBytes(parts.slice(0, 1)) && keyBytes(["chat"]) === 2 + 4);
 * ```
 */
export type DenoKvKeyPart = Uint8Array | string | number | bigint | boolean;

/**
 * A Deno KV key, as `Deno.KvKey` is.
 *
 * @example
 * ```ts
 * import { type DenoKvKey, keyBytes, MAX_KEY_BYTES } from "./deno-kv-codec.ts";
 * const key: DenoKvKey = ["hyperlog", "chat"];
 * console.assert(keyBytes(key) === 2 + 8 + 2 + 4 && keyBytes(key) < MAX_KEY_BYTES);
 * ```
 */
export type DenoKvKey = readonly DenoKvKeyPart[];

/**
 * One write of an atomic operation: set `key` to `value`, or delete `key` when `value` is `undefined`.
 *
 * @example
 * ```ts
 * import { decodeJournal, encodeJournal, type KvWrite } from "./deno-kv-codec.ts";
 * const writes: KvWrite[] = [{ key: ["a"], value: new Uint8Array([1]) }, { key: ["b"] }];
 * const back = decodeJournal(encodeJournal(writes));
 * console.assert(back[0]!.value![0] === 1 && back[1]!.value === undefined && back[1]!.key[0] === "b");
 * ```
 */
export interface KvWrite {
  /** The key. */
  readonly key: DenoKvKey;
  /** The bytes to store, or `undefined` to delete the key. */
  readonly value: Uint8Array | undefined;
}

/** The largest value Deno KV stores is 64 KiB; pieces of split values stay a little below it. */
export const PIECE_BYTES = 65_000;
/** A chunk takes no more node once its encoding reaches this many bytes (so most chunks are one piece). */
export const CHUNK_BYTES = 60_000;
/** A chunk holds at most this many nodes. */
export const CHUNK_NODES = 1000;
/** Deno KV allows 1000 mutations per atomic operation; we leave room for the guard's check and set. */
const OP_MUTATIONS = 990;
/** Deno KV allows 800 KiB of keys and values per atomic operation. */
const OP_BYTES = 780 * 1024;
/** Deno KV allows 80 KiB of keys per atomic operation. */
const OP_KEY_BYTES = 76 * 1024;
/** The longest key Deno KV accepts, in encoded bytes. */
export const MAX_KEY_BYTES = 2048;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function zeros(bytes: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0) n++;
  return n;
}

/** The UTF-8 length of `text`, plus one for each NUL (escaped in a key). */
function stringKeyBytes(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0) n += 2;
    else if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * The size of `key` as Deno KV encodes it (a tuple encoding: a tag, the bytes with NUL escaped, a terminator), or
 * a little more: the limits are checked against it.
 *
 * @example
 * ```ts
 * import { keyBytes } from "./deno-kv-codec.ts";
 * console.assert(keyBytes(["ab", 1]) === 4 + 9);
 * ```
 */
export function keyBytes(key: DenoKvKey): number {
  let n = 0;
  for (const part of key) {
    if (typeof part === "string") n += 2 + stringKeyBytes(part);
    else if (part instanceof Uint8Array) n += 2 + part.length + zeros(part);
    else if (typeof part === "number") n += 9;
    else if (typeof part === "bigint") n += 2 + Math.ceil(part.toString(16).length / 2) + 1;
    else n += 1;
  }
  return n;
}

/**
 * Cuts writes, in order, into groups that each fit one atomic operation of Deno KV (with room for one check and a
 * few more writes), the first group leaving room for `reserveBytes` more bytes and `reserveCount` more writes.
 *
 * @example
 * ```ts
 * import { splitWrites } from "./deno-kv-codec.ts";
 * const writes = Array.from({ length: 2500 }, (_, i) => ({ key: ["k", i], value: new Uint8Array(8) }));
 * console.assert(splitWrites(writes).length === 3);
 * ```
 */
export function splitWrites(writes: readonly KvWrite[], reserveBytes = 0, reserveCount = 0): KvWrite[][] {
  const groups: KvWrite[][] = [];
  let group: KvWrite[] = [];
  let bytes = reserveBytes;
  let keys = reserveBytes;
  const most = OP_MUTATIONS - reserveCount;
  for (const write of writes) {
    const k = keyBytes(write.key);
    const size = k + (write.value?.length ?? 0);
    if (group.length > 0 && (group.length >= most || bytes + size > OP_BYTES || keys + k > OP_KEY_BYTES)) {
      groups.push(group);
      group = [];
      bytes = reserveBytes;
      keys = reserveBytes;
    }
    group.push(write);
    bytes += size;
    keys += k;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/** A growable byte writer. */
class Writer {
  buf = new Uint8Array(256);
  at = 0;
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
class Reader {
  at = 0;
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

/** The encoded size of a node within a chunk, near enough to cut chunks. */
function nodeBytes(node: StoredNode): number {
  return 32 + 1 + 2 + node.links.length * 32 + (node.identity === undefined ? 0 : 96) + 5 + node.value.length;
}

/**
 * Cuts nodes of consecutive changes into chunks: at most {@link CHUNK_NODES} nodes, and no more node once the
 * encoding reaches {@link CHUNK_BYTES}. Each chunk is `[last change, nodes]`.
 *
 * @example
 * ```ts
 * import { cutChunks } from "./deno-kv-codec.ts";
 * import { chain } from "./conformance.ts";
 * const chunks = cutChunks(chain(2500));
 * console.assert(chunks.length > 2 && chunks.every(([last, nodes]) => nodes.at(-1)!.change === last));
 * ```
 */
export function cutChunks(nodes: readonly StoredNode[]): Array<[number, StoredNode[]]> {
  const out: Array<[number, StoredNode[]]> = [];
  let chunk: StoredNode[] = [];
  let bytes = 0;
  for (const node of nodes) {
    if (chunk.length > 0 && (chunk.length >= CHUNK_NODES || bytes >= CHUNK_BYTES)) {
      out.push([chunk[chunk.length - 1]!.change, chunk]);
      chunk = [];
      bytes = 0;
    }
    chunk.push(node);
    bytes += nodeBytes(node);
  }
  if (chunk.length > 0) out.push([chunk[chunk.length - 1]!.change, chunk]);
  return out;
}

/**
 * Encodes nodes of consecutive changes as one chunk: a version byte, the count, then per node its key, a flag byte
 * (1: signed), its links, its identity and signature when signed, and its value, length-prefixed.
 *
 * @example
 * ```ts
 * import { decodeChunk, encodeChunk } from "./deno-kv-codec.ts";
 * import { chain } from "./conformance.ts";
 * const nodes = chain(3);
 * console.assert(decodeChunk(encodeChunk(nodes), 3)[2]!.key === nodes[2]!.key);
 * ```
 */
export function encodeChunk(nodes: readonly StoredNode[]): Uint8Array {
  const w = new Writer();
  w.room(nodes.reduce((n, node) => n + nodeBytes(node), 8));
  w.byte(1);
  w.varint(nodes.length);
  for (const node of nodes) {
    w.hex(node.key);
    w.byte(node.identity === undefined ? 0 : 1);
    w.varint(node.links.length);
    for (const link of node.links) w.hex(link);
    if (node.identity !== undefined) {
      w.hex(node.identity);
      w.hex(node.signature!);
    }
    w.varint(node.value.length);
    w.bytes(node.value);
  }
  return w.done();
}

/**
 * Decodes a chunk whose last change is `last`: all its nodes, or with `only`, just the node of that change.
 *
 * @example
 * ```ts
 * import { decodeChunk, encodeChunk } from "./deno-kv-codec.ts";
 * import { chain } from "./conformance.ts";
 * const bytes = encodeChunk(chain(5));
 * console.assert(decodeChunk(bytes, 5, 4).length === 1 && decodeChunk(bytes, 5, 4)[0]!.change === 4);
 * ```
 */
export function decodeChunk(bytes: Uint8Array, last: number, only?: number): StoredNode[] {
  const r = new Reader(bytes, `The chunk of changes up to ${last}`);
  if (r.byte() !== 1) throw new RangeError(`The chunk of changes up to ${last} has an unknown format`);
  const count = r.varint();
  const first = last - count + 1;
  const out: StoredNode[] = [];
  for (let i = 0; i < count; i++) {
    const change = first + i;
    if (only !== undefined && change !== only) {
      r.bytes(32);
      const signed = r.byte() === 1;
      r.bytes(r.varint() * 32 + (signed ? 96 : 0));
      r.bytes(r.varint());
      continue;
    }
    const key = r.hex(32);
    const signed = r.byte() === 1;
    const links: string[] = new Array(r.varint());
    for (let j = 0; j < links.length; j++) links[j] = r.hex(32);
    if (signed) {
      const identity = r.hex(32);
      const signature = r.hex(64);
      out.push({ key, links, value: r.bytes(r.varint()), change, identity, signature });
    } else out.push({ key, links, value: r.bytes(r.varint()), change });
    if (only !== undefined) break;
  }
  return out;
}

/**
 * Splits bytes into pieces of at most {@link PIECE_BYTES} (one empty piece for no bytes).
 *
 * @example
 * ```ts
 * import { pieces } from "./deno-kv-codec.ts";
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
 * import { join, pieces } from "./deno-kv-codec.ts";
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
 * The tip of a log: its length, the number of pieces of its heads, and the journal being applied ("" for none).
 *
 * @example
 * ```ts
 * import { decodeTip, encodeTip, type Tip } from "./deno-kv-codec.ts";
 * const tip: Tip = { length: 12, headPieces: 2, journal: "j1" };
 * const back = decodeTip(encodeTip(tip));
 * console.assert(back.length === 12 && back.headPieces === 2 && back.journal === "j1");
 * ```
 */
export interface Tip {
  /** The number of nodes, which is the last change. */
  readonly length: number;
  /** The heads are kept in this many pieces. */
  readonly headPieces: number;
  /** The id of the journal whose writes are committed but maybe not yet in place; "" when none. */
  readonly journal: string;
}

/**
 * Encodes a tip.
 *
 * @example
 * ```ts
 * import { decodeTip, encodeTip } from "./deno-kv-codec.ts";
 * console.assert(decodeTip(encodeTip({ length: 5, headPieces: 1, journal: "j" })).journal === "j");
 * ```
 */
export function encodeTip(tip: Tip): Uint8Array {
  const w = new Writer();
  w.byte(1);
  w.f64(tip.length);
  w.varint(tip.headPieces);
  w.text(tip.journal);
  return w.done();
}

/**
 * Decodes a tip.
 *
 * @example
 * ```ts
 * import { decodeTip, encodeTip } from "./deno-kv-codec.ts";
 * console.assert(decodeTip(encodeTip({ length: 5, headPieces: 1, journal: "" })).length === 5);
 * ```
 */
export function decodeTip(bytes: Uint8Array): Tip {
  const r = new Reader(bytes, "The tip of the log");
  if (r.byte() !== 1) throw new RangeError("The tip of the log has an unknown format (written by a newer hyperlog?)");
  return { length: r.f64(), headPieces: r.varint(), journal: r.text() };
}

/**
 * The stored state of a view: its checkpoint, the generation its pairs are kept under, and the journal being
 * applied ("" for none).
 *
 * @example
 * ```ts
 * import { decodeViewState, encodeViewState, type StoredViewState } from "./deno-kv-codec.ts";
 * const state: StoredViewState = { version: 1, change: 7, gen: "g", journal: "" };
 * const back = decodeViewState(encodeViewState(state));
 * console.assert(back.version === 1 && back.change === 7 && back.gen === "g");
 * ```
 */
export interface StoredViewState {
  /** The view's version. */
  readonly version: number;
  /** The last change the view applied. */
  readonly change: number;
  /** The generation of its pairs: a new one after each drop. */
  readonly gen: string;
  /** The journal being applied, or "". */
  readonly journal: string;
}

/**
 * Encodes a view state.
 *
 * @example
 * ```ts
 * import { decodeViewState, encodeViewState } from "./deno-kv-codec.ts";
 * const s = decodeViewState(encodeViewState({ version: -1, change: 3, gen: "g", journal: "" }));
 * console.assert(s.version === -1 && s.change === 3);
 * ```
 */
export function encodeViewState(state: StoredViewState): Uint8Array {
  const w = new Writer();
  w.byte(1);
  w.f64(state.version);
  w.f64(state.change);
  w.text(state.gen);
  w.text(state.journal);
  return w.done();
}

/**
 * Decodes a view state.
 *
 * @example
 * ```ts
 * import { decodeViewState, encodeViewState } from "./deno-kv-codec.ts";
 * console.assert(decodeViewState(encodeViewState({ version: 2, change: 0, gen: "g", journal: "j" })).journal === "j");
 * ```
 */
export function decodeViewState(bytes: Uint8Array): StoredViewState {
  const r = new Reader(bytes, "A view's state");
  if (r.byte() !== 1) throw new RangeError("A view's state has an unknown format (written by a newer hyperlog?)");
  return { version: r.f64(), change: r.f64(), gen: r.text(), journal: r.text() };
}

function writeKey(w: Writer, key: DenoKvKey): void {
  w.varint(key.length);
  for (const part of key) {
    if (typeof part === "string") {
      w.byte(1);
      w.text(part);
    } else if (typeof part === "number") {
      w.byte(2);
      w.f64(part);
    } else if (part instanceof Uint8Array) {
      w.byte(3);
      w.varint(part.length);
      w.bytes(part);
    } else if (typeof part === "bigint") {
      w.byte(4);
      w.text(part.toString());
    } else {
      w.byte(part ? 6 : 5);
    }
  }
}

function readKey(r: Reader): DenoKvKeyPart[] {
  const key: DenoKvKeyPart[] = new Array(r.varint());
  for (let i = 0; i < key.length; i++) {
    const tag = r.byte();
    if (tag === 1) key[i] = r.text();
    else if (tag === 2) key[i] = r.f64();
    else if (tag === 3) key[i] = r.bytes(r.varint()).slice();
    else if (tag === 4) key[i] = BigInt(r.text());
    else if (tag === 5 || tag === 6) key[i] = tag === 6;
    else throw new RangeError("A journal holds a key of an unknown type: the stored data is damaged");
  }
  return key;
}

/**
 * Encodes writes as a journal: a version byte, the count, then each write (its key, and its value or a deletion).
 *
 * @example
 * ```ts
 * import { decodeJournal, encodeJournal } from "./deno-kv-codec.ts";
 * const writes = [{ key: ["a", 1, new Uint8Array([0])], value: new Uint8Array([9]) }, { key: ["b"], value: undefined }];
 * const back = decodeJournal(encodeJournal(writes));
 * console.assert(back.length === 2 && back[1]!.value === undefined && back[0]!.value![0] === 9);
 * ```
 */
export function encodeJournal(writes: readonly KvWrite[]): Uint8Array {
  const w = new Writer();
  w.byte(1);
  w.varint(writes.length);
  for (const write of writes) {
    writeKey(w, write.key);
    if (write.value === undefined) w.byte(0);
    else {
      w.byte(1);
      w.varint(write.value.length);
      w.bytes(write.value);
    }
  }
  return w.done();
}

/**
 * Decodes a journal; throws a `RangeError` when it is incomplete.
 *
 * @example
 * ```ts
 * import { decodeJournal, encodeJournal } from "./deno-kv-codec.ts";
 * console.assert(decodeJournal(encodeJournal([])).length === 0);
 * ```
 */
export function decodeJournal(bytes: Uint8Array): KvWrite[] {
  const r = new Reader(bytes, "A journal");
  if (r.byte() !== 1) throw new RangeError("A journal has an unknown format (written by a newer hyperlog?)");
  const out: KvWrite[] = new Array(r.varint());
  for (let i = 0; i < out.length; i++) {
    const key = readKey(r);
    out[i] = { key, value: r.byte() === 1 ? r.bytes(r.varint()) : undefined };
  }
  if (r.at !== bytes.length) throw new RangeError("A journal has bytes past its end: the stored data is damaged");
  return out;
}

/**
 * A stored view value: a header (the number of extra pieces), then the UTF-8 bytes, or their first piece.
 *
 * @example
 * ```ts
 * import { encodeViewValue } from "./deno-kv-codec.ts";
 * const [first, ...extra] = encodeViewValue("x".repeat(150_000));
 * console.assert(first![0] === 2 && extra.length === 2);
 * ```
 */
export function encodeViewValue(value: string): Uint8Array[] {
  const bytes = encoder.encode(value);
  const parts = pieces(bytes);
  const first = new Uint8Array(1 + parts[0]!.length);
  first[0] = parts.length - 1;
  first.set(parts[0]!, 1);
  return [first, ...parts.slice(1)];
}

/**
 * Decodes a view value from its first piece and its extra pieces.
 *
 * @example
 * ```ts
 * import { decodeViewValue, encodeViewValue } from "./deno-kv-codec.ts";
 * const [first, ...extra] = encodeViewValue("h\u00e9");
 * console.assert(decodeViewValue(first!, extra) === "h\u00e9");
 * ```
 */
export function decodeViewValue(first: Uint8Array, extra: readonly Uint8Array[]): string {
  return decoder.decode(join([first.subarray(1), ...extra]));
}

/**
 * UTF-8 text as bytes, and back.
 *
 * @example
 * ```ts
 * import { utf8 } from "./deno-kv-codec.ts";
 * console.assert(utf8.decode(utf8.encode("h\u00e9")) === "h\u00e9");
 * ```
 */
export const utf8: { encode(text: string): Uint8Array; decode(bytes: Uint8Array): string } = {
  encode: (text) => encoder.encode(text),
  decode: (bytes) => decoder.decode(bytes),
};
