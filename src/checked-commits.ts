/**
 * Commits whose nodes a log made: their keys, links, identities and signatures are lower-case hex of the right
 * length already (the log computed the keys and checked every field a caller gave, and the wire decoder writes hex
 * itself), so a storage need not check them again with a regular expression per key and link. A storage still
 * checks what any other caller commits. The mark is the array the log hands to `Storage.commit`, held while that call
 * runs (a storage asks at the start of its commit, before it awaits anything; one asked later checks as for any
 * caller): one reference rather than a `WeakSet` entry per commit, which cost ~0.6 us an `append` (an ephemeron
 * table entry, and the collector's work on it). `mod.ts` does not re-export this module.
 *
 * @module
 */
import type { StoredNode } from "./node.ts";

/** The array of the commit being called, if the log made it. */
let current: readonly StoredNode[] | undefined;

/**
 * Notes that every field of `nodes` is well-formed (the log does, for what it commits), until
 * {@link unmarkChecked} or the next mark.
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
  current = nodes;
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
  return nodes === current;
}

/**
 * Ends the mark of `nodes` (the log does once `Storage.commit` has returned its promise), so that no array stays
 * referenced after its commit.
 *
 * @example
 * ```ts
 * import { markChecked, unmarkChecked, wasChecked } from "./checked-commits.ts";
 * const nodes = [{ key: "ab".repeat(32), links: [], value: new Uint8Array(), change: 1 }];
 * markChecked(nodes);
 * unmarkChecked(nodes);
 * console.assert(!wasChecked(nodes));
 * ```
 */
export function unmarkChecked(nodes: readonly StoredNode[]): void {
  if (current === nodes) current = undefined;
}
