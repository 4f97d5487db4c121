/**
 * Relay benchmark: the relay worker in workerd (Miniflare, as the tests start it) with clients in this process over
 * real WebSockets on loopback. Ingest rate through one WebSocket into the Durable Object, live latency from one
 * client to another through the relay, and the 50-client load.
 *
 * @module
 */
import { Hyperlog } from "../mod.ts";
import { replicateWebSocket } from "../src/websocket.ts";
import { startRelay } from "../tests/fixtures/relay-miniflare.ts";
import { type BenchContext, type BenchModule, type Figure, median, secondsSince } from "./_util.ts";

const INGEST = 20_000;
const INGEST_KV = 2_000;
const PINGS = 200;
const CLIENTS = 50;
const PER_CLIENT = 200;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function waitFor(condition: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`Timed out after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Nodes per second a client's initial push of `n` nodes reaches the relay's storage. */
async function ingest(base: string, name: string, n: number): Promise<number> {
  const log = new Hyperlog();
  await log.batch(
    Array.from({ length: n }, (_, i) => ({ value: { i, text: `node ${i}` }, links: i === 0 ? [] : [i - 1] })),
  );
  const start = performance.now();
  const session = replicateWebSocket(log, new WebSocket(`${base}/logs/${name}/ws`), { live: false });
  const stats = await session.done;
  if (stats.nodesSent !== n) throw new Error(`Sent ${stats.nodesSent} of ${n} nodes`);
  return n / secondsSince(start);
}

/** Milliseconds from `append` on one live client to the node's arrival at another, `PINGS` times. */
async function latency(base: string, name: string): Promise<number[]> {
  const a = new Hyperlog();
  const b = new Hyperlog();
  const sa = replicateWebSocket(a, new WebSocket(`${base}/logs/${name}/ws`), { live: true });
  const sb = replicateWebSocket(b, new WebSocket(`${base}/logs/${name}/ws`), { live: true });
  await Promise.all([sa.synced, sb.synced]);
  const samples: number[] = [];
  for (let i = 0; i < PINGS; i++) {
    const arrived = new Promise<void>((resolve) => b.addEventListener("add", () => resolve(), { once: true }));
    const start = performance.now();
    await a.append({ ping: i });
    await arrived;
    samples.push(performance.now() - start);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await Promise.all([sa.close(), sb.close()]);
  return samples.sort((x, y) => x - y);
}

/** Seconds until 50 live clients that each add 200 nodes all hold the 10 000. */
async function load(base: string, name: string): Promise<number> {
  const clients = Array.from({ length: CLIENTS }, () => {
    const log = new Hyperlog();
    return { log, session: replicateWebSocket(log, new WebSocket(`${base}/logs/${name}/ws`), { live: true }) };
  });
  await Promise.all(clients.map((c) => c.session.synced));
  const start = performance.now();
  await Promise.all(clients.map(async (c, i) => {
    for (let j = 0; j < PER_CLIENT; j++) await c.log.append(`client ${i} node ${j}`);
  }));
  await waitFor(() => clients.every((c) => c.log.length === CLIENTS * PER_CLIENT), 900_000);
  const seconds = secondsSince(start);
  await Promise.all(clients.map((c) => c.session.close()));
  return seconds;
}

/** The relay benchmark module. */
export const benchmark: BenchModule = {
  name: "relay",
  title: "Relay worker in workerd (Miniflare), clients over WebSockets on loopback",
  notes: [
    `ingest: one client's initial push of ${INGEST} chained json nodes into an empty log, to the end of the session`,
    `ingest with KV mirror: the same with the KV mirror on (${INGEST_KV} nodes; each stored node is one KV write)`,
    `live latency: append on one live client to the "add" event on another, ${PINGS} pings, one at a time`,
    `load: ${CLIENTS} live clients each append ${PER_CLIENT} nodes; seconds until every client holds all ${
      CLIENTS * PER_CLIENT
    } (run once)`,
  ],
  async run(context: BenchContext): Promise<Figure[]> {
    const relay = await startRelay({ kv: false, vars: { MAX_NODES_PER_SECOND: "1000000" } });
    const withKv = await startRelay({ vars: { MAX_NODES_PER_SECOND: "1000000" } });
    const base = relay.url.replace(/^http/, "ws");
    try {
      const rates: number[] = [];
      const kvRates: number[] = [];
      const p50: number[] = [];
      const p99: number[] = [];
      for (let rep = 0; rep < context.reps; rep++) {
        context.progress(`relay: ingest, rep ${rep + 1}`);
        rates.push(await ingest(base, `ingest-${rep}`, INGEST));
        kvRates.push(await ingest(withKv.url.replace(/^http/, "ws"), `ingest-kv-${rep}`, INGEST_KV));
        context.progress(`relay: latency, rep ${rep + 1}`);
        const samples = await latency(base, `latency-${rep}`);
        p50.push(percentile(samples, 50));
        p99.push(percentile(samples, 99));
      }
      context.progress("relay: 50 clients");
      const seconds = await load(base, "load");
      const rate = median(rates);
      const latency50 = median(p50);
      return [
        {
          bench: "relay-ingest",
          n: INGEST,
          unit: "nodes/s",
          ours: rate,
          hyperlog: null,
          ratio: null,
          target: ">= 20000 nodes/s",
          met: rate >= 20_000,
        },
        {
          bench: "relay-ingest",
          case: "relay ingest, KV mirror on",
          n: INGEST_KV,
          unit: "nodes/s",
          ours: median(kvRates),
          hyperlog: null,
          ratio: null,
        },
        {
          bench: "relay-latency",
          case: "live latency p50",
          n: PINGS,
          unit: "ms",
          ours: latency50,
          hyperlog: null,
          ratio: null,
          target: "< 10 ms",
          met: latency50 < 10,
        },
        {
          bench: "relay-latency",
          case: "live latency p99",
          n: PINGS,
          unit: "ms",
          ours: median(p99),
          hyperlog: null,
          ratio: null,
        },
        {
          bench: "relay-load",
          case: "50 clients x 200 nodes: all converged",
          n: CLIENTS * PER_CLIENT,
          unit: "s",
          ours: seconds,
          hyperlog: null,
          ratio: null,
        },
        {
          bench: "relay-load",
          case: "50 clients: node deliveries",
          n: CLIENTS * PER_CLIENT,
          unit: "nodes/s",
          ours: (CLIENTS * PER_CLIENT * (CLIENTS - 1)) / seconds,
          hyperlog: null,
          ratio: null,
        },
      ];
    } finally {
      await relay.stop();
      await withKv.stop();
    }
  },
};
