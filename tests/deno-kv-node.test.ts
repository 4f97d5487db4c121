/**
 * Node opens a Deno KV file that Deno wrote, through the npm client `@deno/kv` (a native addon with the same
 * SQLite-backed store), and `DenoKvStorage` reads the log Deno wrote: same id, nodes and values. Node then adds a
 * node, and Deno reads it back. Node only (it drives the Deno child); Deno's own tests are storage/deno-kv.test.ts.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, it } from "node:test";
import { Hyperlog } from "../mod.ts";
import { main } from "../cli/cli.ts";
import { type DenoKvLike, DenoKvStorage } from "../storage/deno-kv.ts";
import { nodeOnly } from "./_helpers.ts";

const DENO = fileURLToPath(new URL("../node_modules/.bin/deno", import.meta.url));
const CHILD = fileURLToPath(new URL("./fixtures/deno-kv-child.ts", import.meta.url));

function deno(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const proc = spawn(DENO, ["run", "-A", "--unstable-kv", CHILD, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    proc.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    proc.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
    proc.on("error", reject);
    proc.on(
      "close",
      (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`Deno failed (${code}):\n${err}`))),
    );
  });
}

nodeOnly("Deno KV from Node (@deno/kv)", "it opens the file with the npm client's Node addon", () => {
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-denokv-node-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reads a log that Deno wrote, and Deno reads what Node adds", async () => {
    const path = join(dir, "shared.kv");
    const id = await deno(path, "write-log", "1500");
    const { openKv } = await import("@deno/kv");
    const kv = await openKv(path) as unknown as DenoKvLike;
    const log = new Hyperlog<{ n: number }>(new DenoKvStorage(kv, { closeKv: true }), { valueEncoding: "json" });
    await log.ready();
    assert.equal(log.id, id);
    assert.equal(log.length, 1500);
    const values: number[] = [];
    for await (const node of log.createReadStream()) values.push(node.value.n);
    assert.deepEqual(values, Array.from({ length: 1500 }, (_, i) => i));
    const [head] = await log.heads();
    assert.deepEqual(head!.value, { n: 1499 });
    assert.deepEqual((await log.get(head!.links[0]!)).value, { n: 1498 });
    await log.append({ n: 1500 });
    await log.close();
    // Deno sees Node's node, and adds two after it.
    assert.equal(await deno(path, "append", "2"), "2 1503");
  });

  it("hyperlog serve --storage kv outside Deno is a usage error that says to run it on Deno", async () => {
    let err = "";
    const io = { stdout: () => {}, stderr: (t: string) => void (err += t), openStorage: () => Promise.reject() };
    assert.equal(await main(["-d", dir, "serve", "--port", "0", "--storage", "kv"], io), 2);
    assert.match(err, /--storage kv needs Deno: deno run -A --unstable-kv/);
  });
});
