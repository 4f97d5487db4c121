/**
 * Nodes whose keys were computed from their content by the link-reference decoder (`link-refs.ts`), so that the
 * log's check of a received node does not hash it a second time. Only the decoder makes them (instances of a class
 * this module does not export: a WeakSet of them cost 3% of a 100 000-node fresh sync and work for the garbage
 * collector); a copy of a node is a plain object, never one of them.
 *
 * @module
 */
import type { WireNode } from "./node-codec.ts";

/** A node the decoder made, its key computed from its content. */
class KeyedNode {
  key: string;
  links: readonly string[];
  value: Uint8Array;
  // Declared only: an unsigned node has no identity property at all, as a plain one.
  declare identity?: string;
  declare signature?: string;

  constructor(
    key: string,
    links: readonly string[],
    value: Uint8Array,
    signer?: { identity: string; signature: string },
  ) {
    this.key = key;
    this.links = links;
    this.value = value;
    if (signer !== undefined) {
      this.identity = signer.identity;
      this.signature = signer.signature;
    }
  }
}

/**
 * A node whose `key` was computed from its links, value and identity (by the decoder that makes it).
 *
 * @example
 * ```ts
 * import { keyedFromContent, keyedNode } from "./keyed-nodes.ts";
 * const node = keyedNode("k", [], new Uint8Array());
 * console.assert(keyedFromContent(node) && !keyedFromContent({ ...node }) && node.identity === undefined);
 * ```
 */
export function keyedNode(
  key: string,
  links: readonly string[],
  value: Uint8Array,
  signer?: { identity: string; signature: string },
): WireNode {
  return new KeyedNode(key, links, value, signer);
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
