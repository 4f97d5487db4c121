/**
 * The benchmark driver's `--spin N` (bench/run.ts): the processes it starts to measure under a second load spin
 * while the benchmarks run and are gone when it ends, whether it ends normally or is killed outright; a bad count is
 * a usage error. Runs the quickest benchmark (`bounds`) once; whether a spinner lives is read from Linux's /proc.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { waitFor } from "./_wait.ts";

const DRIVER = fileURLToPath(new URL("../bench/run.ts", import.meta.url));
/** The Node the repository pins: the driver is a Node program. */
const NODE = fileURLToPath(new URL("../node_modules/node/bin/node", import.meta.url));
const linux = existsSync("/proc/self/stat");

/** Whether `pid` is a live process (a zombie, exited but not yet reaped, is not). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.charAt(stat.lastIndexOf(")") + 2) !== "Z";
  } catch {
    return false;
  }
}

/** Resolves once `pid` is no longer a live process (polled: the process is not ours to wait for). */
function gone(pid: number): Promise<void> {
  return waitFor(() => !alive(pid), 30_000, `spinner ${pid} to exit`);
}

/** Starts the driver with `args`; collects its output, and resolves `pids` once it has named its spinners. */
function driver(args: string[]) {
  const child: ChildProcess = spawn(NODE, [DRIVER, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => stdout += chunk);
  const pids = new Promise<number[]>((resolve) => {
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
      const named = /spinning beside the benchmarks: pid ([\d, ]+)\n/.exec(stderr);
      if (named !== null) resolve(named[1]!.split(", ").map(Number));
    });
  });
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return { child, pids, exited, output: () => ({ stdout, stderr }) };
}

describe("bench/run.ts --spin", { skip: !linux && "needs /proc" }, () => {
  it("runs the spinners beside the benchmarks, says so, and stops them at the end", async () => {
    const run = driver(["--only", "bounds", "--reps", "1", "--spin", "2"]);
    const pids = await run.pids;
    assert.equal(pids.length, 2);
    for (const pid of pids) assert.ok(alive(pid), `spinner ${pid} runs while the benchmarks do`);
    assert.equal(await run.exited, 0);
    assert.match(run.output().stdout, /2 spinning processes beside it/);
    for (const pid of pids) await gone(pid);
  });

  it("leaves no spinner behind when the driver is killed outright", async () => {
    const run = driver(["--only", "bounds", "--reps", "1", "--spin", "1"]);
    const [pid] = await run.pids;
    run.child.kill("SIGKILL");
    await run.exited;
    assert.ok(pid !== undefined);
    await gone(pid);
  });

  it("refuses a count that is not a whole number from 0 to 64", async () => {
    for (const count of ["-1", "1.5", "x", "65"]) {
      const run = driver(["--only", "bounds", `--spin=${count}`]);
      assert.equal(await run.exited, 2);
      assert.match(run.output().stderr, new RegExp(`--spin must be an integer from 0 to 64, got ${count}`));
    }
  });
});
