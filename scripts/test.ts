/**
 * Test harness: type-checks the project with tsc, then runs the same test files
 * under `node --test`, `deno test` and `bun test`, streaming their output live.
 *
 * Usage: node scripts/test.ts [--only tsc,node,deno,bun,jsr,doc] [--timeout SECONDS] [FILE...]
 *
 * Besides the runtimes, two whole-project checks run when no file is named (or when `--only` names them): `jsr`,
 * `deno publish --dry-run` (the package as JSR would take it: no slow types, every file resolvable), and `doc`,
 * `deno doc --lint` on the public entries (every exported symbol documented).
 *
 * Counts come from each runner's own closing summary. The type check counts as one
 * test. A runner that exits non-zero (crash, load error, timeout) without reporting a
 * failure counts as one failure, and so does one whose summary cannot be found. The
 * final line is always `N passed, N failed`; the exit code is 1 if anything failed.
 */
import { spawn } from "node:child_process";
import { existsSync, globSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";

/** Files that the runtimes run when no file is named on the command line */
const PATTERNS = ["tests/**/*.test.ts", "src/**/*.test.ts", "storage/**/*.test.ts"];
/** Default limit for one runtime's whole run */
const DEFAULT_TIMEOUT_S = 600;

const root = resolve(import.meta.dirname, "..");
const bin = (name: string): string => join(root, "node_modules", ".bin", name);

/** The public entries of the package, as deno.json exports them */
const ENTRIES = [
  "mod.ts",
  "storage/sqlite-open.ts",
  "storage/sqlite-do.ts",
  "storage/deno-kv.ts",
  "storage/conformance.ts",
  "storage/conformance-node-test.ts",
  "cli/cli.ts",
  "worker/index.ts",
  "worker/serve.ts",
  "compat/mod.ts",
  "storage/level.ts",
  "worker/deno-deploy.ts",
];

/** Pass/fail counts of one runtime */
interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

/** How to run one runtime and read its summary */
interface Runtime {
  /** Command line, without the test files */
  command(timeoutMs: number): string[];
  /** Whether the test files are appended to the command line (tsc checks the whole project) */
  takesFiles: boolean;
  /** A whole-project check that runs only in a full run (no files named) or when `--only` names it */
  fullRunOnly?: boolean;
  /** Counts from the runner's output, or undefined when it printed no summary */
  parse(output: string, code: number): Counts | undefined;
}

/** The last number captured by `re` (flags `gm`) in `text`, or undefined */
function last(text: string, re: RegExp): number | undefined {
  let n: number | undefined;
  for (const m of text.matchAll(re)) n = Number(m[1]);
  return n;
}

const RUNTIMES: Record<string, Runtime> = {
  tsc: {
    command: () => [bin("tsc"), "-p", "tsconfig.json"],
    takesFiles: false,
    parse: (_out, code) => ({ passed: code === 0 ? 1 : 0, failed: code === 0 ? 0 : 1, skipped: 0 }),
  },
  node: {
    command: () => [bin("node"), "--test", "--test-reporter=spec"],
    takesFiles: true,
    // `ℹ pass N`, `ℹ fail N`, ...; timed-out tests and tests under a failed hook count as cancelled
    parse: (out) => {
      const [pass, fail, cancelled, skipped, todo] = ["pass", "fail", "cancelled", "skipped", "todo"]
        .map((k) => last(out, new RegExp(`^ℹ ${k} (\\d+)$`, "gm")));
      if (pass === undefined || fail === undefined) return undefined;
      return { passed: pass, failed: fail + (cancelled ?? 0), skipped: (skipped ?? 0) + (todo ?? 0) };
    },
  },
  deno: {
    command: () => [bin("deno"), "test", "-A", "--unstable-kv"],
    takesFiles: true,
    // `ok | 24 passed (10 steps) | 0 failed | 8 ignored (1 step) (57ms)`; steps are subtests
    parse: (out) => {
      const line = out.match(/^(?:ok|FAILED) \|.*$/gm)?.at(-1);
      if (line === undefined) return undefined;
      const get = (k: string): number => {
        const m = line.match(new RegExp(`(\\d+) ${k}(?: \\((\\d+) steps?\\))?`));
        return Number(m?.[1] ?? 0) + Number(m?.[2] ?? 0);
      };
      return { passed: get("passed"), failed: get("failed"), skipped: get("ignored") };
    },
  },
  jsr: {
    command: () => [bin("deno"), "publish", "--dry-run", "--allow-dirty"],
    takesFiles: false,
    fullRunOnly: true,
    parse: (_out, code) => ({ passed: code === 0 ? 1 : 0, failed: code === 0 ? 0 : 1, skipped: 0 }),
  },
  doc: {
    command: () => [bin("deno"), "doc", "--lint", ...ENTRIES],
    takesFiles: false,
    fullRunOnly: true,
    parse: (_out, code) => ({ passed: code === 0 ? 1 : 0, failed: code === 0 ? 0 : 1, skipped: 0 }),
  },
  bun: {
    // Bun's default per-test timeout is 5 s (node and deno have none): lift it to the run's limit
    command: (timeoutMs) => [bin("bun"), "test", `--timeout=${timeoutMs}`],
    takesFiles: true,
    // ` 27 pass`, ` 0 fail`, ` 1 error` (hook failures and errors between tests), ...
    parse: (out) => {
      const [pass, fail, errors, skip, todo] = ["pass", "fail", "errors?", "skip", "todo"]
        .map((k) => last(out, new RegExp(`^\\s*(\\d+) ${k}$`, "gm")));
      if (pass === undefined || fail === undefined) return undefined;
      return { passed: pass, failed: fail + (errors ?? 0), skipped: (skip ?? 0) + (todo ?? 0) };
    },
  },
};

/** Runs a command in its own process group, echoing its output, killing the group on timeout */
function run(cmd: string[], timeoutMs: number): Promise<{ code: number; output: string; timedOut: boolean }> {
  const env: NodeJS.ProcessEnv = { ...process.env, DENO_NO_UPDATE_CHECK: "1" };
  if (env["NO_COLOR"] === undefined && env["FORCE_COLOR"] === undefined) {
    env[process.stdout.isTTY ? "FORCE_COLOR" : "NO_COLOR"] = "1";
  }
  return new Promise((done) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { cwd: root, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let output = "";
    let timedOut = false;
    const kill = (): void => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch { /* Already gone */ }
    };
    const interrupt = (): void => {
      kill();
      process.exit(130);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    process.once("SIGINT", interrupt).once("SIGTERM", interrupt);
    for (const [from, to] of [[child.stdout, process.stdout], [child.stderr, process.stderr]] as const) {
      from.setEncoding("utf8").on("data", (chunk: string) => {
        to.write(chunk);
        output += chunk;
      });
    }
    let finished = false;
    const finish = (code: number): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      process.off("SIGINT", interrupt).off("SIGTERM", interrupt);
      done({ code, output, timedOut });
    };
    child.on("error", (err) => {
      console.error(`Failed to start ${cmd[0]}: ${err.message}`);
      finish(127);
    });
    child.on("close", (code) => finish(code ?? 1));
  });
}

/** Stops with a usage error */
function usage(message: string): never {
  console.error(
    `${message}\nUsage: node scripts/test.ts [--only ${Object.keys(RUNTIMES).join(",")}] [--timeout SECONDS] [FILE...]`,
  );
  process.exit(2);
}

const { values, positionals } = (() => {
  try {
    return parseArgs({ allowPositionals: true, options: { only: { type: "string" }, timeout: { type: "string" } } });
  } catch (err) {
    return usage((err as Error).message);
  }
})();
const names = values.only?.split(",").map((s) => s.trim()).filter(Boolean) ??
  Object.keys(RUNTIMES).filter((name) => positionals.length === 0 || RUNTIMES[name]!.fullRunOnly !== true);
for (const name of names) if (!(name in RUNTIMES)) usage(`Unknown runtime: ${name}`);
const timeoutS = Number(values.timeout ?? DEFAULT_TIMEOUT_S);
if (!(timeoutS > 0)) usage(`Invalid timeout: ${values.timeout}`);

// npm runs scripts from the package root: resolve named files against where npm was called
const cwd = process.env["INIT_CWD"] ?? process.cwd();
const files =
  (positionals.length > 0 ? positionals.map((f) => relative(root, resolve(cwd, f))) : globSync(PATTERNS, { cwd: root }))
    .sort().map((f) => `./${f}`);
for (const f of files) if (!existsSync(join(root, f))) usage(`Test file not found: ${f}`);
if (files.length === 0 && names.some((n) => RUNTIMES[n]!.takesFiles)) {
  usage(`No test files found (${PATTERNS.join(", ")})`);
}

const rows: { name: string; counts: Counts; seconds: number; note: string }[] = [];
for (const name of names) {
  const rt = RUNTIMES[name]!;
  const cmd = rt.command(timeoutS * 1000);
  const shown = [relative(root, cmd[0]!), ...cmd.slice(1), ...(rt.takesFiles ? [`<${files.length} test files>`] : [])];
  console.log(`\n=== ${name}: ${shown.join(" ")}\n`);
  const start = performance.now();
  const { code, output, timedOut } = await run(rt.takesFiles ? [...cmd, ...files] : cmd, timeoutS * 1000);
  const seconds = (performance.now() - start) / 1000;
  const parsed = rt.parse(output.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, ""), code);
  const counts = parsed ?? { passed: 0, failed: 0, skipped: 0 };
  const notes = [timedOut ? `Timed out after ${timeoutS}s` : code !== 0 ? `Exit code ${code}` : ""];
  if (parsed === undefined) notes.push("No test summary found");
  else if (counts.passed + counts.failed + counts.skipped === 0) notes.push("No tests ran");
  if (counts.failed === 0 && (code !== 0 || counts.passed + counts.skipped === 0)) counts.failed = 1;
  rows.push({ name, counts, seconds, note: notes.filter(Boolean).join("; ") });
}

const total = { passed: 0, failed: 0 };
console.log(
  `\n${"runtime".padEnd(8)}${"passed".padStart(8)}${"failed".padStart(8)}${"skipped".padStart(9)}${
    "time".padStart(9)
  }  note`,
);
for (const { name, counts, seconds, note } of rows) {
  total.passed += counts.passed;
  total.failed += counts.failed;
  console.log(
    `${name.padEnd(8)}${String(counts.passed).padStart(8)}${String(counts.failed).padStart(8)}` +
      `${String(counts.skipped).padStart(9)}${`${seconds.toFixed(1)}s`.padStart(9)}  ${note}`.trimEnd(),
  );
}
console.log(`${total.passed} passed, ${total.failed} failed`);
process.exitCode = total.failed > 0 ? 1 : 0;
