/**
 * Presence and WebRTC (issue 15): how long a presence update takes through `hyperlog serve` on loopback (one client
 * sets, another sees it), how long a node added in one Chromium page takes to reach another over the data channel
 * (the relay stopped, so nothing else could carry it), and what presence and WebRTC add to the browser client bundle.
 *
 * Run it through the driver: `npm run bench -- --only presence`.
 *
 * @module
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { attachPresence, type PresenceEvent } from "../mod.ts";
import { serve } from "../worker/serve.ts";
import { BROWSER_EXPORTS, browserBundleSize } from "./bundle.ts";
import { type Relay, rssGrowth, startRelay, startWorker } from "./hostile.ts";
import { type BenchModule, type Figure, median } from "./_util.ts";

const UPDATES = 500;
const NODES = 200;

function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** Milliseconds from `set()` on one client to the `update` event on the other, for each of `UPDATES` updates. */
async function presenceLatency(): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-bench-presence-"));
  const server = await serve({ dir, port: 0, settings: { PRESENCE_PER_SECOND: "1000" } });
  try {
    const url = `${server.url.replace(/^http/, "ws")}/logs/bench/ws`;
    const sa = new WebSocket(url);
    const sb = new WebSocket(url);
    const a = attachPresence(sa, { state: { i: -1 } });
    const b = attachPresence(sb, { state: { watcher: true } });
    await new Promise<void>((resolve) => {
      const check = () => (b.peers.size > 0 && a.self !== undefined ? resolve() : undefined);
      b.addEventListener("presence", check);
      check();
    });
    const samples: number[] = [];
    for (let i = 0; i < UPDATES; i++) {
      const seen = new Promise<void>((resolve) => {
        const listener = (event: Event) => {
          const { state } = (event as CustomEvent<PresenceEvent>).detail;
          if ((state as { i?: number })?.i !== i) return;
          b.removeEventListener("presence", listener);
          resolve();
        };
        b.addEventListener("presence", listener);
      });
      const start = performance.now();
      a.set({ i, name: "bench", cursor: [i, i * 2] });
      await seen;
      samples.push(performance.now() - start);
    }
    a.close();
    b.close();
    sa.close();
    sb.close();
    return samples;
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Milliseconds from `append` in page A to the node stored in page B, over the data channel, relay stopped. */
async function dataChannelLatency(): Promise<number[] | string> {
  if (!existsSync("/usr/bin/chromium")) return "no /usr/bin/chromium";
  const { bundleForBrowser, CHROMIUM_ARGS, startBrowser } = await import("../tests/_browser.ts");
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-bench-webrtc-"));
  let server = await serve({ dir, port: 0 });
  const code = await bundleForBrowser(fileURLToPath(new URL("../tests/fixtures/webrtc-page.ts", import.meta.url)));
  const harness = await startBrowser({ "/main.js": code }, [
    ...CHROMIUM_ARGS,
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--allow-loopback-in-peer-connection",
  ]);
  try {
    const relay = encodeURIComponent(`ws://127.0.0.1:${server.port}/logs/bench/ws`);
    const a = await harness.open(`/?relay=${relay}`, await harness.browser.newContext());
    const b = await harness.open(`/?relay=${relay}`, await harness.browser.newContext());
    for (const page of [a, b]) {
      await page.waitForFunction("Object.values(globalThis.hyperlogTest.peers()).includes('direct')", undefined, {
        timeout: 60_000,
      });
    }
    await server.close();
    for (const page of [a, b]) {
      await page.waitForFunction("globalThis.hyperlogTest.state() !== 'live'", undefined, { timeout: 60_000 });
    }
    const samples: number[] = [];
    for (let i = 0; i < NODES; i++) {
      const text = `n${i}`;
      const sent = await a.evaluate(
        `(async () => { const t0 = performance.timeOrigin + performance.now(); await globalThis.hyperlogTest.append(${
          JSON.stringify(text)
        }); return t0; })()`,
      ) as number;
      const arrived = await b.waitForFunction(
        `(() => { const t = globalThis.hyperlogTest.arrived()[${JSON.stringify(text)}];
          return t === undefined ? false : performance.timeOrigin + t; })()`,
        undefined,
        { timeout: 60_000, polling: "raf" },
      );
      samples.push((await arrived.jsonValue() as number) - sent);
    }
    return samples;
  } finally {
    await harness.close();
    server = undefined as unknown as typeof server;
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Sockets on the log in the presence flood. */
const SOCKETS = 50;

/** What a presence flood cost the relay. */
interface FloodFigures {
  bytesIn: number;
  bytesOut: number;
  seconds: number;
  rss: number;
  /** Flooders the relay closed (4030: over the per-socket rate). */
  closed: number;
}

/**
 * {@link SOCKETS} sockets on one log of `hyperlog serve` (its own process, default presence settings), `flooders` of
 * them sending ~230-byte states, `rate` a second each (`Infinity`: as fast as the socket takes them) for `rounds`
 * rounds. Bytes in and out are text bytes counted at the clients until every watcher has every (still open)
 * flooder's last state; the RSS growth is the relay process's.
 */
async function presenceFlood(
  relay: Relay,
  log: string,
  flooders: number,
  rate: number,
  rounds: number,
): Promise<FloodFigures> {
  const sockets: WebSocket[] = [];
  const url = `${relay.url.replace(/^http/, "ws")}/logs/${log}/ws`;
  let bytesOut = 0;
  let welcomed = 0;
  let closed = 0;
  const lasts = new Map<WebSocket, Set<string>>();
  const peers = new Map<WebSocket, string>();
  let wake = () => {};
  const encoder = new TextEncoder();
  for (let i = 0; i < SOCKETS; i++) {
    const ws = new WebSocket(url);
    sockets.push(ws);
    lasts.set(ws, new Set());
    ws.addEventListener("message", (e) => {
      if (typeof e.data !== "string") return;
      bytesOut += encoder.encode(e.data).length;
      const m = JSON.parse(e.data) as { t: string; peer: string; state?: { seq?: unknown } };
      if (m.t === "welcome") peers.set(ws, m.peer), welcomed++;
      if (m.state?.seq === "last") lasts.get(ws)!.add(m.peer);
      wake();
    });
    ws.addEventListener("close", (e) => {
      if (e.code === 4030) closed++;
      wake();
    });
    ws.addEventListener("open", () => ws.send('{"t":"watch"}'));
  }
  const until = async (done: () => boolean) => {
    while (!done()) await new Promise<void>((resolve) => (wake = resolve));
  };
  try {
    await until(() => welcomed === SOCKETS);
    bytesOut = 0;
    const pad = "x".repeat(180);
    let bytesIn = 0;
    const started = performance.now();
    const rss = await rssGrowth(relay, async () => {
      for (let round = 0; round < rounds; round++) {
        if (sockets.slice(0, flooders).every((ws) => ws.readyState !== 1)) break;
        for (let f = 0; f < flooders; f++) {
          const ws = sockets[f]!;
          if (ws.readyState !== 1) continue;
          const text = JSON.stringify({ t: "set", state: { seq: round === rounds - 1 ? "last" : round, pad } });
          bytesIn += text.length;
          ws.send(text);
        }
        const next = started + ((round + 1) * 1000) / rate;
        await new Promise((resolve) =>
          setTimeout(resolve, rate === Infinity ? 0 : Math.max(0, next - performance.now()))
        );
      }
      const open = () => sockets.slice(0, flooders).filter((ws) => ws.readyState === 1).map((ws) => peers.get(ws)!);
      await until(() =>
        sockets.every((ws) => ws.readyState !== 1 || open().every((p) => p === peers.get(ws) || lasts.get(ws)!.has(p)))
      );
    });
    return { bytesIn, bytesOut, seconds: (performance.now() - started) / 1000, rss, closed };
  } finally {
    for (const ws of sockets) ws.close();
  }
}

/** The gzipped browser client with the modules `stub` replaced by empty stand-ins, in bytes. */
async function bundleWithout(stub: readonly string[]): Promise<number> {
  return (await browserBundleSize(BROWSER_EXPORTS, stub)).gzipped;
}

/** The presence and WebRTC benchmark module. */
export const benchmark: BenchModule = {
  name: "presence",
  title: "Presence through the relay, nodes over a WebRTC data channel, and their bundle cost",
  notes: [
    `Presence: two Node clients of \`hyperlog serve\` on 127.0.0.1; ${UPDATES} updates one after the other, each timed from set() on one to the update event on the other.`,
    `Data channel: two Chromium contexts (headless, loopback host candidates) with connect(..., { direct: true }); once the data channel is up the relay is stopped; ${NODES} nodes one after the other, each timed from append() in one page to its "add" event in the other (both clocks are performance.timeOrigin + now()).`,
    `Presence flood: ${SOCKETS} WebSockets (this process) on one log of \`hyperlog serve\` in its own process, then of the Worker (workerd in Miniflare), with the default presence settings; the flooders' states are ~230 bytes; bytes are text bytes counted at the clients until every watcher has every open flooder's last state; RSS is the relay process's peak growth.`,
    "Bundle: the browser client (bench/bundle.ts) gzipped -9, then with WebRTC, then with presence too, replaced by empty stand-ins.",
  ],
  async run(context): Promise<Figure[]> {
    const figures: Figure[] = [];
    const p50s: number[] = [];
    const p99s: number[] = [];
    for (let rep = 0; rep < context.reps; rep++) {
      context.progress(`presence latency, run ${rep + 1}`);
      const samples = await presenceLatency();
      p50s.push(percentile(samples, 0.5));
      p99s.push(percentile(samples, 0.99));
    }
    figures.push({
      bench: "presence update through the relay (serve, loopback), p50",
      n: UPDATES,
      unit: "ms",
      ours: median(p50s),
      hyperlog: null,
      ratio: null,
      target: "< 5 ms",
      met: median(p50s) < 5,
      note: `p99 ${median(p99s).toFixed(2)} ms`,
    });
    for (const host of ["serve", "worker"] as const) {
      const dir = mkdtempSync(join(tmpdir(), "hyperlog-bench-presence-flood-"));
      context.progress(`presence flood: starting ${host}`);
      const relay = host === "serve" ? await startRelay(dir) : await startWorker();
      try {
        const budget = 2 * 1024 * 1024;
        const cases = [
          { name: "1 of 50 at the allowed rate (20/s)", flooders: 1, rate: 20, rounds: 60 },
          { name: "50 of 50 at the allowed rate (20/s)", flooders: 50, rate: 20, rounds: 60 },
          { name: "1 of 50 above the rate (as fast as it can)", flooders: 1, rate: Infinity, rounds: 2000 },
        ];
        for (const [index, c] of cases.entries()) {
          context.progress(`presence flood (${host}): ${c.name}`);
          const runs: FloodFigures[] = [];
          for (let rep = 0; rep < context.reps; rep++) {
            runs.push(await presenceFlood(relay, `flood-${index}-${rep}`, c.flooders, c.rate, c.rounds));
          }
          const outRate = median(runs.map((r) => r.bytesOut / r.seconds));
          figures.push({
            bench: `presence flood, ${SOCKETS} sockets on one log (${
              host === "serve" ? "serve" : "Worker in Miniflare"
            }), ${c.name}: bytes out per second`,
            n: c.flooders * c.rounds,
            unit: "MB/s",
            ours: outRate / 1e6,
            hyperlog: null,
            ratio: null,
            target: "<= 2 MiB/s (PRESENCE_FANOUT_BYTES) + a second's burst",
            met: runs.every((r) => r.bytesOut <= budget * (r.seconds + 1) + SOCKETS * 4096),
            note: `${
              median(runs.map((r) => r.bytesOut / r.bytesIn)).toFixed(1)
            } bytes out per byte in (each state goes to ${
              SOCKETS - 1
            } sockets in a frame ~1.2x the message: ~59 without the budget); ${
              median(runs.map((r) => r.seconds)).toFixed(2)
            } s until every watcher had the last states; relay RSS +${median(runs.map((r) => r.rss)).toFixed(1)} MB${
              c.rate === Infinity
                ? `; the flooder closed with 4030 in ${runs.filter((r) => r.closed > 0).length} of ${runs.length} runs`
                : ""
            }`,
          });
        }
      } finally {
        await relay.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    }
    context.progress("data channel latency");
    const direct = await dataChannelLatency();
    if (typeof direct === "string") context.progress(`data channel latency skipped: ${direct}`);
    else {
      figures.push({
        bench: "node typed in one page, stored in the other over the data channel, p50",
        n: NODES,
        unit: "ms",
        ours: percentile(direct, 0.5),
        hyperlog: null,
        ratio: null,
        target: "< 10 ms",
        met: percentile(direct, 0.5) < 10,
        note: `p99 ${percentile(direct, 0.99).toFixed(2)} ms`,
      });
    }
    context.progress("bundle sizes");
    const all = await bundleWithout([]);
    const noWebrtc = await bundleWithout(["webrtc"]);
    const neither = await bundleWithout(["webrtc", "presence", "presence-wire"]);
    figures.push({
      bench: "browser client bundle with presence and WebRTC, minified + gzipped",
      n: 1,
      unit: "KB",
      ours: all / 1024,
      hyperlog: null,
      ratio: null,
      target: "< 30 KB",
      met: all < 30 * 1024,
      note: `${(neither / 1024).toFixed(1)} KB without either; presence adds ${
        ((noWebrtc - neither) / 1024).toFixed(1)
      } KB, WebRTC ${((all - noWebrtc) / 1024).toFixed(1)} KB`,
    });
    return figures;
  },
};
