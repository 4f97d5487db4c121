/**
 * The nodes a log returns: frozen, their values frozen all the way down, and a json value added locally decoded
 * from its stored bytes only when first read; the slots by which a stored-node object remembers the node decoded
 * from it; and a log's values (`LogValues`): its codec, and the decode cache built on those slots.
 *
 * @module
 */
import { type Codec, resolveEncoding, textForm, type ValueEncoding } from "./encoding.ts";
import { HyperlogError, InvalidNodeError } from "./errors.ts";
import { type Draft, label } from "./log-checks.ts";
import { BYTES, type Node, OFFSET, type RawNode, SIZE, type StoredNode, valueAt, withChange } from "./node.ts";

/**
 * Slots on the stored-node objects the log creates, holding the API node decoded from it and which log decoded it
 * (logs with different encodings may share a storage). A backend that keeps the objects it was given (memory) thus
 * serves every later read without decoding; one that makes new objects (SQLite) simply misses. Two fields in the
 * object itself cost far less than a WeakMap entry, or a holder object, per node.
 */
export const DECODED: unique symbol = Symbol("hyperlog.decoded");
export const DECODED_BY: unique symbol = Symbol("hyperlog.decodedBy");
/** The json value decoded from the bytes of a stored-node object this log made, by a lazy node (see `lazyNode`). */
export const VALUE: unique symbol = Symbol("hyperlog.value");

export type Cacheable = StoredNode & { [DECODED]?: unknown; [DECODED_BY]?: object | undefined; [VALUE]?: unknown };

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
  this[VALUE] = undefined;
} as unknown as new (...fields: Parameters<typeof storedObject>) => Cacheable;
StoredObject.prototype = STORED_PROTOTYPE;

/**
 * A stored-node object of this log's making: the node's fields (`identity` and `signature` only for a signed node),
 * its value `size` bytes of `bytes` from `offset` (read through the `value` getter), and the empty cache slots (see
 * {@link DECODED}).
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

/**
 * A stored-node object of this log's making with another change number (a node after one the commit skipped): the
 * same bytes, and the json value decoded from them if it was; not the API node made from it, whose change number
 * is the old one.
 */
export function renumbered(stored: Cacheable, change: number): StoredNode {
  const fields = stored as unknown as Record<PropertyKey, unknown>;
  if (!(BYTES in fields)) return withChange(stored, change);
  const bytes = fields[BYTES] as Uint8Array;
  const offset = fields[OFFSET] as number;
  const copy = storedObject(
    stored.key,
    stored.links,
    bytes,
    offset,
    fields[SIZE] as number,
    change,
    stored.identity,
    stored.signature,
  );
  copy[VALUE] = stored[VALUE];
  return copy;
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
 * decodes nothing), and then once, however many times it is read. The lazy node points at the stored-node object
 * the log made (its bytes, and a slot for the decoded value) through a private field, which this class stamps on
 * the object its base class makes (see {@link PlainObject}): the field is no property (spreading, `Object.keys`,
 * `JSON.stringify` and deep equality do not see it). No text and no holder object stay in memory per node, and the
 * field costs a map transition where a non-enumerable symbol property cost a call of `Object.defineProperty`
 * (measured: 0.21 us a node instead of 0.46 on Node 24).
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

/** Stamps the stored-node object a lazy node decodes from on it (see {@link StoredOf}). */
class LazyStored extends StoredOf {
  readonly #stored: Cacheable;
  constructor(stored: Cacheable) {
    super();
    this.#stored = stored;
  }
  /** The stored-node object of a lazy node; throws a `TypeError` for any other object. */
  static of(node: object): Cacheable {
    return (node as LazyStored).#stored;
  }
}

const utf8Decoder = new TextDecoder();

/** `value` of a lazily decoded node: an enumerable getter, so spreading, `JSON.stringify` and `Object.keys` see it. */
const LAZY_VALUE: PropertyDescriptor = {
  get(this: object): unknown {
    const stored = LazyStored.of(this);
    let value = stored[VALUE];
    if (value === undefined) stored[VALUE] = value = deepFreeze(JSON.parse(utf8Decoder.decode(stored.value)));
    return value;
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

/** A frozen node whose json value is decoded from the stored bytes when first read (see {@link StoredOf}). */
export function lazyNode<T>(stored: Cacheable): Node<T> {
  // The private field first: stamped after the accessor, it turns the object into a slow dictionary object.
  const node = new LazyStored(stored) as unknown as { -readonly [K in keyof Node<T>]: Node<T>[K] };
  node.key = stored.key;
  node.links = stored.links;
  Object.defineProperty(node, "value", LAZY_VALUE);
  node.change = stored.change;
  if (stored.identity !== undefined) {
    node.identity = stored.identity;
    node.signature = stored.signature!;
  }
  Object.defineProperty(node, INSPECT_SYMBOL, INSPECT);
  return Object.freeze(node);
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
 * shared: a backend that keeps its objects (memory) reads at the speed of the stream. Binary and custom values are
 * decoded afresh each time, since they may be mutable.
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
    return this.#cached(stored) ?? this.#cache(stored, withValue(stored, deepFreeze(this.codec.decode(stored.value))));
  }

  /**
   * A stored node as the API returns it, from the draft's text when the log still has it: a json value is decoded
   * from its bytes when first read (see `lazyNode`), a utf-8 value is the text itself.
   */
  decodeDraft(draft: Draft, stored: StoredNode): Node<T> {
    if (draft.text === undefined || !this.#immutable) return this.toNode(stored);
    const cached = this.#cached(stored);
    if (cached !== undefined) return cached;
    if (this.codec !== JSON_CODEC) return this.#cache(stored, withValue(stored, draft.text as T));
    // A json node is decoded lazily only from an object this log made (it has the slot for the value), not from
    // one a storage made when it read a node stored before.
    if (!(VALUE in stored) || !Object.isExtensible(stored)) return this.toNode(stored);
    return this.#lazy(stored as Cacheable);
  }

  /**
   * {@link decodeDraft} of a stored-node object this log has just made for the draft and committed as it was (see
   * `LogStore`): it has the cache slots, and nothing in them yet.
   */
  decodeFresh(draft: Draft, stored: Cacheable): Node<T> {
    if (draft.text === undefined || this.codec !== JSON_CODEC) return this.decodeDraft(draft, stored);
    return this.#lazy(stored);
  }

  /** The lazy node of a stored-node object this log made (extensible, with the slots), remembered in it. */
  #lazy(stored: Cacheable): Node<T> {
    const node = lazyNode<T>(stored);
    stored[DECODED_BY] = this;
    stored[DECODED] = node;
    return node;
  }

  /** The node decoded from this stored object by this log, if any (see {@link DECODED}). */
  #cached(stored: StoredNode): Node<T> | undefined {
    return (stored as Cacheable)[DECODED_BY] === this ? (stored as Cacheable)[DECODED] as Node<T> : undefined;
  }

  /** Remembers the node decoded from a stored object in it, unless the storage handed out a frozen object. */
  #cache(stored: StoredNode, node: Node<T>): Node<T> {
    if (!Object.isExtensible(stored)) return node;
    (stored as Cacheable)[DECODED_BY] = this;
    (stored as Cacheable)[DECODED] = node;
    return node;
  }
}
