import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { waitFor } from "./_wait.ts";

const BIN = fileURLToPath(new URL("../bin/hyperlog.mjs", import.meta.url));
const globals = globalThis as { Deno?: unknown; Bun?: unknown };
/** The CLI under the runtime running this test. */
const RUNTIME = globals.Deno !== undefined ? [process.execPath, "run", "-A", BIN] : [process.execPath, BIN];
const shellQuote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;
/** The CLI as a shell command, for dupsh. */
const HYPERLOG = RUNTIME.map(shellQuote).join(" ");

/**
 * Writes a shell script and returns the command that runs it. Commands for dupsh go through scripts, so no test
 * depends on how a runtime passes quoted arguments to a child (Deno's node:child_process rewrites some).
 */
function script(dir: string, name: string, command: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\nexec ${command}\n`);
  return `sh ${path}`;
}

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], input?: string): Result {
  const [cmd, ...rest] = RUNTIME as [string, ...string[]];
  const result = spawnSync(cmd, [...rest, ...args], { encoding: "utf-8", input: input ?? "", timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs the CLI without waiting synchronously (dupsh needs its children to run meanwhile). */
function runAsync(args: string[], timeout = 60_000): Promise<Result> {
  return new Promise((resolve) => {
    const [cmd, ...rest] = RUNTIME as [string, ...string[]];
    const child = spawn(cmd, [...rest, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeout);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/**
 * Waits until something listens on a loopback TCP port, reading /proc/net/tcp rather than connecting (a probe
 * connection would be the one connection `nc -l` accepts).
 */
async function listening(port: number, timeout = 15_000): Promise<void> {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  await waitFor(
    () =>
      readFileSync("/proc/net/tcp", "utf-8").split("\n").some((line) =>
        line.includes(`:${hex} `) && line.split(/\s+/)[4] === "0A"
      ),
    timeout,
    `something to listen on port ${port}`,
  );
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "hyperlog-cli-"));
}

function lines(text: string): string[] {
  return text.split("\n").filter((line) => line.length > 0);
}

describe("the hyperlog CLI", () => {
  it("prints help with --help and exits 0; a bad argument prints one line and that command's usage, and exits 2", () => {
    const help = run(["--help"]);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^Usage: hyperlog \[-d DIR\] <command>/);
    const helps: Record<string, string> = {};
    for (const command of ["add", "ls", "heads", "get", "sync", "kv", "serve", "dupsh"]) {
      const sub = run([command, "--help"]);
      assert.equal(sub.status, 0, `${command} --help`);
      assert.match(sub.stdout, new RegExp(`^Usage: hyperlog (\\[-d DIR\\] )?${command}\\b`));
      assert.doesNotMatch(sub.stdout, /Commands:/, `${command} --help is that command's help only`);
      helps[command] = sub.stdout;
    }
    // Without a command, the whole usage: the list of commands.
    for (const bad of [[], ["frobnicate"], ["-d"], ["--bogus"]]) {
      const result = run(bad);
      assert.equal(result.status, 2, `hyperlog ${bad.join(" ")} exits 2`);
      assert.equal(result.stdout, "");
      const error = bad.length === 0 ? "" : "hyperlog: [A-Z][^\\n]*[^.]\\n\\n";
      assert.match(result.stderr, new RegExp(`^${error}Usage: hyperlog \\[-d DIR\\] <command>[^]*Commands:`));
    }
    // With one, the error on one line, then that command's usage (its --help) and nothing else.
    for (
      const [command, ...bad] of [
        ["add", "add"],
        ["get", "get"],
        ["get", "get", "nope"],
        ["ls", "ls", "extra"],
        ["ls", "ls", "--bogus"],
        ["ls", "ls", "-d"],
        ["heads", "heads", "--json"],
        ["sync", "sync", "--push", "--pull"],
        ["sync", "sync", "ftp://example.com/logs/a"],
        ["kv", "kv", "put", "k"],
        ["serve", "serve", "--bogus"],
        ["dupsh", "dupsh", "one"],
      ] as [string, ...string[]][]
    ) {
      const result = run(bad);
      assert.equal(result.status, 2, `hyperlog ${bad.join(" ")} exits 2`);
      assert.equal(result.stdout, "");
      const [error, ...usage] = result.stderr.split("\n");
      assert.match(error!, /^hyperlog: [A-Z].*[^.]$/, `hyperlog ${bad.join(" ")}: ${error}`);
      assert.equal(usage.join("\n"), `\n${helps[command]}`, `hyperlog ${bad.join(" ")}: the ${command} usage only`);
    }
  });

  it("adds, lists, shows heads and gets nodes, stored as JSON strings as in the seed", () => {
    const dir = tempDir();
    try {
      const hello = run(["-d", dir, "add", "hello"]);
      assert.equal(hello.status, 0, hello.stderr);
      const helloKey = hello.stdout.trim();
      assert.match(helloKey, /^[0-9a-f]{64}$/);
      const world = run(["-d", dir, "add", "world", helloKey]);
      const worldKey = world.stdout.trim();
      const json = run(["-d", dir, "add", "--json", '{"n":1}']);
      assert.equal(json.status, 0, json.stderr);
      const listed = lines(run(["-d", dir, "ls"]).stdout).map((line) => JSON.parse(line));
      assert.deepEqual(listed.map((n) => n.value), ["hello", "world", { n: 1 }]);
      assert.deepEqual(listed[1].links, [helloKey]);
      assert.deepEqual(listed.map((n) => n.change), [1, 2, 3]);
      assert.deepEqual(lines(run(["-d", dir, "heads"]).stdout).sort(), [worldKey, json.stdout.trim()].sort());
      assert.equal(JSON.parse(run(["-d", dir, "get", worldKey]).stdout).value, "world");
      const missing = run(["-d", dir, "get", "ab".repeat(32)]);
      assert.equal(missing.status, 1);
      assert.match(missing.stderr, /not found/);
      const orphan = run(["-d", dir, "add", "orphan", "cd".repeat(32)]);
      assert.equal(orphan.status, 1);
      assert.match(orphan.stderr, /missing node/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("dupsh pipes two syncs into each other, and they converge", async () => {
    const a = tempDir();
    const b = tempDir();
    try {
      run(["-d", a, "add", "from a"]);
      run(["-d", a, "add", "more from a"]);
      run(["-d", b, "add", "from b"]);
      const result = await runAsync([
        "dupsh",
        script(a, "sync.sh", `${HYPERLOG} sync -d ${shellQuote(a)}`),
        script(b, "sync.sh", `${HYPERLOG} sync -d ${shellQuote(b)}`),
      ]);
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stderr, /sync: sent/);
      const keysOf = (dir: string) => lines(run(["-d", dir, "ls"]).stdout).map((l) => JSON.parse(l).key).sort();
      assert.equal(keysOf(a).length, 3);
      assert.deepEqual(keysOf(a), keysOf(b));
      const push = await runAsync([
        "dupsh",
        script(a, "push.sh", `${HYPERLOG} sync --push -d ${shellQuote(a)}`),
        script(b, "push.sh", `${HYPERLOG} sync --push -d ${shellQuote(b)}`),
      ]);
      assert.equal(push.status, 1, "push with push fails on both sides");
      assert.match(push.stderr, /Incompatible replication modes/);
    } finally {
      rmSync(a, { recursive: true, force: true });
      rmSync(b, { recursive: true, force: true });
    }
  });

  it("kv: put, get, del, ls and history in the store; concurrent puts on two stores both show after kv sync", async () => {
    const a = tempDir();
    const b = tempDir();
    try {
      const blue = run(["-d", a, "kv", "put", "color", "blue"]);
      assert.equal(blue.status, 0, blue.stderr);
      const blueKey = blue.stdout.trim();
      assert.match(blueKey, /^[0-9a-f]{64}$/);
      assert.equal(run(["-d", a, "kv", "put", "n", '{"x":1}', "--json"]).status, 0);
      const green = run(["-d", b, "kv", "put", "color", "green"]).stdout.trim();
      assert.deepEqual(JSON.parse(run(["-d", a, "kv", "get", "color"]).stdout), { [blueKey]: "blue" });
      const nKey = JSON.parse(lines(run(["-d", a, "kv", "history", "n"]).stdout)[0]!).key;
      assert.deepEqual(JSON.parse(run(["-d", a, "kv", "get", "n"]).stdout), { [nKey]: { x: 1 } });
      const result = await runAsync([
        "dupsh",
        script(a, "kv-sync.sh", `${HYPERLOG} kv sync -d ${shellQuote(a)}`),
        script(b, "kv-sync.sh", `${HYPERLOG} -d ${shellQuote(b)} kv sync`),
      ]);
      assert.equal(result.status, 0, result.stderr);
      for (const dir of [a, b]) {
        assert.deepEqual(JSON.parse(run(["-d", dir, "kv", "get", "color"]).stdout), {
          [blueKey]: "blue",
          [green]: "green",
        });
      }
      const teal = run(["-d", b, "kv", "put", "color", "teal"]).stdout.trim();
      assert.deepEqual(JSON.parse(run(["-d", b, "kv", "get", "color"]).stdout), { [teal]: "teal" });
      const del = run(["-d", a, "kv", "del", "n"]);
      assert.equal(del.status, 0, del.stderr);
      assert.deepEqual(JSON.parse(run(["-d", a, "kv", "get", "n"]).stdout), {});
      const history = lines(run(["-d", a, "kv", "history", "n"]).stdout).map((l) => JSON.parse(l));
      assert.deepEqual(history.map((n) => n.value), [{ k: "n", v: { x: 1 } }, { d: "n" }]);
      const listed = lines(run(["-d", b, "kv", "ls"]).stdout).map((l) => JSON.parse(l));
      assert.deepEqual(listed, [{ key: "color", values: { [teal]: "teal" } }, {
        key: "n",
        values: { [nKey]: { x: 1 } },
      }]);
      const bads = [["kv"], ["kv", "bogus"], ["kv", "put", "k"], ["kv", "get"], ["kv", "put", "k", "{", "--json"], [
        "kv",
        "get",
        "k",
        "--live",
      ]];
      for (const bad of bads) {
        const r = run(["-d", a, ...bad]);
        assert.equal(r.status, 2, `${bad.join(" ")} exits 2`);
        assert.match(r.stderr, /^hyperlog: [A-Z][^\n]*[^.]\n\nUsage: hyperlog \[-d DIR\] kv/);
      }
      assert.match(run(["kv", "--help"]).stdout, /kv put KEY VALUE/);
    } finally {
      rmSync(a, { recursive: true, force: true });
      rmSync(b, { recursive: true, force: true });
    }
  });

  it("dupsh exits non-zero if either command does, and forwards stderr", async () => {
    assert.equal((await runAsync(["dupsh", "echo hi >&2; exit 0", "cat >/dev/null"])).status, 0);
    const failed = await runAsync(["dupsh", "echo oops >&2; exit 3", "cat >/dev/null"]);
    assert.equal(failed.status, 3);
    assert.match(failed.stderr, /oops/);
    assert.equal((await runAsync(["dupsh", "true", "exit 5"])).status, 5);
  });

  it("dupsh gives each command the other's pipe: they go on talking after dupsh is killed (Node, Deno)", async () => {
    const dir = tempDir();
    try {
      // Each says it is ready; B waits for the test's go (a FIFO), then answers A, and A prints what it got.
      const go = join(dir, "go");
      assert.equal(spawnSync("mkfifo", [go]).status, 0, "mkfifo");
      const [cmd, ...rest] = RUNTIME as [string, ...string[]];
      const dupsh = spawn(cmd, [
        ...rest,
        "dupsh",
        'echo A ready >&2; read reply; echo "A got $reply" >&2',
        `echo B ready >&2; read word < ${shellQuote(go)}; echo "pong $word"`,
      ], { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      const closed = new Promise<void>((resolve) => dupsh.on("close", () => resolve()));
      const exited = new Promise<void>((resolve) => dupsh.on("exit", () => resolve()));
      await new Promise<void>((resolve) =>
        dupsh.stderr.on("data", (data: Buffer) => {
          stderr += data;
          if (stderr.includes("A ready") && stderr.includes("B ready")) resolve();
        })
      );
      dupsh.kill("SIGKILL");
      await exited;
      writeFileSync(go, "after\n");
      await closed; // once A and B, which share dupsh's stderr, have exited too
      if (globals.Bun !== undefined) {
        // Bun's child streams have no file descriptor to hand on, so dupsh relays there, and its death cuts them off.
        assert.match(stderr, /^A got $/m);
      } else assert.match(stderr, /^A got pong after$/m, "B's answer reached A with dupsh gone");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("syncs across a real TCP connection made by netcat, as in the seed", async () => {
    const nc = spawnSync("sh", ["-c", "command -v nc"], { encoding: "utf-8" });
    assert.equal(nc.status, 0, "netcat (nc) is needed for this test: apt-get install netcat-openbsd");
    const port = await new Promise<number>((resolve) => {
      const server = createServer();
      server.listen(0, "127.0.0.1", () => {
        const address = server.address() as { port: number };
        server.close(() => resolve(address.port));
      });
    });
    const a = tempDir();
    const b = tempDir();
    try {
      run(["-d", a, "add", "over tcp from a"]);
      run(["-d", b, "add", "over tcp from b"]);
      const server = runAsync([
        "dupsh",
        script(a, "sync.sh", `${HYPERLOG} sync -d ${shellQuote(a)}`),
        `nc -N -l 127.0.0.1 ${port}`,
      ]);
      await listening(port);
      const client = await runAsync([
        "dupsh",
        script(b, "sync.sh", `${HYPERLOG} sync -d ${shellQuote(b)}`),
        `nc -N 127.0.0.1 ${port}`,
      ]);
      const serverResult = await server;
      assert.equal(client.status, 0, client.stderr);
      assert.equal(serverResult.status, 0, serverResult.stderr);
      const valuesOf = (dir: string) => lines(run(["-d", dir, "ls"]).stdout).map((l) => JSON.parse(l).value).sort();
      assert.deepEqual(valuesOf(a), ["over tcp from a", "over tcp from b"]);
      assert.deepEqual(valuesOf(b), valuesOf(a));
    } finally {
      rmSync(a, { recursive: true, force: true });
      rmSync(b, { recursive: true, force: true });
    }
  });
});
