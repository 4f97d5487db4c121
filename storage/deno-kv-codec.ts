/**
 * The byte layouts of {@link DenoKvStorage} (`deno-kv.ts`), besides its chunks of nodes (`deno-kv-chunk.ts`): the
 * tip of a log, the state of a view, a view's values, and the journal of a commit too large for one atomic
 * operation; and the arithmetic of Deno KV's limits, which cuts a list of writes into atomic operations that each
 * fit. Every value is stored as bytes (`Uint8Array`), which Deno KV keeps as they are, so any Deno KV client (the
 * npm `@deno/kv` under Node too) reads them; other JavaScript values would be V8-serialized, in a format an older
 * V8 cannot read.
 *
 * The layout of `DenoKvStorage`, under its prefix `P` (`["hyperlog"]` by default):
 *
 * - `[...P, "tip"]`: the length (the last change), the number of pieces of the heads, and the id of the journal
 *   being applied ("" for none). Every commit changes it, so an atomic `check` of its versionstamp is how a commit
 *   knows that nothing was committed since it read the store: a commit that loses the race is refused with a
 *   `StorageConflictError`, and stores nothing.
 * - `[...P, "h", i]`: the heads, 32 bytes each, 2 000 per piece.
 * - `[...P, "c", last, seq]`: the nodes, a run of consecutive changes per chunk (at most 1 000 nodes or ~60 KB),
 *   keyed by the change of its last node; a chunk over 64 KiB (a big value) is split into pieces `seq` 0, 1, ...
 * - `[...P, "x", last]`: the keys of the nodes of chunk `last`, 32 bytes each, in change order. A node takes no
 *   mutation of its own: a commit of 1 000 small nodes writes about six keys (Deno KV spends 20 to 50 us per
 *   mutation here, so a key per node would cost more than everything else of the commit).
 * - `[...P, "m", name]`: the `getMeta`/`setMeta` values.
 * - `[...P, "vs", name]`: the checkpoint of view `name`, and the generation of its pairs; `[...P, "vd", name, gen,
 *   key]`: the pairs (`[...P, "vx", name, gen, key, i]`: the rest of a value over 64 KiB). Dropping a view deletes
 *   its checkpoint, which hides the generation at once; its pairs are then deleted in the background of the call
 *   (and by the next `open` if the process dies meanwhile: `[...P, "vt", gen]` remembers them).
 *
 * @module
 */
import { join, pieces, Reader, utf8, Writer } from "./deno-kv-bytes.ts";

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

/** Deno KV allows 1000 mutations per atomic operation; we leave room for the guard's check and set. */
const OP_MUTATIONS = 990;
/** Deno KV allows 800 KiB of keys and values per atomic operation. */
const OP_BYTES = 780 * 1024;
/** Deno KV allows 80 KiB of keys per atomic operation. */
const OP_KEY_BYTES = 76 * 1024;
/** The longest key Deno KV accepts, in encoded bytes. */
export const MAX_KEY_BYTES = 2048;

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
  const bytes = utf8.encode(value);
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
  return utf8.decode(join([first.subarray(1), ...extra]));
}
