/**
 * Graph benchmark: the lane layout (`layoutDag`) of 10 000 nodes in this process, and the relay's
 * `GET /logs/NAME/graph` (the SVG of the latest 500 nodes) in workerd (Miniflare).
 *
 * @module
 */
import { Hyperlog } from "../mod.ts";
import { type DagNode, layoutDag } from "../src/layout-dag.ts";
import { replicateWebSocket } from "../src/websocket.ts";
import { startRelay } from "../tests/fixtures/relay-miniflare.ts";
import { type BenchContext, type BenchModule, type Figure, median, randomInts } from "./_util.ts";

/** Nodes laid out. */
const LAYOUT_NODES = 10_000;
/** Nodes in the relay's log, and nodes in its graph. */
const RELAY_NODES = 2_000;
const GRAPH_NODES = 500;
/** Requests timed. */
const GRAPH_REQUESTS = 20;

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

/** Writes the same shape of DAG as {@link writersDag} into a real log (real keys). */
async function writeWriters(log: Hyperlog<unknown>, count: number, writers: number, seed: number): Promise<void> {
  const next = randomInts(seed);
  const tips: (string | undefined)[] = new Array(writers).fill(undefined);
  for (let i = 0; i < count; i++) {
    const w = next(writers);
    const links = next(10) === 0 ? [...new Set(tips.filter((t) => t !== undefined))] : tips[w] === undefined ? [] : [
      tips[w]!,
    ];
    const node = await log.add(links, { writer: w, i, text: `message ${i} from writer ${w}` });
    if (links.length > 1) tips.fill(node.key);
    else tips[w] = node.key;
  }
}

/** `GET /logs/NAME/graph?limit=500` against the Worker in Miniflare: median milliseconds per request. */
async function relayGraph(context: BenchContext): Promise<Figure> {
  const relay = await startRelay();
  try {
    const log = new Hyperlog({ valueEncoding: "json" });
    await writeWriters(log, RELAY_NODES, 4, 19);
    const socket = new WebSocket(`${relay.url.replace(/^http/, "ws")}/logs/bench/ws`);
    const session = replicateWebSocket(log, socket, { live: false });
    await session.done;
    context.progress(`graph: ${RELAY_NODES} nodes on the relay`);
    const url = `${relay.url}/logs/bench/graph?limit=${GRAPH_NODES}`;
    const samples: number[] = [];
    for (let i = 0; i < GRAPH_REQUESTS + 2; i++) {
      const start = performance.now();
      const response = await fetch(url);
      const svg = await response.text();
      if (!response.ok || !svg.endsWith("</svg>")) throw new Error(`GET ${url}: ${response.status}`);
      if (i >= 2) samples.push(performance.now() - start);
    }
    const ms = median(samples);
    return {
      bench: "graph",
      case: `GET /graph?limit=${GRAPH_NODES} (Miniflare)`,
      n: GRAPH_NODES,
      unit: "ms",
      ours: ms,
      hyperlog: null,
      ratio: null,
      target: "< 50 ms",
      met: ms < 50,
    };
  } finally {
    await relay.stop();
  }
}

async function run(context: BenchContext): Promise<Figure[]> {
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
  figures.push(await relayGraph(context));
  return figures;
}

/** The graph benchmark module. */
export const benchmark: BenchModule = {
  name: "graph",
  title: "Graph: lane layout and the relay's SVG",
  notes: [
    "layoutDag: 10 000 nodes from 4 writers, one write in ten merging every branch; median of the runs",
    "GET /graph: the relay worker in workerd (Miniflare) with 2 000 such nodes; the SVG of the latest 500, read whole" +
    " by a client in this process (request to last byte), median of 20 after 2 warm-up requests",
  ],
  run,
};
