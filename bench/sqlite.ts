/**
 * SQLite benchmark: this library on SqliteStorage in a file (node:sqlite, WAL, synchronous=NORMAL unless said):
 * batch insert, sequential append (NORMAL and FULL), random get, full read stream, reopen of the built log,
 * database size per node, and the size and build rate of a storm-shaped log (every node links 50 heads).
 *
 * Every measurement runs in a fresh child process (this file, run with `--child`), like the core benchmark; each
 * figure is the median of `reps` child runs. hyperlog 4.12.1 has no SQLite backend, so there is no ratio; the
 * core benchmark's MemoryStorage figures (same workload) are the in-memory reference.
 *
 * Run it through the driver: `npm run bench -- --only sqlite`. One child by hand:
 * `node bench/sqlite.ts --child log --n 100000 --file /tmp/log.db`.
 *
 * @module
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Hyperlog } from "../mod.ts";
import { openSqlite } from "../storage/sqlite-open.ts";
import type { SqliteSync } from "../storage/sqlite.ts";
import { type BenchValue, benchValue } from "./_impls.ts";
import {
  type BenchContext,
  type BenchModule,
  type Figure,
  median,
  peakRssMb,
  randomInts,
  runChild,
  secondsSince,
} from "./_util.ts";

/** Nodes in the batch-built log. */
const N = 100_000;
/** Documents per `batch` call. */
const CHUNK = 1000;
/** Sequential appends per run. */
const APPENDS = 10_000;
/** Sequential appends per run with synchronous=FULL (an fsync each). */
const APPENDS_FULL = 2_000;
/** Random `get`s per run. */
const GETS = 10_000;
/** The seed of the random keys. */
const SEED = 0x5eed;
/** Nodes in the storm-shaped log. */
const STORM_N = 100_000;
/** Writers of the storm-shaped log: each node links the last node of every writer (the heads). */
const STORM_WRITERS = 50;

/** What a `log` child measures on one fresh file. */
interface LogResult {
  /** Nodes per second added by `batch` in chunks of {@link CHUNK}. */
  batch: number;
  /** Random gets per second. */
  get: number;
  /** Nodes per second through the read stream. */
  read: number;
  /** Bytes of the database file per node, after close (the WAL folded back). */
  size: number;
  /** The child's peak RSS, in MB. */
  rss: number;
}

/**
 * Child: builds an `n`-node log in `file` with batches, gets random keys, reads it all, closes it. With
 * `exclusive`, the file is opened with `exclusive: true`.
 */
async function measureLog(file: string, n: number, exclusive = false): Promise<LogResult> {
  const log = new Hyperlog<BenchValue>(await openSqlite(file, { exclusive }), { valueEncoding: "json" });
  await log.ready();
  const keys: string[] = [];
  let start = performance.now();
  for (let i = 0; i < n; i += CHUNK) {
    const docs: { value: BenchValue }[] = [];
    for (let j = i; j < Math.min(i + CHUNK, n); j++) docs.push({ value: benchValue(j) });
    for (const node of await log.batch(docs)) keys.push(node.key);
  }
  const batch = n / secondsSince(start);

  const next = randomInts(SEED);
  const picks = Array.from({ length: GETS }, () => next(n));
  start = performance.now();
  for (const i of picks) {
    const node = await log.get(keys[i]!);
    if (node.value.v !== i) throw new Error(`A get returned value ${node.value.v} for node ${i}`);
  }
  const get = GETS / secondsSince(start);

  start = performance.now();
  let count = 0;
  for await (const _node of log.createReadStream()) count++;
  const read = count / secondsSince(start);
  if (count !== n) throw new Error(`The read stream gave ${count} nodes, expected ${n}`);
  await log.close();
  return { batch, get, read, size: statSync(file).size / n, rss: peakRssMb() };
}

/**
 * Child: a storm-shaped log, as `C` writers appending at once make it (see the storm benchmark): rounds of
 * {@link STORM_WRITERS} nodes of ~60 bytes of JSON, each linking every node of the round before (50 links). Built
 * with `batch` in chunks of 1000; reports nodes per second, the file's bytes per node after close, and its peak
 * RSS in MB.
 */
async function measureStorm(file: string, n: number): Promise<Record<string, number>> {
  const log = new Hyperlog<{ c: number; i: number; text: string }>(await openSqlite(file), { valueEncoding: "json" });
  await log.ready();
  const heads: string[] = [];
  const start = performance.now();
  for (let i = 0; i < n; i += CHUNK) {
    const docs: { value: { c: number; i: number; text: string }; links: (string | number)[] }[] = [];
    for (let j = i; j < Math.min(i + CHUNK, n); j++) {
      const round = Math.floor(j / STORM_WRITERS);
      const first = round * STORM_WRITERS;
      // The round before: in this batch (by index) or in an earlier one (by key).
      const links: (string | number)[] = [];
      if (round > 0) {
        for (let k = first - STORM_WRITERS; k < first; k++) links.push(k >= i ? k - i : heads[k % STORM_WRITERS]!);
      }
      docs.push({
        value: { c: j % STORM_WRITERS, i: round, text: `entry ${round} of writer ${j % STORM_WRITERS}` },
        links,
      });
    }
    const nodes = await log.batch(docs);
    for (let j = 0; j < nodes.length; j++) heads[(i + j) % STORM_WRITERS] = nodes[j]!.key;
  }
  const rate = n / secondsSince(start);
  await log.close();
  return { "storm-batch": rate, "storm-size": statSync(file).size / n, "storm-rss": peakRssMb() };
}

/** Child: opens the log in `file` (built by a `log` child) until it is ready, and checks its length. */
async function measureReopen(file: string, n: number): Promise<{ reopen: number }> {
  const start = performance.now();
  const log = new Hyperlog(await openSqlite(file), { valueEncoding: "json" });
  await log.ready();
  const reopen = performance.now() - start;
  if (log.length !== n) throw new Error(`Reopened a log of ${log.length} nodes, expected ${n}`);
  await log.close();
  return { reopen };
}

/** Child: `n` sequential appends on a fresh log in `file`. */
async function measureAppend(file: string, n: number, synchronous: SqliteSync): Promise<{ append: number }> {
  const log = new Hyperlog<BenchValue>(await openSqlite(file, { synchronous }), { valueEncoding: "json" });
  await log.ready();
  const start = performance.now();
  for (let i = 0; i < n; i++) await log.append(benchValue(i));
  const append = n / secondsSince(start);
  await log.close();
  return { append };
}

/** Runs every child and turns the samples into figures. */
async function run(context: BenchContext): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-bench-sqlite-"));
  const samples = new Map<string, number[]>();
  const record = (result: Record<string, number>): void => {
    for (const [name, value] of Object.entries(result)) samples.set(name, [...(samples.get(name) ?? []), value]);
  };
  const self = new URL(import.meta.url);
  const child = async (label: string, args: string[]): Promise<void> => {
    const start = performance.now();
    record(await runChild(self, args, context.runtime) as Record<string, number>);
    context.progress(`sqlite ${label} (${secondsSince(start).toFixed(1)} s)`);
  };
  try {
    for (let rep = 1; rep <= context.reps; rep++) {
      const file = join(dir, `log-${rep}.db`);
      const tag = `[${rep}/${context.reps}]`;
      await child(`${tag} batch + get + read + size, n=${N}`, ["--child", "log", "--n", String(N), "--file", file]);
      await child(`${tag} reopen, n=${N}`, ["--child", "reopen", "--n", String(N), "--file", file]);
      rmSync(file, { force: true });
      const exclusiveFile = join(dir, `exclusive-${rep}.db`);
      await child(`${tag} batch + get + read, exclusive, n=${N}`, [
        "--child",
        "log-exclusive",
        "--n",
        String(N),
        "--file",
        exclusiveFile,
      ]);
      rmSync(exclusiveFile, { force: true });
      const stormFile = join(dir, `storm-${rep}.db`);
      await child(`${tag} storm-shaped log (50 links a node), n=${STORM_N}`, [
        "--child",
        "storm",
        "--n",
        String(STORM_N),
        "--file",
        stormFile,
      ]);
      rmSync(stormFile, { force: true });
      const appendFile = join(dir, `append-${rep}.db`);
      await child(`${tag} sequential append, n=${APPENDS}`, [
        "--child",
        "append",
        "--n",
        String(APPENDS),
        "--file",
        appendFile,
      ]);
      const fullFile = join(dir, `append-full-${rep}.db`);
      await child(`${tag} sequential append (synchronous=FULL), n=${APPENDS_FULL}`, [
        "--child",
        "append-full",
        "--n",
        String(APPENDS_FULL),
        "--file",
        fullFile,
      ]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const of = (name: string): number => median(samples.get(name) ?? []);
  const figure = (bench: string, n: number, unit: string, ours: number, extra: Partial<Figure> = {}): Figure => ({
    bench,
    n,
    unit,
    ours,
    hyperlog: null,
    ratio: null,
    ...extra,
  });
  return [
    figure("sqlite-batch", N, "nodes/s", of("batch"), {
      case: "batch (SQLite file)",
      target: ">= 100,000 nodes/s",
      met: of("batch") >= 100_000,
    }),
    figure("sqlite-append", APPENDS, "nodes/s", of("append"), { case: "append (SQLite file)" }),
    figure("sqlite-append-full", APPENDS_FULL, "nodes/s", of("append-full"), {
      case: "append (synchronous=FULL)",
    }),
    figure("sqlite-get", GETS, "gets/s", of("get"), { case: `get (SQLite file, ${N} nodes)` }),
    figure("sqlite-read", N, "nodes/s", of("read"), { case: "read (SQLite file)" }),
    figure("sqlite-reopen", N, "ms", of("reopen"), {
      case: "reopen (SQLite file)",
      target: "< 100 ms",
      met: of("reopen") < 100,
    }),
    figure("sqlite-size", N, "bytes/node", of("size"), { case: "database size (SQLite file)" }),
    figure("sqlite-rss", N, "MB", of("rss"), { case: "peak RSS (batch + get + read child)" }),
    figure("sqlite-storm-batch", STORM_N, "nodes/s", of("storm-batch"), {
      case: `batch, storm-shaped (${STORM_WRITERS} links a node)`,
    }),
    figure("sqlite-storm-size", STORM_N, "bytes/node", of("storm-size"), {
      case: `database size, storm-shaped (${STORM_WRITERS} links a node)`,
    }),
    figure("sqlite-storm-rss", STORM_N, "MB", of("storm-rss"), { case: "peak RSS building it" }),
    figure("sqlite-batch-exclusive", N, "nodes/s", of("batch-exclusive"), {
      case: "batch (exclusive: true)",
      target: ">= 100,000 nodes/s",
      met: of("batch-exclusive") >= 100_000,
    }),
    figure("sqlite-get-exclusive", GETS, "gets/s", of("get-exclusive"), { case: "get (exclusive: true)" }),
    figure("sqlite-read-exclusive", N, "nodes/s", of("read-exclusive"), { case: "read (exclusive: true)" }),
  ];
}

/**
 * The SQLite benchmark module, run by `bench/run.ts`.
 *
 * @example
 * ```ts ignore
 * import { benchmark } from "./sqlite.ts";
 * const figures = await benchmark.run({ reps: 1, progress: console.error });
 * ```
 */
export const benchmark: BenchModule = {
  name: "sqlite",
  title: "SQLite: this library on SqliteStorage in a file (node:sqlite, WAL); hyperlog 4.12.1 has no SQLite backend",
  notes: [
    `batch: ${N} nodes via batch() in chunks of ${CHUNK} documents of { value } (no links), on a new file; the same documents as the core benchmark.`,
    `append: sequential append() calls, each awaited, on a new file; synchronous=NORMAL (the default), and FULL (an fsync per commit).`,
    `get: ${GETS} get(key) calls on keys drawn at random from the batch-built log. read: the whole log through createReadStream().`,
    "reopen: a new process opens the closed log (openSqlite() and ready(), which reads the id and the length); nothing in the file is scanned.",
    "exclusive: the same batch, get and read with openSqlite(path, { exclusive: true }), which keeps the file locked (no other connection) and saves system calls per statement.",
    "size: the database file after close, divided by the node count (values are ~90 bytes of JSON).",
    `storm-shaped: ${STORM_N} nodes in rounds of ${STORM_WRITERS}, each linking every node of the round before (as ${STORM_WRITERS} writers appending at once link all heads), values of ~45 bytes of JSON, via batch() in chunks of ${CHUNK}; the file size after close per node, and the child's peak RSS.`,
    "Each figure is the median of one child process per repetition. The core benchmark's MemoryStorage figures are the in-memory reference.",
  ],
  run,
};

if (import.meta.main) {
  const { values } = parseArgs({
    options: { child: { type: "string" }, n: { type: "string" }, file: { type: "string" } },
  });
  const n = Number(values.n);
  const file = values.file;
  if (!(n > 0) || file === undefined) {
    console.error(
      "Usage: node bench/sqlite.ts --child log|log-exclusive|reopen|append|append-full|storm --n N --file PATH   (or: node bench/run.ts --only sqlite)",
    );
    process.exit(2);
  }
  let result: unknown;
  if (values.child === "log") result = await measureLog(file, n);
  else if (values.child === "log-exclusive") {
    const { batch, get, read } = await measureLog(file, n, true);
    result = { "batch-exclusive": batch, "get-exclusive": get, "read-exclusive": read };
  } else if (values.child === "reopen") result = await measureReopen(file, n);
  else if (values.child === "append") result = await measureAppend(file, n, "normal");
  else if (values.child === "storm") result = await measureStorm(file, n);
  else if (values.child === "append-full") result = { "append-full": (await measureAppend(file, n, "full")).append };
  else {
    console.error(`Unknown child: ${values.child}`);
    process.exit(2);
  }
  console.log(JSON.stringify(result));
}
