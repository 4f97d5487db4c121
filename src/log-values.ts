/**
 * The nodes a log returns: frozen, their values frozen all the way down, and a json value added locally decoded
 * from its stored bytes only when first read; the stored-node objects a log commits (for a json node it adds, one
 * that reads its fields from the node the log returns, which a store in memory keeps instead); the slots by which a
 * stored-node object remembers the node decoded from it; and a log's values (`LogValues`): its codec, and the
 * decode cache built on those slots.
 *
 * @module
 */
import { type Codec, resolveEncoding, textForm, type ValueEncoding } from "./encoding.ts";
import { HyperlogError, InvalidNodeError } from "./errors.ts";
import { type Draft, label } from "./log-checks.ts";
import { BYTES, type Node, OFFSET, type RawNode, SIZE, type StoredNode, valueAt, withChange } from "./node.ts";
import type { ReadRange, Storage } from "./storage.ts";

/**
 * Slots on the stored-node objects the log creates, holding the API node decoded from it and which log decoded it
 * (logs with different encodings may share a storage). A backend that keeps the objects it was given (memory) thus
 * serves every later read without decoding; one that makes new objects (SQLite) simply misses. Two fields in the
 * object itself cost far less than a WeakMap entry, or a holder object, per node.
 */
export const DECODED: unique symbol = Symbol("hyperlog.decoded");
export const DECODED_BY: unique symbol = Symbol("hyperlog.decodedBy");
/** The slot of a json node's stored-node object that holds the node itself (see {@link lazyStoredObject}). */
export const NODE: unique symbol = Symbol("hyperlog.node");

/** A stored-node object of this log's making, with its cache slots (see {@link DECODED} and {@link NODE}). */
export type Cacheable = StoredNode & { [DECODED]?: unknown; [DECODED_BY]?: object | undefined; [NODE]?: Node<unknown> };

/**
 * What a store in memory keeps of a node (see {@link keptOf}): the node a json log returned for it (a lazy node), or
 * its stored node.
 */
export type Kept = StoredNode | Node<unknown>;

/**
 * The method of a store that keeps nodes in memory (`MemoryStorage`) which reads a page as `Storage.read` does but
 * hands out what it keeps (see {@link keptOf}): the log's read stream reads through it ({@link readKept}), and
 * makes no stored-node object for a json node only to take the node back out of it.
 */
export const READ_KEPT: unique symbol = Symbol("hyperlog.readKept");

/**
 * The method of a store that keeps nodes in memory (`MemoryStorage`) which looks a key up as `Storage.get` does but
 * hands out what it keeps (see {@link keptOf}): `log.get` and `log.heads` read through it ({@link getKept}), and
 * make no stored-node object for a json node only to take the node back out of it (on Bun, a log's first read
 * stream after 10 000 `get`s that made one ran at 0.72-1.11 M nodes/s, and at 1.40-1.57 M without: medians of 7-9
 * benchmark children).
 */
export const GET_KEPT: unique symbol = Symbol("hyperlog.getKept");

/** A store that may have the {@link READ_KEPT} and {@link GET_KEPT} methods. */
type MaybeKeeping = Storage & {
  [READ_KEPT]?: (range: ReadRange) => Promise<Kept[]>;
  [GET_KEPT]?: (key: string) => Promise<Kept | undefined>;
};

/** The node of `key` in `storage`, as it keeps it when it can say ({@link GET_KEPT}), else as `get` gives it. */
export function getKept(storage: Storage, key: string): Promise<Kept | undefined> {
  const keeping = storage as MaybeKeeping;
  return keeping[GET_KEPT] !== undefined ? keeping[GET_KEPT](key) : storage.get(key);
}

/** A page of `storage`, as it keeps its nodes when it can say ({@link READ_KEPT}), else as `read` gives them. */
export function readKept(storage: Storage, range: ReadRange): Promise<readonly Kept[]> {
  const keeping = storage as MaybeKeeping;
  return keeping[READ_KEPT] !== undefined ? keeping[READ_KEPT](range) : storage.read(range);
}

/**
 * The prototype of the stored-node objects the log makes: `Object.prototype` with the `value` getter (see
 * {@link BYTES}). Copy such a node field by field (`withChange` in node.ts), not by spreading it: `{ ...node }` has
 * no `value`.
 */
const STORED_PROTOTYPE: object = Object.create(Object.prototype, {
  value: {
    get(this: Record<PropertyKey, unknown>): Uint8Array {
      return valueAt(this[BYTES] as Uint8Array, this[OFFSET] as number, this[SIZE] as number);
    },
  },
});

/**
 * Makes the stored-node objects the log commits (see {@link storedObject}): a constructor, so that the symbol slots
 * are set by stores the engine compiles (a literal's computed keys cost a call into the runtime each).
 */
const StoredObject = function StoredObject(
  this: Record<PropertyKey, unknown>,
  key: string,
  links: readonly string[],
  bytes: Uint8Array,
  offset: number,
  size: number,
  change: number,
  identity: string | undefined,
  signature: string | undefined,
): void {
  this.key = key;
  this.links = links;
  this.change = change;
  if (identity !== undefined) {
    this.identity = identity;
    this.signature = signature;
  }
  this[BYTES] = bytes;
  this[OFFSET] = offset;
  this[SIZE] = size;
  this[DECODED] = undefined;
  this[DECODED_BY] = undefined;
} as unknown as new (...fields: Parameters<typeof storedObject>) => Cacheable;
StoredObject.prototype = STORED_PROTOTYPE;

/**
 * A stored-node object of this log's making: the node's fields (`identity` and `signature` only for a signed node),
 * its value `size` bytes of `bytes` from `offset` (read through the `value` getter), and the empty cache slots (see
 * {@link DECODED}).
 *
 * @example
 * ```ts
 * import { storedObject } from "./log-values.ts";
 * const slab = new TextEncoder().encode("ab|cd");
 * const node = storedObject("0".repeat(64), [], slab, 3, 2, 1);
 * console.assert(node.value.join() === "99,100" && !Object.hasOwn(node, "value"));
 * ```
 */
export function storedObject(
  key: string,
  links: readonly string[],
  bytes: Uint8Array,
  offset: number,
  size: number,
  change: number,
  identity?: string,
  signature?: string,
): Cacheable {
  return new StoredObject(key, links, bytes, offset, size, change, identity, signature);
}

/** A getter of the stored-node object of a json node (see {@link lazyStoredObject}) that reads its node's field. */
function nodeField(name: "key" | "links" | "change" | "identity" | "signature"): PropertyDescriptor {
  return {
    get(this: { [NODE]: Node<unknown> }): unknown {
      return this[NODE][name];
    },
  };
}

/** A getter of the stored-node object of a json node that reads where its node's value lies. */
function nodePlace<K>(read: (node: LazyStored) => K): PropertyDescriptor {
  return {
    get(this: { [NODE]: LazyStored }): K {
      return read(this[NODE]);
    },
  };
}

/**
 * The prototype of the stored-node objects of json nodes (see {@link lazyStoredObject}): getters of every field,
 * read from the node, and of the value's place (the slots a log's stored nodes have, see `BYTES` in node.ts).
 */
const LAZY_STORED_PROTOTYPE: object = Object.create(Object.prototype, {
  key: nodeField("key"),
  links: nodeField("links"),
  change: nodeField("change"),
  identity: nodeField("identity"),
  signature: nodeField("signature"),
  value: nodePlace((node) => LazyStored.bytesOf(node)),
  [BYTES]: nodePlace((node) => LazyStored.slabOf(node)),
  [OFFSET]: nodePlace((node) => LazyStored.offsetOf(node)),
  [SIZE]: nodePlace((node) => LazyStored.sizeOf(node)),
});

/** Makes the stored-node objects of json nodes (see {@link lazyStoredObject}). */
const LazyStoredObject = function LazyStoredObject(this: Record<PropertyKey, unknown>, node: LazyStored): void {
  this[NODE] = node;
} as unknown as new (node: LazyStored) => Cacheable;
LazyStoredObject.prototype = LAZY_STORED_PROTOTYPE;

/**
 * The stored-node object a json log commits for a node it adds, and the node its API returns for it (see
 * {@link LazyStored}), made together: the node holds the fields and where the value lies, and the stored object
 * holds only the node and reads everything from it through getters on its prototype. A store in memory keeps the
 * node alone ({@link keptOf}) and makes a stored object again when asked for one ({@link storedView}): a node then
 * costs its key, the node (80 bytes) and its value's bytes, where a stored object with fields of its own and a node
 * that pointed to it cost 152 bytes more than the key. Every byte a node keeps is copied by the collector and, while
 * the heap grows, faults a page in: on Node the difference is ~10% of a `batch`. Only for a value that json text
 * made (`JSON.stringify`'s), which decoding cannot fail on.
 *
 * @example
 * ```ts
 * import { keptOf, lazyStoredObject, storedView } from "./log-values.ts";
 * const bytes = new TextEncoder().encode('{"a":1}');
 * const stored = lazyStoredObject("0".repeat(64), [], bytes, 0, bytes.length, 1);
 * const node = keptOf(stored);
 * console.assert(stored.change === 1 && stored.value === bytes && (node.value as { a: number }).a === 1);
 * console.assert(storedView(node).key === stored.key && storedView(node) !== stored);
 * ```
 */
export function lazyStoredObject<T>(
  key: string,
  links: readonly string[],
  bytes: Uint8Array,
  offset: number,
  size: number,
  change: number,
  identity?: string,
  signature?: string,
): Cacheable {
  return new LazyStoredObject(lazyNode<T>(bytes, offset, size, key, links, change, identity, signature));
}

/**
 * What a store that keeps nodes in memory keeps of a node: the node of a json node's stored-node object (see
 * {@link lazyStoredObject}), any other node as it is.
 *
 * @example
 * ```ts
 * import { keptOf, storedObject } from "./log-values.ts";
 * const node = storedObject("0".repeat(64), [], new Uint8Array([1]), 0, 1, 1);
 * console.assert(keptOf(node) === node);
 * ```
 */
export function keptOf(node: StoredNode): Kept {
  return (node as Cacheable)[NODE] ?? node;
}

/**
 * What a store that keeps nodes in memory hands out for what it kept ({@link keptOf}): a stored-node object made
 * anew for a json node, any other node as it is.
 *
 * @example
 * ```ts
 * import { keptOf, lazyStoredObject, storedView } from "./log-values.ts";
 * const bytes = new TextEncoder().encode("1");
 * const stored = lazyStoredObject("0".repeat(64), [], bytes, 0, 1, 1);
 * console.assert(storedView(keptOf(stored)).value === bytes);
 * ```
 */
export function storedView(kept: Kept): StoredNode {
  return LazyStored.is(kept) ? new LazyStoredObject(kept) : kept as StoredNode;
}

/**
 * A stored-node object of this log's making with another change number (a node after one the commit skipped): the
 * same bytes; for a json node, a node of its own with the json value decoded from them if it was (the node the log
 * made first keeps its change number).
 */
export function renumbered(stored: Cacheable, change: number): StoredNode {
  const node = stored[NODE];
  if (node !== undefined) {
    return new LazyStoredObject(LazyStored.withChange(node as LazyStored & Node<unknown>, change));
  }
  const fields = stored as unknown as Record<PropertyKey, unknown>;
  if (!(BYTES in fields)) return withChange(stored, change);
  return storedObject(
    stored.key,
    stored.links,
    fields[BYTES] as Uint8Array,
    fields[OFFSET] as number,
    fields[SIZE] as number,
    change,
    stored.identity,
    stored.signature,
  );
}

/** The frozen API node of a stored node, with its decoded value. */
export function withValue<T>(stored: StoredNode, value: T): Node<T> {
  if (stored.identity === undefined) {
    return Object.freeze({ key: stored.key, links: stored.links, value, change: stored.change });
  }
  return Object.freeze({
    key: stored.key,
    links: stored.links,
    value,
    change: stored.change,
    identity: stored.identity,
    signature: stored.signature!,
  });
}

/**
 * The value of a node this log added with the json encoding, decoded on first read from the stored bytes, which
 * hold what `JSON.stringify` gave for the caller's value: decoding them cannot fail and gives what decoding the
 * stored node would. A node costs no decoding until its value is read (a `batch` whose caller only keeps the keys
 * decodes nothing), and then once, however many times it is read. The lazy node holds where its value lies and,
 * once read, the decoded value in private fields, which its class ({@link LazyStored}) stamps on the object this
 * base class makes (see {@link PlainObject}): a field is no property (spreading, `Object.keys`, `JSON.stringify` and
 * deep equality do not see it). No text and no holder object stay in memory per node, and a field costs a map
 * transition where a non-enumerable symbol property cost a call of `Object.defineProperty` (measured: 0.21 us a node
 * instead of 0.46 on Node 24).
 */
class StoredOf {
  constructor() {
    return new PlainObject();
  }
}

/**
 * Makes a plain object: its prototype is `Object.prototype`, as an object literal's, but made by a constructor, the
 * engine gives it room for the properties a node gets after it is made (V8's in-object slack), where an object
 * literal `{ key, links }` kept its next properties in a separate array of their own: 16 bytes a node less, one
 * object less for the collector, and faster to make (measured on Node 24: 0.24-0.31 us a lazy node against
 * 0.36-0.46).
 */
const PlainObject = function PlainObject(): void {} as unknown as new () => object;
PlainObject.prototype = Object.prototype;

/**
 * Stamps on a lazy node where its value lies and, once read, the value decoded (see {@link StoredOf}), in private
 * fields; the static methods read them for the stored-node object of the node (see {@link lazyStoredObject}).
 */
class LazyStored extends StoredOf {
  #bytes: Uint8Array;
  #offset: number;
  #size: number;
  #value: unknown;
  constructor(bytes: Uint8Array, offset: number, size: number, value: unknown) {
    super();
    this.#bytes = bytes;
    this.#offset = offset;
    this.#size = size;
    this.#value = value;
  }
  /** Whether `node` is a lazy node. */
  static is(node: object): node is LazyStored {
    return #bytes in node;
  }
  /** The encoded value of a lazy node (a view of its slab, or all of a buffer of its own). */
  static bytesOf(node: LazyStored): Uint8Array {
    return valueAt(node.#bytes, node.#offset, node.#size);
  }
  /** The buffer a lazy node's value lies in. */
  static slabOf(node: LazyStored): Uint8Array {
    return node.#bytes;
  }
  /** Where in its buffer a lazy node's value starts. */
  static offsetOf(node: LazyStored): number {
    return node.#offset;
  }
  /** The length of a lazy node's encoded value. */
  static sizeOf(node: LazyStored): number {
    return node.#size;
  }
  /** The value of a lazy node, decoded and frozen when first read. */
  static decode(node: LazyStored): unknown {
    let value = node.#value;
    if (value === undefined) {
      node.#value = value = deepFreeze(JSON.parse(utf8Decoder.decode(valueAt(node.#bytes, node.#offset, node.#size))));
    }
    return value;
  }
  /** A lazy node like `node` numbered `change`, with its value decoded already if it was. */
  static withChange(node: LazyStored & Node<unknown>, change: number): LazyStored {
    const { key, links, identity, signature } = node;
    return lazyNode(node.#bytes, node.#offset, node.#size, key, links, change, identity, signature, node.#value);
  }
}

const utf8Decoder = new TextDecoder();

/** `value` of a lazily decoded node: an enumerable getter, so spreading, `JSON.stringify` and `Object.keys` see it. */
const LAZY_VALUE: PropertyDescriptor = {
  get(this: LazyStored): unknown {
    return LazyStored.decode(this);
  },
  enumerable: true,
};

/** A lazily decoded node as a plain one, for `console.log`. */
function inspectNode(this: Node): object {
  const { key, links, value, change, identity, signature } = this;
  return identity === undefined ? { key, links, value, change } : { key, links, value, change, identity, signature };
}

/**
 * Shows a lazily decoded node as a plain one in `console.log` (Node, Deno and Bun), not as `value: [Getter]`: a
 * non-enumerable getter that gives {@link inspectNode}, which the engine keeps with the node's shape, where a data
 * property holding the function took a field (8 bytes) in every node.
 */
const INSPECT: PropertyDescriptor = { get: () => inspectNode };

/**
 * A frozen node with these fields whose json value, `size` bytes of `bytes` from `offset`, is decoded when first read
 * (see {@link StoredOf}), unless given decoded already.
 */
function lazyNode<T>(
  bytes: Uint8Array,
  offset: number,
  size: number,
  key: string,
  links: readonly string[],
  change: number,
  identity: string | undefined,
  signature: string | undefined,
  value: unknown = undefined,
): LazyStored & Node<T> {
  // The private fields first: stamped after the accessor, they turn the object into a slow dictionary object.
  const node = new LazyStored(bytes, offset, size, value) as unknown as { -readonly [K in keyof Node<T>]: Node<T>[K] };
  node.key = key;
  node.links = links;
  Object.defineProperty(node, "value", LAZY_VALUE);
  node.change = change;
  if (identity !== undefined) {
    node.identity = identity;
    node.signature = signature!;
  }
  Object.defineProperty(node, INSPECT_SYMBOL, INSPECT);
  return Object.freeze(node) as LazyStored & Node<T>;
}

const INSPECT_SYMBOL = Symbol.for("nodejs.util.inspect.custom");

/** Freezes a decoded json value all the way down, so a node shared between calls cannot be changed. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) freezeObject(value);
  return value;
}

/** Freezes a fresh object of decoded json (no cycles, nothing frozen yet) and every object in it. */
function freezeObject(value: object): void {
  Object.freeze(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === "object" && item !== null) freezeObject(item);
    }
  } else {
    for (const key in value) {
      const item: unknown = (value as Record<string, unknown>)[key];
      if (typeof item === "object" && item !== null) freezeObject(item);
    }
  }
}

const JSON_CODEC = resolveEncoding("json");

/**
 * A log's values: how they become bytes, and how stored nodes become the nodes the API returns. Nodes of the
 * built-in text encodings are immutable (frozen, values deeply), so they are decoded once per stored object and
 * shared: a backend that keeps its objects (memory) reads at the speed of the stream. A json node the log adds is
 * made with its stored object, which holds it (see {@link lazyStoredObject}). Binary and custom values are decoded
 * afresh each time, since they may be mutable.
 */
export class LogValues<T> {
  /** The codec of the log's values. */
  readonly codec: Codec<T>;
  readonly #text: ((value: T) => string) | undefined;
  readonly #immutable: boolean;

  constructor(encoding: ValueEncoding<T> | undefined) {
    this.codec = resolveEncoding(encoding);
    this.#text = textForm(this.codec);
    this.#immutable = this.#text !== undefined;
  }

  /** A value's encoded form (text for the built-in text encodings); an encoding error names `where`. */
  encode(value: T, where: string, index?: number): Uint8Array | string {
    try {
      return this.#text !== undefined ? this.#text(value) : this.codec.encode(value);
    } catch (err) {
      if (err instanceof HyperlogError) err.message = `${label(where, index)}: ${err.message}`;
      throw err;
    }
  }

  /** A node of the API with its value encoded again, as a peer would send it; throws for a node that is not an object. */
  rawNode(node: Pick<Node<T>, "key" | "links" | "value" | "identity" | "signature">): RawNode {
    if (typeof node !== "object" || node === null) {
      throw new InvalidNodeError("A node must be an object with key, links and value");
    }
    const encoded = this.encode(node.value, `node ${String(node.key)}`);
    const value = typeof encoded === "string" ? new TextEncoder().encode(encoded) : encoded;
    const raw: { key: string; links: readonly string[]; value: Uint8Array; identity?: string; signature?: string } = {
      key: node.key,
      links: node.links,
      value,
    };
    if (node.identity !== undefined) raw.identity = node.identity;
    if (node.signature !== undefined) raw.signature = node.signature;
    return raw;
  }

  /** The API form of a stored node (see the class doc). */
  toNode(stored: StoredNode): Node<T> {
    if (!this.#immutable) return withValue(stored, this.codec.decode(stored.value));
    const lazy = (stored as Cacheable)[NODE];
    if (lazy !== undefined && this.codec === JSON_CODEC) return lazy as Node<T>;
    return this.#cached(stored) ?? this.#cache(stored, withValue(stored, deepFreeze(this.codec.decode(stored.value))));
  }

  /** The API form of what a store keeps (see {@link readKept}): a lazy node is one already, for a json log. */
  keptNode(kept: Kept): Node<T> {
    if (!LazyStored.is(kept)) return this.toNode(kept as StoredNode);
    return this.codec === JSON_CODEC ? kept as Node<T> : this.toNode(new LazyStoredObject(kept));
  }

  /**
   * The stored-node object this log commits for a draft, numbered `change`, with `links` (the draft's, frozen): for
   * a json value the log encoded, one that holds the node the API returns (see {@link lazyStoredObject}).
   */
  storedOf(draft: Draft, links: readonly string[], change: number): Cacheable {
    const make = draft.text !== undefined && this.codec === JSON_CODEC ? lazyStoredObject : storedObject;
    return make(draft.key, links, draft.bytes, draft.offset, draft.size, change, draft.identity, draft.signature);
  }

  /**
   * A stored node as the API returns it, from the draft's text when the log still has it: the node a json value's
   * stored object holds (see {@link lazyStoredObject}), a utf-8 value the text itself.
   */
  decodeDraft(draft: Draft, stored: StoredNode): Node<T> {
    if (draft.text === undefined || !this.#immutable || this.codec === JSON_CODEC) return this.toNode(stored);
    return this.#cached(stored) ?? this.#cache(stored, withValue(stored, draft.text as T));
  }

  /** The node decoded from this stored object by this log, if any (see {@link DECODED}). */
  #cached(stored: StoredNode): Node<T> | undefined {
    return (stored as Cacheable)[DECODED_BY] === this ? (stored as Cacheable)[DECODED] as Node<T> : undefined;
  }

  /**
   * Remembers the node decoded from a stored object in it, unless the storage handed out a frozen object, or one
   * that holds a json node (see {@link lazyStoredObject}) and has no slot for another log's.
   */
  #cache(stored: StoredNode, node: Node<T>): Node<T> {
    if (!Object.isExtensible(stored) || NODE in stored) return node;
    (stored as Cacheable)[DECODED_BY] = this;
    (stored as Cacheable)[DECODED] = node;
    return node;
  }
}
