/**
 * `hyperlog serve`: the relay app and `RelayCore` on this runtime's HTTP and WebSocket server (Node with `ws`, Deno,
 * Bun), with real WebSockets from clients in this process: the scenarios every relay host runs
 * (tests/_relay-scenarios.ts: routes, convergence and live fan-out without echo, the CLI, a restart, tokens, limits,
 * hostile input closing only its own socket with the Worker's codes), and what is serve's own: one SQLite file per
 * log, 20 live clients, the command.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { main } from "../cli/cli.ts";
import { openSqlite } from "../storage/sqlite-open.ts";
import { connect, json, waitFor } from "./_relay-clients.ts";
import { relayScenarios } from "./_relay-scenarios.ts";
import { runtime } from "./_helpers.ts";
import { type RunningServer, serve } from "../worker/serve.ts";

function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

relayScenarios(`hyperlog serve on ${runtime}`, async (settings, dir) => {
  const server = await serve({ dir, port: 0, settings });
  return { url: server.url, stop: () => server.close() };
});

describe("hyperlog serve: one SQLite file per log, 20 live clients", () => {
  const dir = tempDir("hyperlog-serve-");
  let server: RunningServer | undefined;
  before(async () => {
    server = await serve({ dir, port: 0 });
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("20 live clients each add 100 nodes: all end with the 2 000, once each, and the relay's heads", async () => {
    const many = Array.from({ length: 20 }, () => connect(server!.url, "load"));
    try {
      await Promise.all(many.map((c) => c.session.synced));
      await Promise.all(many.map(async (c, i) => {
        for (let j = 0; j < 100; j++) await c.log.append(`client ${i} node ${j}`);
      }));
      await waitFor(() => many.every((c) => c.log.length === 2000), 120_000, "2 000 nodes at every client");
      const info = await json(await fetch(`${server!.url}/logs/load`));
      assert.ok(readdirSync(dir).includes("load.db"), "one SQLite file per log");
      assert.equal(info.length, 2000);
      const heads = (info.heads as string[]).slice().sort();
      for (const c of many) {
        assert.deepEqual((await c.log.heads()).map((n) => n.key).sort(), heads);
        assert.equal(c.session.stats.nodesReceived, 1900, "each received the others' nodes once, none of its own");
      }
    } finally {
      for (const c of many) c.socket.close();
    }
  });
});

describe("hyperlog serve: the command", () => {
  it("starts from main(), prints its URL, serves, and stops on its signal", async () => {
    const dir = tempDir("hyperlog-serve-cmd-");
    try {
      let out = "";
      let err = "";
      const stop = new AbortController();
      const io = {
        stdout: (t: string) => void (out += t),
        stderr: (t: string) => void (err += t),
        openStorage: (d: string) => openSqlite(join(d, "log.db")),
        signal: stop.signal,
      };
      const exited = main(["-d", dir, "serve", "--port", "0", "--write-token=w", "--max-nodes-per-second", "50"], io);
      await waitFor(() => /http:\/\/\S+:\d+/.test(out), 30_000, "the URL");
      const url = out.match(/(http:\/\/[^\s(]+:\d+)/)![1]!;
      assert.equal((await fetch(`${url}/logs/cmd`)).status, 404);
      const writer = connect(url, "cmd", { token: "w" });
      await writer.session.synced;
      await writer.log.append("through the command");
      await waitFor(async () => (await json(await fetch(`${url}/logs/cmd`))).length === 1, 30_000, "the write");
      writer.socket.close();
      stop.abort();
      assert.equal(await exited, 0, err);
      assert.match(err, /stopped/);
      assert.equal(await main(["-d", dir, "serve", "--port", "nope"], io), 2);
      assert.match(err, /not a port/);
      assert.equal(await main(["-d", dir, "serve", "--max-node-bytes=-1", "--port=0"], io), 2);
      assert.match(err, /MAX_NODE_BYTES must be a positive integer/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
