/**
 * `hyperlog log`: the text of a known DAG (a fork, a merge, a hostile value, a signed node), from a local store and
 * from a relay (`hyperlog serve`) over its HTTP routes; `--limit`, `--since`, `--dot`, colour, and bad arguments.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Hyperlog, Identity } from "../mod.ts";
import { main } from "../cli/cli.ts";
import { openSqlite } from "../storage/sqlite-open.ts";
import { type RunningServer, serve } from "../worker/serve.ts";

const ESC = "\x1b";

/** A fixed writer, so the signed node's key is known. */
const SECRET = "19".repeat(32);

/** Writes the known DAG: root; a, b and a hostile value on it; a merge of a and b; a signed tip on the merge. */
async function writeDag(file: string): Promise<void> {
  const log = new Hyperlog(await openSqlite(file), { valueEncoding: "json" });
  const root = await log.add(null, "root");
  const a = await log.add([root.key], "a");
  const b = await log.add([root.key], "b");
  await log.add([root.key], { k: "</text><script>alert(1)</script>\u001b[31m" });
  const merge = await log.add([a.key, b.key], "merge");
  await log.close();
  // The tip is signed: the log opened again with a writer's identity.
  const signed = new Hyperlog(await openSqlite(file), {
    valueEncoding: "json",
    identity: await Identity.fromSecretKey(SECRET),
  });
  await signed.add([merge.key], { tip: true });
  await signed.close();
}

/** The DAG as `log --graph` draws it (checked by hand: the tip on the merge, the hostile value on the root). */
const EXPECTED_GRAPH = [
  `* 5f168176 (head) [31f3322d] {"tip":true}`,
  `| * db47d5e9 (head) {"k":"</text><script>alert(1)</script>\\u001b[31m"}`,
  `* |   edd35d49 "merge"`,
  `|-|\\`,
  `| | * fab66fb9 "b"`,
  `* | | bf2bc506 "a"`,
  `|/-/`,
  `* be326f0e "root"`,
].join("\n") + "\n";

async function run(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const status = await main(args, {
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    openStorage: (d) => openSqlite(join(d, "log.db")),
  });
  return { status, stdout, stderr };
}

describe("hyperlog log", () => {
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-log-"));
  const relayDir = mkdtempSync(join(tmpdir(), "hyperlog-log-relay-"));
  let server: RunningServer | undefined;
  before(async () => {
    await writeDag(join(dir, "log.db"));
    await writeDag(join(relayDir, "dag.db"));
    server = await serve({ dir: relayDir, port: 0, settings: { READ_TOKEN: "reader" } });
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(relayDir, { recursive: true, force: true });
  });

  it("draws the DAG like git log --graph --oneline", async () => {
    const result = await run(["-d", dir, "log", "--graph"]);
    assert.deepEqual(result, { status: 0, stdout: EXPECTED_GRAPH, stderr: "" });
  });

  it("prints one line per node without --graph, plain when piped", async () => {
    const result = await run(["-d", dir, "log"]);
    assert.equal(result.status, 0);
    const lines = EXPECTED_GRAPH.split("\n").filter((line) => line.includes("*"));
    assert.equal(result.stdout, lines.map((line) => line.replace(/^[*|\-\\/ ]+/, "")).join("\n") + "\n");
    assert.ok(!result.stdout.includes(ESC), "no escape: the hostile value's ESC is shown as \\u001b");
  });

  it("colours on demand, and a value's escapes stay escaped", async () => {
    const result = await run(["-d", dir, "log", "--graph", "--color"]);
    const plain = result.stdout.replace(new RegExp(`${ESC}\\[[0-9;]*m`, "g"), "");
    assert.equal(plain, EXPECTED_GRAPH);
    assert.ok(result.stdout.includes(`${ESC}[33m5f168176${ESC}[0m ${ESC}[1;32m(head)${ESC}[0m`));
  });

  it("--limit and --since keep the latest nodes and count the links left out", async () => {
    const limited = await run(["-d", dir, "log", "--graph", "--limit", "3"]);
    assert.equal(
      limited.stdout,
      [
        `* 5f168176 (head) [31f3322d] {"tip":true}`,
        `| * db47d5e9 (head) {"k":"</text><script>alert(1)</script>\\u001b[31m"} (+1 older)`,
        `* edd35d49 "merge" (+2 older)`,
      ].join("\n") + "\n",
    );
    const since = await run(["-d", dir, "log", "--since=4"]);
    assert.equal(since.stdout, `5f168176 (head) [31f3322d] {"tip":true}\nedd35d49 "merge" (+2 older)\n`);
  });

  it("--dot prints Graphviz DOT with every node and edge, strings escaped", async () => {
    const result = await run(["-d", dir, "log", "--dot"]);
    assert.equal(result.status, 0);
    const lines = result.stdout.trim().split("\n");
    assert.equal(lines[0], "digraph hyperlog {");
    assert.equal(lines.at(-1), "}");
    assert.equal(lines.filter((line) => /^ {2}"[0-9a-f]{64}" \[label=/.test(line)).length, 6);
    assert.equal(lines.filter((line) => /^ {2}"[0-9a-f]{64}" -> "[0-9a-f]{64}";$/.test(line)).length, 6);
    assert.ok(
      result.stdout.includes(
        String
          .raw`[label="db47d5e9\n{\"k\":\"</text><script>alert(1)</script>\\u001b[31m\"}", style=bold, color=green];`,
      ),
    );
  });

  it("reads a relay's log over HTTP, with ws:// or http:// URLs and a token", async () => {
    const ws = server!.url.replace(/^http/, "ws") + "/logs/dag";
    const denied = await run(["log", ws]);
    assert.equal(denied.status, 1);
    assert.match(denied.stderr, /^hyperlog: The relay answered 401 for \/logs\/dag: This relay needs a token/);
    const result = await run(["log", ws, "--graph", "--token", "reader"]);
    assert.deepEqual(result, { status: 0, stdout: EXPECTED_GRAPH, stderr: "" });
    const limited = await run(["log", `${server!.url}/logs/dag/ws`, "--token=reader", "--limit", "3"]);
    const local = await run(["-d", dir, "log", "--limit", "3"]);
    assert.equal(limited.stdout, local.stdout);
    const dot = await run(["log", `${server!.url}/logs/dag`, "--token=reader", "--dot"]);
    assert.equal(dot.stdout, (await run(["-d", dir, "log", "--dot"])).stdout);
  });

  it("refuses bad arguments with a usage error", async () => {
    for (
      const [args, message] of [
        [["--limit", "0"], '--limit takes an integer of at least 1, not "0"'],
        [["--since"], '--since takes an integer of at least 0, not ""'],
        [["--frobnicate"], "Unknown option --frobnicate for log"],
        [["ftp://x/logs/a"], "ftp://x/logs/a is not a relay log URL; use ws://HOST/logs/NAME or http://HOST/logs/NAME"],
      ] as const
    ) {
      const result = await run(["-d", dir, "log", ...args]);
      assert.equal(result.status, 2, args.join(" "));
      assert.ok(result.stderr.startsWith(`hyperlog: ${message}\n`), result.stderr);
    }
  });
});
