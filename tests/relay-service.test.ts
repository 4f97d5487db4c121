/**
 * `hyperlog serve` as a service (issue 13), on Node, Deno and Bun: logs cost nothing until written (reads of unknown
 * names create no file, descriptors come back), idle and least-recently-used logs are closed, caps on logs, log size
 * and sockets refuse with their close codes, the HELLO deadline, settings checked at start, names that differ only
 * in case kept apart on a case-folding file system, values too deep for JSON served in base64, the write budget over
 * the initial exchange, secrets kept out of answers and log lines, and `/metrics`.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Hyperlog } from "../mod.ts";
import { main } from "../cli/cli.ts";
import { openSqlite } from "../storage/sqlite-open.ts";
import { fileNameOf, nameOfFile } from "../worker/caps.ts";
import { setEventSink } from "../worker/events.ts";
import { CLOSE } from "../worker/limits.ts";
import { type RunningServer, serve, type ServeSettings } from "../worker/serve.ts";
import { ConfigError } from "../worker/settings.ts";
import { connect as tcpConnect } from "node:net";
import { sendRaw } from "./_http-fuzz.ts";
import { connect, json, waitFor } from "./_relay-clients.ts";

const KEY_A = "ab".repeat(32);

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "hyperlog-service-"));
}

/** Open file descriptors of this process (Linux). */
function descriptors(): number {
  return readdirSync("/proc/self/fd").length;
}

/** Writes `n` nodes to log `name` through a socket and waits for the relay to close the session. */
async function write(url: string, name: string, n = 1, options: { token?: string } = {}): Promise<void> {
  const log = new Hyperlog();
  for (let i = 0; i < n; i++) await log.append(`${name} ${i}`);
  const client = connect(url, name, { log, live: false, ...options });
  await client.session.done;
  await client.closed;
}

/** Starts a relay with `settings` in a new directory; collects the log lines. */
async function start(settings: ServeSettings = {}): Promise<{ server: RunningServer; dir: string; lines: string[] }> {
  const dir = tempDir();
  const lines: string[] = [];
  const restore = setEventSink((line) => void lines.push(line));
  const server = await serve({ dir, port: 0, settings });
  const close = server.close.bind(server);
  server.close = async () => {
    await close();
    restore();
    rmSync(dir, { recursive: true, force: true });
  };
  return { server, dir, lines };
}

/** The head of the answer to a WebSocket upgrade offering `protocols`, over raw TCP. */
function upgradeHead(port: number, protocols: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ port, host: "127.0.0.1" });
    let got = "";
    socket.on("error", reject);
    socket.on("data", (chunk: Uint8Array) => {
      got += Buffer.from(chunk).toString("latin1");
      const end = got.indexOf("\r\n\r\n");
      if (end !== -1) {
        socket.destroy();
        resolve(got.slice(0, end + 2));
      }
    });
    socket.write(
      "GET /logs/chat/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
        `Sec-WebSocket-Protocol: ${protocols}\r\n\r\n`,
    );
  });
}

describe("hyperlog serve: logs cost nothing until written", () => {
  let relay: Awaited<ReturnType<typeof start>>;
  before(async () => {
    relay = await start({ MAX_OPEN_LOGS: "10" });
  });
  after(() => relay.server.close());

  it("2 000 reads of distinct unknown names: 404s, no file, descriptors back to their count", async () => {
    const { server, dir } = relay;
    const port = server.port;
    await sendRaw(port, "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    const start = descriptors();
    for (let i = 0; i < 2000; i += 50) {
      const batch = Array.from({ length: 50 }, (_, j) => i + j);
      const statuses = await Promise.all(batch.map((n) => {
        const route = ["", "/changes", `/nodes/${KEY_A}`][n % 3];
        return sendRaw(port, `GET /logs/unknown-${n}${route} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
      }));
      assert.ok(statuses.every((s) => s === "404"), `statuses ${[...new Set(statuses)]}`);
    }
    assert.deepEqual(readdirSync(dir), [], "no file");
    assert.equal(server.relay.openLogs, 0);
    // Each connection's descriptors go when the server has seen it close.
    await waitFor(() => descriptors() <= start, 10_000, `descriptors back to ${start} (now ${descriptors()})`);
  });

  it("a socket that only reads creates nothing; its first write creates the log", async () => {
    const { server, dir } = relay;
    const reader = connect(server.url, "lazy", { live: false });
    await reader.session.done;
    await reader.closed;
    assert.equal(existsSync(join(dir, "lazy.db")), false);
    await write(server.url, "lazy");
    assert.equal(existsSync(join(dir, "lazy.db")), true);
    assert.equal((await json(await fetch(`${server.url}/logs/lazy`))).length, 1);
  });

  it("40 written logs with MAX_OPEN_LOGS 10: never more than 10 open, descriptors bounded", async () => {
    const { server } = relay;
    const start = descriptors();
    let most = 0;
    let mostFds = 0;
    for (let i = 0; i < 40; i++) {
      await write(server.url, `many-${i}`);
      most = Math.max(most, server.relay.openLogs);
      mostFds = Math.max(mostFds, descriptors());
    }
    assert.ok(most <= 10, `at most 10 open logs, saw ${most}`);
    // Each open log holds its file, its WAL and its shared memory: 3 descriptors.
    assert.ok(mostFds <= start + 3 * 10 + 10, `descriptors ${start} -> at most ${mostFds}`);
    assert.equal((await json(await fetch(`${server.url}/logs/many-0`))).length, 1, "a closed log opens again");
  });
});

describe("hyperlog serve: idle logs, caps and deadlines", () => {
  let relay: Awaited<ReturnType<typeof start>>;
  before(async () => {
    relay = await start({
      IDLE_LOG_MS: "200",
      MAX_LOGS: "3",
      MAX_SOCKETS_PER_LOG: "2",
      HELLO_TIMEOUT_MS: "300",
    });
  });
  after(() => relay.server.close());

  it("a log with no socket and no request is closed after IDLE_LOG_MS, also after a read dropped mid-body", async () => {
    const { server } = relay;
    const log = new Hyperlog();
    await log.batch(Array.from({ length: 3000 }, (_, i) => ({ value: `${i} ${"v".repeat(200)}`, links: [] })));
    const client = connect(server.url, "idle", { log, live: false });
    await client.session.done;
    await client.closed;
    await waitFor(() => server.relay.openLogs === 0, 10_000, "the idle log to close");
    // Close to a megabyte of NDJSON, dropped after its first chunk.
    const changes = await fetch(`${server.url}/logs/idle/changes`);
    const reader = changes.body!.getReader();
    await reader.read();
    assert.equal(server.relay.openLogs, 1);
    await reader.cancel();
    await waitFor(() => server.relay.openLogs === 0, 10_000, "the log to close after the dropped read");
    assert.equal((await json(await fetch(`${server.url}/logs/idle`))).length, 3000);
  });

  it("MAX_LOGS: the write that would create one log too many is refused with 4508, and no file", async () => {
    const { server, dir } = relay;
    await write(server.url, "second");
    await write(server.url, "third");
    const log = new Hyperlog();
    await log.append("one too many");
    const client = connect(server.url, "fourth", { log, live: false });
    await assert.rejects(client.session.done, /as many logs as it may/);
    assert.equal((await client.closed).code, CLOSE.TOO_MANY_LOGS);
    assert.equal(existsSync(join(dir, "fourth.db")), false);
    assert.equal((await fetch(`${server.url}/logs/fourth`)).status, 404);
  });

  it("MAX_SOCKETS_PER_LOG: the third socket is closed with 4503, the first two keep syncing", async () => {
    const { server } = relay;
    const a = connect(server.url, "idle");
    const b = connect(server.url, "idle");
    await Promise.all([a.session.synced, b.session.synced]);
    const c = connect(server.url, "idle");
    const closed = await c.closed;
    assert.equal(closed.code, CLOSE.TOO_MANY_SOCKETS);
    assert.match(closed.reason, /full/);
    const before = b.log.length;
    await a.log.append("y");
    await waitFor(() => b.log.length === before + 1, 10_000, "b to receive a's node");
    a.socket.close();
    b.socket.close();
  });

  it("a socket that sends no HELLO is closed with 4408 after HELLO_TIMEOUT_MS", async () => {
    const socket = new WebSocket(`${relay.server.url.replace(/^http/, "ws")}/logs/second/ws`, ["hyperlog"]);
    const closed = await new Promise<CloseEvent>((resolve) => socket.addEventListener("close", resolve));
    assert.equal(closed.code, CLOSE.HELLO_TIMEOUT);
    const refusals = relay.lines.map((l) => JSON.parse(l)).filter((e) => e.event === "refused");
    for (const code of [CLOSE.HELLO_TIMEOUT, CLOSE.TOO_MANY_SOCKETS, CLOSE.TOO_MANY_LOGS]) {
      assert.ok(refusals.some((e) => e.code === code), `a JSON log line for ${code}`);
    }
  });
});

describe("hyperlog serve: the log size cap and the write budget", () => {
  it("MAX_LOG_BYTES: a write past the size is refused with 4507; the log still reads", async () => {
    const { server } = await start({ MAX_LOG_BYTES: "100000" });
    try {
      const log = new Hyperlog();
      await log.batch(Array.from({ length: 200 }, (_, i) => ({ value: `${i} ${"x".repeat(1000)}`, links: [] })));
      const client = connect(server.url, "full", { log, live: false });
      await assert.rejects(client.session.done, /at its size limit of 100000 bytes/);
      const { code } = await client.closed;
      // Deno's server can lose the close frame of a socket whose peer is still sending (README, "Self-hosted relay").
      if (!("Deno" in globalThis && (code === 0 || code === 1006))) assert.equal(code, CLOSE.LOG_FULL);
      // What the refused session had not yet committed is dropped with it.
      const info = await fetch(`${server.url}/logs/full`);
      const length = info.status === 404 ? 0 : (await json(info)).length as number;
      assert.ok(length < 100, `at most about 100 KB stored: ${length} nodes of 1 KB`);
    } finally {
      await server.close();
    }
  });

  it("a client pushing 3 000 nodes at connect with 200/s (burst 500) is closed with 4029", async () => {
    const { server } = await start({ MAX_NODES_PER_SECOND: "200", MAX_NODES_BURST: "500" });
    try {
      const log = new Hyperlog();
      await log.batch(Array.from({ length: 3000 }, (_, i) => ({ value: i, links: [] })));
      const client = connect(server.url, "push", { log, live: false });
      await assert.rejects(client.session.done, /More than 200 nodes per second/);
      const info = await fetch(`${server.url}/logs/push`);
      const length = info.status === 404 ? 0 : (await json(info)).length as number;
      assert.ok(length <= 1000, `stored ${length} of 3 000`);
    } finally {
      await server.close();
    }
  });
});

describe("hyperlog serve: settings checked at start", () => {
  it("WRITERS as a list, with a bad name or a bad key, or a bad number: a ConfigError, and exit 2", async () => {
    const dir = tempDir();
    try {
      for (
        const [settings, pattern] of [
          [{ WRITERS: `["${KEY_A}"]` }, /not a list/],
          [{ WRITERS: `{"bad name": ["${KEY_A}"]}` }, /not a log name/],
          [{ WRITERS: `{"chat": ["nope"]}` }, /not a 64-character/],
          [{ WRITERS: `{"chat": []}` }, /non-empty list/],
          [{ MAX_OPEN_LOGS: "0" }, /MAX_OPEN_LOGS must be a positive integer/],
        ] as const
      ) {
        await assert.rejects(
          serve({ dir, port: 0, settings }),
          (e) => e instanceof ConfigError && pattern.test(e.message),
        );
      }
      let err = "";
      const io = { stdout: () => {}, stderr: (t: string) => void (err += t), openStorage: openSqlite };
      assert.equal(await main(["-d", dir, "serve", "--port=0", `--writers=["${KEY_A}"]`], io), 2);
      assert.match(err, /WRITERS must be a JSON object/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("tokens from a file; a token on the command line works with a warning", async () => {
    const dir = tempDir();
    try {
      writeFileSync(join(dir, "write-token"), "from-a-file\n");
      for (
        const [flag, warned] of [[`--write-token-file=${join(dir, "write-token")}`, false], [
          "--write-token=from-a-file",
          true,
        ]] as const
      ) {
        let out = "";
        let err = "";
        const stop = new AbortController();
        const io = {
          stdout: (t: string) => void (out += t),
          stderr: (t: string) => void (err += t),
          openStorage: openSqlite,
          signal: stop.signal,
        };
        const exited = main(["-d", join(dir, "data"), "serve", "--port=0", flag, "--max-open-logs", "5"], io);
        await waitFor(() => /http:\/\/\S+:\d+/.test(out), 30_000, "the URL");
        const url = out.match(/(http:\/\/[^\s(]+:\d+)/)![1]!;
        await write(url, "filed", 1, { token: "from-a-file" });
        assert.equal((await json(await fetch(`${url}/logs/filed`))).length, 1);
        stop.abort();
        assert.equal(await exited, 0, err);
        assert.equal(/Warning: --write-token on the command line/.test(err), warned, err);
        assert.ok(!err.includes("from-a-file"), "the token is not printed");
      }
      let err = "";
      const io = { stdout: () => {}, stderr: (t: string) => void (err += t), openStorage: openSqlite };
      assert.equal(await main(["-d", dir, "serve", "--port=0", "--write-token-file", join(dir, "none")], io), 2);
      assert.match(err, /cannot be read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("with WRITERS set, /logs/constructor and /logs/toString are logs like any other (404, not 500)", async () => {
    const { server } = await start({ WRITERS: JSON.stringify({ chat: [KEY_A] }) });
    try {
      for (const name of ["constructor", "toString", "valueOf", "hasOwnProperty", "isPrototypeOf"]) {
        assert.equal((await fetch(`${server.url}/logs/${name}`)).status, 404, name);
      }
      await write(server.url, "constructor");
      assert.equal((await json(await fetch(`${server.url}/logs/constructor`))).length, 1);
    } finally {
      await server.close();
    }
  });
});

describe("hyperlog serve: names, deep values, secrets, metrics", () => {
  let relay: Awaited<ReturnType<typeof start>>;
  before(async () => {
    relay = await start({ WRITE_TOKEN: "w-secret", METRICS_TOKEN: "m-secret", MAX_NODE_BYTES: "1048576" });
  });
  after(() => relay.server.close());
  const auth = { headers: { authorization: "Bearer w-secret" } };

  it("file names: no two names share a file on a case-folding file system (emulated), and round-trip", () => {
    const names = ["chat", "Chat", "CHAT", "cHaT", "a", "A", "con", "Con", "nul.x", "com1", "a.b-c_d", "Z9"];
    for (let i = 0; i < 2000; i++) {
      const length = 1 + (i % 12);
      names.push(
        Array.from({ length }, (_, j) => "aAbBzZ09._-"[(i * 7 + j * 13) % 11]).join("").replace(/^[._-]/, "x"),
      );
    }
    // A case-folding file system sees a file name in one case: the folded names must stay distinct.
    const folded = new Map<string, string>();
    for (const name of new Set(names)) {
      const file = fileNameOf(name);
      assert.equal(nameOfFile(file), name, `${name} round-trips`);
      const seen = folded.get(file.toLowerCase());
      assert.ok(seen === undefined || seen === name, `${name} and ${seen} would share ${file}`);
      folded.set(file.toLowerCase(), name);
    }
  });

  it("/logs/Chat and /logs/chat are two logs with two files; an old Chat.db is renamed at start", async () => {
    const { server, dir } = relay;
    await write(server.url, "chat", 1, { token: "w-secret" });
    await write(server.url, "Chat", 2, { token: "w-secret" });
    assert.equal((await json(await fetch(`${server.url}/logs/chat`, auth))).length, 1);
    assert.equal((await json(await fetch(`${server.url}/logs/Chat`, auth))).length, 2);
    const files = readdirSync(dir).filter((f) => f.endsWith(".db"));
    assert.deepEqual(files.sort(), ["+chat.db", "chat.db"]);
    const old = tempDir();
    try {
      writeFileSync(join(old, "Chat.db"), "");
      const again = await serve({ dir: old, port: 0 });
      await again.close();
      assert.deepEqual(readdirSync(old), ["+chat.db"]);
    } finally {
      rmSync(old, { recursive: true, force: true });
    }
  });

  it("a 200 KB [[[...]]] value is served by /nodes and /changes, in valueBase64", async () => {
    const { server } = relay;
    const log = new Hyperlog<Uint8Array>(undefined, { valueEncoding: "binary" });
    const deep = new TextEncoder().encode("[".repeat(100_000) + "]".repeat(100_000));
    const node = await log.append(deep);
    const after = await log.append(new TextEncoder().encode('{"after": true}'));
    const client = connect(server.url, "deep", {
      log: log as unknown as Hyperlog<unknown>,
      live: false,
      token: "w-secret",
    });
    await client.session.done;
    const one = await fetch(`${server.url}/logs/deep/nodes/${node.key}`, auth);
    assert.equal(one.status, 200);
    const body = await json(one);
    assert.equal(body.valueBase64, Buffer.from(deep).toString("base64"));
    const changes = await fetch(`${server.url}/logs/deep/changes`, auth);
    assert.equal(changes.status, 200);
    const lines = (await changes.text()).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.key), [node.key, after.key], "every node, none an error");
    assert.deepEqual(lines[1].value, { after: true });
  });

  it("a 500 names no path; the bearer subprotocol is never echoed; no token in any log line", async () => {
    const { server, dir, lines } = relay;
    // A directory where the log's file should be: opening it fails.
    mkdirSync(join(dir, "broken.db"));
    const failed = await fetch(`${server.url}/logs/broken`, auth);
    assert.equal(failed.status, 500);
    const text = await failed.text();
    assert.ok(!text.includes(dir) && !text.includes("/tmp") && !/\bat \w/.test(text), text);
    // Offered alone, the bearer subprotocol is not chosen (so a WebSocket client gives up: offer hyperlog with it).
    const head = await upgradeHead(server.port, "bearer.w-secret");
    assert.match(head, /^HTTP\/1.1 101/);
    assert.ok(!/w-secret/.test(head) && !/sec-websocket-protocol/i.test(head), head);
    assert.match(await upgradeHead(server.port, "hyperlog, bearer.w-secret"), /sec-websocket-protocol: hyperlog\r\n/i);
    const both = connect(server.url, "chat", { protocols: ["hyperlog", "bearer.w-secret"] });
    await both.session.synced;
    assert.equal(both.socket.protocol, "hyperlog");
    both.socket.close();
    await fetch(`${server.url}/logs/nope?token=w-secret`);
    await fetch(`${server.url}/logs/x`, { headers: { authorization: "Bearer wrong-secret" } });
    assert.ok(lines.length > 0);
    for (const line of lines) {
      assert.ok(!line.includes("w-secret") && !line.includes("wrong-secret"), line);
      JSON.parse(line);
    }
  });

  it("/metrics: 404 without METRICS_TOKEN, 401 without the token, Prometheus text with it", async () => {
    const { server } = relay;
    assert.equal((await fetch(`${server.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${server.url}/metrics`, auth)).status, 401, "the write token is not the metrics one");
    const response = await fetch(`${server.url}/metrics`, { headers: { authorization: "Bearer m-secret" } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /text\/plain/);
    const text = await response.text();
    for (const name of ["open_logs", "sockets", "nodes_in_total", "bytes_in_total", "bytes_out_total"]) {
      assert.match(text, new RegExp(`^hyperlog_${name} \\d+$`, "m"), name);
    }
    assert.match(text, /^hyperlog_http_responses_total\{status="401"\} [1-9]/m);
    assert.match(text, /^hyperlog_http_responses_total\{status="500"\} [1-9]/m);
    const { server: other } = await start();
    try {
      assert.equal((await fetch(`${other.url}/metrics`)).status, 404);
    } finally {
      await other.close();
    }
  });
});
