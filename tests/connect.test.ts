/**
 * The live client (`connect`) against a WebSocket peer that the tests stop and restart: `tests/fixtures/ws-peer.ts`
 * run by Deno, keeping its log in a SQLite file so that a restarted peer still has its nodes, id and checkpoints.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect, Hyperlog, socketUrl, type SyncStateDetail } from "../mod.ts";
import { waitFor } from "./_wait.ts";

const DENO = fileURLToPath(new URL("../node_modules/.bin/deno", import.meta.url));
const PEER = fileURLToPath(new URL("./fixtures/ws-peer.ts", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "hyperlog-connect-"));
const peers = new Set<ChildProcess>();

after(() => {
  for (const peer of peers) peer.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

interface Peer {
  port: number;
  base: string;
  stop(): Promise<void>;
}

async function startPeer(args: string[]): Promise<Peer> {
  const child = spawn(DENO, ["run", "-A", PEER, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  peers.add(child);
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d;
      const match = /PORT (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.on("exit", (code) => reject(new Error(`The WebSocket peer exited with ${code}`)));
  });
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    async stop() {
      child.kill("SIGKILL");
      await exited;
      peers.delete(child);
    },
  };
}

async function remoteKeys(peer: Peer): Promise<string[]> {
  return ((await (await fetch(`${peer.base}/keys`)).json()) as { keys: string[] }).keys;
}

async function localKeys(log: Hyperlog): Promise<string[]> {
  const keys: string[] = [];
  for await (const node of log.createReadStream()) keys.push(node.key);
  return keys.sort();
}

/**
 * The sentinel for "no event after close": a sibling connection with the same 10 ms delays, offline three times.
 * Its timers and the closed connection's would have fired in the same event loop, so the closed one had time to
 * retry and did not (an event, rather than a sleep, says the time has passed).
 */
async function siblingRetries(log: Hyperlog): Promise<void> {
  const sibling = connect(log, `ws://127.0.0.1:${await deadPort()}/ws`, { minDelay: 10, maxDelay: 10 });
  const states = record(sibling);
  await waitFor(() => states.filter((s) => s.state === "offline").length >= 3, 30_000, "a sibling's three retries");
  await sibling.close();
}

/** A port on which nothing listens. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function record(sync: EventTarget): SyncStateDetail[] {
  const seen: SyncStateDetail[] = [];
  sync.addEventListener("statechange", (e) => seen.push((e as CustomEvent<SyncStateDetail>).detail));
  return seen;
}

describe("connect: a live session that survives the peer going away", () => {
  it("goes connecting, syncing, live; offline writes reach the restarted peer, and the resync costs the difference", async () => {
    const db = join(dir, "peer.db");
    let peer = await startPeer(["--db", db]);
    const log = new Hyperlog({ valueEncoding: "json" });
    for (let i = 0; i < 20; i++) await log.append({ i });
    const sync = connect(log, `ws://127.0.0.1:${peer.port}/ws?live=1`, { minDelay: 50, maxDelay: 400 });
    const states = record(sync);
    assert.equal(sync.state, "connecting");
    await sync.when("live");
    assert.deepEqual(states.map((s) => s.state), ["connecting", "syncing", "live"]);
    assert.equal(states[2]!.stats?.nodesSent, 20, "the first sync sends the whole log");
    assert.deepEqual(await remoteKeys(peer), await localKeys(log));

    await log.append("while live");
    await waitFor(async () => (await remoteKeys(peer)).length === 21, 30_000, "the live write reaches the peer");

    await peer.stop();
    await sync.when("offline");
    const offline = states.find((s) => s.state === "offline")!;
    assert.equal(offline.previous, "live");
    assert.ok(offline.error instanceof Error, "offline says why");
    assert.ok(offline.retryIn! >= 0 && offline.retryIn! <= 400);
    for (let i = 0; i < 3; i++) await log.append({ offline: i });
    assert.equal(log.length, 24);

    const before = states.length;
    peer = await startPeer(["--db", db, "--port", String(peer.port)]);
    await waitFor(() => states.slice(before).some((s) => s.state === "live"), 60_000, "the client is live again");
    const resync = states.slice(before).find((s) => s.state === "live")!;
    assert.equal(resync.stats?.nodesSent, 3, "only the offline writes are sent");
    assert.equal(resync.stats?.nodesReceived, 0);
    assert.ok(resync.stats!.bytesSent + resync.stats!.bytesReceived < 4096, "the resync is small");
    assert.equal(sync.attempt, 0, "a live session resets the backoff");
    assert.equal(sync.error, undefined);
    assert.deepEqual(await remoteKeys(peer), await localKeys(log));

    // And the other way: a node added at the peer arrives.
    await fetch(`${peer.base}/add`, { method: "POST", body: JSON.stringify("from the peer") });
    await log.waitForLength(24);
    assert.equal(log.length, 25);

    await sync.close();
    assert.equal(sync.state, "closed");
    assert.equal(states.at(-1)!.state, "closed");
    await peer.stop();
  });

  it("backs off exponentially with jitter, capped at maxDelay", async () => {
    const log = new Hyperlog();
    const url = `ws://127.0.0.1:${await deadPort()}/ws`;
    const exact = connect(log, url, { minDelay: 20, maxDelay: 100, factor: 2, jitter: 0.5, random: () => 0 });
    const states = record(exact);
    await waitFor(() => states.filter((s) => s.state === "offline").length >= 5, 30_000, "five retries");
    await exact.close();
    const delays = states.filter((s) => s.state === "offline").slice(0, 5).map((s) => s.retryIn);
    assert.deepEqual(delays, [20, 40, 80, 100, 100]);
    assert.deepEqual(states.filter((s) => s.state === "offline").slice(0, 5).map((s) => s.attempt), [1, 2, 3, 4, 5]);
    assert.ok(states.every((s) => s.state !== "live" && s.state !== "syncing"));
    assert.deepEqual([1, 2, 3, 4, 5, 50].map((n) => exact.backoff(n)), [20, 40, 80, 100, 100, 100]);

    const jittered = connect(log, url, { minDelay: 20, maxDelay: 100, jitter: 0.5, random: () => 0.999 });
    const more = record(jittered);
    await waitFor(() => more.filter((s) => s.state === "offline").length >= 4, 30_000, "four retries");
    await jittered.close();
    const low = more.filter((s) => s.state === "offline").slice(0, 4).map((s) => s.retryIn);
    assert.deepEqual(low, [10, 20, 40, 50], "jitter takes up to half of each delay");
  });

  it("close() stops reconnecting, whether offline or live", async () => {
    const log = new Hyperlog();
    const sync = connect(log, `ws://127.0.0.1:${await deadPort()}/ws`, { minDelay: 10, maxDelay: 10 });
    const states = record(sync);
    await sync.when("offline");
    await sync.close();
    const count = states.length;
    await siblingRetries(log);
    assert.equal(states.length, count, "no event after close");
    assert.equal(sync.state, "closed");
    await sync.close(); // harmless

    const peer = await startPeer([]);
    const live = connect(log, `ws://127.0.0.1:${peer.port}/ws?live=1`, { minDelay: 10 });
    const liveStates = record(live);
    await live.when("live");
    await live.close();
    await siblingRetries(log);
    assert.deepEqual(liveStates.map((s) => s.state), ["connecting", "syncing", "live", "closed"]);
    await assert.rejects(live.when("live"), /closed before it was live/);
    await peer.stop();
  });

  it("sends the token as a query parameter, and a refused token keeps it offline with an error", async () => {
    const peer = await startPeer(["--token", "s3cret"]);
    const log = new Hyperlog();
    await log.append("x");
    const refused = connect(log, `ws://127.0.0.1:${peer.port}/ws?live=1`, { token: "wrong", minDelay: 20 });
    await refused.when("offline");
    assert.ok(refused.error instanceof Error);
    await refused.close();
    const accepted = connect(log, `http://127.0.0.1:${peer.port}/ws?live=1`, { token: "s3cret", minDelay: 20 });
    assert.equal(accepted.url, `ws://127.0.0.1:${peer.port}/ws?live=1&token=s3cret`);
    await accepted.when("live");
    assert.deepEqual(await remoteKeys(peer), await localKeys(log));
    await accepted.close();
    await peer.stop();
  });

  it("refuses a bad URL at once, with a clear error", () => {
    const log = new Hyperlog();
    assert.throws(() => connect(log, "relay.example/logs/x/ws"), {
      name: "TypeError",
      message: /not an absolute URL; use one like wss:\/\//,
    });
    assert.throws(() => connect(log, "ftp://relay.example/logs/x"), {
      name: "TypeError",
      message: /ftp: is not a WebSocket one/,
    });
    assert.throws(() => connect(log, "wss://relay.example/x", { minDelay: -1 }), {
      name: "TypeError",
      message: /minDelay/,
    });
    assert.throws(() => connect(log, "wss://relay.example/x", { token: "" }), { name: "TypeError", message: /token/ });
    assert.equal(
      socketUrl("https://relay.example/logs/a b/ws", "t&x"),
      "wss://relay.example/logs/a%20b/ws?token=t%26x",
    );
  });
});
