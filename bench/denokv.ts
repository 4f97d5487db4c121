/**
 * Deno KV benchmark: this library on DenoKvStorage in a Deno KV file, beside SqliteStorage in a file, both under
 * Deno in the same run: batch insert, sequential append, random get, full read stream, reopen of the built log.
 *
 * Every measurement runs in a fresh Deno child process (this file, run with `--child`); each figure is the median
 * of `reps` child runs. hyperlog 4.12.1 has no counterpart, so there is no ratio; the note gives Deno KV / SQLite.
 *
 * Run it through the driver: `npm run bench -- --only denokv`. One child by hand:
 * `node_modules/.bin/deno run -A --unstable-kv bench/denokv.ts --child log --backend kv --n 100000 --file /tmp/l.kv`.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Hyperlog } from "../mod.ts";
import { DenoKvStorage } from "../storage/deno-kv.ts";
import { openSqlite } from "../storage/sqlite-open.ts";
import type { Storage } from "../src/storage.ts";
import { type BenchValue, benchValue } from "./_impls.ts";
import { type BenchContext, type BenchModule, type Figure, median, randomInts, secondsSince } from "./_util.ts";

/** Nodes in the batch-built log. */
const N = 100_000;
/** Documents per `batch` call. */
const CHUNK = 1000;
/** Sequential appends per run. */
const APPENDS = 3_000;
/** Random `get`s per run. */
const GETS = 10_000;
/** The seed of the random keys. */
const SEED = 0x5eed;

type Backend = "kv" | "sqlite";
const TITLE: Record<Backend, string> = { kv: "Deno KV file", sqlite: "SQLite file, Deno" };

function open(backend: Backend, file: string): Promise<Storage> {
  return backend === "kv" ? DenoKvStorage.open(file) : openSqlite(file);
}

/** Child: builds an `n`-node log in `file` with batches, gets random keys, reads it all, closes it. */
async function measureLog(backend: Backend, file: string, n: number): Promise<Record<string, number>> {
  const log = new Hyperlog<BenchValue>(await open(backend, file), { valueEncoding: "json" });
  await log.ready();
  const keys: string[] = [];
  let start = performance.now();
  for (let i = 0; i < n; i += CHUNK) {
    const docs: { value: BenchValue }[] = [];
    for (let j = i; j < Math.min(i + CHUNK, n); j++) docs.push({ value: benchValue(j) });
    for (const node of await log.batch(docs)) keys.push(node.key);
  }
  const batch = n / secondsSince(start);
  await log.close();

  // Gets and reads on a freshly opened log, so no node is in memory from the batches.
  const again = new Hyperlog<BenchValue>(await open(backend, file), { valueEncoding: "json" });
  await again.ready();
  const next = randomInts(SEED);
  const picks = Array.from({ length: GETS }, () => next(n));
  start = performance.now();
  for (const i of picks) {
    const node = await again.get(keys[i]!);
    if (node.value.v !== i) throw new Error(`A get returned value ${node.value.v} for node ${i}`);
  }
  const get = GETS / secondsSince(start);

  start = performance.now();
  let count = 0;
  for await (const _node of again.createReadStream()) count++;
  const read = count / secondsSince(start);
  if (count !== n) throw new Error(`The read stream gave ${count} nodes, expected ${n}`);
  await again.close();
  return { [`${backend}-batch`]: batch, [`${backend}-get`]: get, [`${backend}-read`]: read };
}

/** Child: opens the log in `file` (built by a `log` child) until it is ready, and checks its length. */
async function measureReopen(backend: Backend, file: string, n: number): Promise<Record<string, number>> {
  const start = performance.now();
  const log = new Hyperlog(await open(backend, file), { valueEncoding: "json" });
  await log.ready();
  const reopen = performance.now() - start;
  if (log.length !== n) throw new Error(`Reopened a log of ${log.length} nodes, expected ${n}`);
  await log.close();
  return { [`${backend}-reopen`]: reopen };
}

/** Child: `n` sequential appends on a fresh log in `file`. */
async function measureAppend(backend: Backend, file: string, n: number): Promise<Record<string, number>> {
  const log = new Hyperlog<BenchValue>(await open(backend, file), { valueEncoding: "json" });
  await log.ready();
  const start = performance.now();
  for (let i = 0; i < n; i++) await log.append(benchValue(i));
  const append = n / secondsSince(start);
  await log.close();
  return { [`${backend}-append`]: append };
}

/** Runs this file as a Deno child with `args`; resolves with the JSON it prints last. */
function runDenoChild(args: readonly string[]): Promise<Record<string, number>> {
  const deno = fileURLToPath(new URL("../node_modules/.bin/deno", import.meta.url));
  const self = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const child = spawn(deno, ["run", "-A", "--unstable-kv", self, ...args], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code !== 0) return reject(new Error(`Benchmark child "${args.join(" ")}" failed (${signal ?? code})`));
      try {
        resolve(JSON.parse(out.trim().split("\n").pop() ?? ""));
      } catch {
        reject(new Error(`Benchmark child "${args.join(" ")}" printed no JSON result: ${out.slice(-200)}`));
      }
    });
  });
}

/** Runs every child and turns the samples into figures. */
async function run(context: BenchContext): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-bench-denokv-"));
  const samples = new Map<string, number[]>();
  const child = async (label: string, args: string[]): Promise<void> => {
    const start = performance.now();
    for (const [name, value] of Object.entries(await runDenoChild(args))) {
      samples.set(name, [...(samples.get(name) ?? []), value]);
    }
    context.progress(`denokv ${label} (${secondsSince(start).toFixed(1)} s)`);
  };
  try {
    for (let rep = 1; rep <= context.reps; rep++) {
      for (const backend of ["kv", "sqlite"] as const) {
        const ext = backend === "kv" ? "kv" : "db";
        const tag = `[${rep}/${context.reps}] ${TITLE[backend]}:`;
        const file = join(dir, `log-${rep}.${ext}`);
        const common = ["--backend", backend, "--file", file];
        await child(`${tag} batch + get + read, n=${N}`, ["--child", "log", "--n", String(N), ...common]);
        await child(`${tag} reopen, n=${N}`, ["--child", "reopen", "--n", String(N), ...common]);
        const appendFile = join(dir, `append-${rep}.${ext}`);
        await child(`${tag} sequential append, n=${APPENDS}`, [
          "--child",
          "append",
          "--n",
          String(APPENDS),
          "--backend",
          backend,
          "--file",
          appendFile,
        ]);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const of = (name: string): number => median(samples.get(name) ?? []);
  const figures: Figure[] = [];
  const figure = (bench: string, n: number, unit: string, extra: Partial<Figure> = {}): void => {
    for (const backend of ["kv", "sqlite"] as const) {
      const ours = of(`${backend}-${bench}`);
      const kvTargets = backend === "kv" ? extra : {};
      const met = bench === "batch" ? ours >= 30_000 : bench === "reopen" ? ours < 100 : undefined;
      figures.push({
        bench: `denokv-${backend}-${bench}`,
        case: `${bench} (${TITLE[backend]})`,
        n,
        unit,
        ours,
        hyperlog: null,
        ratio: null,
        ...kvTargets,
        ...(backend === "kv" && met !== undefined ? { met } : {}),
      });
    }
  };
  figure("batch", N, "nodes/s", { target: ">= 30,000 nodes/s" });
  figure("append", APPENDS, "nodes/s");
  figure("get", GETS, "gets/s");
  figure("read", N, "nodes/s");
  figure("reopen", N, "ms", { target: "< 100 ms" });
  return figures;
}

/**
 * The Deno KV benchmark module, run by `bench/run.ts`.
 *
 * @example
 * ```ts ignore
 * import { benchmark } from "./denokv.ts";
 * const figures = await benchmark.run({ reps: 1, progress: console.error });
 * ```
 */
export const benchmark: BenchModule = {
  name: "denokv",
  title: "Deno KV: this library on DenoKvStorage in a Deno KV file, beside SqliteStorage in a file, both on Deno",
  notes: [
    `batch: ${N} nodes via batch() in chunks of ${CHUNK} documents of { value } (no links), on a new file; the same documents as the core benchmark. A batch of 1000 such nodes is one atomic operation of Deno KV (about six keys: chunks, their key lists, heads, tip); past ~780 KiB a commit goes through a journal.`,
    `append: ${APPENDS} sequential append() calls, each awaited, on a new file (one atomic operation each on Deno KV).`,
    `get: ${GETS} get(key) calls on keys drawn at random, on the log reopened (nothing in memory). read: the whole log through createReadStream().`,
    "reopen: a new Deno process opens the closed log (open() and ready(), which reads the id and the length).",
    "Each figure is the median of one Deno child process per repetition, on a machine shared with other jobs (figures are noisy).",
  ],
  run,
};

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      child: { type: "string" },
      n: { type: "string" },
      file: { type: "string" },
      backend: { type: "string" },
    },
  });
  const n = Number(values.n);
  const { file, backend } = values;
  if (!(n > 0) || file === undefined || (backend !== "kv" && backend !== "sqlite")) {
    console.error(
      "Usage: deno run -A --unstable-kv bench/denokv.ts --child log|reopen|append --backend kv|sqlite --n N " +
        "--file PATH   (or: npm run bench -- --only denokv)",
    );
    process.exit(2);
  }
  let result: unknown;
  if (values.child === "log") result = await measureLog(backend, file, n);
  else if (values.child === "reopen") result = await measureReopen(backend, file, n);
  else if (values.child === "append") result = await measureAppend(backend, file, n);
  else {
    console.error(`Unknown child: ${values.child}`);
    process.exit(2);
  }
  console.log(JSON.stringify(result));
}
