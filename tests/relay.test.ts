/**
 * The relay worker in workerd (Miniflare), with real WebSockets from clients in this process: convergence, live
 * fan-out without echo, the HTTP routes, the KV mirror, a wake-up after hibernation, persistence across restarts,
 * 50 concurrent clients, access control, limits and hostile input. Node only: Miniflare starts workerd from Node.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Hyperlog } from "../mod.ts";
import { encodeNodeBody, frame } from "../src/wire.ts";
import { CLOSE } from "../worker/limits.ts";
import { type Client, connect, json, nodeMessage, waitFor } from "./_relay-clients.ts";
import type { RunningRelay } from "./fixtures/relay-miniflare.ts";

const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";

async function keysOf(log: Hyperlog<unknown>): Promise<string[]> {
  const keys: string[] = [];
  for await (const node of log.createReadStream()) keys.push(node.key);
  return keys.sort();
}

if (runtime !== "node") {
  const reason = `the relay tests run on Node only (Miniflare starts workerd from Node); skipped on ${runtime}`;
  console.log(`Skipping: ${reason}`);
  describe("relay worker (workerd)", () => {
    it("runs on Node only", { skip: reason }, () => {});
  });
} else {
  const { startRelay } = await import("./fixtures/relay-miniflare.ts");

  describe("relay worker: sync, live fan-out, routes, KV, wake-up (workerd through Miniflare)", () => {
    let relay: RunningRelay;
    const clients: Client[] = [];
    before(async () => {
      relay = await startRelay({ vars: { RELAY_DEBUG: "1" } });
    });
    after(async () => {
      for (const c of clients) c.socket.close();
      await relay?.stop();
    });

    it("serves /, /health, and refuses bad names, keys and since with 400", async () => {
      assert.match(await (await fetch(`${relay.url}/`)).text(), /hyperlog relay/);
      assert.deepEqual(await json(await fetch(`${relay.url}/health`)), { ok: true });
      const badName = await fetch(`${relay.url}/logs/bad%20name`);
      assert.equal(badName.status, 400);
      assert.match(String((await json(badName)).error), /Log name "bad name" is not valid/);
      const badKey = await fetch(`${relay.url}/logs/routes/nodes/XYZ`);
      assert.equal(badKey.status, 400);
      assert.match(String((await json(badKey)).error), /not a node key/);
      const badSince = await fetch(`${relay.url}/logs/routes/changes?since=-1`);
      assert.equal(badSince.status, 400);
      assert.match(String((await json(badSince)).error), /since="-1" is not valid/);
      const noUpgrade = await fetch(`${relay.url}/logs/routes/ws`);
      assert.equal(noUpgrade.status, 426);
      assert.equal((await fetch(`${relay.url}/nope`)).status, 404);
      const missing = await fetch(`${relay.url}/logs/routes/nodes/${"ab".repeat(32)}`);
      assert.equal(missing.status, 404);
      const unknown = await fetch(`${relay.url}/logs/routes`);
      assert.equal(unknown.status, 404, "a log never written is not there");
      assert.match(String((await json(unknown)).error), /comes into being with its first write/);
    });

    it("three clients converge; a live node reaches the others and not its sender", async () => {
      const logs = [new Hyperlog(), new Hyperlog(), new Hyperlog()];
      for (const [i, log] of logs.entries()) for (let j = 0; j < 5; j++) await log.append(`client ${i} #${j}`);
      const three = logs.map((log) => connect(relay.url, "three", { log }));
      clients.push(...three);
      await Promise.all(three.map((c) => c.session.synced));
      await waitFor(() => three.every((c) => c.log.length === 15), 30_000, "15 nodes everywhere");
      const keys = await keysOf(three[0]!.log);
      for (const c of three) assert.deepEqual(await keysOf(c.log), keys);

      const before = three.map((c) => c.session.stats.nodesReceived);
      const live = await three[1]!.log.append("live from client 1");
      await waitFor(() => three.every((c) => c.log.length === 16), 30_000, "the live node everywhere");
      // A sentinel from client 0, sent after the relay had the live node: an echo to client 1 would come before it.
      const sentinel = await three[0]!.log.append("sentinel from client 0");
      await waitFor(() => three.every((c) => c.log.length === 17), 30_000, "the sentinel everywhere");
      const afterStats = three.map((c) => c.session.stats.nodesReceived);
      assert.deepEqual(
        afterStats,
        [before[0]! + 1, before[1]! + 1, before[2]! + 2],
        "the live node and the sentinel reached the others once each; the senders received nothing back",
      );
      const info = await json(await fetch(`${relay.url}/logs/three`));
      assert.deepEqual(info, { heads: [sentinel.key], length: 17 });
      assert.deepEqual((await three[0]!.log.get(sentinel.key)).links, [live.key]);
    });

    it("serves nodes by key from the KV mirror, and changes as NDJSON", async () => {
      const log = new Hyperlog();
      const a = await log.append({ hello: "kv" });
      const b = await log.append("second");
      const client = connect(relay.url, "reads", { log, live: false });
      await client.session.done;
      const url = `${relay.url}/logs/reads/nodes/${a.key}`;
      await waitFor(async () => (await fetch(url)).headers.get("x-hyperlog-from") === "kv", 30_000, "the KV mirror");
      assert.deepEqual(await json(await fetch(url)), { key: a.key, links: [], change: 1, value: { hello: "kv" } });
      const lines = (await (await fetch(`${relay.url}/logs/reads/changes?since=1`)).text()).trim().split("\n");
      assert.deepEqual(lines.map((line) => JSON.parse(line)), [
        { key: b.key, links: [a.key], change: 2, value: "second" },
      ]);
      const all = await (await fetch(`${relay.url}/logs/reads/changes`)).text();
      assert.equal(all.trim().split("\n").length, 2);
    });

    it("hyperlog sync ws://HOST/logs/NAME syncs a CLI store with the relay", async () => {
      const { main } = await import("../cli/cli.ts");
      const dirs = [mkdtempSync(join(tmpdir(), "hyperlog-cli-a-")), mkdtempSync(join(tmpdir(), "hyperlog-cli-b-"))];
      try {
        let err = "";
        let out = "";
        const io = (await import("../storage/sqlite-open.ts")).openSqlite;
        const cli = {
          stdout: (t: string) => void (out += t),
          stderr: (t: string) => void (err += t),
          openStorage: (d: string) => io(join(d, "log.db")),
        };
        assert.equal(await main(["-d", dirs[0]!, "add", "from the cli"], cli), 0);
        const key = out.trim();
        assert.equal(await main(["-d", dirs[0]!, "sync", `${relay.url.replace(/^http/, "ws")}/logs/cli`], cli), 0, err);
        assert.match(err, /sent 1 nodes, received 0 nodes/);
        assert.equal(
          await main(["-d", dirs[1]!, "sync", `${relay.url.replace(/^http/, "ws")}/logs/cli/ws`], cli),
          0,
          err,
        );
        assert.match(err, /sent 0 nodes, received 1 nodes/);
        out = "";
        assert.equal(await main(["-d", dirs[1]!, "heads"], cli), 0);
        assert.equal(out.trim(), key);
        assert.equal(await main(["-d", dirs[1]!, "sync", "ws://127.0.0.1:1/elsewhere"], cli), 2);
        assert.match(err, /not a relay log URL/);
      } finally {
        for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
      }
    });

    it("carries on after a wake-up: live sockets keep receiving and sending, from their attachments", async () => {
      const two = [connect(relay.url, "wake"), connect(relay.url, "wake")];
      clients.push(...two);
      await Promise.all(two.map((c) => c.session.synced));
      await two[0]!.log.append("before");
      await waitFor(() => two[1]!.log.length === 1, 30_000, "the first node");
      const forgot = await fetch(`${relay.url}/logs/wake/debug/forget`, { method: "POST" });
      assert.deepEqual(await json(forgot), { forgot: true });
      await two[1]!.log.append("after the wake-up, from 1");
      await waitFor(() => two[0]!.log.length === 2, 30_000, "a node sent after the wake-up");
      await two[0]!.log.append("after the wake-up, from 0");
      await waitFor(() => two[1]!.log.length === 3, 30_000, "a node received after the wake-up");
      // A sentinel each way: an echo of an earlier node would reach its sender before the other's sentinel.
      await two[1]!.log.append("sentinel from 1");
      await waitFor(() => two[0]!.log.length === 4, 30_000, "the sentinel from 1");
      await two[0]!.log.append("sentinel from 0");
      await waitFor(() => two[1]!.log.length === 5, 30_000, "the sentinel from 0");
      assert.equal(two[0]!.session.stats.nodesReceived, 2, "no echo after the wake-up");
      assert.equal(two[1]!.session.stats.nodesReceived, 3, "no echo after the wake-up");
      assert.equal((await json(await fetch(`${relay.url}/logs/wake`))).length, 5);
    });
  });

  describe("relay worker: persistence across restarts (workerd through Miniflare)", () => {
    let dir: string;
    let relay: RunningRelay | undefined;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), "hyperlog-relay-"));
    });
    after(async () => {
      await relay?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it("keeps everything, and a resync after the restart costs the difference", async () => {
      relay = await startRelay({ persist: dir });
      const log = new Hyperlog();
      await log.batch(Array.from({ length: 2000 }, (_, i) => ({ value: `node ${i}`, links: i === 0 ? [] : [i - 1] })));
      const first = connect(relay.url, "kept", { log, live: false });
      assert.equal((await first.session.done).nodesSent, 2000);
      const info = await json(await fetch(`${relay.url}/logs/kept`));
      assert.equal(info.length, 2000);
      await relay.stop();

      relay = await startRelay({ persist: dir });
      assert.deepEqual(await json(await fetch(`${relay.url}/logs/kept`)), info, "everything is still there");
      for (let i = 0; i < 5; i++) await log.append(`new ${i}`);
      const again = connect(relay.url, "kept", { log, live: false });
      const stats = await again.session.done;
      assert.equal(stats.nodesSent, 5);
      assert.equal(stats.nodesReceived, 0);
      // Five small nodes and a few control messages: far below what 2 005 keys would cost.
      assert.ok(stats.bytesSent + stats.bytesReceived < 2000, `resync cost ${stats.bytesSent + stats.bytesReceived} B`);
      // A new client starting empty gets everything.
      const fresh = connect(relay.url, "kept", { live: false });
      assert.equal((await fresh.session.done).nodesReceived, 2005);
    });
  });

  describe("relay worker: 50 concurrent clients (workerd through Miniflare)", () => {
    let relay: RunningRelay;
    before(async () => {
      // Without the KV mirror: 10 000 local KV writes would measure Miniflare's KV, not the relay.
      relay = await startRelay({ kv: false });
    });
    after(async () => {
      await relay?.stop();
    });

    it("50 clients each add 200 nodes while live: all end with the 10 000 nodes, heads match", {
      timeout: 600_000,
    }, async () => {
      const many = Array.from({ length: 50 }, () => connect(relay.url, "load"));
      try {
        await Promise.all(many.map((c) => c.session.synced));
        await Promise.all(many.map(async (c, i) => {
          for (let j = 0; j < 200; j++) await c.log.append(`client ${i} node ${j}`);
        }));
        await waitFor(() => many.every((c) => c.log.length === 10_000), 540_000, "10 000 nodes at every client");
        const info = await json(await fetch(`${relay.url}/logs/load`));
        assert.equal(info.length, 10_000);
        const relayHeads = (info.heads as string[]).slice().sort();
        for (const c of many) {
          assert.deepEqual((await c.log.heads()).map((n) => n.key).sort(), relayHeads);
          assert.equal(c.session.stats.nodesReceived, 9_800, "each received the others' nodes once, none of its own");
        }
      } finally {
        for (const c of many) c.socket.close();
      }
    });
  });

  describe("relay worker: access control, limits and hostile input (workerd through Miniflare)", () => {
    let relay: RunningRelay;
    before(async () => {
      relay = await startRelay({
        vars: {
          READ_TOKEN: "r-secret",
          WRITE_TOKEN: "w-secret",
          MAX_FRAME_BYTES: "65536",
          MAX_NODE_BYTES: "4096",
          MAX_NODES_PER_SECOND: "200",
          MAX_NODES_BURST: "200",
        },
      });
    });
    after(async () => {
      await relay?.stop();
    });

    const auth = { headers: { authorization: "Bearer w-secret" } };

    /** A writer and a watcher, both live; the watcher sees what the relay stores. */
    async function pair(name: string): Promise<{ writer: Client; watcher: Client }> {
      const writer = connect(relay.url, name, { token: "w-secret" });
      const watcher = connect(relay.url, name, { token: "w-secret" });
      await Promise.all([writer.session.synced, watcher.session.synced]);
      return { writer, watcher };
    }

    /** Checks that the others keep syncing: a node from the writer reaches the watcher. */
    async function stillSyncing({ writer, watcher }: { writer: Client; watcher: Client }): Promise<void> {
      const node = await writer.log.append(`still syncing ${Math.random()}`);
      await waitFor(
        async () => {
          try {
            await watcher.log.get(node.key);
            return true;
          } catch {
            return false;
          }
        },
        30_000,
        "the others to keep syncing",
      );
      writer.socket.close();
      watcher.socket.close();
    }

    it("a client without the write token can pull, and its nodes are refused with 4003", async () => {
      const others = await pair("readonly");
      await others.writer.log.append("for everyone");
      await waitFor(() => others.watcher.log.length === 1, 30_000, "the watcher");
      const reader = connect(relay.url, "readonly", { token: "r-secret" });
      await reader.session.synced;
      await waitFor(() => reader.log.length === 1, 30_000, "the reader to pull");
      const own = await reader.log.append("not allowed");
      // The session does not push to a relay in push mode; send the node by hand, as a hostile client would.
      reader.socket.send(await nodeMessage(reader.log, own.key));
      const closed = await reader.closed;
      assert.equal(closed.code, CLOSE.READ_ONLY);
      assert.match(closed.reason, /may only read/);
      await assert.rejects(reader.session.done, /may only read/);
      const info = await json(await fetch(`${relay.url}/logs/readonly`, auth));
      assert.equal(info.length, 1, "nothing stored");
      // The same node inside a NODES message is refused the same way.
      const again = connect(relay.url, "readonly", { token: "r-secret" });
      await again.session.synced;
      again.socket.send(Uint8Array.of(8, ...frame(await nodeMessage(reader.log, own.key))));
      assert.equal((await again.closed).code, CLOSE.READ_ONLY);
      assert.equal((await json(await fetch(`${relay.url}/logs/readonly`, auth))).length, 1, "nothing stored");
      await stillSyncing(others);
    });

    it("a wrong token is refused before the upgrade; a subprotocol carries a token", async () => {
      const refused = await fetch(`${relay.url}/logs/tok`, { headers: { authorization: "Bearer nope" } });
      assert.equal(refused.status, 401);
      assert.match(String((await json(refused)).error), /needs a token/);
      const wrong = connect(relay.url, "tok", { token: "nope" });
      await assert.rejects(wrong.session.done);
      assert.equal(wrong.socket.readyState, 3);
      const ok = connect(relay.url, "tok", { protocols: ["hyperlog", "bearer.w-secret"] });
      await ok.session.synced;
      assert.equal(ok.socket.protocol, "hyperlog");
      await ok.log.append("written with a subprotocol token");
      await waitFor(
        async () => (await json(await fetch(`${relay.url}/logs/tok`, auth))).length === 1,
        30_000,
        "the write",
      );
      ok.socket.close();
    });

    it("a malformed frame closes that socket with 4000, the others keep syncing", async () => {
      const others = await pair("malformed");
      const bad = connect(relay.url, "malformed", { token: "w-secret" });
      await bad.session.synced;
      bad.socket.send(new Uint8Array([99, 1, 2, 3]));
      const closed = await bad.closed;
      assert.equal(closed.code, CLOSE.PROTOCOL);
      assert.match(closed.reason, /message type 99/);
      const cut = connect(relay.url, "malformed", { token: "w-secret" });
      await cut.session.synced;
      cut.socket.send(Uint8Array.of(8, 50, 4, 1));
      const cutClosed = await cut.closed;
      assert.equal(cutClosed.code, CLOSE.PROTOCOL);
      assert.match(cutClosed.reason, /NODES message: a node is cut short/);
      await stillSyncing(others);
    });

    it("a forged node closes that socket with 4008 and is not stored", async () => {
      const others = await pair("forged");
      const bad = connect(relay.url, "forged", { token: "w-secret" });
      await bad.session.synced;
      const value = new TextEncoder().encode('"forged"');
      bad.socket.send(encodeNodeBody(4, { key: "ab".repeat(32), links: [], value }) as Uint8Array<ArrayBuffer>);
      const closed = await bad.closed;
      assert.equal(closed.code, CLOSE.INVALID_NODE);
      assert.equal((await fetch(`${relay.url}/logs/forged`, auth)).status, 404, "nothing stored");
      const missing = connect(relay.url, "forged", { token: "w-secret" });
      await missing.session.synced;
      const scratch = new Hyperlog();
      const root = await scratch.append("root");
      const child = await scratch.append("child");
      assert.deepEqual(child.links, [root.key]);
      missing.socket.send(await nodeMessage(scratch, child.key));
      assert.equal((await missing.closed).code, CLOSE.INVALID_NODE);
      assert.equal((await fetch(`${relay.url}/logs/forged`, auth)).status, 404, "nothing stored");
      await stillSyncing(others);
    });

    it("an oversized frame closes with 4009, an oversized node with 4013", async () => {
      const others = await pair("big");
      const big = connect(relay.url, "big", { token: "w-secret" });
      await big.session.synced;
      big.socket.send(new Uint8Array(70_000).fill(4));
      const closed = await big.closed;
      assert.equal(closed.code, CLOSE.FRAME_TOO_LARGE);
      assert.match(closed.reason, /over the limit of 65536 bytes/);
      const fat = connect(relay.url, "big", { token: "w-secret" });
      await fat.session.synced;
      await fat.log.append("x".repeat(5000));
      const fatClosed = await fat.closed;
      assert.equal(fatClosed.code, CLOSE.NODE_TOO_LARGE);
      assert.equal((await fetch(`${relay.url}/logs/big`, auth)).status, 404, "nothing stored");
      await stillSyncing(others);
    });

    it("a flood from one socket closes it with 4029; the others keep syncing", async () => {
      const others = await pair("flood");
      const flood = connect(relay.url, "flood", { token: "w-secret" });
      await flood.session.synced;
      const scratch = new Hyperlog();
      const nodes = await scratch.batch(Array.from({ length: 2000 }, (_, i) => ({ value: i, links: [] })));
      for (const node of nodes) {
        if (flood.socket.readyState !== 1) break;
        flood.socket.send(await nodeMessage(scratch, node.key));
      }
      const closed = await flood.closed;
      assert.equal(closed.code, CLOSE.RATE_LIMITED);
      assert.match(closed.reason, /More than 200 nodes per second/);
      // The log exists only if some flood node was stored before the refusal (a 404 otherwise).
      const info = await fetch(`${relay.url}/logs/flood`, auth);
      const stored = info.status === 404 ? 0 : (await json(info)).length as number;
      assert.ok(stored < 2000, `${stored} flood nodes stored, not all 2 000`);
      await stillSyncing(others);
    });
  });
}
