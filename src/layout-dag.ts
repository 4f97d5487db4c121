/**
 * The lane layout of a DAG, as `git log --graph` draws one: one row per node, newest first, heads on top, and each
 * edge in a vertical lane of its own from the row below its child down to the row above its parent. The terminal
 * (`hyperlog log --graph`), the relay's SVG and the demo's history tab all draw from it.
 *
 * The layout is pure data: rows (a node, its column, whether it is a head) and edges (child row, parent row, lane).
 * A node's column is the leftmost lane of the edges that reach it; an edge from a node runs in the node's column for
 * its first link and in the lowest free lane for each other link. Lanes never move sideways, so no lane passes
 * through a node: while an edge runs in lane `j`, no node between its ends sits in column `j`.
 *
 * @module
 */

/**
 * What the layout needs of a node: its key and the keys it links to.
 *
 * @example
 * ```ts
 * import { type DagNode, layoutDag } from "./layout-dag.ts";
 * const nodes: DagNode[] = [{ key: "b", links: ["a"] }, { key: "a", links: [] }];
 * const layout = layoutDag(nodes);
 * console.assert(layout.rows[0]!.node.key === "b" && layout.rows[0]!.head && layout.edges.length === 1);
 * ```
 */
export interface DagNode {
  /** The node's key. */
  readonly key: string;
  /** The keys of the nodes it links to (its parents, older). */
  readonly links: readonly string[];
}

/**
 * One row of a {@link DagLayout}: one node.
 *
 * @example
 * ```ts
 * import { layoutDag } from "./layout-dag.ts";
 * const [row] = layoutDag([{ key: "a", links: [] }]).rows;
 * console.assert(row!.column === 0 && row!.head);
 * ```
 */
export interface DagRow<N extends DagNode = DagNode> {
  /** The node. */
  readonly node: N;
  /** Its lane, from 0 (leftmost). */
  readonly column: number;
  /** No node of the input links to it (in a whole log, or in its latest nodes: a head of the log). */
  readonly head: boolean;
  /** How many of its links point outside the input (older nodes left out of the window). */
  readonly outside: number;
}

/**
 * One edge of a {@link DagLayout}: from a node (row `from`) to one of its links (row `to`, below), drawn in lane
 * `lane` for every row strictly between the two.
 *
 * @example
 * ```ts
 * import { layoutDag } from "./layout-dag.ts";
 * const { edges } = layoutDag([{ key: "b", links: ["a"] }, { key: "a", links: [] }]);
 * console.assert(edges.length === 1 && edges[0]!.from === 0 && edges[0]!.to === 1 && edges[0]!.lane === 0);
 * ```
 */
export interface DagEdge {
  /** The child's row. */
  readonly from: number;
  /** The parent's row (greater than `from`). */
  readonly to: number;
  /** The lane the edge runs in between the two rows. */
  readonly lane: number;
}

/**
 * The layout of a DAG: rows top to bottom, the edges between them, and how many lanes it takes.
 *
 * @example
 * ```ts
 * import { layoutDag } from "./layout-dag.ts";
 * const layout = layoutDag([{ key: "a", links: [] }]);
 * console.assert(layout.width === 1 && layout.edges.length === 0);
 * ```
 */
export interface DagLayout<N extends DagNode = DagNode> {
  /** One row per node: heads first, then the others in the input's order. */
  readonly rows: readonly DagRow<N>[];
  /** One edge per link between two nodes of the input (a link given twice counts once). */
  readonly edges: readonly DagEdge[];
  /** The number of lanes (columns) used: every column and lane is below it. */
  readonly width: number;
}

/** A binary min-heap of free lane numbers. */
class FreeLanes {
  readonly #heap: number[] = [];

  push(lane: number): void {
    const heap = this.#heap;
    let i = heap.push(lane) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]! <= lane) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = lane;
  }

  pop(): number | undefined {
    const heap = this.#heap;
    if (heap.length === 0) return undefined;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= heap.length) break;
        const r = l + 1;
        const c = r < heap.length && heap[r]! < heap[l]! ? r : l;
        if (heap[c]! >= last) break;
        heap[i] = heap[c]!;
        i = c;
      }
      heap[i] = last;
    }
    return top;
  }
}

/**
 * Lays out a DAG in lanes, newest first, like `git log --graph`.
 *
 * `nodes` come newest first: every node before the nodes it links to (a log's nodes by descending change number,
 * as `createReadStream({ reverse: true })` gives them, are in that order). Links to keys not in `nodes` are counted
 * in the row's `outside` and not drawn. The rows put the heads (nodes that no node of the input links to) first,
 * then the others in the input's order, so the open ends of the DAG are on top. Linear in the nodes and links
 * (plus a logarithm of the width); throws a `RangeError` if a node comes after a node it links to, or a key repeats.
 *
 * @example A fork and its merge
 * ```ts
 * import { layoutDag } from "./layout-dag.ts";
 * const layout = layoutDag([
 *   { key: "merge", links: ["left", "right"] },
 *   { key: "right", links: ["root"] },
 *   { key: "left", links: ["root"] },
 *   { key: "root", links: [] },
 * ]);
 * console.assert(layout.rows.map((r) => `${r.node.key}@${r.column}`).join() === "merge@0,right@1,left@0,root@0");
 * console.assert(layout.rows[0]!.head && !layout.rows[1]!.head);
 * console.assert(layout.width === 2 && layout.edges.length === 4);
 * ```
 */
export function layoutDag<N extends DagNode>(nodes: readonly N[]): DagLayout<N> {
  const index = new Map<string, number>();
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i]!;
    if (index.has(node.key)) throw new RangeError(`Key ${node.key} appears twice: give each node once`);
    index.set(node.key, i);
  }
  // Heads: no node of the input links to them. A link to a node that came earlier breaks the order.
  const hasChild = new Uint8Array(nodes.length);
  for (let i = 0; i < nodes.length; i++) {
    for (const link of nodes[i]!.links) {
      const at = index.get(link);
      if (at === undefined) continue;
      if (at <= i) {
        throw new RangeError(
          `Node ${nodes[i]!.key} links to ${link}, which comes before it: give the nodes newest first`,
        );
      }
      hasChild[at] = 1;
    }
  }
  const order: number[] = [];
  for (let i = 0; i < nodes.length; i++) if (hasChild[i] === 0) order.push(i);
  for (let i = 0; i < nodes.length; i++) if (hasChild[i] === 1) order.push(i);

  // Lanes waiting for a node: the first one to ask becomes the node's column.
  const waiting = new Map<string, { lane: number; from: number }[]>();
  const free = new FreeLanes();
  let width = 0;
  const takeLane = (): number => free.pop() ?? width++;
  const rows: DagRow<N>[] = new Array(order.length);
  const edges: DagEdge[] = [];

  for (let r = 0; r < order.length; r++) {
    const node = nodes[order[r]!]!;
    const incoming = waiting.get(node.key);
    let column: number;
    if (incoming === undefined) column = takeLane();
    else {
      waiting.delete(node.key);
      column = incoming[0]!.lane;
      for (const edge of incoming) if (edge.lane < column) column = edge.lane;
      for (const edge of incoming) {
        edges.push({ from: edge.from, to: r, lane: edge.lane });
        if (edge.lane !== column) free.push(edge.lane);
      }
    }
    let outside = 0;
    let first = true;
    const links = node.links;
    for (let l = 0; l < links.length; l++) {
      const link = links[l]!;
      if (l > 0 && links.indexOf(link) < l) continue;
      if (!index.has(link)) {
        outside++;
        continue;
      }
      const lane = first ? column : takeLane();
      first = false;
      const list = waiting.get(link);
      if (list === undefined) waiting.set(link, [{ lane, from: r }]);
      else list.push({ lane, from: r });
    }
    if (first) free.push(column);
    rows[r] = { node, column, head: hasChild[order[r]!] === 0, outside };
  }
  return { rows, edges, width };
}
