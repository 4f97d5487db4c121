/**
 * Nodes whose keys were computed from their content by the link-reference decoder (`link-refs.ts`), so that the
 * log's check of a received node does not hash it a second time. Only the decoder makes them (instances of a class
 * this module does not export: a WeakSet of them cost 3% of a 100 000-node fresh sync and work for the garbage
 * collector); a copy of a node is a plain object, never one of them.
 *
 * @module
 */
import type { WireNode } from "./node-codec.ts";
import { BYTES, OFFSET, SIZE, valueAt } from "./node.ts";

/**
 * A node the decoder made, its key computed from its content. Its value is `SIZE` bytes of `BYTES` (the buffer of
 * its message's values) from `OFFSET`, read through the `value` getter, which makes the view when asked: a stored
 * node keeps the same place (see `checkedDraft` in log-checks.ts), so a received node costs no `Uint8Array` of its
 * own either. Copy it field by field (`withChange`), not by spreading it.
 */
class KeyedNode {
  key: string;
  links: readonly string[];
  [BYTES]: Uint8Array;
  [OFFSET]: number;
  [SIZE]: number;
  // Declared only: an unsigned node has no identity property at all, as a plain one.
  declare identity?: string;
  declare signature?: string;

  constructor(
    key: string,
    links: readonly string[],
    bytes: Uint8Array,
    offset: number,
    size: number,
    signer?: { identity: string; signature: string },
  ) {
    this.key = key;
    this.links = links;
    this[BYTES] = bytes;
    this[OFFSET] = offset;
    this[SIZE] = size;
    if (signer !== undefined) {
      this.identity = signer.identity;
      this.signature = signer.signature;
    }
  }

  /**
   * The value: a view of its bytes, made each time it is read. Its own getter, not the one of the log's stored-node
   * objects (`log-values.ts`): one getter for both shapes made its slot reads polymorphic, and a 10 000-node fresh
   * sync took ~20% more CPU.
   */
  get value(): Uint8Array {
    return valueAt(this[BYTES], this[OFFSET], this[SIZE]);
  }
}

/**
 * A node whose `key` was computed from its links, value and identity (by the decoder that makes it); its value is
 * `size` bytes of `bytes` from `offset`.
 *
 * @example
 * ```ts
 * import { keyedFromContent, keyedNode } from "./keyed-nodes.ts";
 * const node = keyedNode("k", [], Uint8Array.of(1, 2, 3), 1, 2);
 * console.assert(keyedFromContent(node) && !keyedFromContent({ ...node }) && node.identity === undefined);
 * console.assert(node.value.join() === "2,3");
 * ```
 */
export function keyedNode(
  key: string,
  links: readonly string[],
  bytes: Uint8Array,
  offset: number,
  size: number,
  signer?: { identity: string; signature: string },
): WireNode {
  return new KeyedNode(key, links, bytes, offset, size, signer);
}

/**
 * Whether `node` came from the link-reference decoder, which computed its key from its content: checking it again
 * would hash the node a second time.
 *
 * @example
 * ```ts
 * import { keyedFromContent } from "./keyed-nodes.ts";
 * console.assert(!keyedFromContent({ key: "k", links: [], value: new Uint8Array() }));
 * ```
 */
export function keyedFromContent(node: object): boolean {
  return node instanceof KeyedNode;
}
