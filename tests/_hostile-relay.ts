/**
 * What the hostile relay tests share (`hostile-relay.test.ts`, `hostile-early.test.ts`): the relay's settings for
 * them, the hosts they run against (`hyperlog serve` on this runtime, the relay worker in Miniflare), and the set-ups
 * of a case: a relay log of some nodes, a sync with it, an attacker in the middle of a reconciliation, and the
 * sentinel check that the relay still serves and holds only nodes that verify.
 *
 * @module
 */
import assert from "node:assert/strict";
import { after, before, describe } from "node:test";
import { encodeMessage, Hyperlog, replicateWebSocket, type ReplicationStats } from "../mod.ts";
import { hostileHello, type RawSocket, rawSocket } from "./_hostile.ts";
import { nodeOnly } from "./_helpers.ts";
import { json } from "./_relay-clients.ts";
import { servedRelay } from "./_served.ts";

/** The relay's settings for these tests: short deadlines, a write budget no test reaches, 256 KiB frames. */
export const SETTINGS: Record<string, string> = {
  HELLO_TIMEOUT_MS: "1500",
  EXCHANGE_IDLE_MS: "1500",
  MAX_NODES_PER_SECOND: "1000000",
  MAX_NODES_BURST: "1000000",
  MAX_BYTES_PER_SECOND: "1000000000",
  MAX_BYTES_BURST: "1000000000",
  MAX_FRAME_BYTES: String(256 * 1024),
};
/** The relay's largest message in these tests. */
export const FRAME = 256 * 1024;
/** What the relay sends ahead of a client's CREDIT, at most (its `peerWindow`, relay-core.ts). */
export const RELAY_WINDOW = 512 * 1024;

/** What a test can ask of the relay it runs against. */
export interface Host {
  url(): string;
  /** The relay's counters and gauges (serve only: the Worker's isolate keeps its own). */
  metric?: (name: string) => number;
  /** Drops the Durable Object's memory, as hibernation does (the Worker only). */
  forget?: (name: string) => Promise<void>;
}

/**
 * Registers `cases` against `hyperlog serve` on this runtime (with {@link SETTINGS}) and against the relay worker in
 * Miniflare (Node only); `worker` adds the Worker's own cases.
 */
export function onEveryHost(
  title: string,
  cases: (host: () => Host, prefix: string) => void,
  worker?: (host: () => Host) => void,
): void {
  describe(`${title} against hyperlog serve (this runtime)`, () => {
    const relay = servedRelay("hyperlog-hostile-", SETTINGS);
    cases(() => ({ url: relay.url, metric: (name) => relay.metric(name, 0) }), "serve");
  });
  nodeOnly(`${title} against the relay worker (workerd through Miniflare)`, "Miniflare drives workerd", () => {
    let relay: { url: string; stop(): Promise<void> } | undefined;
    before(async () => {
      const { startRelay } = await import("./fixtures/relay-miniflare.ts");
      relay = await startRelay({ kv: false, vars: { ...SETTINGS, RELAY_DEBUG: "1" } });
    });
    after(async () => {
      await relay?.stop();
    });
    const host = (): Host => ({
      url: () => relay!.url,
      forget: async (name) => {
        const response = await fetch(`${relay!.url}/logs/${name}/debug/forget`, { method: "POST" });
        assert.equal(response.status, 200);
        await response.arrayBuffer();
      },
    });
    cases(host, "worker");
    worker?.(host);
  });
}

/** A log of `count` nodes of about `size` bytes each. */
export async function filled(count: number, size = 16, tag = "n"): Promise<Hyperlog<unknown>> {
  const log = new Hyperlog(undefined, { valueEncoding: "utf-8" });
  const pad = "x".repeat(Math.max(0, size - 16));
  for (let i = 0; i < count; i += 1000) {
    await log.batch(
      Array.from({ length: Math.min(1000, count - i) }, (_, j) => ({ value: `${tag} ${i + j} ${pad}` })),
    );
  }
  return log as Hyperlog<unknown>;
}

/** One sync of `log` with the relay's log `name` (not live), with a frame limit that fits the relay's. */
export async function syncWith(host: Host, name: string, log: Hyperlog<unknown>): Promise<ReplicationStats> {
  const socket = new WebSocket(`${host.url().replace(/^http/, "ws")}/logs/${name}/ws`);
  const session = replicateWebSocket(log, socket, { maxFrame: FRAME });
  try {
    return await session.done;
  } finally {
    socket.close();
  }
}

/** How many nodes the relay's log `name` holds. */
export async function relayLength(host: Host, name: string): Promise<number> {
  return (await json(await fetch(`${host.url()}/logs/${name}`))).length as number;
}

/** A relay log `name` with `count` nodes (pushed by a client). */
export async function relayLog(host: Host, name: string, count: number, size = 16): Promise<void> {
  await syncWith(host, name, await filled(count, size, name));
  assert.equal(await relayLength(host, name), count);
}

/**
 * The sentinel: a new, empty client syncs the relay's log `name`, checking every node it gets (its key, its links,
 * all present), so the relay still serves and holds nothing that does not verify and nothing dangling. Returns the
 * length both have.
 */
export async function assertServesSound(host: Host, name: string): Promise<number> {
  const reader = new Hyperlog();
  await syncWith(host, name, reader);
  const length = await relayLength(host, name);
  assert.equal(reader.length, length, "the sentinel client got every node the relay holds");
  return length;
}

/** An attacker that has said HELLO (leading, with the lowest id) and CHECK, and got the relay's HELLO and CHECK. */
export async function attackerInReconciliation(host: Host, name: string, count: number): Promise<RawSocket> {
  const ws = await rawSocket(`${host.url()}/logs/${name}/ws`);
  await ws.send(hostileHello({ count: count + 1 }));
  assert.equal((await ws.nextMessage()).type, "hello");
  await ws.send(encodeMessage({ type: "check", checkpoint: null }));
  assert.equal((await ws.nextMessage()).type, "check");
  return ws;
}
