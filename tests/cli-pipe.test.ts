/**
 * The CLI's output through pipes (issue 22): `ls`, `kv ls`, `heads` and `get` of a 20 000-node store piped into a
 * slow reader and into `wc -l`, 20 times each, lose no line; a reader that stops early (`| head -1`) ends the command
 * with status 0 and nothing on stderr. The CLI runs under the runtime running this file.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Hyperlog } from "../src/log.ts";
import { openSqlite } from "../storage/sqlite-open.ts";

const BIN = fileURLToPath(new URL("../bin/hyperlog.mjs", import.meta.url));
const globals = globalThis as { Deno?: unknown };
/** The CLI under the runtime running this test. */
const RUNTIME = globals.Deno !== undefined ? [process.execPath, "run", "-A", BIN] : [process.execPath, BIN];

/** Nodes in the store. */
const NODES = 20_000;
/** Nodes written first, all roots (each a kv put of its own key); each later node replaces one of them. */
const ROOTS = 12_000;
/** Rounds per command and reader. */
const ROUNDS = 20;

interface Piped {
  /** What the reader got (for `wc -l`, its output). */
  stdout: string;
  /** The CLI's stderr, then the line `hyperlog exited STATUS` that the shell adds. */
  stderr: string;
}

/**
 * Runs the CLI in `sh -c '{ CLI ARGS; echo "hyperlog exited $?" >&2; } | READER'`, so its stdout is a real pipe
 * whose other end is READER. With `slow`, READER is `cat` into this process, which reads a chunk, then stops
 * reading until the next turn of the timers: the pipe fills up and the CLI has output waiting when it finishes.
 * With `into`, the CLI's stdout goes to that file instead.
 */
function piped(args: readonly string[], reader: string, slow = false, into?: string): Promise<Piped> {
  return new Promise((resolve, reject) => {
    const script = `{ "$@"${into === undefined ? "" : ` > ${into}`}; echo "hyperlog exited $?" >&2; } | ${reader}`;
    const child = spawn("/bin/sh", ["-c", script, "sh", ...RUNTIME, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out.push(chunk);
      if (slow) {
        child.stdout.pause();
        setTimeout(() => child.stdout.resume(), 1);
      }
    });
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", () => resolve({ stdout: Buffer.concat(out).toString("utf-8"), stderr }));
  });
}

describe("hyperlog output through pipes, on a 20 000-node store", () => {
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-cli-pipe-"));
  /** The keys of every node, in change order. */
  let keys: string[] = [];
  /** The keys of the heads: the roots no later node replaced, and the later nodes. */
  let heads: string[] = [];

  before(async () => {
    const log = new Hyperlog(await openSqlite(join(dir, "log.db")), { valueEncoding: "json" });
    const docs = [];
    for (let i = 0; i < NODES; i++) {
      // A kv put of key k<i> (HyperKV's format), or of an earlier key, replacing the node that put it.
      const root = i < ROOTS;
      const key = root ? i : i - ROOTS;
      docs.push({ links: root ? [] : [key], value: { k: `k${key}`, v: i } });
    }
    const nodes = await log.batch(docs);
    keys = nodes.map((node) => node.key);
    heads = (await log.heads()).map((node) => node.key).sort();
    await log.close();
    assert.equal(heads.length, ROOTS, "the roots no later node replaced, and the later nodes");
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  /** What `args` prints (read whole by `cat` into a file), checked against the store by `check`. */
  async function reference(args: string[], check: (lines: string[]) => void): Promise<string> {
    const file = join(dir, "reference.txt");
    const result = await piped(args, `cat > ${file}`);
    assert.equal(result.stderr, "hyperlog exited 0\n");
    const text = readFileSync(file, "utf-8");
    assert.ok(text.endsWith("\n"));
    check(text.slice(0, -1).split("\n"));
    return text;
  }

  /** Pipes `args` into a slow reader and into `wc -l`, ROUNDS times each, and counts every line. */
  async function everyLine(args: string[], expected: string): Promise<void> {
    const count = expected.split("\n").length - 1;
    const lost: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const [slow, counted] = await Promise.all([piped(args, "cat", true), piped(args, "wc -l")]);
      assert.equal(slow.stderr, "hyperlog exited 0\n", `round ${round}, slow reader`);
      assert.equal(counted.stderr, "hyperlog exited 0\n", `round ${round}, wc -l`);
      const slowLines = slow.stdout.split("\n").length - 1;
      if (slow.stdout !== expected) lost.push(`round ${round}: the slow reader got ${slowLines} of ${count} lines`);
      if (Number(counted.stdout.trim()) !== count) {
        lost.push(`round ${round}: wc -l counted ${counted.stdout.trim()} of ${count} lines`);
      }
    }
    assert.deepEqual(lost, [], `hyperlog ${args.join(" ")} lost lines`);
  }

  it("ls: every node, into a slow reader and into wc -l, 20 times", async () => {
    const args = ["-d", dir, "ls"];
    const expected = await reference(args, (lines) => {
      assert.deepEqual(lines.map((line) => JSON.parse(line).key), keys);
    });
    await everyLine(args, expected);
  });

  it("kv ls: every key, into a slow reader and into wc -l, 20 times", async () => {
    const args = ["-d", dir, "kv", "ls"];
    const expected = await reference(args, (lines) => {
      const listed = lines.map((line) => JSON.parse(line));
      assert.equal(listed.length, ROOTS);
      assert.deepEqual(
        listed.map((entry) => entry.key).sort(),
        Array.from({ length: ROOTS }, (_, i) => `k${i}`).sort(),
      );
    });
    await everyLine(args, expected);
  });

  it("heads: 12 000 heads, into a slow reader and into wc -l, 20 times", async () => {
    const args = ["-d", dir, "heads"];
    const expected = await reference(args, (lines) => assert.deepEqual([...lines].sort(), heads));
    await everyLine(args, expected);
  });

  it("get: one node, into a slow reader and into wc -l, 20 times", async () => {
    const args = ["-d", dir, "get", keys[NODES - 1]!];
    const expected = await reference(args, (lines) => {
      assert.equal(lines.length, 1);
      assert.equal(JSON.parse(lines[0]!).key, keys[NODES - 1]);
    });
    await everyLine(args, expected);
  });

  it("a reader that stops early (| head -1) ends the command with status 0 and nothing on stderr", async () => {
    for (const args of [["ls"], ["kv", "ls"], ["heads"], ["get", keys[0]!]]) {
      for (let round = 0; round < 3; round++) {
        const result = await piped(["-d", dir, ...args], "head -1");
        assert.equal(result.stderr, "hyperlog exited 0\n", `hyperlog ${args.join(" ")} | head -1`);
        assert.equal(result.stdout.split("\n").length - 1, 1);
      }
    }
  });

  it("output that cannot be written (ENOSPC, into /dev/full) ends the command with status 1 and one line on stderr", async () => {
    for (const args of [["ls"], ["kv", "ls"], ["heads"], ["get", keys[0]!]]) {
      const result = await piped(["-d", dir, ...args], "cat", false, "/dev/full");
      assert.match(result.stderr, /^hyperlog: [^\n]+\nhyperlog exited 1\n$/, `hyperlog ${args.join(" ")} > /dev/full`);
    }
  });
});
