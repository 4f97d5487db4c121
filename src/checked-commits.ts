/**
 * Commits whose nodes a log made: their keys, links, identities and signatures are lower-case hex of the right
 * length already (the log computed the keys and checked every field a caller gave, and the wire decoder writes hex
 * itself), so a storage need not check them again with a regular expression per key and link. A storage still
 * checks what any other caller commits. The set holds the arrays the log hands to `Storage.commit`, weakly; `mod.ts`
 * does not re-export this module.
 *
 * @module
 */
import type { StoredNode } from "./node.ts";

const checked = new WeakSet<readonly StoredNode[]>();

/**
 * Notes that every field of `nodes` is well-formed (the log does, for what it commits).
 *
 * @example
 * ```ts
 * import { markChecked, wasChecked } from "./checked-commits.ts";
 * const nodes = [{ key: "ab".repeat(32), links: [], value: new Uint8Array(), change: 1 }];
 * markChecked(nodes);
 * console.assert(wasChecked(nodes) && !wasChecked([...nodes]));
 * ```
 */
export function markChecked(nodes: readonly StoredNode[]): void {
  checked.add(nodes);
}

/**
 * Whether the log made `nodes` (see {@link markChecked}): a storage then skips its own shape checks of the keys,
 * links, identities and signatures.
 *
 * @example
 * ```ts
 * import { wasChecked } from "./checked-commits.ts";
 * console.assert(!wasChecked([{ key: "not hex", links: [], value: new Uint8Array(), change: 1 }]));
 * ```
 */
export function wasChecked(nodes: readonly StoredNode[]): boolean {
  return checked.has(nodes);
}
