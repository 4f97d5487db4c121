import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { nodeOnly } from "./_helpers.ts";

const globals = globalThis as { Deno?: unknown };

/** Runs an example under the runtime running this test. */
function runExample(name: string): { status: number | null; stdout: string; stderr: string } {
  const file = fileURLToPath(new URL(`../examples/${name}`, import.meta.url));
  const args = globals.Deno !== undefined ? ["run", "-A", file] : [file];
  const result = spawnSync(process.execPath, args, { encoding: "utf-8", timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("examples", () => {
  it("the walk-through (npm run example) adds, lists, replicates two SQLite logs and reopens one", () => {
    const { status, stdout, stderr } = runExample("walkthrough.ts");
    assert.equal(status, 0, stderr);
    assert.match(stdout, /alice added 3 nodes/);
    assert.match(stdout, /#2 \w{8} links=\[\w{8}\] value="world"/);
    assert.match(stdout, /replicated: alice sent 2 nodes and received 1; bob sent 1 and received 2/);
    assert.match(stdout, /alice: 4 nodes/);
    assert.match(stdout, /bob: {3}4 nodes/);
    assert.match(stdout, /reopened bob.db: 5 nodes/);
  });

  it("the key/value example: concurrent values side by side, resolved, deleted, and a view rebuilt", () => {
    const { status, stdout, stderr } = runExample("kv.ts");
    assert.equal(status, 0, stderr);
    assert.match(stdout, /alice sees color = blue \| green/);
    assert.match(stdout, /bob sees color {3}= blue \| green/);
    assert.match(stdout, /bob resolved it; alice sees color = teal/);
    assert.match(stdout, /bob deleted size; alice sees 0 values/);
    assert.match(stdout, /writes per key: \[\["color",3\],\["size",2\]\]\nrebuilt: \[\["color",3\],\["size",2\]\]/);
    assert.match(stdout, /ls: color = teal\n$/);
  });

  it("the command-line example: add, dupsh sync, ls, heads, and the kv store with a conflict resolved", () => {
    const file = fileURLToPath(new URL("../examples/cli.sh", import.meta.url));
    const result = spawnSync("sh", [file], { encoding: "utf-8", timeout: 120_000 });
    assert.equal(result.status, 0, result.stderr);
    assert.match(
      result.stdout,
      /bob's log now \(change, value\):\n {2}1 "hi from bob"\n {2}2 "hello"\n {2}3 "world"\n/,
    );
    assert.match(result.stdout, /# heads: 2\n/);
    assert.match(
      result.stdout,
      /alice sees: \{"key":"color","values":\{"[0-9a-f]{64}":"(blue|green)","[0-9a-f]{64}":"(blue|green)"\}\}/,
    );
    assert.match(result.stdout, /after bob's put: \{KEY:"teal"\}\n$/);
    assert.match(result.stderr, /sync: sent 2 nodes, received 1 nodes/);
  });
});

nodeOnly("the relay example", "it starts the relay worker in Miniflare, which drives workerd from Node", () => {
  it("a relay and two clients with connect(): both write, both converge", () => {
    const { status, stdout, stderr } = runExample("relay.ts");
    assert.equal(status, 0, stderr);
    assert.match(stdout, /alice is live/);
    assert.match(stdout, /bob is live/);
    assert.match(stdout, /alice: 2 nodes, heads (\S+)\nbob: {3}2 nodes, heads \1\n/);
    assert.match(stdout, /relay: 2 nodes\nconverged\n$/);
  });
});

nodeOnly(
  "the hyperlog 4 snippets on the compat entry",
  "they are CommonJS for Node with require('@hyperlog/hyperlog/compat') resolved to the source by a Node condition",
  () => {
    const here = fileURLToPath(new URL("../examples/hyperlog4/", import.meta.url));
    const bin = fileURLToPath(new URL("../bin/hyperlog.mjs", import.meta.url));
    const node = [process.execPath, "--conditions=hyperlog-source"];
    const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;
    const nodeCmd = (file: string, ...args: string[]) => [...node, join(here, file), ...args].map(quote).join(" ");
    const dir = mkdtempSync(join(tmpdir(), "hyperlog-h4-examples-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const run = (file: string, cwd: string) =>
      spawnSync(node[0]!, [...node.slice(1), join(here, file)], { cwd, encoding: "utf-8", timeout: 60_000 });

    it("the README shows the example files as they are", () => {
      const readme = readFileSync(fileURLToPath(new URL("../README.md", import.meta.url)), "utf-8");
      for (const file of ["add.cjs", "read.cjs", "replicate.cjs", "kv.cjs"]) {
        const code = readFileSync(join(here, file), "utf-8").trimEnd();
        assert.ok(readme.includes(`// examples/hyperlog4/${file}`), `README names ${file}`);
        assert.ok(readme.includes(code), `README holds ${file} as it is`);
        assert.match(
          code,
          /^var hyperlog = require\('@hyperlog\/hyperlog\/compat'\) \/\/ was: require\('hyperlog'\)$/m,
        );
      }
    });

    it("add, then createReadStream, in a level database that is there on the next run", () => {
      const a = join(dir, "a");
      mkdirSync(a);
      const added = run("add.cjs", a);
      assert.equal(added.status, 0, added.stderr);
      assert.match(added.stdout, /inserted node 8c7efb22472592f561a7a7647f8c5ee93134880b4ca0c92889a61848cd5c4602\n/);
      assert.match(added.stdout, /inserted new node [0-9a-f]{64} linking to \[ '8c7efb22/);
      const read = run("read.cjs", a);
      assert.equal(read.status, 0, read.stderr);
      assert.match(read.stdout, /^1 8c7efb22[0-9a-f]{56} hello\n2 [0-9a-f]{64} world\n$/);
    });

    it("replicate over stdin/stdout with dupsh, then the other log has the nodes", () => {
      const b = join(dir, "b");
      mkdirSync(b);
      const synced = spawnSync(
        process.execPath,
        [bin, "dupsh", nodeCmd("replicate.cjs", join(dir, "a", "log.db")), nodeCmd("replicate.cjs", join(b, "log.db"))],
        { encoding: "utf-8", timeout: 60_000 },
      );
      assert.equal(synced.status, 0, synced.stderr);
      const read = run("read.cjs", b);
      assert.equal(read.status, 0, read.stderr);
      assert.match(read.stdout, /^1 8c7efb22[0-9a-f]{56} hello\n2 [0-9a-f]{64} world\n$/);
    });

    it("dupsh with a hyperkv script: concurrent puts on two peers both show after the sync", () => {
      const synced = spawnSync(
        process.execPath,
        [
          bin,
          "dupsh",
          nodeCmd("kv.cjs", join(dir, "kv-a"), "color", "blue"),
          nodeCmd("kv.cjs", join(dir, "kv-b"), "color", "green"),
        ],
        { encoding: "utf-8", timeout: 60_000 },
      );
      assert.equal(synced.status, 0, synced.stderr);
      assert.equal(synced.stderr.match(/^color = blue \| green$/gm)?.length, 2, synced.stderr);
    });
  },
);
