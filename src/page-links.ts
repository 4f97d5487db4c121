/**
 * What a storage that keeps links as change numbers (`SqliteStorage`, see `storage/sqlite-links.ts`) knows of a
 * page it read: the change number each link of each node names. It rides on the page (the array `read` returns)
 * under a symbol, not on the nodes, so the nodes stay plain `StoredNode`s; a session's encoder (`link-refs.ts`) then
 * finds a link among the nodes it sent by that number instead of hashing its key.
 *
 * @module
 */
import type { StoredNode } from "./node.ts";

/** The links of a page's nodes by change: `refs[i]` holds, for node `changes[i]`, each link's change or key. */
export interface PageLinks {
  /** The change of each node of the page, in page order (consecutive, up or down, in the usual case). */
  readonly changes: readonly number[];
  /**
   * For each node, its links in order: the change number of the linked node, or (for a link to a node not stored
   * before it) the key itself; `undefined` for a node without links.
   */
  readonly refs: readonly (readonly (number | string)[] | undefined)[];
}

/** The symbol a page's {@link PageLinks} is kept under (not enumerable: the page compares as a plain array). */
const PAGE_LINKS: unique symbol = Symbol("hyperlog.pageLinks");

/**
 * Attaches `links` to `page` (which is returned) and makes it findable by {@link pageLinksOf}.
 *
 * @example
 * ```ts
 * import { pageLinksOf, withPageLinks } from "./page-links.ts";
 * const page = withPageLinks([], { changes: [], refs: [] });
 * console.assert(pageLinksOf(page)?.changes.length === 0 && Object.keys(page).length === 0);
 * ```
 */
export function withPageLinks<T extends readonly StoredNode[]>(page: T, links: PageLinks): T {
  Object.defineProperty(page, PAGE_LINKS, { value: links });
  return page;
}

/**
 * The {@link PageLinks} a storage attached to `page`, if any.
 *
 * @example
 * ```ts
 * import { pageLinksOf } from "./page-links.ts";
 * console.assert(pageLinksOf([]) === undefined);
 * ```
 */
export function pageLinksOf(page: readonly StoredNode[]): PageLinks | undefined {
  return (page as { [PAGE_LINKS]?: PageLinks })[PAGE_LINKS];
}

/**
 * The place of `change` in `changes`, the changes of a page in page order, or -1. A page is usually a run of
 * consecutive changes (up or down): the place is found by arithmetic, then checked.
 *
 * @example
 * ```ts
 * import { placeOfChange } from "./page-links.ts";
 * console.assert(placeOfChange([7, 6, 5], 5) === 2 && placeOfChange([5, 9], 9) === -1);
 * ```
 */
export function placeOfChange(changes: readonly number[], change: number): number {
  const count = changes.length;
  if (count === 0) return -1;
  const first = changes[0]!;
  const i = count > 1 && changes[1]! < first ? first - change : change - first;
  return i >= 0 && i < count && changes[i] === change ? i : -1;
}

/**
 * The links of node `change` in `links` (its entry of `refs`), `null` when the page does not hold that change.
 *
 * @example
 * ```ts
 * import { linksOfChange } from "./page-links.ts";
 * const links = { changes: [5, 6], refs: [undefined, [5]] };
 * console.assert(linksOfChange(links, 6)?.[0] === 5 && linksOfChange(links, 7) === null);
 * ```
 */
export function linksOfChange(
  links: PageLinks,
  change: number,
): readonly (number | string)[] | undefined | null {
  const i = placeOfChange(links.changes, change);
  return i < 0 ? null : links.refs[i];
}
