/**
 * Shared helpers of the benchmarks: figures, medians, formatting, child processes.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";

/** One reported figure: the median of our implementation against hyperlog 4.12.1's. */
export interface Figure {
  /** The benchmark, e.g. "append" (the `bench` key of the JSON line). */
  bench: string;
  /** A variant of the benchmark, when it has several (e.g. the hash implementation). */
  case?: string;
  /** The workload size our figure was measured at. */
  n: number;
  /** The unit of `ours` and `hyperlog`, e.g. "nodes/s" or "MB". */
  unit: string;
  /** Our median. */
  ours: number;
  /** hyperlog 4.12.1's median, or null when it has no counterpart. */
  hyperlog: number | null;
  /** `ours / hyperlog`, or null. */
  ratio: number | null;
  /** The workload size hyperlog's figure was measured at, when smaller than `n` (to keep the run short). */
  hyperlogN?: number;
  /** The target, in words, e.g. ">= 300000 nodes/s". */
  target?: string;
  /** Whether the target was met. */
  met?: boolean;
  /** A note for the table's footnotes. */
  note?: string;
}

/** A runtime the children that run this library may run on. */
export type Runtime = "node" | "deno" | "bun";

/** What the driver hands to every benchmark module. */
export interface BenchContext {
  /** Repetitions per figure (the figure is their median). */
  reps: number;
  /** The runtime of the children that run this library (`--runtime`; hyperlog 4.12.1 always runs on Node). */
  runtime?: Runtime;
  /** A smaller size, as a smoke test (`--quick`; only the modules that say so honour it). */
  quick?: boolean;
  /** Prints a progress line (to stderr, so stdout stays clean for `--json`). */
  progress(message: string): void;
}

/** A benchmark module that the driver `bench/run.ts` runs. */
export interface BenchModule {
  /** Its name, for `--only`. */
  name: string;
  /** A one-line title for the table. */
  title: string;
  /** Lines printed under the table: what exactly was measured. */
  notes: readonly string[];
  /** What the figures are compared with, for the table's header (default: hyperlog 4.12.1). */
  against?: string;
  /** Runs the benchmark and resolves with its figures. */
  run(context: BenchContext): Promise<Figure[]>;
}

/**
 * The median of the samples (the mean of the middle two for an even count).
 *
 * @example
 * ```ts
 * import { median } from "./_util.ts";
 * console.assert(median([3, 1, 2]) === 2);
 * ```
 */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) throw new RangeError("median of no samples");
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * `ours / theirs`, or null when there is no `theirs`.
 *
 * @example
 * ```ts
 * import { ratio } from "./_util.ts";
 * console.assert(ratio(10, 4) === 2.5 && ratio(1, null) === null);
 * ```
 */
export function ratio(ours: number, theirs: number | null): number | null {
  return theirs === null || theirs === 0 ? null : ours / theirs;
}

/**
 * Formats a figure for the table: thousands separators, one decimal below 100.
 *
 * @example
 * ```ts
 * import { formatNumber } from "./_util.ts";
 * console.assert(formatNumber(1234567.8) === "1,234,568" && formatNumber(42.25) === "42.3");
 * ```
 */
export function formatNumber(value: number): string {
  const digits = Math.abs(value) < 100 ? 1 : 0;
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/**
 * Formats a ratio as e.g. `12.3x`, or `-` for none.
 *
 * @example
 * ```ts
 * import { formatRatio } from "./_util.ts";
 * console.assert(formatRatio(12.345) === "12.35x" && formatRatio(null) === "-");
 * ```
 */
export function formatRatio(value: number | null): string {
  return value === null ? "-" : `${value.toFixed(2)}x`;
}

/**
 * A figure as one JSON line: the keys `bench`, `n`, `unit`, `ours`, `hyperlog`, `ratio` always come first and in
 * that order, then the optional ones. Rates are rounded to integers, smaller figures to 3 decimals.
 *
 * @example
 * ```ts
 * import { jsonLine } from "./_util.ts";
 * const line = jsonLine({ bench: "read", n: 10, unit: "nodes/s", ours: 2.5, hyperlog: 1, ratio: 2.5 });
 * console.assert(line === '{"bench":"read","n":10,"unit":"nodes/s","ours":2.5,"hyperlog":1,"ratio":2.5}');
 * ```
 */
export function jsonLine(figure: Figure): string {
  const round = (
    x: number | null,
  ): number | null => (x === null ? null : Math.abs(x) >= 1000 ? Math.round(x) : Math.round(x * 1000) / 1000);
  const { bench, n, unit, ours, hyperlog, ratio: r, ...rest } = figure;
  const head = figure.case === undefined ? { bench } : { bench, case: figure.case };
  const { case: _case, ...tail } = rest;
  return JSON.stringify({ ...head, n, unit, ours: round(ours), hyperlog: round(hyperlog), ratio: round(r), ...tail });
}

/**
 * Renders rows as a plain-text table; the first row is the header. `align` has one letter per column, `l` or
 * `r` (missing letters mean `l`).
 *
 * @example
 * ```ts
 * import { table } from "./_util.ts";
 * console.assert(table([["a", "b"], ["xx", "1"]], "lr").split("\n").length === 3);
 * ```
 */
export function table(rows: readonly (readonly string[])[], align = ""): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const line = (row: readonly string[]): string =>
    row.map((cell, i) => (align[i] === "r" ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join("  ").trimEnd();
  const [header, ...body] = rows;
  if (header === undefined) return "";
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

/**
 * Seconds elapsed since `start` (a `performance.now()` reading).
 *
 * @example
 * ```ts
 * import { secondsSince } from "./_util.ts";
 * console.assert(secondsSince(performance.now()) >= 0);
 * ```
 */
export function secondsSince(start: number): number {
  return (performance.now() - start) / 1000;
}

/**
 * A small seeded pseudo-random generator (mulberry32): the same seed gives the same sequence, so both
 * implementations get the same random keys. Returns integers in `[0, bound)`.
 *
 * @example
 * ```ts
 * import { randomInts } from "./_util.ts";
 * const next = randomInts(1);
 * console.assert(next(10) === randomInts(1)(10));
 * ```
 */
export function randomInts(seed: number): (bound: number) => number {
  let state = seed >>> 0;
  return (bound) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * bound);
  };
}

/**
 * The peak resident set size of this process so far, in MB (from `process.resourceUsage().maxRSS`, in KB).
 *
 * @example
 * ```ts
 * import { peakRssMb } from "./_util.ts";
 * console.assert(peakRssMb() > 0);
 * ```
 */
export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/**
 * Runs `file` in a fresh process with `args` (Node, this runtime's own executable, unless `runtime` says Deno or
 * Bun, taken from `node_modules/.bin`), and resolves with the JSON value of the last line the child prints to stdout. The child's stderr is passed through. Rejects if the child
 * fails or prints no JSON.
 *
 * @example
 * ```ts
 * import { runChild } from "./_util.ts";
 * const result = await runChild(new URL("./core.ts", import.meta.url), ["--child", "append", "--impl", "ours", "--n", "10"]);
 * console.log(result);
 * ```
 */
export function runChild(file: URL, args: readonly string[], runtime: Runtime = "node"): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const path = fileURLToPath(file);
    const bin = (name: string) => fileURLToPath(new URL(`../node_modules/.bin/${name}`, import.meta.url));
    // hyperlog 4 calls the deprecated `Buffer()`; keep its warning out of the report.
    const [command, ...flags] = runtime === "deno"
      ? [bin("deno"), "run", "-A"]
      : runtime === "bun"
      ? [bin("bun")]
      : [process.execPath, "--no-deprecation"];
    const child = spawn(command!, [...flags, path, ...args], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const what = `${basename(path)} ${args.join(" ")}`;
      if (code !== 0) return reject(new Error(`Benchmark child "${what}" failed (${signal ?? `exit code ${code}`})`));
      const last = out.trim().split("\n").pop() ?? "";
      try {
        resolve(JSON.parse(last));
      } catch {
        reject(new Error(`Benchmark child "${what}" printed no JSON result: ${JSON.stringify(out.slice(-200))}`));
      }
    });
  });
}
