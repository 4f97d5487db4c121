/**
 * Nodes and their keys.
 *
 * A key is the lower-case hex SHA-256 of a sequence of frames, where a frame is the ASCII decimal byte length of a
 * part, a newline (0x0a), and the part's bytes. The parts, in order:
 *
 * 1. for a signed node only: the identity, as the ASCII text `ed25519:` followed by the 64 lower-case hex
 *    characters of the Ed25519 public key (72 bytes);
 * 2. each link, as the ASCII bytes of its 64-character hex key, in the node's link order;
 * 3. the encoded value bytes.
 *
 * Unsigned nodes therefore have exactly hyperlog 4.x's keys: `add(null, "hello")` with the `utf-8` encoding has
 * key `sha256("5\nhello")`. A signed node's key covers its identity, so the same value written by two writers gives
 * two nodes. The identity frame comes first and has a different length (72) from a link frame (64), so no signed
 * node can share its key with an unsigned one. The signature is an Ed25519 signature over the 32 raw bytes of the
 * key, and is not part of the key.
 *
 * @module
 */
import { sha256Hex } from "./sha256.ts";

/**
 * A node of the log, as the API returns it.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import type { Node } from "./node.ts";
 * const log = new Hyperlog<string>();
 * const root: Node<string> = await log.append("hi");
 * const next: Node<string> = await log.append("there");
 * console.assert(root.change === 1 && root.links.length === 0 && /^[0-9a-f]{64}$/.test(root.key));
 * console.assert(next.change === 2 && next.links[0] === root.key);
 * ```
 */
export interface Node<T = unknown> {
  /** 64 lower-case hex characters: the SHA-256 of the node's content (see the module doc). */
  readonly key: string;
  /** Keys of the nodes this one links to (its causal predecessors), in the order given when it was added. */
  readonly links: readonly string[];
  /** The decoded value. */
  readonly value: T;
  /** This log's insertion number, 1, 2, 3 ...: every node's links have smaller change numbers. */
  readonly change: number;
  /** The signer's Ed25519 public key in hex, for a signed node. */
  readonly identity?: string;
  /** The Ed25519 signature of the key's 32 bytes in hex, for a signed node. */
  readonly signature?: string;
}

/**
 * A node as storage holds it: the value is the encoded bytes. In the nodes a log adds, `value` is a getter that makes
 * a view of a slab shared by many values (no `Uint8Array` kept per node), and in those of a json log every field is
 * a getter that reads the node the log returned: copy such a node with {@link withChange} or field by field, since
 * a spread (`{ ...node }`) leaves getters out.
 *
 * @example
 * ```ts
 * import { Hyperlog, MemoryStorage } from "../mod.ts";
 * import type { StoredNode } from "./node.ts";
 * const storage = new MemoryStorage();
 * const added = await new Hyperlog<string>(storage).append("hi");
 * const stored: StoredNode | undefined = await storage.get(added.key);
 * console.assert(stored!.change === 1 && stored!.value instanceof Uint8Array);
 * console.assert(new TextDecoder().decode(stored!.value) === JSON.stringify("hi"));
 * ```
 */
export interface StoredNode {
  /** The node's key. */
  readonly key: string;
  /** The keys it links to. */
  readonly links: readonly string[];
  /** The encoded value. */
  readonly value: Uint8Array;
  /** The change number in this store. */
  readonly change: number;
  /** The signer's public key in hex, when signed. */
  readonly identity?: string;
  /** The signature in hex, when signed. */
  readonly signature?: string;
}

/**
 * Where the encoded value of a stored-node object a log made lies: `SIZE` bytes of `BYTES` from `OFFSET` (see
 * {@link PlacedNode}). Its `value` is a getter that makes the view when asked (`log-values.ts`): a node kept in
 * memory costs no `Uint8Array` of its own (104 bytes, and a third of what the collector copied per node of a
 * `batch`), and code that needs only the value's length reads it with {@link valueSize}, making no view.
 */
export const BYTES: unique symbol = Symbol("hyperlog.bytes");
/** See {@link BYTES}. */
export const OFFSET: unique symbol = Symbol("hyperlog.offset");
/** See {@link BYTES}. */
export const SIZE: unique symbol = Symbol("hyperlog.size");

/**
 * Copies `n` bytes of `from` at `fromAt` into `to` at `toAt`: by a loop for a few bytes, by `set` of a view for more
 * (a view costs an object, a loop a step per byte; they cross near 48 bytes).
 *
 * @example
 * ```ts
 * import { copyBytes } from "./node.ts";
 * const to = new Uint8Array(4);
 * copyBytes(Uint8Array.of(9, 8, 7), 1, to, 2, 2);
 * console.assert(to.join() === "0,0,8,7");
 * ```
 */
export function copyBytes(from: Uint8Array, fromAt: number, to: Uint8Array, toAt: number, n: number): void {
  if (n > 48) to.set(from.subarray(fromAt, fromAt + n), toAt);
  else for (let i = 0; i < n; i++) to[toAt + i] = from[fromAt + i]!;
}

/**
 * The byte length of a node's encoded value: from the node's {@link SIZE} slot when a log made it (reading `value`
 * would make a view, which a message encoder sizing every node it sends would pay for two or three times a node),
 * else `value.length`.
 *
 * @example
 * ```ts
 * import { valueSize } from "./node.ts";
 * console.assert(valueSize({ links: [], value: new Uint8Array(3) }) === 3);
 * ```
 */
export function valueSize(node: RawNode): number {
  const size = (node as { [SIZE]?: number })[SIZE];
  return size === undefined ? node.value.length : size;
}

/**
 * A copy of a stored node with another change number, made field by field: what a backend stores for a node that
 * takes a lower number than it was given (a node before it in the commit was stored already). A node the log made
 * reads its `value` (a json log's node, every field) through a getter, which spreading (`{ ...node, change }`)
 * leaves out.
 *
 * @example
 * ```ts
 * import { Hyperlog, MemoryStorage } from "../mod.ts";
 * import { withChange } from "./node.ts";
 * const storage = new MemoryStorage();
 * const node = await new Hyperlog<string>(storage).append("hi");
 * const stored = (await storage.get(node.key))!;
 * const copy = withChange(stored, 7);
 * console.assert(copy.change === 7 && copy.value.length === stored.value.length && copy.key === stored.key);
 * ```
 */
export function withChange(node: StoredNode, change: number): StoredNode {
  const copy: { -readonly [K in keyof StoredNode]: StoredNode[K] } = {
    key: node.key,
    links: node.links,
    value: node.value,
    change,
  };
  if (node.identity !== undefined) {
    copy.identity = node.identity;
    copy.signature = node.signature!;
  }
  return copy;
}

const IDENTITY_PREFIX = "ed25519:";
const textEncoder = new TextEncoder();
let scratch = new Uint8Array(64 * 1024);

/**
 * A node as it travels between peers: the value is encoded, and the key may be left out (it is computed, and
 * checked when given).
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import type { RawNode } from "./node.ts";
 * const raw: RawNode = { links: [], value: new TextEncoder().encode('"hello"') };
 * const log = new Hyperlog<string>();
 * const [stored] = await log.ingest([raw]);
 * console.assert((await log.get(stored!.key)).value === "hello");
 * ```
 */
export interface RawNode {
  /** The key the sender claims; checked against the content when present. */
  readonly key?: string;
  /** The keys it links to. */
  readonly links: readonly string[];
  /** The encoded value. */
  readonly value: Uint8Array;
  /** The signer's public key in hex, for a signed node. */
  readonly identity?: string;
  /** The signature in hex, for a signed node. */
  readonly signature?: string;
}

/**
 * The encoded values of text nodes live side by side in shared slabs of this size: one `ArrayBuffer` per value cost
 * as much as hashing the node (an allocation outside the heap, and work for the garbage collector), and ~100 bytes
 * of memory per stored node. A node says where its value lies ({@link PlacedNode}), and a `Uint8Array` view is made
 * only when the value is read: a value is thus a view into a larger buffer (its `byteOffset` may be non-zero);
 * storage that structured-clones values copies them first (see IndexedDB's). A slab stays in memory while a node or
 * a view of a value in it does: at most 64 KiB per value still referenced.
 */
const SLAB_BYTES = 64 * 1024;
/** Values that may take more than this many bytes get a buffer of their own. */
const SLAB_VALUE_MAX = 4 * 1024;
let slab = new Uint8Array(SLAB_BYTES);
let slabUsed = 0;

function digits(n: number): number {
  return n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : n < 10000 ? 4 : String(n).length;
}

function writeAscii(buf: Uint8Array, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) buf[at++] = text.charCodeAt(i);
  return at;
}

/** Writes `n` in decimal ending at `end` (exclusive) and returns where it starts. */
function writeDecimalBefore(buf: Uint8Array, end: number, n: number): number {
  do {
    buf[--end] = 48 + (n % 10);
    n = Math.floor(n / 10);
  } while (n > 0);
  return end;
}

function framesSize(links: readonly string[], identity: string | undefined): number {
  let size = 0;
  if (identity !== undefined) {
    const n = IDENTITY_PREFIX.length + identity.length;
    size += digits(n) + 1 + n;
  }
  for (let i = 0; i < links.length; i++) {
    const n = links[i]!.length;
    size += digits(n) + 1 + n;
  }
  return size;
}

function writeFrames(buf: Uint8Array, at: number, links: readonly string[], identity: string | undefined): number {
  if (identity !== undefined) {
    at = writeAscii(buf, at, `${IDENTITY_PREFIX.length + identity.length}\n${IDENTITY_PREFIX}`);
    at = writeAscii(buf, at, identity);
  }
  for (let i = 0; i < links.length; i++) {
    const link = links[i]!;
    if (link.length === 64) {
      buf[at++] = 54; // "6"
      buf[at++] = 52; // "4"
      buf[at++] = 10; // "\n"
    } else {
      at = writeAscii(buf, at, `${link.length}\n`);
    }
    at = writeAscii(buf, at, link);
  }
  return at;
}

/**
 * The bytes that are hashed into a node's key (see the module doc for the layout).
 *
 * @example
 * ```ts
 * import { keyPreimage } from "./node.ts";
 * const bytes = keyPreimage([], new TextEncoder().encode("hello"));
 * console.assert(new TextDecoder().decode(bytes) === "5\nhello");
 * ```
 */
export function keyPreimage(links: readonly string[], value: Uint8Array, identity?: string): Uint8Array {
  const size = framesSize(links, identity) + digits(value.length) + 1 + value.length;
  const buf = new Uint8Array(size);
  const at = writeAscii(buf, writeFrames(buf, 0, links, identity), `${value.length}\n`);
  buf.set(value, at);
  return buf;
}

/**
 * Computes a node's key: the hex SHA-256 of its links, encoded value and (when signed) identity.
 *
 * @example The key of hyperlog's first example node
 * ```ts
 * import { computeKey } from "./node.ts";
 * const key = computeKey([], new TextEncoder().encode("hello"));
 * console.assert(key === "8c7efb22472592f561a7a7647f8c5ee93134880b4ca0c92889a61848cd5c4602");
 * ```
 */
export function computeKey(links: readonly string[], value: Uint8Array, identity?: string): string {
  return keyAt(links, value, 0, value.length, identity);
}

/**
 * The key of a node whose encoded value is `size` bytes of `bytes` from `offset` ({@link computeKey} without a view
 * of the value): the frames, the length and the value are written into a scratch buffer and hashed through a view
 * of it kept for each length, so that a received node's key costs no object but the string (a message's nodes are
 * decoded as places in one buffer of its values).
 *
 * @example
 * ```ts
 * import { computeKey, keyAt } from "./node.ts";
 * const bytes = new TextEncoder().encode("..hello..");
 * console.assert(keyAt([], bytes, 2, 5) === computeKey([], new TextEncoder().encode("hello")));
 * ```
 */
export function keyAt(
  links: readonly string[],
  bytes: Uint8Array,
  offset: number,
  size: number,
  identity?: string,
): string {
  const head = framesSize(links, identity) + digits(size) + 1;
  if (head + size > HASH_SCRATCH_BYTES) return placeNode(links, valueAt(bytes, offset, size), identity).key;
  const buf = hashScratch;
  copyBytes(bytes, offset, buf, head, size);
  buf[head - 1] = 10;
  writeFrames(buf, 0, links, identity);
  writeDecimalBefore(buf, head - 1, size);
  return sha256Hex(HASH_VIEWS[head + size] ??= buf.subarray(0, head + size));
}

/**
 * A node's key, and where its encoded value lies: `size` bytes of `bytes` from `offset`. A text value's bytes lie in
 * a 64 KiB slab that many values share; the view of them is made only when asked for
 * ({@link valueAt}), so that a node stored in memory costs no `Uint8Array` of its own.
 *
 * @example
 * ```ts
 * import { placeNode, valueAt } from "./node.ts";
 * const { key, bytes, offset, size } = placeNode([], "hello");
 * console.assert(key.startsWith("8c7efb22") && new TextDecoder().decode(valueAt(bytes, offset, size)) === "hello");
 * ```
 */
export interface PlacedNode {
  /** The node's key. */
  readonly key: string;
  /** The keys it links to, as given. */
  readonly links: readonly string[];
  /** The buffer that holds the encoded value (shared with other values when it is a slab). */
  readonly bytes: Uint8Array;
  /** Where in `bytes` the value starts. */
  readonly offset: number;
  /** The value's length in bytes. */
  readonly size: number;
  /** The value as given, when it was text (the bytes are its utf-8). */
  readonly text: string | undefined;
}

/**
 * The encoded value at `offset` in `bytes`, `size` bytes long: `bytes` itself when that is all of it, a view
 * otherwise.
 *
 * @example
 * ```ts
 * import { valueAt } from "./node.ts";
 * const bytes = new Uint8Array([1, 2, 3, 4]);
 * console.assert(valueAt(bytes, 0, 4) === bytes && valueAt(bytes, 1, 2).join() === "2,3");
 * ```
 */
export function valueAt(bytes: Uint8Array, offset: number, size: number): Uint8Array {
  return offset === 0 && size === bytes.length ? bytes : bytes.subarray(offset, offset + size);
}

/**
 * Computes a node's key and its encoded value in one pass. A string value is written as utf-8 once, straight after
 * the frames of its links, hashed where it lies, then moved down over the frames: its bytes end up in a shared
 * slab shared by many values, so a node costs no buffer of its own besides the key string.
 *
 * @example
 * ```ts
 * import { encodeNode } from "./node.ts";
 * const { key, value } = encodeNode([], "hello");
 * console.assert(key.startsWith("8c7efb22") && value.length === 5);
 * ```
 */
export function encodeNode(
  links: readonly string[],
  value: Uint8Array | string,
  identity?: string,
): { key: string; value: Uint8Array } {
  const placed = placeNode(links, value, identity);
  return { key: placed.key, value: valueAt(placed.bytes, placed.offset, placed.size) };
}

/**
 * {@link encodeNode}, saying where the value's bytes lie rather than making a view of them (see {@link PlacedNode}):
 * what a log does for the nodes it adds.
 *
 * @example
 * ```ts
 * import { placeNode } from "./node.ts";
 * const bytes = new Uint8Array([104, 105]);
 * const placed = placeNode([], bytes);
 * console.assert(placed.bytes === bytes && placed.offset === 0 && placed.size === 2);
 * ```
 */
export function placeNode(links: readonly string[], value: Uint8Array | string, identity?: string): PlacedNode {
  if (typeof value === "string" && value.length <= SLAB_VALUE_MAX) {
    const placed = placeAsciiNode(links, value, identity);
    if (placed !== undefined) return placed;
  }
  const prefix = framesSize(links, identity);
  if (typeof value === "string") {
    const maxValue = value.length * 3;
    const reserve = prefix + digits(maxValue) + 1 + maxValue;
    if (reserve <= SLAB_VALUE_MAX) {
      if (slabUsed + reserve > slab.length) {
        slab = new Uint8Array(SLAB_BYTES);
        slabUsed = 0;
      }
      const buf = slab;
      const base = slabUsed;
      const offset = base + reserve - maxValue;
      const n = textEncoder.encodeInto(value, buf.subarray(offset, offset + maxValue)).written;
      buf[offset - 1] = 10;
      const start = writeDecimalBefore(buf, offset - 1, n) - prefix;
      writeFrames(buf, start, links, identity);
      const key = sha256Hex(buf.subarray(start, offset + n));
      buf.copyWithin(base, offset, offset + n);
      slabUsed = base + n;
      return { key, links, bytes: buf, offset: base, size: n, text: value };
    }
  }
  const maxValue = typeof value === "string" ? value.length * 3 : value.length;
  const offset = prefix + digits(maxValue) + 1;
  if (scratch.length < offset + maxValue) scratch = new Uint8Array(Math.max(scratch.length * 2, offset + maxValue));
  let n: number;
  if (typeof value === "string") {
    n = textEncoder.encodeInto(value, scratch.subarray(offset)).written;
  } else {
    scratch.set(value, offset);
    n = value.length;
  }
  scratch[offset - 1] = 10;
  const start = writeDecimalBefore(scratch, offset - 1, n) - prefix;
  writeFrames(scratch, start, links, identity);
  const key = sha256Hex(scratch.subarray(start, offset + n));
  const bytes = typeof value === "string" ? scratch.slice(offset, offset + n) : value;
  return { key, links, bytes, offset: 0, size: n, text: typeof value === "string" ? value : undefined };
}

/** The bytes an ASCII text node's key is hashed from are written here (see {@link placeAsciiNode}). */
const HASH_SCRATCH_BYTES = 16 * 1024;
const hashScratch = new Uint8Array(HASH_SCRATCH_BYTES);
/** `hashScratch.subarray(0, n)` at index `n`, made once per length: hashing a node makes no view. */
const HASH_VIEWS: (Uint8Array | undefined)[] = [];

/**
 * `placeNode` of an ASCII text: the frames, the length and the text are written as bytes into a scratch buffer
 * (one byte per character, by a loop that stops at the first character that is not ASCII, and writes each into the
 * slab too, where it stays), and hashed through a view of that buffer kept for each length. No string is
 * concatenated or flattened for the hash and no `Uint8Array` is made per node: every byte a node allocates costs
 * the collector, and on some machines a page fault, and this path is a `batch`'s whole encoding. `undefined`
 * (nothing kept) when the text is not all ASCII or its frames are long: the caller then takes the general path.
 */
function placeAsciiNode(links: readonly string[], text: string, identity: string | undefined): PlacedNode | undefined {
  const n = text.length;
  const head = framesSize(links, identity) + digits(n) + 1;
  if (head + n > HASH_SCRATCH_BYTES) return undefined;
  if (slabUsed + n > slab.length) {
    slab = new Uint8Array(SLAB_BYTES);
    slabUsed = 0;
  }
  const buf = hashScratch;
  const bytes = slab;
  const offset = slabUsed;
  // Each character to the scratch buffer, for the hash, and to the slab, where it stays, in one pass: the slab's
  // bytes past `slabUsed` are free, so a text that turns out not to be ASCII leaves nothing behind there.
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    // A character below 0x80 is one byte of utf-8; others take two to four, which the general path writes.
    if (c > 0x7f) return undefined;
    buf[head + i] = c;
    bytes[offset + i] = c;
  }
  buf[head - 1] = 10;
  writeFrames(buf, 0, links, identity);
  writeDecimalBefore(buf, head - 1, n);
  const key = sha256Hex(HASH_VIEWS[head + n] ??= buf.subarray(0, head + n));
  slabUsed += n;
  return { key, links, bytes, offset, size: n, text };
}
