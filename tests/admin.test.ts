/**
 * The operator's dashboard, `GET /admin`: off without a token, refused without the right one; in `hyperlog serve`
 * it lists every log of the directory (opened or not) with its size, nodes, heads, last write and live sockets,
 * linking each to its page and graph, and the sockets refused in the last hour; the Worker (Miniflare, Node only)
 * does the same through its registry Object.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Hyperlog } from "../mod.ts";
import { openSqlite } from "../storage/sqlite-open.ts";
import { type RunningServer, serve } from "../worker/serve.ts";
import { type Client, connect, json, waitFor } from "./_relay-clients.ts";

const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const ADMIN = "admin-secret";

function admin(base: string, token: string | undefined, accept = "application/json"): Promise<Response> {
  return fetch(`${base}/admin`, {
    headers: { accept, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
  });
}

describe("the admin dashboard in hyperlog serve", () => {
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-admin-"));
  let server: RunningServer | undefined;
  const clients: Client[] = [];
  let heads: string[] = [];
  before(async () => {
    // A log written before the relay started (never opened by it yet), and one with a live client.
    const stored = new Hyperlog(await openSqlite(join(dir, "archive.db")), { valueEncoding: "json" });
    const root = await stored.append("old");
    await stored.add([root.key], "fork a");
    await stored.add([root.key], "fork b");
    heads = (await stored.heads()).map((n) => n.key).sort();
    await stored.close();
    server = await serve({ dir, port: 0, settings: { ADMIN_TOKEN: ADMIN, READ_TOKEN: "reader", WRITE_TOKEN: "w" } });
    const client = connect(server.url, "chat", { token: "w" });
    clients.push(client);
    for (let i = 0; i < 5; i++) await client.log.append(`message ${i}`);
    await client.session.synced;
    await waitFor(
      async () => (await json(await fetch(`${server!.url}/logs/chat?token=w`))).length === 5,
      20_000,
      "5 nodes on the relay",
    );
  });
  after(async () => {
    for (const c of clients) c.socket.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses a request without the admin token, or with another token", async () => {
    for (const token of [undefined, "nope", "reader", "w"]) {
      const response = await admin(server!.url, token);
      assert.equal(response.status, 401, String(token));
      assert.match(String((await json(response)).error), /^The admin dashboard needs the admin token/);
    }
  });

  it("lists every log with its size, nodes, heads, last write and live sockets", async () => {
    const response = await admin(server!.url, ADMIN);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("cache-control"), "no-store");
    const body = await json(response) as {
      registry: boolean;
      total: number;
      logs: { name: string; length: number; heads: string[]; sockets: number; bytes: number; lastWrite: string }[];
    };
    assert.equal(body.registry, true);
    assert.deepEqual(body.logs.map((l) => l.name), ["archive", "chat"]);
    const [archive, chat] = body.logs as [typeof body.logs[0], typeof body.logs[0]];
    assert.equal(archive.length, 3);
    assert.deepEqual(archive.heads.sort(), heads);
    assert.equal(archive.sockets, 0);
    assert.equal(chat.length, 5);
    assert.equal(chat.heads.length, 1);
    assert.equal(chat.sockets, 1, "the live client");
    for (const log of body.logs) {
      assert.ok(log.bytes > 0, `${log.name} has a size`);
      assert.ok(Date.now() - Date.parse(log.lastWrite) < 10 * 60_000, `${log.name} was written just now`);
    }
  });

  it("is an HTML page for a browser, with a link to each log's page and graph and no script", async () => {
    const response = await fetch(`${server!.url}/admin?token=${ADMIN}`, { headers: { accept: "text/html" } });
    assert.match(response.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(response.headers.get("content-security-policy") ?? "", /default-src 'none'/);
    const html = await response.text();
    for (const name of ["archive", "chat"]) {
      // Opened with ?token=, the links carry it, and the admin token reads the log (READ_TOKEN is set here).
      assert.ok(html.includes(`<a href="/logs/${name}?token=${ADMIN}">${name}</a>`), name);
      assert.ok(html.includes(`<a href="/logs/${name}/graph?token=${ADMIN}">graph</a>`), name);
      const page = await fetch(`${server!.url}/logs/${name}?token=${ADMIN}`, { headers: { accept: "text/html" } });
      assert.equal(page.status, 200, name);
      assert.match(await page.text(), /<svg/);
      assert.equal((await fetch(`${server!.url}/logs/${name}/graph?token=${ADMIN}`)).status, 200, name);
    }
    // Through the header, the page's links carry no token.
    const viaHeader = await (await admin(server!.url, ADMIN, "text/html")).text();
    assert.ok(viaHeader.includes(`<a href="/logs/chat">chat</a>`));
    assert.match(html, /<tr data-log="chat"><td>.*<\/td><td class="n">5<\/td>.*<td class="n">1<\/td>/);
    assert.ok(!html.includes("<script"));
  });

  it("counts the sockets it refused in the last hour, by close code", async () => {
    const before = await json(await admin(server!.url, ADMIN)) as { metrics?: Record<string, number> };
    const row = "refused 4000 (protocol error), last hour";
    const was = before.metrics?.[row] ?? 0;
    const socket = new WebSocket(`${server!.url.replace(/^http/, "ws")}/logs/chat/ws?token=w`);
    const closed = new Promise<number>((resolve) => socket.addEventListener("close", (e) => resolve(e.code)));
    socket.addEventListener("open", () => socket.send(new Uint8Array([0xff, 0xff, 0xff])));
    assert.equal(await closed, 4000);
    const after = await json(await admin(server!.url, ADMIN)) as { metrics?: Record<string, number> };
    assert.equal(after.metrics?.[row], was + 1);
    const html = await (await admin(server!.url, ADMIN, "text/html")).text();
    assert.ok(html.includes(`<tr><td>${row}</td><td class="n">${was + 1}</td></tr>`));
  });
});

describe("the admin dashboard is off without a token", () => {
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-admin-off-"));
  let server: RunningServer | undefined;
  before(async () => {
    server = await serve({ dir, port: 0 });
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers 404 and says how to turn it on", async () => {
    const response = await admin(server!.url, "anything");
    assert.equal(response.status, 404);
    assert.match(String((await json(response)).error), /set ADMIN_TOKEN \(or METRICS_TOKEN\)/);
  });
});

if (runtime === "node") {
  const { startRelay } = await import("./fixtures/relay-miniflare.ts");
  describe("the admin dashboard in the Worker (workerd through Miniflare)", () => {
    let relay: Awaited<ReturnType<typeof startRelay>> | undefined;
    before(async () => {
      relay = await startRelay({ vars: { METRICS_TOKEN: "metrics" } });
    });
    after(async () => {
      await relay?.stop();
    });

    it("takes the metrics token, lists the logs written and counts refusals through the registry Object", async () => {
      assert.equal((await admin(relay!.url, "nope")).status, 401);
      const empty = await json(await admin(relay!.url, "metrics"));
      assert.deepEqual(empty, { registry: true, logs: [], total: 0, metrics: {} });
      // A log read but never written is not listed; one written is, with its size, nodes and live socket.
      assert.equal((await fetch(`${relay!.url}/logs/unwritten`)).status, 404);
      const client = connect(relay!.url, "board");
      try {
        for (let i = 0; i < 3; i++) await client.log.append(`note ${i}`);
        await waitFor(
          async () => (await json(await fetch(`${relay!.url}/logs/board`))).length === 3,
          20_000,
          "3 nodes on the relay",
        );
        type Body = {
          logs: { name: string; length: number; bytes: number; sockets: number }[];
          metrics: Record<string, number>;
        };
        await waitFor(
          async () => (await json(await admin(relay!.url, "metrics")) as Body).logs.length === 1,
          20_000,
          "the log in the registry",
        );
        // A client cannot reach the registry by sending its header: the app strips it.
        const posing = await fetch(`${relay!.url}/logs/board`, { headers: { "x-hyperlog-registry": "1" } });
        assert.equal((await json(posing)).length, 3);
        const listed = await json(await admin(relay!.url, "metrics")) as Body;
        assert.equal(listed.logs[0]!.name, "board");
        assert.equal(listed.logs[0]!.length, 3);
        assert.equal(listed.logs[0]!.sockets, 1);
        assert.ok(listed.logs[0]!.bytes > 0);
        // A socket sending garbage is refused with 4000; the registry hears of it within its report interval.
        const socket = new WebSocket(`${relay!.url.replace(/^http/, "ws")}/logs/board/ws`);
        const closed = new Promise<number>((resolve) => socket.addEventListener("close", (e) => resolve(e.code)));
        socket.addEventListener("open", () => socket.send(new Uint8Array([0xff, 0xff, 0xff])));
        assert.equal(await closed, 4000);
        const row = "refused 4000 (protocol error), last hour";
        await waitFor(
          async () => (await json(await admin(relay!.url, "metrics")) as Body).metrics[row] === 1,
          20_000,
          "the refusal in the registry",
        );
        const html = await (await admin(relay!.url, "metrics", "text/html")).text();
        assert.ok(html.includes(`<a href="/logs/board/graph">graph</a>`));
        assert.ok(html.includes(`<tr><td>${row}</td><td class="n">1</td></tr>`));
      } finally {
        client.socket.close();
      }
    });
  });
}
