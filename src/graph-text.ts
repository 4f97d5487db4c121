/**
 * A {@link DagLayout} as text, the way `git log --graph --oneline` prints one: a `*` per node, `|` for the lanes
 * that pass, `\` where a node's edge leaves for a new lane and `/` where a lane joins a node. Used by
 * `hyperlog log --graph`; runtime-agnostic.
 *
 * @module
 */
import type { DagLayout, DagNode, DagRow } from "./layout-dag.ts";

/**
 * Options of {@link graphLines}.
 *
 * @example
 * ```ts
 * import { layoutDag } from "./layout-dag.ts";
 * import { graphLines, type GraphTextOptions } from "./graph-text.ts";
 * const layout = layoutDag([{ key: "b", links: ["a"] }, { key: "a", links: [] }]);
 * const plain: GraphTextOptions = { graph: false };
 * console.assert(graphLines(layout, (row) => row.node.key, plain).join() === "b,a");
 * const drawn: GraphTextOptions = { graph: true, color: false };
 * console.assert(graphLines(layout, (row) => row.node.key, drawn).join("\n") === "* b\n* a");
 * ```
 */
export interface GraphTextOptions {
  /** Draw the lanes (default true); without, one label per line. */
  graph?: boolean;
  /** Colour the lanes with ANSI escapes (default false). */
  color?: boolean;
}

const LANE_COLORS = [31, 32, 33, 34, 35, 36];

/**
 * A one-line preview of a value: its JSON, cut to `max` characters with an ellipsis. JSON escapes control
 * characters, so a value cannot move a terminal's cursor or change its colours.
 *
 * @example
 * ```ts
 * import { previewValue } from "./graph-text.ts";
 * console.assert(previewValue("hi") === '"hi"');
 * console.assert(previewValue("\u001b[31mred") === '"\\u001b[31mred"');
 * console.assert(previewValue("x".repeat(100), 10) === '"xxxxxxxx…');
 * ```
 */
export function previewValue(value: unknown, max = 60): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  // Escape what JSON leaves: line and paragraph separators and the C1 controls.
  text = text.replace(/[\u0080-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  const chars = Array.from(text);
  return chars.length <= max ? text : chars.slice(0, max - 1).join("") + "…";
}

/**
 * The lines of a graph: each row's label after its lanes, and the connecting lines between rows.
 *
 * @example A fork merged
 * ```ts
 * import { layoutDag } from "./layout-dag.ts";
 * import { graphLines } from "./graph-text.ts";
 * const layout = layoutDag([
 *   { key: "m", links: ["a", "b"] },
 *   { key: "b", links: ["r"] },
 *   { key: "a", links: ["r"] },
 *   { key: "r", links: [] },
 * ]);
 * const text = graphLines(layout, (row) => row.node.key).join("\n");
 * console.assert(text === ["*   m", "|\\", "| * b", "* | a", "|/", "* r"].join("\n"), text);
 * ```
 */
export function graphLines<N extends DagNode>(
  layout: DagLayout<N>,
  label: (row: DagRow<N>, index: number) => string,
  options: GraphTextOptions = {},
): string[] {
  const { rows, edges } = layout;
  if (options.graph === false) return rows.map((row, i) => label(row, i));
  const color = options.color === true;
  const from: number[][] = rows.map(() => []);
  const to: number[][] = rows.map(() => []);
  for (const edge of edges) {
    from[edge.from]!.push(edge.lane);
    to[edge.to]!.push(edge.lane);
  }
  // active[lane]: edges running in the lane between the rows (one at most, by the layout's rules).
  const active = new Uint8Array(layout.width);
  const out: string[] = [];
  let cells: string[] = [];
  let lanes: number[] = [];
  const reset = () => {
    cells = [];
    lanes = [];
  };
  const put = (at: number, char: string, lane: number) => {
    while (cells.length <= at) {
      cells.push(" ");
      lanes.push(-1);
    }
    cells[at] = char;
    lanes[at] = lane;
  };
  const fill = (start: number, end: number, lane: number) => {
    for (let at = start; at <= end; at++) if ((cells[at] ?? " ") === " ") put(at, "-", lane);
  };
  const render = (pad: number) => {
    while (cells.length < pad) {
      cells.push(" ");
      lanes.push(-1);
    }
    let text = "";
    for (let i = 0; i < cells.length; i++) {
      const char = cells[i]!;
      text += color && char !== " " && char !== "*" ? `\x1b[${LANE_COLORS[lanes[i]! % 6]}m${char}\x1b[0m` : char;
    }
    return pad === 0 ? text.trimEnd() : text;
  };
  const passing = (skip: (lane: number) => boolean) => {
    for (let lane = 0; lane < active.length; lane++) if (active[lane] === 1 && !skip(lane)) put(2 * lane, "|", lane);
  };
  for (let r = 0; r < rows.length; r++) {
    const column = rows[r]!.column;
    const arriving = to[r]!;
    for (const lane of arriving) active[lane] = 0;
    // Lanes that join the node from the right (the node's column is the leftmost of them).
    if (arriving.some((lane) => lane !== column)) {
      reset();
      passing(() => false);
      put(2 * column, "|", column);
      for (const lane of arriving) {
        if (lane === column) continue;
        fill(2 * column + 1, 2 * lane - 2, lane);
        put(2 * lane - 1, "/", lane);
      }
      out.push(render(0));
    }
    reset();
    passing(() => false);
    put(2 * column, "*", column);
    let widest = 2 * column + 2;
    for (let lane = active.length - 1; lane >= 0; lane--) {
      if (active[lane] === 1 || from[r]!.includes(lane)) {
        widest = Math.max(widest, 2 * lane + 2);
        break;
      }
    }
    out.push(render(widest) + label(rows[r]!, r));
    const leaving = from[r]!;
    if (leaving.some((lane) => lane !== column)) {
      reset();
      passing(() => false);
      if (leaving.includes(column)) put(2 * column, "|", column);
      for (const lane of leaving) {
        if (lane > column) {
          fill(2 * column + 1, 2 * lane - 2, lane);
          put(2 * lane - 1, "\\", lane);
        } else if (lane < column) {
          fill(2 * lane + 2, 2 * column - 1, lane);
          put(2 * lane + 1, "/", lane);
        }
      }
      out.push(render(0));
    }
    for (const lane of leaving) active[lane] = 1;
  }
  return out;
}
