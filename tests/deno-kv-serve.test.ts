/**
 * The relay with Deno KV: `hyperlog serve --storage kv:PATH` (every log in one Deno KV database, kept across a
 * restart), two relays sharing one database (as Deploy's isolates do), and the Deno Deploy entry `worker/deno-deploy.ts` under `deno serve` (tokens from the environment, the
 * same layout in the database). Deno only (Deno KV).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, it } from "node:test";
import { main } from "../cli/cli.ts";
import { type DenoKvLike, DenoKvStorage } from "../storage/deno-kv.ts";
import { serve } from "../worker/serve.ts";
import { kvLogs } from "../worker/serve-kv.ts";
import { openSqlite } from "../storage/sqlite-open.ts";
import { denoOnly } from "./_helpers.ts";
import { connect, json, waitFor } from "./_relay-clients.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DENO = join(ROOT, "node_modules", ".bin", "deno");

/** Writes `count` nodes to log `name` through the relay at `url`, and waits until the relay has them. */
async function write(url: string, name: string, count: number, token?: string): Promise<void> {
  const client = connect(url, name, token === undefined ? {} : { token });
  await client.session.synced;
  for (let i = 0; i < count; i++) await client.log.append(`${name} ${i}`);
  const length = client.log.length;
  const init = token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } };
  await waitFor(
    async () => (await json(await fetch(`${url}/logs/${name}`, init))).length === length,
    30_000,
    "the writes",
  );
  client.socket.close();
  await client.closed;
}

/** The number of nodes of log `name` in the Deno KV file, read directly. */
async function stored(path: string, name: string): Promise<number> {
  const storage = await DenoKvStorage.open(path, { prefix: ["hyperlog", "logs", name] });
  const length = await storage.length();
  await storage.close();
  return length;
}

/** Starts `deno serve` on the Deploy entry; resolves with its URL once it listens. */
function deployEntry(env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    DENO,
    ["serve", "-A", "--unstable-kv", "--port", "0", "--host", "127.0.0.1", "worker/deno-deploy.ts"],
    { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  return new Promise((resolve, reject) => {
    let out = "";
    const seen = (chunk: string) => {
      out += chunk;
      const url = out.match(/Listening on (http:\/\/[\d.]+:\d+)/)?.[1];
      if (url !== undefined) resolve({ url, child });
    };
    child.stdout!.setEncoding("utf8").on("data", seen);
    child.stderr!.setEncoding("utf8").on("data", seen);
    child.on("exit", (code) => reject(new Error(`deno serve exited (${code}) before listening:\n${out}`)));
  });
}

denoOnly("The relay on Deno KV", "Deno KV (Deno.openKv) exists in Deno only", () => {
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-denokv-serve-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("hyperlog serve --storage kv:PATH keeps every log in one database, across a restart", async () => {
    const path = join(dir, "relay.kv");
    let out = "";
    let err = "";
    const run = () => {
      const stop = new AbortController();
      const io = {
        stdout: (t: string) => void (out += t),
        stderr: (t: string) => void (err += t),
        openStorage: (d: string) => openSqlite(join(d, "log.db")),
        signal: stop.signal,
      };
      out = "";
      return { stop, exited: main(["-d", dir, "serve", "--port", "0", "--storage", `kv:${path}`], io) };
    };
    let server = run();
    await waitFor(() => /http:\/\/\S+:\d+/.test(out), 30_000, "the URL");
    assert.match(out, new RegExp(`logs in the Deno KV database ${path.replace(/[.\\/]/g, "\\$&")}`));
    let url = out.match(/(http:\/\/[^\s(]+:\d+)/)![1]!;
    await write(url, "chat", 3);
    await write(url, "notes", 2);
    server.stop.abort();
    assert.equal(await server.exited, 0, err);
    assert.equal(await stored(path, "chat"), 3);
    assert.equal(await stored(path, "notes"), 2);

    server = run();
    await waitFor(() => /http:\/\/\S+:\d+/.test(out), 30_000, "the URL");
    url = out.match(/(http:\/\/[^\s(]+:\d+)/)![1]!;
    assert.equal((await json(await fetch(`${url}/logs/chat`))).length, 3, "kept across the restart");
    const reader = connect(url, "notes", { live: false });
    assert.equal((await reader.session.done).nodesReceived, 2);
    server.stop.abort();
    assert.equal(await server.exited, 0, err);

    const io = { stdout: () => {}, stderr: (t: string) => void (err += t), openStorage: () => openSqlite(":memory:") };
    assert.equal(await main(["-d", dir, "serve", "--port", "0", "--storage", "leveldb"], io), 2);
    assert.match(err, /--storage leveldb is not a storage: give sqlite, kv or kv:PATH/);
  });

  it("two relays on one database (two isolates on Deploy): a node sent to one reaches the other's live clients", async () => {
    const kv = await (globalThis as unknown as { Deno: { openKv(p: string): Promise<DenoKvLike> } }).Deno
      .openKv(":memory:");
    const one = await serve({ dir: "", port: 0, openLog: kvLogs(kv) });
    const two = await serve({ dir: "", port: 0, openLog: kvLogs(kv) });
    try {
      const first = connect(one.url, "shared");
      const second = connect(two.url, "shared");
      await Promise.all([first.session.synced, second.session.synced]);
      await first.log.append("through one");
      await waitFor(() => second.log.length === 1, 30_000, "the node through the other relay");
      await second.log.append("through two");
      await waitFor(() => first.log.length === 2, 30_000, "the reply through the first relay");
      for (const url of [one.url, two.url]) assert.equal((await json(await fetch(`${url}/logs/shared`))).length, 2);
      for (const client of [first, second]) client.socket.close();
      await Promise.all([first.closed, second.closed]);
    } finally {
      await one.close();
      await two.close();
      kv.close();
    }
  });

  it("worker/deno-deploy.ts under deno serve: tokens from the environment, logs in the database", async () => {
    const path = join(dir, "deploy.kv");
    const env = { HYPERLOG_KV_PATH: path, READ_TOKEN: "r", WRITE_TOKEN: "w" };
    const auth = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
    let { url, child } = await deployEntry(env);
    try {
      assert.equal((await fetch(`${url}/logs/edge`)).status, 401, "READ_TOKEN from the environment");
      assert.deepEqual(await json(await fetch(`${url}/logs/edge`, auth("r"))), { heads: [], length: 0 });
      await write(url, "edge", 4, "w");
    } finally {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    }
    assert.equal(await stored(path, "edge"), 4);
    ({ url, child } = await deployEntry(env));
    try {
      assert.equal((await json(await fetch(`${url}/logs/edge`, auth("r")))).length, 4, "kept across a restart");
    } finally {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    }
  });
});
