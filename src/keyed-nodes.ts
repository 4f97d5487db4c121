/**
 * Nodes whose keys were computed from their content by the link-reference decoder (`link-refs.ts`), so that the
 * log's check of a received node does not hash it a second time. Only the decoder makes them (with
 * {@link keyedNode}); a copy of such a node is not one. They carry a private class brand, not an entry in a
 * `WeakSet`: a million received nodes cost no hash-table growth and no weak-collection work for the collector.
 *
 * @module
 */
import type { WireNode } from "./node-codec.ts";

/** A received node whose key the decoder computed from its links, value and identity. */
class KeyedNode {
  #keyed = true;
  key: string;
  links: readonly string[];
  value: Uint8Array;
  declare identity?: string;
  declare signature?: string;

  constructor(key: string, links: readonly string[], value: Uint8Array) {
    this.key = key;
    this.links = links;
    this.value = value;
  }

  static is(node: object): boolean {
    return #keyed in node;
  }
}

/**
 * A node whose `key` the caller computed from `links`, `value` and `signer`'s identity (the decoder that made it).
 *
 * @example
 * ```ts
 * import { keyedFromContent, keyedNode } from "./keyed-nodes.ts";
 * const node = keyedNode("k", [], new Uint8Array());
 * console.assert(keyedFromContent(node) && !keyedFromContent({ ...node }));
 * ```
 */
export function keyedNode(
  key: string,
  links: readonly string[],
  value: Uint8Array,
  signer?: { identity: string; signature: string },
): WireNode {
  const node = new KeyedNode(key, links, value);
  if (signer !== undefined) {
    node.identity = signer.identity;
    node.signature = signer.signature;
  }
  return node;
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
  return KeyedNode.is(node);
}
