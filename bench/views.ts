/**
 * Views benchmark: how fast a view catches up with a log of kv writes (a trivial map, and the HyperKV index), on
 * memory and on a SQLite file, and the latency of `kv.get`; side by side with hyperkv 2.1.1 (hyperlog-index) on
 * hyperlog 4.12.1 and memdb, over the same writes.
 *
 * The log holds `n` kv puts over `n / 10` keys, each linking to the previous write of its key (hyperkv's format,
 * `{ k, v }`). It is built first, untimed; the figure is the time from opening the view to `ready()`.
 * Each measurement runs in a fresh child process; each figure is the median of `reps` runs.
 *
 * Run it through the driver: `npm run bench -- --only views`. One child by hand:
 * `node bench/views.ts --child ours --storage sqlite --kind kv --n 100000`.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { HyperKV, Hyperlog, MemoryStorage, type Storage } from "../mod.ts";
import { openSqlite } from "../storage/sqlite-open.ts";
import {
  type BenchContext,
  type BenchModule,
  type Figure,
  median,
  randomInts,
  ratio,
  runChild,
  secondsSince,
} from "./_util.ts";

/** Writes in the log. */
const N = 100_000;
/** Writes in hyperlog 4's log (it writes ~5 000 nodes/s, so a smaller log keeps the run short). */
const N_HYPERKV = 20_000;
/** Writes per key. */
const PER_KEY = 10;
/** Random `kv.get` calls timed. */
const GETS = 5_000;
const SEED = 0x71e5;

/** The kv writes of the log: write `i` puts `{ n: i }` to key `key<i mod keys>`. */
function write(i: number, keys: number): { key: string; value: { n: number } } {
  return { key: `key${String(i % keys).padStart(6, "0")}`, value: { n: i } };
}

/** What a child reports: catch-up in nodes/s, and (for kv) the mean `kv.get` latency in microseconds. */
interface ViewResult {
  rate: number;
  getUs?: number;
}

/** Child: builds the log on `storage`, then times a view (trivial or kv) catching up with it. */
async function measureOurs(storageName: string, kind: string, n: number, file: string): Promise<ViewResult> {
  const storage: Storage = storageName === "sqlite" ? await openSqlite(file) : new MemoryStorage();
  const log = new Hyperlog(storage, { valueEncoding: "json" });
  const keys = n / PER_KEY;
  const last = new Map<string, string>();
  for (let i = 0; i < n; i += 1000) {
    const docs = [];
    const inBatch = new Map<string, number>();
    for (let j = i; j < Math.min(n, i + 1000); j++) {
      const { key, value } = write(j, keys);
      const previous = inBatch.get(key) ?? last.get(key);
      docs.push({ links: previous === undefined ? [] : [previous], value: { k: key, v: value } });
      inBatch.set(key, j - i);
    }
    const nodes = await log.batch(docs);
    for (const [key, index] of inBatch) last.set(key, nodes[index]!.key);
  }
  const start = performance.now();
  if (kind === "trivial") {
    let count = 0;
    const view = log.view({ name: "count", map: (nodes, store) => store.put("count", count += nodes.length) });
    await view.ready();
    const rate = n / secondsSince(start);
    if (await view.get("count") !== n) throw new Error("The trivial view missed nodes");
    await log.close();
    return { rate };
  }
  const kv = new HyperKV(log);
  await kv.ready();
  const rate = n / secondsSince(start);
  const next = randomInts(SEED);
  const picks = Array.from({ length: GETS }, () => next(keys));
  const getStart = performance.now();
  for (const k of picks) {
    const values = Object.values(await kv.get(write(k, keys).key)) as Array<{ n: number }>;
    if (values.length !== 1 || values[0]!.n % keys !== k) throw new Error(`kv.get gave ${JSON.stringify(values)}`);
  }
  const getUs = (performance.now() - getStart) * 1000 / GETS;
  await log.close();
  return { rate, getUs };
}

type Callback<R> = (err: Error | null, result: R) => void;
interface Hyperlog4 {
  ready(cb: () => void): void;
  add(links: string[] | null, value: unknown, cb: Callback<{ key: string }>): void;
}
interface HyperKV2 {
  dex: { ready(cb: () => void): void };
  get(key: string, cb: Callback<Record<string, { value: { n: number } }>>): void;
}

/** Child: the same log in hyperlog 4.12.1 on memdb, then hyperkv 2.1.1's index catching up, and its `get`. */
async function measureHyperkv(n: number): Promise<ViewResult> {
  const require = createRequire(import.meta.url);
  const hyperlog = require("hyperlog4") as (db: unknown, options: object) => Hyperlog4;
  const memdb = require("memdb") as () => unknown;
  const hyperkv = require("hyperkv") as (options: { log: Hyperlog4; db: unknown }) => HyperKV2;
  const log = hyperlog(memdb(), { valueEncoding: "json" });
  await new Promise<void>((resolve) => log.ready(resolve));
  const keys = n / PER_KEY;
  const last = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const { key, value } = write(i, keys);
    const previous = last.get(key);
    const node = await new Promise<{ key: string }>((resolve, reject) =>
      log.add(
        previous === undefined ? null : [previous],
        { k: key, v: value },
        (err, node) => err ? reject(err) : resolve(node),
      )
    );
    last.set(key, node.key);
  }
  const start = performance.now();
  const kv = hyperkv({ log, db: memdb() });
  await new Promise<void>((resolve) => kv.dex.ready(resolve));
  const rate = n / secondsSince(start);
  const next = randomInts(SEED);
  const picks = Array.from({ length: GETS }, () => next(keys));
  const getStart = performance.now();
  for (const k of picks) {
    const values = await new Promise<Record<string, { value: { n: number } }>>((resolve, reject) =>
      kv.get(write(k, keys).key, (err, values) => err ? reject(err) : resolve(values))
    );
    const list = Object.values(values);
    if (list.length !== 1 || list[0]!.value.n % keys !== k) {
      throw new Error(`hyperkv get gave ${JSON.stringify(values)}`);
    }
  }
  const getUs = (performance.now() - getStart) * 1000 / GETS;
  return { rate, getUs };
}

async function run(context: BenchContext): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-bench-views-"));
  const self = new URL(import.meta.url);
  const samples = new Map<string, number[]>();
  const add = (name: string, value: number | undefined) => {
    if (value !== undefined) samples.set(name, [...(samples.get(name) ?? []), value]);
  };
  try {
    for (let rep = 1; rep <= context.reps; rep++) {
      for (const storage of ["memory", "sqlite"]) {
        for (const kind of ["trivial", "kv"]) {
          const start = performance.now();
          const file = join(dir, `${storage}-${kind}-${rep}.db`);
          const result = await runChild(self, [
            "--child",
            "ours",
            "--storage",
            storage,
            "--kind",
            kind,
            "--n",
            String(N),
            "--file",
            file,
          ]) as ViewResult;
          rmSync(file, { force: true });
          rmSync(file + "-wal", { force: true });
          rmSync(file + "-shm", { force: true });
          add(`${storage}-${kind}`, result.rate);
          add(`${storage}-${kind}-get`, result.getUs);
          context.progress(
            `views [${rep}/${context.reps}] ${kind} view on ${storage} (${secondsSince(start).toFixed(1)} s)`,
          );
        }
      }
      const start = performance.now();
      const theirs = await runChild(self, ["--child", "hyperkv", "--n", String(N_HYPERKV)]) as ViewResult;
      add("hyperkv", theirs.rate);
      add("hyperkv-get", theirs.getUs);
      context.progress(`views [${rep}/${context.reps}] hyperkv 2.1.1 (${secondsSince(start).toFixed(1)} s)`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const of = (name: string) => median(samples.get(name) ?? []);
  const theirs = of("hyperkv");
  const theirGet = of("hyperkv-get");
  const figure = (
    bench: string,
    caseName: string,
    unit: string,
    ours: number,
    extra: Partial<Figure> = {},
  ): Figure => ({
    bench,
    case: caseName,
    n: N,
    unit,
    ours,
    hyperlog: null,
    ratio: null,
    ...extra,
  });
  const vsHyperkv = (ours: number, note = false): Partial<Figure> => ({
    hyperlog: theirs,
    ratio: ratio(ours, theirs),
    hyperlogN: N_HYPERKV,
    ...(note ? { note: "hyperkv 2.1.1 (hyperlog-index) on hyperlog 4.12.1 and memdb (in memory), same writes" } : {}),
  });
  return [
    figure("view-catchup", "trivial view (memory)", "nodes/s", of("memory-trivial"), {
      target: ">= 100,000 nodes/s",
      met: of("memory-trivial") >= 100_000,
    }),
    figure("view-catchup", "kv view (memory)", "nodes/s", of("memory-kv"), {
      target: ">= 100,000 nodes/s",
      met: of("memory-kv") >= 100_000,
      ...vsHyperkv(of("memory-kv"), true),
    }),
    figure("view-catchup", "trivial view (SQLite file)", "nodes/s", of("sqlite-trivial"), {
      target: ">= 50,000 nodes/s",
      met: of("sqlite-trivial") >= 50_000,
    }),
    figure("view-catchup", "kv view (SQLite file)", "nodes/s", of("sqlite-kv"), {
      target: ">= 50,000 nodes/s",
      met: of("sqlite-kv") >= 50_000,
      ...vsHyperkv(of("sqlite-kv")),
    }),
    figure("kv-get", "kv.get (memory)", "us/get", of("memory-kv-get"), {
      n: GETS,
      hyperlog: theirGet,
      ratio: ratio(theirGet, of("memory-kv-get")),
      hyperlogN: GETS,
      note: "hyperkv 2.1.1 get on memdb (in memory); the ratio is theirs / ours (a latency: higher is better for us)",
    }),
    figure("kv-get", "kv.get (SQLite file)", "us/get", of("sqlite-kv-get"), {
      n: GETS,
      hyperlog: theirGet,
      ratio: ratio(theirGet, of("sqlite-kv-get")),
      hyperlogN: GETS,
    }),
  ];
}

/**
 * The views benchmark module for `bench/run.ts`.
 *
 * @example
 * ```ts ignore
 * import { benchmark } from "./views.ts";
 * const figures = await benchmark.run({ reps: 1, progress: console.error });
 * ```
 */
export const benchmark: BenchModule = {
  name: "views",
  title: `Views: catch-up over ${N.toLocaleString("en")} kv writes (${PER_KEY} per key), and kv.get`,
  notes: [
    "catch-up: from opening the view to ready(), on a log built beforehand; trivial = one write per batch",
    `kv.get: mean over ${GETS} random keys after catch-up (the index read and the log read of the value)`,
  ],
  run,
};

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      child: { type: "string" },
      storage: { type: "string", default: "memory" },
      kind: { type: "string", default: "kv" },
      n: { type: "string", default: String(N) },
      file: { type: "string", default: join(tmpdir(), "hyperlog-views.db") },
    },
  });
  const n = Number(values.n);
  const result = values.child === "hyperkv"
    ? await measureHyperkv(n)
    : await measureOurs(values.storage!, values.kind!, n, values.file!);
  console.log(JSON.stringify(result));
}
