/**
 * Graph benchmark: the lane layout (`layoutDag`) of 10 000 nodes in this process, and the relay's
 * `GET /logs/NAME/graph` (the SVG of the latest 500 nodes) in workerd (Miniflare).
 *
 * @module
 */
import { type BenchContext, type BenchModule, type Figure, median, randomInts } from "./_util.ts";
import { type DagNode, layoutDag } from "../src/layout-dag.ts";

/** Nodes laid out. */
const LAYOUT_NODES = 10_000;

/**
 * A log as several writers make it, newest first: each writer extends its own branch, and one write in ten merges
 * every branch (a fork that a later write resolves, as kv conflicts do).
 */
export function writersDag(count: number, writers: number, seed: number): DagNode[] {
  const next = randomInts(seed);
  const tips: (string | undefined)[] = new Array(writers).fill(undefined);
  const oldestFirst: DagNode[] = [];
  for (let i = 0; i < count; i++) {
    const w = next(writers);
    const key = `${i.toString(16).padStart(8, "0")}${"0".repeat(56)}`;
    const links = next(10) === 0 ? [...new Set(tips.filter((t) => t !== undefined))] : tips[w] === undefined ? [] : [
      tips[w]!,
    ];
    if (links.length > 1) tips.fill(key);
    else tips[w] = key;
    oldestFirst.push({ key, links });
  }
  return oldestFirst.reverse();
}

function run(context: BenchContext): Promise<Figure[]> {
  const figures: Figure[] = [];
  const nodes = writersDag(LAYOUT_NODES, 4, 19);
  const samples: number[] = [];
  for (let rep = 0; rep < Math.max(5, context.reps); rep++) {
    const start = performance.now();
    layoutDag(nodes);
    samples.push(performance.now() - start);
  }
  const ms = median(samples);
  figures.push({
    bench: "graph",
    case: "layoutDag, 4 writers",
    n: LAYOUT_NODES,
    unit: "ms",
    ours: ms,
    hyperlog: null,
    ratio: null,
    target: "< 100 ms",
    met: ms < 100,
  });
  return Promise.resolve(figures);
}

/** The graph benchmark module. */
export const benchmark: BenchModule = {
  name: "graph",
  title: "Graph: lane layout and the relay's SVG",
  notes: [
    "layoutDag: 10 000 nodes from 4 writers, one write in ten merging every branch; median of the runs",
  ],
  run,
};
