/**
 * The relay worker in workerd (Miniflare), with real WebSockets from clients in this process: the scenarios every
 * relay host runs (tests/_relay-scenarios.ts: routes, convergence and live fan-out without echo, the CLI, a restart,
 * tokens, limits, hostile input), and what is the Worker's own: the demo page, the KV mirror, a wake-up after
 * hibernation, 50 concurrent clients. Node only: Miniflare starts workerd from Node.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Hyperlog } from "../mod.ts";
import { type Client, connect, json, waitFor } from "./_relay-clients.ts";
import { relayScenarios } from "./_relay-scenarios.ts";
import type { RunningRelay } from "./fixtures/relay-miniflare.ts";

const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";

if (runtime !== "node") {
  const reason = `the relay tests run on Node only (Miniflare starts workerd from Node); skipped on ${runtime}`;
  console.log(`Skipping: ${reason}`);
  describe("relay worker (workerd)", () => {
    it("runs on Node only", { skip: reason }, () => {});
  });
} else {
  const { startRelay } = await import("./fixtures/relay-miniflare.ts");

  describe("relay worker: the demo page, the KV mirror, a wake-up (workerd through Miniflare)", () => {
    let relay: RunningRelay;
    const clients: Client[] = [];
    before(async () => {
      relay = await startRelay({ vars: { RELAY_DEBUG: "1" } });
    });
    after(async () => {
      for (const c of clients) c.socket.close();
      await relay?.stop();
    });

    it("serves the demo page at /", async () => {
      assert.match(await (await fetch(`${relay.url}/`)).text(), /hyperlog relay/);
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

  // The scenarios every relay host runs (tests/_relay-scenarios.ts): routes, convergence, the CLI, a restart, tokens,
  // limits and hostile input.
  relayScenarios("relay worker (workerd through Miniflare)", async (settings, dir) => {
    const relay = await startRelay({ vars: settings, persist: dir });
    return { url: relay.url, stop: () => relay.stop() };
  });
}
