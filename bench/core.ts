/**
 * Core benchmark: this library on MemoryStorage against hyperlog 4.12.1 on memdb, for sequential append, batch,
 * get, full read stream, and peak RSS.
 *
 * Every measurement runs in a fresh child process (this file, run with `--child`), so each implementation's peak
 * RSS is its own and one run's garbage does not slow the next. Each figure is the median of `reps` child runs;
 * the runs of the two implementations alternate.
 *
 * Run it through the driver: `npm run bench -- --only core`. One child by hand:
 * `node bench/core.ts --child log --impl ours --n 100000` (or `--child append`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type BenchValue, benchValue, IMPL_TITLES, type ImplName, openLog } from "./_impls.ts";
import {
  type BenchContext,
  type BenchModule,
  type Figure,
  median,
  peakRssMb,
  randomInts,
  ratio,
  runChild,
  secondsSince,
} from "./_util.ts";

/** The log sizes measured. */
const SIZES = [10_000, 100_000];
/** Documents per `batch` call. */
const CHUNK = 1000;
/** Random `get`s per run. */
const GETS = 10_000;
/** hyperlog 4 appends ~3-4k nodes/s: beyond this n its sequential append is measured at this n instead. */
const HYPERLOG_APPEND_MAX = 10_000;
/** The seed of the random keys, the same for both implementations. */
const SEED = 0x5eed;

const IMPLS: readonly ImplName[] = ["ours", "hyperlog"];

/** What an `append` child measures. */
interface AppendResult {
  /** Sequential appends per second. */
  append: number;
  /** Sequential appends per second of CPU time (see {@link cpuSecondsSince}). */
  appendCpu: number;
}

/** What a `log` child measures, in this order, on one log. */
interface LogResult {
  /** Nodes per second added by `batch` in chunks of {@link CHUNK}. */
  batch: number;
  /** The same per second of CPU time. */
  batchCpu: number;
  /** Random gets per second. */
  get: number;
  /** The same per second of CPU time. */
  getCpu: number;
  /** Nodes per second through the read stream. */
  read: number;
  /** The same per second of CPU time. */
  readCpu: number;
  /** The child's peak RSS in MB. */
  rss: number;
}

/**
 * The CPU time this process used since `start` (a `process.cpuUsage()`), in seconds: user and system time of all
 * its threads, the garbage collector's included. On a shared machine it moves far less than the wall clock, since
 * time spent waiting for a core is not counted; a rate per CPU-second is thus the figure to compare across runs
 * whose load differs (it is lower than the wall-clock rate on an idle machine, where the collector's threads run
 * beside the main one).
 */
function cpuSecondsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

/** Child: `n` sequential appends, each awaited before the next, on a fresh log. */
async function measureAppend(impl: ImplName, n: number): Promise<AppendResult> {
  const log = await openLog(impl);
  const start = performance.now();
  const cpu = process.cpuUsage();
  for (let i = 0; i < n; i++) await log.append(benchValue(i));
  return { append: n / secondsSince(start), appendCpu: n / cpuSecondsSince(cpu) };
}

/** Child: builds an `n`-node log with batches, gets random keys from it, reads it all, and reports peak RSS. */
async function measureLog(impl: ImplName, n: number): Promise<LogResult> {
  const log = await openLog(impl);
  const keys: string[] = [];
  let start = performance.now();
  let cpu = process.cpuUsage();
  for (let i = 0; i < n; i += CHUNK) {
    const values: BenchValue[] = [];
    for (let j = i; j < Math.min(i + CHUNK, n); j++) values.push(benchValue(j));
    for (const key of await log.batch(values)) keys.push(key);
  }
  const batch = n / secondsSince(start);
  const batchCpu = n / cpuSecondsSince(cpu);

  const next = randomInts(SEED);
  const picks = Array.from({ length: GETS }, () => next(n));
  start = performance.now();
  cpu = process.cpuUsage();
  for (const i of picks) {
    const value = await log.get(keys[i]!);
    if (value.v !== i) throw new Error(`${impl}: get returned value ${value.v} for node ${i}`);
  }
  const get = GETS / secondsSince(start);
  const getCpu = GETS / cpuSecondsSince(cpu);

  // Node loads its web streams on the first read of the `ReadableStream` global (2-4 ms here, once per process):
  // loaded before the clock starts, so that the figure is the read stream's, not a one-time load of the runtime's.
  if (typeof ReadableStream !== "function") throw new Error("This runtime has no ReadableStream");
  // Node also makes its "Releasing reader" error on the first `releaseLock()` of a process (1.5-6 ms here: it
  // builds a vm context to strip the error's stack), which every full read ends with, ours and the runtime's own
  // async iterator alike: made before the clock starts too.
  new ReadableStream().getReader().releaseLock();
  start = performance.now();
  cpu = process.cpuUsage();
  const count = await log.readAll();
  const read = count / secondsSince(start);
  const readCpu = count / cpuSecondsSince(cpu);
  if (count !== n) throw new Error(`${impl}: the read stream gave ${count} nodes, expected ${n}`);
  return { batch, batchCpu, get, getCpu, read, readCpu, rss: peakRssMb() };
}

/** One child run to do. */
interface Job {
  kind: "append" | "log";
  impl: ImplName;
  n: number;
}

/** The jobs of a run: per size, per repetition, the two implementations alternating; duplicates dropped. */
function plan(reps: number): Job[] {
  const jobs: Job[] = [];
  const planned = new Map<string, number>();
  const add = (job: Job): void => {
    const id = `${job.kind}/${job.impl}/${job.n}`;
    const count = planned.get(id) ?? 0;
    if (count >= reps) return;
    planned.set(id, count + 1);
    jobs.push(job);
  };
  for (const n of SIZES) {
    for (let rep = 0; rep < reps; rep++) {
      for (const impl of IMPLS) {
        add({ kind: "append", impl, n: impl === "hyperlog" ? Math.min(n, HYPERLOG_APPEND_MAX) : n });
        add({ kind: "log", impl, n });
      }
    }
  }
  return jobs;
}

/** The target of a figure, if it has one. */
function target(bench: string, ours: number, r: number | null): Pick<Figure, "target" | "met"> {
  if (bench === "append") return { target: ">= 10x hyperlog", met: r !== null && r >= 10 };
  if (bench === "batch") return { target: ">= 300,000 nodes/s", met: ours >= 300_000 };
  if (bench === "read") return { target: ">= 1,000,000 nodes/s", met: ours >= 1_000_000 };
  return {};
}

/** Runs every child and turns the samples into figures. */
async function run(context: BenchContext): Promise<Figure[]> {
  const samples = new Map<string, number[]>();
  const record = (name: string, impl: ImplName, n: number, value: number): void => {
    const id = `${name}/${impl}/${n}`;
    samples.set(id, [...(samples.get(id) ?? []), value]);
  };
  const jobs = plan(context.reps);
  const file = new URL(import.meta.url);
  for (const [index, job] of jobs.entries()) {
    const start = performance.now();
    const runtime = job.impl === "ours" ? context.runtime : "node";
    const result = await runChild(file, ["--child", job.kind, "--impl", job.impl, "--n", String(job.n)], runtime);
    for (const [name, value] of Object.entries(result as Record<string, number>)) record(name, job.impl, job.n, value);
    const what = job.kind === "append" ? "sequential append" : "batch + get + read + rss";
    context.progress(
      `core [${index + 1}/${jobs.length}] ${IMPL_TITLES[job.impl]}, n=${job.n}: ${what} (${
        secondsSince(start).toFixed(1)
      } s)`,
    );
  }

  const of = (name: string, impl: ImplName, n: number): number => median(samples.get(`${name}/${impl}/${n}`) ?? []);
  const figures: Figure[] = [];
  for (const n of SIZES) {
    const rows = [
      ["append", "nodes/s"],
      ["appendCpu", "nodes/CPU-s"],
      ["batch", "nodes/s"],
      ["batchCpu", "nodes/CPU-s"],
      ["get", "gets/s"],
      ["getCpu", "gets/CPU-s"],
      ["read", "nodes/s"],
      ["readCpu", "nodes/CPU-s"],
      ["rss", "MB"],
    ] as const;
    for (const [bench, unit] of rows) {
      const theirN = bench.startsWith("append") ? Math.min(n, HYPERLOG_APPEND_MAX) : n;
      const ours = of(bench, "ours", n);
      const hyperlog = of(bench, "hyperlog", theirN);
      const r = ratio(ours, hyperlog);
      const figure: Figure = { bench, n, unit, ours, hyperlog, ratio: r, ...target(bench, ours, r) };
      if (theirN !== n) figure.hyperlogN = theirN;
      if (theirN !== n && bench === "append") {
        figure.note =
          `hyperlog 4.12.1's sequential append is measured at n=${theirN}, not n=${n}: at its ~3-4k nodes/s, ` +
          `n=${n} would take about ${
            Math.round(n / 3500)
          } s per repetition. The ratio compares ours at n=${n} with it; ` +
          `hyperlog's rate rises a little with n as its JIT warms up, so the ratio may overstate ours somewhat.`;
      }
      figures.push(figure);
    }
  }
  return figures;
}

/** The core benchmark module. */
export const benchmark: BenchModule = {
  name: "core",
  title: "Core: this library (MemoryStorage) vs hyperlog 4.12.1 (memdb)",
  notes: [
    "append: n sequential append() calls, each awaited before the next, on a fresh log (one head throughout).",
    `batch: n nodes via batch() in chunks of ${CHUNK} documents; each document is { value } with no links (so every node is a head); same docs for both.`,
    `get: ${GETS} get(key) calls, awaited one by one, on keys drawn at random (same seed for both) from the batch-built log.`,
    "read: the whole batch-built log through createReadStream(): ours with for await over the ReadableStream, hyperlog 4's Node objectMode stream with 'data' events. The ReadableStream global is read before the clock starts: Node loads web streams on its first use (2-4 ms once per process, a third of a 10 000-node read).",
    "appendCpu, batchCpu, getCpu, readCpu: the same per second of CPU time (user + system, all threads: the garbage collector's count): steadier than the wall clock on a shared machine, since waiting for a core is not counted.",
    "rss: peak RSS (process.resourceUsage().maxRSS) of the child process that ran batch + get + read at n; each implementation runs in its own processes.",
    "values: { k: `key${i}`, v: i, pad: 'x'.repeat(64) } with valueEncoding 'json'. Figures are medians of one child process per repetition.",
    "ratio = ours / hyperlog 4.12.1: above 1 means ours is faster; for rss (MB), below 1 means ours uses less memory.",
  ],
  run,
};

if (import.meta.main) {
  const { values } = parseArgs({
    options: { child: { type: "string" }, impl: { type: "string" }, n: { type: "string" } },
  });
  const impl = values.impl;
  const n = Number(values.n);
  if ((values.child !== "append" && values.child !== "log") || (impl !== "ours" && impl !== "hyperlog") || !(n > 0)) {
    console.error(
      "Usage: node bench/core.ts --child append|log --impl ours|hyperlog --n N   (or run the driver: node bench/run.ts)",
    );
    process.exit(2);
  }
  const result = values.child === "append" ? await measureAppend(impl, n) : await measureLog(impl, n);
  console.log(JSON.stringify(result));
}
