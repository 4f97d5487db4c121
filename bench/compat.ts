/**
 * Compat benchmark: hyperlog 4 code on the compat entry against the same code on hyperlog 4.12.1, both on memdb
 * (levelup 1 over memdown, what hyperlog 4's tests use), and the compat entry on memory storage: appends (one
 * `append` after the other, with callbacks), and a replication of those nodes to an empty log of the same kind
 * (hyperlog 4's protocol on both sides). Runs in the driver's process.
 *
 * @module
 */
import { createRequire } from "node:module";
import { hyperlog as compat } from "../compat/mod.ts";
import { type BenchContext, type BenchModule, type Figure, median, ratio, secondsSince } from "./_util.ts";

/** Nodes per run. */
const N = 2000;

// deno-lint-ignore no-explicit-any
type Log = any;

function append(log: Log, count: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let i = 0;
    const next = (err?: Error | null): void => {
      if (err) return reject(err);
      if (i === count) return resolve();
      log.append(`value ${i++}`, next);
    };
    next();
  });
}

function replicate(a: Log, b: Log, pump: (...streams: unknown[]) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = a.replicate();
    pump(stream, b.replicate(), stream, (err?: Error) => (err ? reject(err) : resolve()));
  });
}

/** Appends and replication, each timed `reps` times, for the three kinds of log. */
async function run(context: BenchContext): Promise<Figure[]> {
  const require = createRequire(import.meta.url);
  const original = require("hyperlog4") as (db: unknown) => Log;
  const memdb = require("memdb") as () => unknown;
  const pump = require("pump") as (...streams: unknown[]) => void;
  const kinds: Record<string, () => Log> = {
    hyperlog: () => original(memdb()),
    "compat on memdb": () => compat(memdb()),
    "compat in memory": () => compat(),
  };
  const appends = new Map<string, number[]>(Object.keys(kinds).map((k) => [k, []]));
  const syncs = new Map<string, number[]>(Object.keys(kinds).map((k) => [k, []]));
  for (let rep = 0; rep < context.reps; rep++) {
    for (const [name, make] of Object.entries(kinds)) {
      const log = make();
      let start = performance.now();
      await append(log, N);
      appends.get(name)!.push(N / secondsSince(start));
      const empty = make();
      start = performance.now();
      await replicate(log, empty, pump);
      syncs.get(name)!.push(N / secondsSince(start));
    }
    context.progress(`compat [${rep + 1}/${context.reps}]`);
  }
  const figures: Figure[] = [];
  for (const [what, samples] of [["append", appends], ["replicate", syncs]] as const) {
    const theirs = median(samples.get("hyperlog")!);
    for (const name of ["compat on memdb", "compat in memory"]) {
      const ours = median(samples.get(name)!);
      figures.push({
        bench: `compat ${what}`,
        case: `${what}, ${name}`,
        n: N,
        unit: "nodes/s",
        ours,
        hyperlog: theirs,
        ratio: ratio(ours, theirs),
      });
    }
  }
  return figures;
}

/** The compat benchmark module. */
export const benchmark: BenchModule = {
  name: "compat",
  title: `Compat entry: hyperlog 4 code on the new log vs on hyperlog 4.12.1 (${N} nodes)`,
  notes: [
    "append: log.append(value, cb) one after the other; hyperlog is hyperlog 4.12.1 on memdb.",
    "replicate: pump(a.replicate(), b.replicate(), a.replicate()) into an empty log of the same kind, hyperlog 4's protocol.",
    "compat on memdb: the log in a levelup 1 database through LevelStorage, with the hyperlog 4 index beside it.",
  ],
  run,
};
