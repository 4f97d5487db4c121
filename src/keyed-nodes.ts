/**
 * Nodes whose keys were computed from their content by the link-reference decoder (`link-refs.ts`), so that the
 * log's check of a received node does not hash it a second time. Only the decoder adds to the set; a copy of a node
 * is not in it.
 *
 * @module
 */

const keyed = new WeakSet<object>();

/**
 * Notes that `node`'s key was computed from its links, value and identity (by the decoder that made it).
 *
 * @example
 * ```ts
 * import { keyedFromContent, markKeyed } from "./keyed-nodes.ts";
 * const node = { key: "k", links: [], value: new Uint8Array() };
 * markKeyed(node);
 * console.assert(keyedFromContent(node) && !keyedFromContent({ ...node }));
 * ```
 */
export function markKeyed(node: object): void {
  keyed.add(node);
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
  return keyed.has(node);
}
