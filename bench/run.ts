/**
 * Benchmark driver: runs the benchmark modules in sequence and prints their figures as tables, or with `--json`
 * as JSON lines (one figure per line, nothing else on stdout; progress goes to stderr).
 *
 * Usage: node bench/run.ts [--only NAME[,NAME]] [--reps N] [--json] [--runtime node|deno|bun] [--quick] [--spin N]
 *
 * `--runtime deno` (or `bun`) runs this library's children of the core and SQLite benchmarks on that runtime
 * (hyperlog 4.12.1 stays on Node); the other benchmarks run on Node whatever it says.
 *
 * `--spin N` measures under a second load: N processes that spin on a core (like `node -e 'for(;;){}'`) run
 * from before the first benchmark until the last ends, and are killed then (also when the driver fails or is
 * interrupted; one left by a driver killed outright exits within a second). Compare with a run without it, just
 * before or after.
 *
 * Figures are not tests: an unmet target is reported, and the exit code stays 0.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { availableParallelism, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { benchmark as bundle } from "./bundle.ts";
import { benchmark as presence } from "./presence.ts";
import { benchmark as compat } from "./compat.ts";
import { benchmark as core } from "./core.ts";
import { benchmark as graph } from "./graph.ts";
import { benchmark as denokv } from "./denokv.ts";
import { benchmark as hash } from "./hash.ts";
import { benchmark as relay } from "./relay.ts";
import { benchmark as indexeddb } from "./indexeddb.ts";
import { benchmark as replicate } from "./replicate.ts";
import { benchmark as bounds } from "./bounds.ts";
import { benchmark as hostile } from "./hostile.ts";
import { benchmark as sqlite } from "./sqlite.ts";
import { benchmark as storm } from "./storm.ts";
import { benchmark as views } from "./views.ts";
import {
  type BenchModule,
  type Figure,
  formatNumber,
  formatRatio,
  jsonLine,
  type Runtime,
  secondsSince,
  table,
} from "./_util.ts";

/** The benchmark modules, in the order they run. */
const MODULES: readonly BenchModule[] = [
  core,
  hash,
  sqlite,
  denokv,
  replicate,
  bounds,
  hostile,
  views,
  relay,
  indexeddb,
  bundle,
  presence,
  graph,
  compat,
  storm,
];

/** Stops with a usage error. */
function usage(message: string): never {
  console.error(
    `${message}\nUsage: node bench/run.ts [--only ${
      MODULES.map((m) => m.name).join(",")
    }] [--reps N] [--json] [--runtime node|deno|bun] [--quick] [--spin N]`,
  );
  process.exit(2);
}

/** The table of one module's figures, with its notes and footnotes. */
function render(module: BenchModule, figures: readonly Figure[]): string {
  const footnotes: string[] = [];
  const rows = figures.map((f) => {
    let theirs = f.hyperlog === null ? "-" : formatNumber(f.hyperlog);
    if (f.hyperlogN !== undefined) theirs += ` (n=${formatNumber(f.hyperlogN)})`;
    if (f.note !== undefined) {
      footnotes.push(f.note);
      theirs += "*".repeat(footnotes.length);
    }
    const target = f.target === undefined ? "" : `${f.target}: ${f.met === true ? "met" : "NOT met"}`;
    return [f.case ?? f.bench, formatNumber(f.n), formatNumber(f.ours), theirs, formatRatio(f.ratio), f.unit, target];
  });
  const header = ["operation", "n", "ours", module.against ?? "hyperlog 4.12.1", "ratio", "unit", "target"];
  return [
    `== ${module.title}`,
    "",
    table([header, ...rows], "lrrrrll"),
    "",
    ...footnotes.map((note, i) => `${"*".repeat(i + 1)} ${note}`),
    ...module.notes.map((note) => `- ${note}`),
    "",
  ].join("\n");
}

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        only: { type: "string" },
        reps: { type: "string" },
        json: { type: "boolean" },
        runtime: { type: "string" },
        quick: { type: "boolean" },
        spin: { type: "string" },
      },
    });
  } catch (err) {
    return usage((err as Error).message);
  }
})();
const names = values.only?.split(",").map((s) => s.trim()).filter(Boolean);
for (const name of names ?? []) if (!MODULES.some((m) => m.name === name)) usage(`Unknown benchmark: ${name}`);
const reps = Number(values.reps ?? 3);
if (!Number.isInteger(reps) || reps < 1) usage(`--reps must be a positive integer, got ${values.reps}`);
const json = values.json === true;
const runtime = (values.runtime ?? "node") as Runtime;
if (!["node", "deno", "bun"].includes(runtime)) usage(`--runtime must be node, deno or bun, got ${values.runtime}`);

const spin = Number(values.spin ?? 0);
if (!Number.isInteger(spin) || spin < 0 || spin > 64) {
  usage(`--spin must be an integer from 0 to 64, got ${values.spin}`);
}

/** The processes of `--spin`: each spins on a core until killed. */
const spinners: ChildProcess[] = [];
/** Kills the spinners (idempotent: the exit handler calls it after the normal end too). */
function stopSpinners(): void {
  for (const child of spinners.splice(0)) child.kill("SIGKILL");
}
process.on("exit", stopSpinners);
for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  process.on(signal, () => {
    stopSpinners();
    process.exit(code);
  });
}
/** A spinner's program: it spins, and every ~10^8 turns exits if the driver is gone (killed without its handlers). */
const SPINNER = `for (let i = 0; ; i++) if ((i & 0x7ffffff) === 0 && process.ppid !== ${process.pid}) process.exit(0);`;
for (let i = 0; i < spin; i++) spinners.push(spawn(process.execPath, ["-e", SPINNER], { stdio: "ignore" }));
if (spin > 0) process.stderr.write(`spinning beside the benchmarks: pid ${spinners.map((c) => c.pid).join(", ")}\n`);

const start = performance.now();
const load = loadavg()[0]!.toFixed(2);
const context = {
  reps,
  runtime,
  quick: values.quick === true,
  progress: (message: string) => process.stderr.write(`${message}\n`),
};
for (const module of MODULES) {
  if (names !== undefined && !names.includes(module.name)) continue;
  const figures = await module.run(context);
  if (json) { for (const figure of figures) console.log(jsonLine(figure)); }
  else console.log(`\n${render(module, figures)}`);
}
const total =
  `Total wall time: ${secondsSince(start).toFixed(1)} s (${reps} repetitions per figure, Node ${process.version}${
    runtime === "node" ? "" : `, this library's core and SQLite children on ${runtime}`
  }${
    spin === 0 ? "" : `, ${spin} spinning process${spin === 1 ? "" : "es"} beside it`
  }, ${process.platform}-${process.arch}, ` +
  `${availableParallelism()} CPUs, load average ${load} at start)`;
stopSpinners();
if (json) console.error(total);
else console.log(total);
