/**
 * SQLite benchmark: this library on SqliteStorage in a file (node:sqlite, WAL, synchronous=NORMAL unless said):
 * batch insert, sequential append (NORMAL and FULL), random get, full read stream, reopen of the built log, and
 * database size per node.
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
  return { batch, get, read, size: statSync(file).size / n };
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
      "Usage: node bench/sqlite.ts --child log|log-exclusive|reopen|append|append-full --n N --file PATH   (or: node bench/run.ts --only sqlite)",
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
  else if (values.child === "append-full") result = { "append-full": (await measureAppend(file, n, "full")).append };
  else {
    console.error(`Unknown child: ${values.child}`);
    process.exit(2);
  }
  console.log(JSON.stringify(result));
}
