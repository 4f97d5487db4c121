/**
 * Old databases and old peers from the command line: a LevelDB written by the original hyperlog 4.12.1 (the
 * devDependency, on level 5, inside the test) is imported with `importHyperlog4` and with
 * `hyperlog import --from-hyperlog4 DIR` (same keys, links, values, change order; writer logs and seqs kept;
 * hyperlog 4 signatures kept beside the nodes); and `hyperlog sync --hyperlog4` converges with a script that runs
 * the original, through `hyperlog dupsh` (the seed's replicate snippet on the other side), both ways.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { ClassicLevel } from "classic-level";
import { Hyperlog } from "../mod.ts";
import { hyperlog } from "../compat/mod.ts";
import { importHyperlog4 } from "../compat/import.ts";
import { openSqlite } from "../storage/sqlite-open.ts";

const require = createRequire(import.meta.url);
const dir = mkdtempSync(join(tmpdir(), "hyperlog-import-"));
after(() => rmSync(dir, { recursive: true, force: true }));
// deno-lint-ignore no-explicit-any
type Any = any;
const original = require("hyperlog4") as (db: unknown, opts?: object) => Any;
const level = require("level") as (path: string) => Any;
const memdb = require("memdb") as () => unknown;
const pump = require("pump") as (...streams: Any[]) => void;

const BIN = fileURLToPath(new URL("../bin/hyperlog.mjs", import.meta.url));
const PEER = fileURLToPath(new URL("./fixtures/hyperlog4-peer.cjs", import.meta.url));
const NODE = fileURLToPath(new URL("../node_modules/.bin/node", import.meta.url));
const globals = globalThis as { Deno?: unknown };
const RUNTIME = globals.Deno !== undefined ? [process.execPath, "run", "-A", BIN] : [process.execPath, BIN];
const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

function call<R>(fn: (cb: (err?: Error | null, result?: R) => void) => void): Promise<R> {
  return new Promise((resolve, reject) => fn((err, result) => (err ? reject(err) : resolve(result as R))));
}

function collect(stream: Any): Promise<Any[]> {
  return new Promise((resolve, reject) => {
    const out: Any[] = [];
    stream.on("data", (row: Any) => out.push(row)).on("error", reject).on("end", () => resolve(out));
  });
}

function cli(args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const [cmd, ...rest] = RUNTIME as [string, ...string[]];
    const child = spawn(cmd, [...rest, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Uint8Array) => (stderr += new TextDecoder().decode(d)));
    child.stdout.resume();
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stderr });
    });
  });
}

/** Writes a hyperlog 4.12.1 database in `path`: two writers (one via replication), links, a batch, a signed node. */
async function writeOld(path: string): Promise<Any[]> {
  const db = level(path);
  // An explicit id: hyperlog 4 reads its id with valueEncoding "utf-8", which level 5's codec does not know (it
  // would get a Buffer); the seed's level() of the time knew it.
  const log = original(db, {
    id: `old-writer-${path.slice(-1)}`,
    valueEncoding: "json",
    identity: Buffer.from("old-public-key"),
    sign: (_node: Any, cb: Any) => cb(null, Buffer.from("old-signature")),
  });
  const other = original(memdb(), { valueEncoding: "json" });
  const o = await call<Any>((cb) => other.add(null, { from: "other" }, cb));
  await call((cb) => other.add([o.key], { from: "other", n: 2 }, cb));
  await new Promise<void>((resolve, reject) => {
    const r = log.replicate();
    pump(r, other.replicate(), r, (err: Error | undefined) => (err ? reject(err) : resolve()));
  });
  const a = await call<Any>((cb) => log.add(null, { n: 1 }, cb));
  await call((cb) => log.batch([{ links: [a.key], value: { n: 2 } }, { links: [a.key, o.key], value: { n: 3 } }], cb));
  await call((cb) => log.append("last", cb));
  const nodes = await collect(log.createReadStream());
  // What hyperlog 4 stores when it makes its own id (it does not when given one, as here): its log id.
  await call((cb) => db.put("!!id", `old-writer-${path.slice(-1)}`, cb));
  await call((cb) => db.close(cb));
  return nodes;
}

describe("hyperlog 4 databases and peers", () => {
  it("importHyperlog4 copies every node in change order with its keys, links, values, log and seq", async () => {
    const path = join(dir, "old-1");
    const old = await writeOld(path);
    assert.equal(old.length, 6);
    const log = new Hyperlog({ valueEncoding: "json" });
    const db = new ClassicLevel(path, { createIfMissing: false });
    const result = await importHyperlog4(log, db as Any);
    assert.deepEqual(result, { nodes: 6, imported: 6, signed: 4, id: "old-writer-1", cursor: "!changes!06" });
    const nodes = [];
    for await (const node of log.createReadStream()) nodes.push(node);
    assert.deepEqual(
      nodes.map((n) => [n.change, n.key, n.links, n.value]),
      old.map((n) => [n.change, n.key, n.links, n.value]),
    );
    assert.equal((await importHyperlog4(log, db as Any)).imported, 0, "a second import adds nothing");
    await db.close();
    // The compat API over the same storage shows each node's writer log and seq, and the old signatures.
    const view = hyperlog(log.storage, { valueEncoding: "json" });
    const viewed = await collect(view.createReadStream());
    assert.deepEqual(viewed.map((n: Any) => [n.key, n.log, n.seq]), old.map((n) => [n.key, n.log, n.seq]));
    const signed = viewed.find((n: Any) => n.signature !== null);
    assert.equal(new TextDecoder().decode(signed.signature), "old-signature");
    assert.equal(new TextDecoder().decode(signed.identity), "old-public-key");
  });

  it("the compat entry opened on a hyperlog 4 database takes its nodes along, and its writer log carries on", async () => {
    const path = join(dir, "old-0");
    const old = await writeOld(path);
    const db = level(path);
    const log = hyperlog(db, { valueEncoding: "json" });
    const nodes = await collect(log.createReadStream());
    assert.deepEqual(
      nodes.map((n: Any) => [n.change, n.key, n.links, n.log, n.seq, n.value]),
      old.map((n) => [n.change, n.key, n.links, n.log, n.seq, n.value]),
    );
    const mine = old.filter((n) => n.log === "old-writer-0");
    const next = await call<Any>((cb) => log.append({ after: "upgrade" }, cb));
    assert.equal(next.seq, mine.length + 1, "the old writer's log goes on");
    assert.equal(log.id, "old-writer-0");
    await call((cb) => log.close(cb));
    await call((cb) => db.close(cb));
    const again = level(path);
    const reopened = hyperlog(again, { valueEncoding: "json" });
    assert.equal((await collect(reopened.createReadStream())).length, old.length + 1, "nothing imported twice");
    await call((cb) => reopened.close(cb));
    await call((cb) => again.close(cb));
  });

  it("hyperlog import --from-hyperlog4 DIR, then the log lists the same nodes", async () => {
    const path = join(dir, "old-2");
    const old = await writeOld(path);
    const target = join(dir, "new-2");
    const run = await cli(["-d", target, "import", "--from-hyperlog4", path]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /import: 6 of 6 nodes imported from hyperlog 4 database/);
    assert.match(run.stderr, /4 with hyperlog 4 signatures/);
    const log = new Hyperlog(await openSqlite(join(target, "log.db")), { valueEncoding: "json" });
    const nodes = [];
    for await (const node of log.createReadStream()) nodes.push(node);
    assert.deepEqual(nodes.map((n) => [n.key, n.links]), old.map((n) => [n.key, n.links]));
    await log.close();
    const bad = await cli(["-d", target, "import", path]);
    assert.equal(bad.status, 2, "import without --from-hyperlog4 is a usage error");
  });

  it("hyperlog sync --hyperlog4 converges with a peer running hyperlog 4.12.1, through dupsh", async () => {
    const target = join(dir, "new-3");
    const added = await cli(["-d", target, "add", "from the new peer"]);
    assert.equal(added.status, 0, added.stderr);
    const oldDir = join(dir, "old-3");
    const peer = join(dir, "peer.sh");
    writeFileSync(peer, `#!/bin/sh\nexec ${quote(NODE)} ${quote(PEER)} ${quote(oldDir)} 'from the old peer'\n`);
    const mine = join(dir, "mine.sh");
    writeFileSync(mine, `#!/bin/sh\nexec ${RUNTIME.map(quote).join(" ")} -d ${quote(target)} sync --hyperlog4\n`);
    const run = await cli(["dupsh", `sh ${peer}`, `sh ${mine}`]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /sync: sent 1 nodes, received 1 nodes/);
    assert.match(run.stderr, /\["\\"from the new peer\\"","\\"from the old peer\\""\]/, "the old peer has both");
    const log = new Hyperlog(await openSqlite(join(target, "log.db")), { valueEncoding: "json" });
    assert.deepEqual((await log.heads()).map((n) => n.value).sort(), ["from the new peer", "from the old peer"]);
    await log.close();
  });
});
