/**
 * The relay worker as a service (issue 13), in workerd through Miniflare: reads of unknown logs are 404s that leave
 * no Durable Object storage, a bad WRITERS is a 500 naming the setting, own-property lookups, values too deep for
 * JSON in base64, the bearer subprotocol never echoed, no path in a 500, the per-log socket cap and the HELLO
 * deadline with their close codes. Node only: Miniflare starts workerd from Node.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Hyperlog } from "../mod.ts";
import { CLOSE } from "../worker/limits.ts";
import { connect, json } from "./_relay-clients.ts";
import { waitFor } from "./_wait.ts";
import type { RunningRelay } from "./fixtures/relay-miniflare.ts";

const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const KEY_A = "ab".repeat(32);

/** Every file under `dir` with its size. */
function files(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else {
        // workerd may remove a journal between the listing and the stat.
        try {
          out.set(path, statSync(path).size);
        } catch (error) {
          if ((error as { code?: string }).code !== "ENOENT") throw error;
        }
      }
    }
  };
  walk(dir);
  return out;
}

/**
 * The tables of a SQLite file, read-only (Node's `node:sqlite`, loaded on Node only); waits while workerd holds the
 * file's lock for a write (a read at that moment failed with "database is locked").
 */
function tablesOf(file: string): string[] {
  const db = new sqlite!.DatabaseSync(file, { readOnly: true });
  try {
    db.exec("PRAGMA busy_timeout = 10000");
    return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[])
      .map((row) => row.name);
  } finally {
    db.close();
  }
}

const sqlite = runtime === "node" ? await import("node:sqlite") : undefined;

if (runtime !== "node") {
  describe("relay worker as a service (workerd)", () => {
    it("runs on Node only", { skip: `Miniflare starts workerd from Node; skipped on ${runtime}` }, () => {});
  });
} else {
  const { startRelay } = await import("./fixtures/relay-miniflare.ts");

  describe("relay worker as a service (workerd through Miniflare)", () => {
    const persist = mkdtempSync(join(tmpdir(), "hyperlog-worker-service-"));
    let relay: RunningRelay;
    before(async () => {
      relay = await startRelay({
        persist,
        kv: false,
        vars: {
          WRITERS: JSON.stringify({ guarded: [KEY_A] }),
          MAX_SOCKETS_PER_LOG: "2",
          HELLO_TIMEOUT_MS: "300",
          MAX_NODE_BYTES: "1048576",
          METRICS_TOKEN: "m-secret",
        },
      });
    });
    after(async () => {
      await relay?.stop();
      rmSync(persist, { recursive: true, force: true });
    });

    it("300 reads of distinct unknown logs: 404s, and no Durable Object storage written", async () => {
      for (let i = 0; i < 300; i += 30) {
        const statuses = await Promise.all(Array.from({ length: 30 }, async (_, j) => {
          const route = ["", "/changes", `/nodes/${"cd".repeat(32)}`][(i + j) % 3];
          const response = await fetch(`${relay.url}/logs/unknown-${i + j}${route}`);
          await response.body?.cancel();
          return response.status;
        }));
        assert.ok(statuses.every((s) => s === 404), `statuses ${[...new Set(statuses)]}`);
      }
      // workerd makes an empty database file for each Object it starts, written or not: what counts is that none of
      // them holds a table (an Object that stores a node holds hyperlog's).
      const databases = [...files(persist).keys()].filter((p) =>
        p.endsWith(".sqlite") && !p.endsWith("metadata.sqlite")
      );
      assert.ok(databases.length >= 300, `one per Object started (${databases.length})`);
      assert.deepEqual(databases.filter((p) => tablesOf(p).length > 0), [], "no Durable Object wrote a table");
      const log = new Hyperlog();
      await log.append("now it exists");
      await connect(relay.url, "written", { log, live: false }).session.done;
      const writtenNow = () =>
        [...files(persist).keys()]
          .filter((p) => p.endsWith(".sqlite") && !p.endsWith("metadata.sqlite") && tablesOf(p).length > 0);
      // The registry hears of the first write in the background.
      await waitFor(() => writtenNow().length >= 2, 20_000, "the registry's report");
      const written = writtenNow();
      // The log's Object, and the registry Object it reports its first write to (worker/registry.ts, for /admin).
      assert.equal(written.length, 2, "the first write creates the log's tables and the registry's");
      assert.equal(written.filter((p) => tablesOf(p).includes("hyperlog_nodes")).length, 1);
      assert.equal(written.filter((p) => tablesOf(p).includes("hyperlog_registry")).length, 1);
    });

    it("with WRITERS set, /logs/constructor is a log like any other (404, then its first write)", async () => {
      for (const name of ["constructor", "toString", "valueOf"]) {
        assert.equal((await fetch(`${relay.url}/logs/${name}`)).status, 404, name);
      }
      const log = new Hyperlog();
      await log.append("hello");
      await connect(relay.url, "constructor", { log, live: false }).session.done;
      assert.equal((await json(await fetch(`${relay.url}/logs/constructor`))).length, 1);
    });

    it("a 200 KB [[[...]]] value is served by /nodes and /changes in valueBase64", async () => {
      const log = new Hyperlog<Uint8Array>(undefined, { valueEncoding: "binary" });
      const deep = new TextEncoder().encode("[".repeat(100_000) + "]".repeat(100_000));
      const node = await log.append(deep);
      await connect(relay.url, "deep", { log: log as unknown as Hyperlog<unknown>, live: false }).session.done;
      const one = await fetch(`${relay.url}/logs/deep/nodes/${node.key}`);
      assert.equal(one.status, 200);
      assert.equal((await json(one)).valueBase64, Buffer.from(deep).toString("base64"));
      const changes = await fetch(`${relay.url}/logs/deep/changes`);
      assert.equal(changes.status, 200);
      assert.equal(JSON.parse((await changes.text()).trim()).key, node.key);
    });

    it("the bearer subprotocol is never echoed", async () => {
      const both = connect(relay.url, "deep", { protocols: ["hyperlog", "bearer.some-token"] });
      await both.session.synced;
      assert.equal(both.socket.protocol, "hyperlog");
      both.socket.close();
      // Offered alone, it is not chosen: the client gives up (the WebSocket standard), with nothing echoed.
      const alone = connect(relay.url, "deep", { protocols: ["bearer.some-token"] });
      await assert.rejects(alone.session.done);
    });

    it("MAX_SOCKETS_PER_LOG: the third socket is closed with 4503; HELLO_TIMEOUT_MS: a silent one with 4408", async () => {
      const a = connect(relay.url, "capped");
      const b = connect(relay.url, "capped");
      await Promise.all([a.session.synced, b.session.synced]);
      const c = connect(relay.url, "capped");
      assert.equal((await c.closed).code, CLOSE.TOO_MANY_SOCKETS);
      a.socket.close();
      b.socket.close();
      const silent = new WebSocket(`${relay.url.replace(/^http/, "ws")}/logs/silent/ws`, ["hyperlog"]);
      const closed = await new Promise<CloseEvent>((resolve) => silent.addEventListener("close", resolve));
      assert.equal(closed.code, CLOSE.HELLO_TIMEOUT);
    });
  });

  describe("relay worker: /metrics (workerd through Miniflare)", () => {
    let relay: RunningRelay;
    before(async () => {
      relay = await startRelay({ kv: false, vars: { METRICS_TOKEN: "m-secret" } });
    });
    after(async () => {
      await relay?.stop();
    });

    it("behind METRICS_TOKEN: the isolate's answers by status", async () => {
      assert.equal((await fetch(`${relay.url}/logs/nothing-here`)).status, 404);
      assert.equal((await fetch(`${relay.url}/metrics`)).status, 401);
      const response = await fetch(`${relay.url}/metrics`, { headers: { authorization: "Bearer m-secret" } });
      assert.equal(response.status, 200);
      const text = await response.text();
      assert.match(text, /^hyperlog_http_responses_total\{status="404"\} [1-9]/m);
      assert.match(text, /^hyperlog_http_responses_total\{status="401"\} [1-9]/m);
    });
  });

  describe("relay worker with a bad setting (workerd through Miniflare)", () => {
    let relay: RunningRelay;
    before(async () => {
      relay = await startRelay({ kv: false, vars: { WRITERS: `["${KEY_A}"]` } });
    });
    after(async () => {
      await relay?.stop();
    });

    it("WRITERS as a list: every request is a 500 naming the setting; no path, no stack", async () => {
      for (const path of ["/health", "/logs/chat", "/logs/chat/ws"]) {
        const response = await fetch(`${relay.url}${path}`);
        assert.equal(response.status, 500, path);
        const text = await response.text();
        assert.match(text, /The relay is misconfigured: WRITERS must be a JSON object/);
        assert.ok(!/\bat \w|\/work\//.test(text), text);
      }
    });
  });
}
