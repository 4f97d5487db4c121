/**
 * One relay scenario suite, run against every relay host: the Worker in workerd (tests/relay.test.ts, through
 * Miniflare, from Node) and `hyperlog serve` on the runtime running the tests (tests/serve.test.ts, on Node, Deno
 * and Bun). What a relay promises whatever hosts it: the routes, convergence and live fan-out without echo, the CLI
 * through it, persistence across a restart, tokens, limits and hostile input closing only its own socket.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Hyperlog } from "../mod.ts";
import { main } from "../cli/cli.ts";
import { encodeNodeBody, frame } from "../src/wire.ts";
import { openSqlite } from "../storage/sqlite-open.ts";
import { CLOSE } from "../worker/limits.ts";
import { type Client, connect, json, nodeMessage, waitFor } from "./_relay-clients.ts";

/** A relay started by a host: its base URL (`http://127.0.0.1:PORT`) and how to stop it. */
export interface StartedRelay {
  /** The base URL. */
  url: string;
  /** Stops the relay (its data stays in `dir`). */
  stop(): Promise<void>;
}

/** How a host starts a relay with these settings (environment variables), keeping its data in `dir`. */
export type StartRelay = (settings: Record<string, string>, dir: string) => Promise<StartedRelay>;

async function keysOf(log: Hyperlog<unknown>): Promise<string[]> {
  const keys: string[] = [];
  for await (const node of log.createReadStream()) keys.push(node.key);
  return keys.sort();
}

async function has(log: Hyperlog<unknown>, key: string): Promise<boolean> {
  try {
    await log.get(key);
    return true;
  } catch {
    return false;
  }
}

/** The relay of a suite: started before its tests, restarted by one of them, stopped (data removed) after them. */
interface Running {
  relay: StartedRelay;
  readonly dir: string;
}

function relayFor(start: StartRelay, settings: Record<string, string>): Running {
  const running: Running = {
    relay: undefined as unknown as StartedRelay,
    dir: mkdtempSync(join(tmpdir(), "hyperlog-relay-")),
  };
  before(async () => {
    running.relay = await start(settings, running.dir);
  });
  after(async () => {
    await running.relay?.stop();
    rmSync(running.dir, { recursive: true, force: true });
  });
  return running;
}

/**
 * Registers the scenarios for one host.
 *
 * @example
 * ```ts ignore
 * relayScenarios("hyperlog serve on node", async (settings, dir) => {
 *   const server = await serve({ dir, port: 0, settings });
 *   return { url: server.url, stop: () => server.close() };
 * });
 * ```
 */
export function relayScenarios(host: string, start: StartRelay): void {
  describe(`${host}: routes, convergence, live fan-out, the CLI, a restart`, () => {
    const running = relayFor(start, {});
    const clients: Client[] = [];
    after(() => {
      for (const c of clients) c.socket.close();
    });

    it("answers /health, and refuses bad names, keys and since with 400, unknown routes and logs with 404", async () => {
      const url = running.relay.url;
      assert.deepEqual(await json(await fetch(`${url}/health`)), { ok: true });
      const badName = await fetch(`${url}/logs/bad%20name`);
      assert.equal(badName.status, 400);
      assert.match(String((await json(badName)).error), /Log name "bad name" is not valid/);
      const badKey = await fetch(`${url}/logs/routes/nodes/XYZ`);
      assert.equal(badKey.status, 400);
      assert.match(String((await json(badKey)).error), /not a node key/);
      const badSince = await fetch(`${url}/logs/routes/changes?since=-1`);
      assert.equal(badSince.status, 400);
      assert.match(String((await json(badSince)).error), /since="-1" is not valid/);
      assert.equal((await fetch(`${url}/logs/routes/ws`)).status, 426);
      assert.equal((await fetch(`${url}/nope`)).status, 404);
      const unknown = await fetch(`${url}/logs/routes`);
      assert.equal(unknown.status, 404, "a log never written is not there");
      assert.match(String((await json(unknown)).error), /comes into being with its first write/);
    });

    it("three clients converge; a live node reaches the others and not its sender", async () => {
      const url = running.relay.url;
      const logs = [new Hyperlog(), new Hyperlog(), new Hyperlog()];
      for (const [i, log] of logs.entries()) for (let j = 0; j < 5; j++) await log.append(`client ${i} #${j}`);
      const three = logs.map((log) => connect(url, "three", { log }));
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
      assert.deepEqual(
        three.map((c) => c.session.stats.nodesReceived),
        [before[0]! + 1, before[1]! + 1, before[2]! + 2],
        "the live node and the sentinel reached the others once each; the senders received nothing back",
      );
      assert.deepEqual(await json(await fetch(`${url}/logs/three`)), { heads: [sentinel.key], length: 17 });
      const lines = (await (await fetch(`${url}/logs/three/changes?since=15`)).text()).trim().split("\n");
      assert.deepEqual(lines.map((line) => JSON.parse(line).key), [live.key, sentinel.key]);
      assert.equal((await json(await fetch(`${url}/logs/three/nodes/${live.key}`))).value, "live from client 1");
      assert.equal((await fetch(`${url}/logs/three/nodes/${"ab".repeat(32)}`)).status, 404);
    });

    it("hyperlog sync ws://HOST/logs/NAME syncs CLI stores through it", async () => {
      const dirs = [mkdtempSync(join(tmpdir(), "hyperlog-cli-a-")), mkdtempSync(join(tmpdir(), "hyperlog-cli-b-"))];
      try {
        let out = "";
        let err = "";
        const io = {
          stdout: (t: string) => void (out += t),
          stderr: (t: string) => void (err += t),
          openStorage: (d: string) => openSqlite(join(d, "log.db")),
        };
        assert.equal(await main(["-d", dirs[0]!, "add", "from the cli"], io), 0);
        const key = out.trim();
        const ws = `${running.relay.url.replace(/^http/, "ws")}/logs/cli`;
        assert.equal(await main(["-d", dirs[0]!, "sync", ws], io), 0, err);
        assert.match(err, /sent 1 nodes, received 0 nodes/);
        assert.equal(await main(["-d", dirs[1]!, "sync", `${ws}/ws`], io), 0, err);
        assert.match(err, /sent 0 nodes, received 1 nodes/);
        out = "";
        assert.equal(await main(["-d", dirs[1]!, "heads"], io), 0);
        assert.equal(out.trim(), key);
        assert.equal(await main(["-d", dirs[1]!, "sync", "ws://127.0.0.1:1/elsewhere"], io), 2);
        assert.match(err, /not a relay log URL/);
      } finally {
        for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
      }
    });

    it("a restart on the same data keeps the logs, and a resync costs the difference", async () => {
      const log = new Hyperlog();
      await log.batch(Array.from({ length: 1000 }, (_, i) => ({ value: `node ${i}`, links: i === 0 ? [] : [i - 1] })));
      const first = connect(running.relay.url, "kept", { log, live: false });
      assert.equal((await first.session.done).nodesSent, 1000);
      // Closed once the relay has read everything before the close (the last ACK, which completes its checkpoint).
      await first.closed;
      const info = await json(await fetch(`${running.relay.url}/logs/kept`));
      assert.equal(info.length, 1000);
      for (const c of clients) c.socket.close();
      await running.relay.stop();
      running.relay = await start({}, running.dir);
      const url = running.relay.url;
      assert.deepEqual(await json(await fetch(`${url}/logs/kept`)), info, "everything is still there");
      for (let i = 0; i < 5; i++) await log.append(`new ${i}`);
      const stats = await connect(url, "kept", { log, live: false }).session.done;
      assert.equal(stats.nodesSent, 5);
      assert.equal(stats.nodesReceived, 0);
      // Five small nodes and a few control messages: far below what 1 005 keys would cost.
      assert.ok(stats.bytesSent + stats.bytesReceived < 2000, `resync cost ${stats.bytesSent + stats.bytesReceived} B`);
      assert.equal((await connect(url, "kept", { live: false }).session.done).nodesReceived, 1005);
    });
  });

  describe(`${host}: tokens, limits and hostile input (the relay's close codes)`, () => {
    const running = relayFor(start, {
      READ_TOKEN: "r-secret",
      WRITE_TOKEN: "w-secret",
      MAX_FRAME_BYTES: "65536",
      MAX_NODE_BYTES: "4096",
      MAX_NODES_PER_SECOND: "200",
      MAX_NODES_BURST: "200",
    });
    const auth = { headers: { authorization: "Bearer w-secret" } };
    /** The length of log `name` at the relay (0 while it does not exist). */
    const length = async (name: string): Promise<number> => {
      const response = await fetch(`${running.relay.url}/logs/${name}`, auth);
      if (response.status === 404) return 0;
      return (await json(response)).length as number;
    };

    /** A writer and a watcher, both live; the watcher sees what the relay stores. */
    async function pair(name: string): Promise<{ writer: Client; watcher: Client }> {
      const writer = connect(running.relay.url, name, { token: "w-secret" });
      const watcher = connect(running.relay.url, name, { token: "w-secret" });
      await Promise.all([writer.session.synced, watcher.session.synced]);
      return { writer, watcher };
    }

    /**
     * Checks that the others keep syncing: a node from the writer reaches the watcher. The node links to nothing: an
     * `append` would link to every head the writer has, and after a flood those are the flood's nodes that got in
     * (each a head), so its size, and whether the relay takes it, would depend on how many got in.
     */
    async function stillSyncing({ writer, watcher }: { writer: Client; watcher: Client }): Promise<void> {
      const node = await writer.log.add(null, `still syncing ${Math.random()}`);
      await waitFor(() => has(watcher.log, node.key), 30_000, "the others to keep syncing");
      writer.socket.close();
      watcher.socket.close();
    }

    /** A live writer connected to log `name`, synced. */
    async function writer(name: string): Promise<Client> {
      const client = connect(running.relay.url, name, { token: "w-secret" });
      await client.session.synced;
      return client;
    }

    it("a wrong token is refused with 401 before the upgrade; a subprotocol carries a token", async () => {
      const refused = await fetch(`${running.relay.url}/logs/tok`, { headers: { authorization: "Bearer nope" } });
      assert.equal(refused.status, 401);
      assert.match(String((await json(refused)).error), /needs a token/);
      const wrong = connect(running.relay.url, "tok", { token: "nope" });
      await assert.rejects(wrong.session.done);
      const ok = connect(running.relay.url, "tok", { protocols: ["hyperlog", "bearer.w-secret"] });
      await ok.session.synced;
      assert.equal(ok.socket.protocol, "hyperlog");
      await ok.log.append("written with a subprotocol token");
      await waitFor(async () => (await length("tok")) === 1, 30_000, "the write");
      ok.socket.close();
    });

    it("a reader pulls; a node it sends, alone or in NODES, closes its socket with 4003 and is not stored", async () => {
      const others = await pair("readonly");
      await others.writer.log.append("for everyone");
      await waitFor(() => others.watcher.log.length === 1, 30_000, "the watcher");
      const reader = connect(running.relay.url, "readonly", { token: "r-secret" });
      await reader.session.synced;
      await waitFor(() => reader.log.length === 1, 30_000, "the reader to pull");
      const own = await reader.log.append("not allowed");
      // The session does not push to a relay in push mode; send the node by hand, as a hostile client would.
      reader.socket.send(await nodeMessage(reader.log, own.key));
      const closed = await reader.closed;
      assert.equal(closed.code, CLOSE.READ_ONLY);
      assert.match(closed.reason, /may only read/);
      await assert.rejects(reader.session.done, /may only read/);
      assert.equal(await length("readonly"), 1, "nothing stored");
      const again = connect(running.relay.url, "readonly", { token: "r-secret" });
      await again.session.synced;
      again.socket.send(Uint8Array.of(8, ...frame(await nodeMessage(reader.log, own.key))));
      assert.equal((await again.closed).code, CLOSE.READ_ONLY);
      assert.equal(await length("readonly"), 1, "nothing stored");
      await stillSyncing(others);
    });

    it("an unknown message, a cut NODES message or a text message closes with 4000; the others keep syncing", async () => {
      const others = await pair("malformed");
      const bad = await writer("malformed");
      bad.socket.send(new Uint8Array([99, 1, 2, 3]));
      const closed = await bad.closed;
      assert.equal(closed.code, CLOSE.PROTOCOL);
      assert.match(closed.reason, /message type 99/);
      const cut = await writer("malformed");
      cut.socket.send(Uint8Array.of(8, 50, 4, 1));
      const cutClosed = await cut.closed;
      assert.equal(cutClosed.code, CLOSE.PROTOCOL);
      assert.match(cutClosed.reason, /NODES message: a node is cut short/);
      const text = await writer("malformed");
      text.socket.send("hello");
      assert.equal((await text.closed).code, CLOSE.PROTOCOL);
      await stillSyncing(others);
    });

    it("a forged node, or one with missing links, closes with 4008 and is not stored", async () => {
      const others = await pair("forged");
      const bad = await writer("forged");
      const value = new TextEncoder().encode('"forged"');
      bad.socket.send(encodeNodeBody(4, { key: "ab".repeat(32), links: [], value }) as Uint8Array<ArrayBuffer>);
      assert.equal((await bad.closed).code, CLOSE.INVALID_NODE);
      const missing = await writer("forged");
      const scratch = new Hyperlog();
      const root = await scratch.append("root");
      const child = await scratch.append("child");
      assert.deepEqual(child.links, [root.key]);
      missing.socket.send(await nodeMessage(scratch, child.key));
      assert.equal((await missing.closed).code, CLOSE.INVALID_NODE);
      assert.equal(await length("forged"), 0, "nothing stored");
      await stillSyncing(others);
    });

    it("an oversized frame closes with 4009, an oversized node with 4013", async () => {
      const others = await pair("big");
      const big = await writer("big");
      big.socket.send(new Uint8Array(70_000).fill(4));
      const closed = await big.closed;
      assert.equal(closed.code, CLOSE.FRAME_TOO_LARGE);
      assert.match(closed.reason, /over the limit of 65536 bytes/);
      const fat = await writer("big");
      await fat.log.append("x".repeat(5000));
      assert.equal((await fat.closed).code, CLOSE.NODE_TOO_LARGE);
      assert.equal(await length("big"), 0, "nothing stored");
      await stillSyncing(others);
    });

    it("a flood from one socket closes it with 4029; the others keep syncing", async () => {
      const others = await pair("flood");
      const flood = await writer("flood");
      const scratch = new Hyperlog();
      const nodes = await scratch.batch(Array.from({ length: 2000 }, (_, i) => ({ value: i, links: [] })));
      // Encoded first, then sent in one go: a burst however slow the machine is (sent one by one between awaits, a
      // loaded machine could send them slower than the rate allows).
      const messages = await Promise.all(nodes.map((node) => nodeMessage(scratch, node.key)));
      for (const message of messages) {
        if (flood.socket.readyState !== 1) break;
        flood.socket.send(message);
      }
      const closed = await flood.closed;
      // The ERROR message comes first, with the reason, whatever the host.
      await assert.rejects(flood.session.done, /More than 200 nodes per second/);
      if ("Deno" in globalThis && closed.code !== CLOSE.RATE_LIMITED) {
        // Deno's server resets the connection when it closes a socket whose peer is still sending, and the reset can
        // discard the close frame at the client: the close arrives as abnormal (README, "Self-hosted relay").
        assert.ok(closed.code === 0 || closed.code === 1006, `closed with ${closed.code}`);
      } else {
        assert.equal(closed.code, CLOSE.RATE_LIMITED);
        assert.match(closed.reason, /More than 200 nodes per second/);
      }
      assert.ok((await length("flood")) < 2000, "not every flood node stored");
      await stillSyncing(others);
    });
  });
}
