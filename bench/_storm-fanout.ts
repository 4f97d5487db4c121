/**
 * The relay's framing of live nodes alone (issue 21, not part of `npm run bench`): `node bench/_storm-fanout.ts
 * [C] [N] [REPS] [LINKS]` makes a storm-like log of N nodes (each links LINKS of the latest 4C nodes, ~50-byte
 * values) and frames every node for C - 1 live sessions, as a relay fanning out a write storm does: per session with
 * its own link references (`LinkRefs.encode`, what the relay did before `NODES_LIVE`) and once for all of them
 * (`LiveFrames`, each session copying the bytes); each session skips the changes of its own writer (every C-th),
 * with `Ranges.has` as it was (a scan from the first range) and as it is (a binary search). Prints the CPU per delivered node of each, medians of REPS
 * alternating runs, and the ratio.
 *
 * @module
 */
import { Ranges } from "../src/checkpoint.ts";
import { LinkRefs } from "../src/link-refs.ts";
import { LiveFrames } from "../src/live-frames.ts";
import { computeKey, type StoredNode } from "../src/node.ts";

const C = Number(process.argv[2] ?? 50);
const N = Number(process.argv[3] ?? 10_000);
const REPS = Number(process.argv[4] ?? 5);
const LINKS = Number(process.argv[5] ?? 6);
/** Deliveries: each node to every session but its writer's. */
const sessions = C - 1;

/** The log: each node links `LINKS` distinct nodes among the latest 4C (the heads of concurrent writers). */
function storm(): StoredNode[] {
  const nodes: StoredNode[] = [];
  const text = new TextEncoder();
  let seed = 1;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let change = 1; change <= N; change++) {
    const writer = change % C;
    const links = new Set<string>();
    if (change > 1) links.add(nodes[change - 2]!.key);
    for (let k = 0; k < 4 * LINKS && links.size < Math.min(LINKS, change - 1); k++) {
      links.add(nodes[change - 2 - Math.floor(random() * Math.min(4 * C, change - 1))]!.key);
    }
    const value = text.encode(JSON.stringify({ c: writer, i: change, text: `entry ${change} of writer ${writer}` }));
    nodes.push({ key: computeKey([...links], value), links: [...links], value, change });
  }
  return nodes;
}

const stats = () => ({ nodesSent: 0, nodesReceived: 0, bytesSent: 0, bytesReceived: 0, roundTrips: 0 });
/** Nodes arrive a few at a time, as in a storm. */
const BATCH = 2;

/** Whether `change` is in `ranges`, scanned from the start (`Ranges.has` before this work). */
function scanned(ranges: readonly [number, number][], change: number): boolean {
  for (const [from, to] of ranges) {
    if (change < from) return false;
    if (change <= to) return true;
  }
  return false;
}

/** Before: each session (writer `s` wrote the changes `c % C === s`) skips its own, frames the rest itself. */
function perSession(nodes: readonly StoredNode[]): number {
  const refs = Array.from({ length: C }, () => new LinkRefs());
  const own = Array.from({ length: C }, () => [] as [number, number][]);
  let bytes = 0;
  for (let i = 0; i < nodes.length; i += BATCH) {
    const batch = nodes.slice(i, i + BATCH);
    for (const node of batch) {
      refs[node.change % C]!.received([node]);
      own[node.change % C]!.push([node.change, node.change]);
    }
    for (let s = 0; s < C; s++) {
      const send = batch.filter((node) => !scanned(own[s]!, node.change));
      if (send.length > 0) for (const m of refs[s]!.encode(send, 64 * 1024)) bytes += m.length;
    }
  }
  return bytes;
}

/** Now: each node framed once; each session copies, its own nodes as "yours" entries. */
function once(nodes: readonly StoredNode[]): number {
  const frames = new LiveFrames();
  const outs = Array.from({ length: C }, () => ({
    refs: new LinkRefs(),
    buffer: [],
    liveCursor: 0,
    sentBytes: 0,
    unacked: [] as [number, number][],
    own: new Ranges(),
  }));
  let bytes = 0;
  for (let i = 0; i < nodes.length; i += BATCH) {
    for (let j = i; j < Math.min(i + BATCH, nodes.length); j++) {
      const node = nodes[j]!;
      const out = outs[node.change % C]!;
      out.refs.received([node]);
      out.own.add(node.change, node.change);
      frames.follow(node);
    }
    for (const out of outs) {
      for (const m of frames.live(out, 1 << 20, out.own, 64 * 1024, stats()) ?? []) bytes += m.length;
      out.unacked.length = 0;
    }
  }
  return bytes;
}

function cpu(run: () => number): [number, number] {
  const start = process.cpuUsage();
  const bytes = run();
  const used = process.cpuUsage(start);
  return [(used.user + used.system) / (N * sessions), bytes / (N * sessions)];
}

const nodes = storm();
const links = nodes.reduce((n, node) => n + node.links.length, 0) / N;
const results = { perSession: [] as number[], once: [] as number[] };
let bytes = [0, 0];
for (let rep = 0; rep < REPS; rep++) {
  const a = cpu(() => perSession(nodes));
  const b = cpu(() => once(nodes));
  results.perSession.push(a[0]);
  results.once.push(b[0]);
  bytes = [a[1], b[1]];
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const [a, b] = [median(results.perSession), median(results.once)];
console.log(`C=${C}, ${N} nodes, ${links.toFixed(1)} links per node, ${REPS} alternating runs (medians)`);
console.log(`  before: framed per session (NODES_REFS), own changes scanned: ${a.toFixed(2)} us per delivered node, ${bytes[0]!.toFixed(1)} B`);
console.log(`  now: framed once (NODES_LIVE), binary search:                ${b.toFixed(2)} us per delivered node, ${bytes[1]!.toFixed(1)} B`);
console.log(`  ratio: ${(b / a).toFixed(2)}x`);
