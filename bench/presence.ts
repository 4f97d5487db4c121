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
import { gzipSync } from "node:zlib";
import { attachPresence, type PresenceEvent } from "../mod.ts";
import { BROWSER_BUILD } from "../scripts/build-demo.ts";
import { serve } from "../worker/serve.ts";
import { BROWSER_EXPORTS } from "./bundle.ts";
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

/** The gzipped browser client with presence and WebRTC replaced by empty stand-ins (`stub`), in bytes. */
async function bundleWithout(stub: readonly string[]): Promise<number> {
  const { build } = await import("esbuild");
  const root = fileURLToPath(new URL("..", import.meta.url));
  const pattern = new RegExp(`/src/(${stub.join("|") || "^$"})\\.ts$`);
  const result = await build({
    ...BROWSER_BUILD,
    stdin: { contents: `export { ${BROWSER_EXPORTS.join(", ")} } from "./mod.ts";`, resolveDir: root, loader: "ts" },
    plugins: [{
      name: "stub",
      setup(b) {
        b.onLoad({ filter: pattern }, (args) => ({
          loader: "ts",
          contents: args.path.endsWith("webrtc.ts")
            ? "export class DirectPeers {}"
            : args.path.endsWith("presence-wire.ts")
            ? "export const takeText = () => {}, ownsText = () => false;"
            : "export class Presence {}",
        }));
      },
    }],
  });
  return gzipSync(result.outputFiles[0]!.contents, { level: 9 }).length;
}

/** The presence and WebRTC benchmark module. */
export const benchmark: BenchModule = {
  name: "presence",
  title: "Presence through the relay, nodes over a WebRTC data channel, and their bundle cost",
  notes: [
    `Presence: two Node clients of \`hyperlog serve\` on 127.0.0.1; ${UPDATES} updates one after the other, each timed from set() on one to the update event on the other.`,
    `Data channel: two Chromium contexts (headless, loopback host candidates) with connect(..., { direct: true }); once the data channel is up the relay is stopped; ${NODES} nodes one after the other, each timed from append() in one page to its "add" event in the other (both clocks are performance.timeOrigin + now()).`,
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
