/**
 * Replication benchmark: this library against hyperlog 4.12.1 for a fresh sync, a resync after a sync, and a first
 * contact of two copies of a third log (in-memory logs, the same nodes in both), and the peak RSS of a 1 000 000
 * node sync between two processes on SQLite files (this library only).
 *
 * Each implementation's in-memory cases run in one child process of their own (this file with `--child memory`);
 * the SQLite sync runs in two children wired stdout-to-stdin. Figures are medians of `reps` runs, except where a
 * note says otherwise.
 *
 * Run it through the driver: `npm run bench -- --only replicate`. By hand:
 * `node bench/replicate.ts --child memory --impl ours|hyperlog --reps 3` (prints the samples as JSON).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { exchangeFigures, freshFigures, rssFigures } from "./_replicate-figures.ts";
import { measureRss } from "./_replicate-rss.ts";
import {
  CHAIN,
  FIRST_CONTACT_NEW,
  LATENCY_MS,
  type MemoryResult,
  RESYNC_NEW,
  SMALL_FRESH_REPS,
  WARM_UP,
  WARM_UP_SYNCS,
} from "./_replicate-workload.ts";
import { type BenchContext, type BenchModule, type Figure, runChild, secondsSince } from "./_util.ts";

/** Nodes in the two-process SQLite sync. */
const RSS_N = 1_000_000;
/** The peak RSS target of the SQLite sync, per side, in MB. */
const RSS_TARGET_MB = 300;

const self = new URL(import.meta.url);

/** Runs the children and turns their samples into figures. */
async function run(context: BenchContext): Promise<Figure[]> {
  const memory = async (impl: "ours" | "hyperlog"): Promise<MemoryResult> => {
    const start = performance.now();
    const result = await runChild(self, [
      "--child",
      "memory",
      "--impl",
      impl,
      "--reps",
      String(context.reps),
    ]) as MemoryResult;
    context.progress(
      `replicate [${impl === "ours" ? "ours" : "hyperlog 4"}] in-memory cases done (${
        secondsSince(start).toFixed(1)
      } s)`,
    );
    return result;
  };
  const ours = await memory("ours");
  const theirs = await memory("hyperlog");
  if (ours.digest !== theirs.digest) {
    throw new Error("The two implementations built different logs (their heads differ)");
  }
  const rss = await measureRss(self, RSS_N, context.reps, context.progress);
  return [
    ...freshFigures(ours, theirs),
    ...exchangeFigures("resync", ours.resync, theirs.resync),
    ...exchangeFigures("first-contact", ours.firstContact, theirs.firstContact),
    ...rssFigures(RSS_N, rss.samples, RSS_TARGET_MB),
  ];
}

/**
 * The replication benchmark module, run by `bench/run.ts`.
 *
 * @example
 * ```ts ignore
 * import { benchmark } from "./replicate.ts";
 * const figures = await benchmark.run({ reps: 1, progress: console.error });
 * ```
 */
export const benchmark: BenchModule = {
  name: "replicate",
  title:
    "Replication: this library vs hyperlog 4.12.1 (in-memory: MemoryStorage vs memdb); SQLite files between two processes",
  notes: [
    `workload: W writer chains of ${CHAIN} unsigned nodes, each node linking to the one before it (W = n / ${CHAIN}: 100 at ` +
    "10,000, 1,000 at 100,000), values { k, v, pad: 'x'.repeat(64) }, valueEncoding json: the very same nodes and keys in " +
    "both (checked). Ours: batch() in chunks of 1000 (10 chains, linked by batch index). hyperlog 4: each chain filed under " +
    "its own writer log, add(links, value, { log: 'writer<w>' }), one add per node: its batch() looks links up among stored " +
    "nodes only and silently drops a document that links to an earlier one of the same batch.",
    "own size of a node = 32 (key) + 32 per link + its value's json bytes (~90); no framing, lengths, change numbers, " +
    "writer ids or sequence numbers.",
    `warm-up: before measuring, each implementation's child builds ${
      WARM_UP.toLocaleString("en-US")
    } nodes and syncs ` +
    `them into an empty log ${WARM_UP_SYNCS} times, and discards them all (so the 10,000-node figures are not mostly ` +
    "JIT compilation).",
    `medians: of reps runs, except ours at 10,000 nodes (${SMALL_FRESH_REPS} x reps runs of ~0.05 s each, where ` +
    "scheduling noise on a shared machine is of the same order) and hyperlog 4's fresh sync at 100,000 (one run).",
    "fresh sync: a full log into an empty one, in-process, piped both ways (ours: readable.pipeTo(writable) both ways; " +
    "hyperlog 4: r1.pipe(r2).pipe(r1)); time from the session's start until both sides are done (ours: both done promises; " +
    "hyperlog 4: 'end' on both streams). Wire bytes, both directions: ours stats.bytesSent of both sides (checked against " +
    "the pipe's count), hyperlog 4 counted in the pipe. Nodes per CPU second: the same sessions over the process's " +
    "CPU time (user + system, both sides run in it); the two implementations' children run one after the other, " +
    "so on a shared machine the wall-time ratio moves with the load between them, this one much less.",
    `resync: the 100,000-node source and the copy its first fresh sync made (so ours holds a per-peer checkpoint); each adds ` +
    `${RESYNC_NEW} nodes extending one chain, then they sync again. Run 2 x reps times (alternately without and with ` +
    `latency), each after ${RESYNC_NEW} more nodes per side, so later runs share up to ~100,100 nodes. Bytes: the median ` +
    `over all runs, less the own size of the ${2 * RESYNC_NEW} new nodes.`,
    `first contact: ours: two fresh copies of the source (each synced from it, never with each other), each adds ` +
    `${FIRST_CONTACT_NEW}, so they differ by ${2 * FIRST_CONTACT_NEW}; a new pair for every run. hyperlog 4 keeps no ` +
    "per-peer state (it compares per-writer sequence numbers every time), so its first contact runs on the resync's pair, " +
    `each side adding ${FIRST_CONTACT_NEW}.`,
    `latency: every chunk held ${LATENCY_MS} ms in each direction, in order, without limiting throughput (a Web ` +
    "TransformStream for ours, a Node Transform for hyperlog 4). Byte counts do not depend on it.",
    "one-way flights, measured on the link in the runs with latency: a chunk leaving a side is one flight later than the " +
    "latest chunk that side had received (the first chunks are flight 1); the last flight counts the one-way trips that " +
    "ran one after another. Processing time does not count, unlike in a figure derived from wall time, as long as a " +
    "side has sent its flight before the peer's next one arrives; chunks sent after that count a flight later, so " +
    "hyperlog 4's figure, with one message per writer log (~1,000 each way), varies from run to run.",
    `SQLite sync: this library only (hyperlog 4 has no SQLite backend). A child builds a ` +
    `${
      RSS_N.toLocaleString("en-US")
    }-node SqliteStorage file (chains of ${CHAIN}, batch() in chunks of 1000) once; each ` +
    "run spawns two children, the sender on that file and the receiver on a new one, wired stdout-to-stdin as hyperlog " +
    "dupsh does. Peak RSS: each child's process.resourceUsage().maxRSS; time: replicate() to done on the receiver.",
    "ratio = ours / hyperlog 4.12.1: for nodes/s above 1 is better; for bytes, round trips, flights and ms below 1 is better.",
  ],
  run,
};

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      child: { type: "string" },
      impl: { type: "string" },
      reps: { type: "string" },
      n: { type: "string" },
      file: { type: "string" },
      result: { type: "string" },
    },
  });
  const progress = (message: string): void => void process.stderr.write(`${message}\n`);
  const usage = "Usage: node bench/replicate.ts --child memory --impl ours|hyperlog --reps N\n" +
    "       node bench/replicate.ts --child rss-build --n N --file PATH\n" +
    "       node bench/replicate.ts --child rss-side --file PATH --result PATH\n" +
    "(or run the driver: node bench/run.ts --only replicate)";
  if (values.child === "memory" && (values.impl === "ours" || values.impl === "hyperlog") && Number(values.reps) >= 1) {
    const reps = Number(values.reps);
    const result = values.impl === "ours"
      ? await (await import("./_replicate-ours.ts")).measureOurs(reps, progress)
      : await (await import("./_replicate-hyperlog4.ts")).measureHyperlog4(reps, progress);
    console.log(JSON.stringify(result));
  } else if (values.child === "rss-build" && Number(values.n) > 0 && values.file !== undefined) {
    console.log(JSON.stringify(await (await import("./_replicate-rss.ts")).buildSqlite(values.file, Number(values.n))));
  } else if (values.child === "rss-side" && values.file !== undefined && values.result !== undefined) {
    await (await import("./_replicate-rss.ts")).syncSide(values.file, values.result);
  } else {
    console.error(usage);
    process.exit(2);
  }
}
