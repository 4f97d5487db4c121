/**
 * hyperlog 4.12.1's own test suite (node_modules/hyperlog4/test/*.js, tape, from the devDependency) against the
 * compat entry: each file runs in a child process of the runtime running this test (Node, Deno or Bun), with its
 * `require('../')` redirected to compat/mod.ts (tests/fixtures/hyperlog4-require.cjs); nothing of the original is
 * copied. Each file is also run, on Node, against the original hyperlog 4, and the compat run must pass every
 * assertion the original makes, with none failing.
 *
 * Left out: test/hash.js (17 assertions), which tests the `hash` and `asyncHash` options, not carried (see the
 * README, "Coming from hyperlog 4"); tests/compat.test.ts checks that they fail with a clear error.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const suite = join(root, "node_modules", "hyperlog4", "test");
const runner = join(root, "tests", "fixtures", "hyperlog4-run.cjs");
const NOT_CARRIED = new Set(["hash.js"]);
const files = readdirSync(suite).filter((f) => f.endsWith(".js") && !NOT_CARRIED.has(f)).sort();

interface Tap {
  tests: number;
  pass: number;
  fail: number;
  failures: string[];
  output: string;
}

function run(command: string, args: string[]): Promise<Tap> {
  return new Promise((done, reject) => {
    const child = spawn(command, args, {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
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

describe("hyperlog 4.12.1's own test suite on the compat entry", () => {
  it("finds the suite", () => {
    assert.deepEqual(files, [
      "basic.js",
      "batch.js",
      "changes.js",
      "encoding.js",
      "events.js",
      "replicate.js",
      "signatures.js",
    ]);
  });

  for (const file of files) {
    it(`test/${file}: every assertion the original passes`, async () => {
      const path = join(suite, file);
      const [original, compat] = await Promise.all([
        run(nodeBin, [path]),
        run(...runtimeCommand(path)),
      ]);
      assert.equal(original.fail, 0, `the original passes its own ${file}:\n${original.output}`);
      assert.ok(original.tests > 0, `the original ran ${file}`);
      assert.deepEqual(compat.failures, [], `no failed assertion:\n${compat.output}`);
      assert.equal(compat.pass, original.tests, `as many assertions pass as the original makes:\n${compat.output}`);
    });
  }
});
