/**
 * The npm package as a user gets it: `npm pack` (which builds dist/ with tsc), installed into a fresh project, and
 * used from plain JavaScript (ESM) on Node, on Bun, and on Deno (through `npm:` specifiers): a log on
 * SQLite, HyperKV, and a replication between two logs; then the `hyperlog` command from the installed bin. Runs under
 * Node only (it drives npm and the other runtimes from Node); needs the npm registry for the package's one
 * dependency, or an npm cache that has it.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { nodeOnly } from "./_helpers.ts";
import { after, describe, it } from "node:test";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const BIN = join(ROOT, "node_modules", ".bin");

const APP = `
import { HyperKV, Hyperlog } from "@hyperlog/hyperlog";
import { openSqlite } from "@hyperlog/hyperlog/sqlite";
import { storageConformanceCases } from "@hyperlog/hyperlog/conformance";
import { MemoryStorage } from "@hyperlog/hyperlog";
import { main } from "@hyperlog/hyperlog/cli";
import { runStorageConformance } from "@hyperlog/hyperlog/testing";

const file = process.argv[2] ?? Deno.args[0];
const a = new Hyperlog(await openSqlite(file));
const b = new Hyperlog();
const first = await a.add(null, { hello: "world" });
await a.add([first.key], "second");
await b.append("from b");
const ra = a.replicate();
const rb = b.replicate();
ra.readable.pipeTo(rb.writable);
rb.readable.pipeTo(ra.writable);
const [sa, sb] = await Promise.all([ra.done, rb.done]);
const kv = new HyperKV(b);
await kv.put("color", "blue");
const cases = storageConformanceCases({ create: () => new MemoryStorage() });
await cases[0].run();
console.log(JSON.stringify({
  sent: sa.nodesSent,
  received: sb.nodesReceived,
  lengths: [a.length, b.length],
  color: Object.values(await kv.get("color")),
  cases: cases.length,
  entries: typeof main === "function" && typeof runStorageConformance === "function",
}));
await a.close();
await b.close();
`;

nodeOnly("the npm package", "the package test drives npm and the three runtimes from Node", () => {
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-package-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const env = { ...process.env, PATH: `${BIN}:${dirname(process.execPath)}:${process.env.PATH}` };

  it("packs, installs into a fresh project, and works from Node, Bun and Deno and as a command", () => {
    execFileSync("npm", ["pack", "--pack-destination", dir, "--silent"], { cwd: ROOT, env, stdio: "pipe" });
    const tarball = readdirSync(dir).find((name) => name.endsWith(".tgz"));
    assert.ok(tarball, "npm pack made a tarball");
    const listing = execFileSync("tar", ["-tzf", join(dir, tarball)], { encoding: "utf8" }).split("\n");
    assert.ok(listing.includes("package/dist/mod.js") && listing.includes("package/dist/mod.d.ts"));
    assert.ok(!listing.some((name) => name.includes(".test.") || name.startsWith("package/tests/")));
    const project = join(dir, "project");
    execFileSync("mkdir", ["-p", project]);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    execFileSync("npm", ["install", join(dir, tarball), "--no-audit", "--no-fund", "--silent"], {
      cwd: project,
      env,
      stdio: "pipe",
      timeout: 180_000,
    });
    writeFileSync(join(project, "app.mjs"), APP);
    // Deno imports it through npm: specifiers, resolved from the project's node_modules ("manual" mode).
    writeFileSync(join(project, "deno.json"), JSON.stringify({ nodeModulesDir: "manual" }));
    writeFileSync(join(project, "app-deno.mjs"), APP.replaceAll('from "@hyperlog/', 'from "npm:@hyperlog/'));
    const expected = { sent: 2, received: 2, lengths: [3, 4], color: ["blue"], cases: 0, entries: true };
    const runners: Array<[string, string[]]> = [
      ["node", [process.execPath, "app.mjs"]],
      ["bun", [join(BIN, "bun"), "app.mjs"]],
      ["deno", [join(BIN, "deno"), "run", "-A", "app-deno.mjs"]],
    ];
    for (const [name, [cmd, ...args]] of runners) {
      const db = join(dir, `${name}.db`);
      const result = spawnSync(cmd!, [...args, db], { cwd: project, env, encoding: "utf8", timeout: 120_000 });
      assert.equal(result.status, 0, `${name}: ${result.stderr}`);
      const got = JSON.parse(result.stdout.trim().split("\n").pop()!);
      assert.ok(got.cases > 10, `${name}: the conformance suite is exported`);
      assert.deepEqual({ ...got, cases: 0 }, expected, name);
    }
    const store = join(dir, "cli-store");
    const hyperlog = join(project, "node_modules", ".bin", "hyperlog");
    const added = spawnSync(hyperlog, ["-d", store, "add", "hello"], { cwd: project, env, encoding: "utf8" });
    assert.equal(added.status, 0, added.stderr);
    assert.match(added.stdout, /^[0-9a-f]{64}\n$/);
    const listed = spawnSync(hyperlog, ["-d", store, "ls"], { cwd: project, env, encoding: "utf8" });
    assert.equal(JSON.parse(listed.stdout).value, "hello");
    // hyperlog 4 code (CommonJS) on the compat entry: require() returns the hyperlog function itself.
    writeFileSync(
      join(project, "compat.cjs"),
      "var hyperlog = require('@hyperlog/hyperlog/compat')\n" +
        "hyperlog(null, { valueEncoding: 'utf-8' }).add(null, 'hello', function (err, node) {\n" +
        "  if (err) throw err\n  console.log(node.key, node.seq, node.value)\n})\n",
    );
    const compat = spawnSync(process.execPath, ["compat.cjs"], { cwd: project, env, encoding: "utf8" });
    assert.equal(compat.status, 0, compat.stderr);
    assert.equal(compat.stdout, "8c7efb22472592f561a7a7647f8c5ee93134880b4ca0c92889a61848cd5c4602 1 hello\n");
  });
});
