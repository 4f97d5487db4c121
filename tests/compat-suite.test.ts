/**
 * The original suites on the compat entry: hyperlog 4.12.1's own tests (node_modules/hyperlog4/test/*.js), and
 * those of hyperlog-index 5.2.2 and hyperkv 2.1.1 (their test/*.js, tape), from the devDependencies. Each file runs
 * in a child process of the runtime running this test (Node, Deno or Bun), with its `require` of hyperlog 4
 * (`require('../')` in hyperlog's tests, `require('hyperlog')` in the others') redirected to compat/mod.ts
 * (tests/fixtures/hyperlog4-require.cjs); nothing of the originals is copied. Each file is also run, on Node, on
 * the original hyperlog 4, and the compat run must pass every assertion the original makes, with none failing.
 *
 * Left out: hyperlog's test/hash.js (17 assertions), which tests the `hash` and `asyncHash` options, not carried
 * (see the README, "Coming from hyperlog 4"); tests/compat.test.ts checks that they fail with a clear error.
 * hyperlog-index's *_db tests take their databases from level-test 2, whose leveldown no longer builds: the fixture
 * gives them memdb databases (the same levelup 1 generation), for the original and the compat runs alike.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const runner = join(root, "tests", "fixtures", "hyperlog4-run.cjs");
const NOT_CARRIED = new Set(["hyperlog4/test/hash.js"]);
const suites = ["hyperlog4", "hyperlog-index", "hyperkv"];
const files = suites.flatMap((name) =>
  readdirSync(join(root, "node_modules", name, "test"))
    .filter((f) => f.endsWith(".js"))
    .sort()
    .map((f) => `${name}/test/${f}`)
    .filter((f) => !NOT_CARRIED.has(f))
);

interface Tap {
  tests: number;
  pass: number;
  fail: number;
  failures: string[];
  output: string;
}

function run(command: string, args: string[], env: Record<string, string> = {}): Promise<Tap> {
  return new Promise((done, reject) => {
    const child = spawn(command, args, {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1", ...env },
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    // A file whose test never ends (a plan not met) would keep the child alive: kill it, and its counts show it.
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", () => {
      clearTimeout(timer);
      const count = (name: string) => Number(output.match(new RegExp(`^# ${name}\\s+(\\d+)$`, "m"))?.[1] ?? 0);
      const failures = output.split("\n").filter((line) => line.startsWith("not ok"));
      done({ tests: count("tests"), pass: count("pass"), fail: count("fail"), failures, output });
    });
  });
}

function runtimeCommand(file: string): [string, string[]] {
  const exec = process.execPath;
  if ("Deno" in globalThis) return [exec, ["run", "-A", runner, file]];
  return [exec, [runner, file]];
}

/** The node binary of the project (the original runs on Node whatever runtime runs this file). */
const nodeBin = join(root, "node_modules", ".bin", "node");

describe("hyperlog 4.12.1's, hyperlog-index's and hyperkv's own test suites on the compat entry", () => {
  it("finds the suites", () => {
    assert.equal(files.filter((f) => f.startsWith("hyperlog4/")).length, 7);
    assert.equal(files.filter((f) => f.startsWith("hyperlog-index/")).length, 5);
    assert.equal(files.filter((f) => f.startsWith("hyperkv/")).length, 13);
  });

  for (const file of files) {
    it(`${file}: every assertion the original passes`, async () => {
      const path = join(root, "node_modules", file);
      const [original, compat] = await Promise.all([
        run(nodeBin, [runner, path], { HYPERLOG4_ORIGINAL: "1" }),
        run(...runtimeCommand(path)),
      ]);
      assert.equal(original.fail, 0, `the original passes its own ${file}:\n${original.output}`);
      assert.ok(original.tests > 0, `the original ran ${file}`);
      assert.deepEqual(compat.failures, [], `no failed assertion:\n${compat.output}`);
      assert.equal(compat.pass, original.tests, `as many assertions pass as the original makes:\n${compat.output}`);
    });
  }
});
