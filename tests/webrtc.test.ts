/**
 * Browser-to-browser replication over WebRTC, in two Chromium contexts (each its own peer) against `hyperlog serve`:
 * the relay's presence carries the signaling, then each page opens a data channel to the other (loopback host
 * candidates: no STUN). With the channels up, the relay is stopped, and a message added in one page still reaches the
 * other, which proves the direct path; then the relay comes back on the same port and catches up with both.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { type BrowserHarness, bundleForBrowser, CHROMIUM_ARGS, describeInBrowser, startBrowser } from "./_browser.ts";
import { nodeOnly } from "./_helpers.ts";
import { type RunningServer, serve } from "../worker/serve.ts";
import { CHROMIUM } from "./_browser.ts";

const WAIT = 60_000;

/** Chromium flags for WebRTC between two contexts on one machine: plain host candidates, loopback allowed. */
export const WEBRTC_ARGS: readonly string[] = [
  "--disable-features=WebRtcHideLocalIpsWithMdns",
  "--allow-loopback-in-peer-connection",
];

/** Evaluates `expression` (over `hyperlogTest`) in `page`. */
function run<T>(page: Page, expression: string): Promise<T> {
  return page.evaluate(`(async (t) => ${expression})(globalThis.hyperlogTest)`) as Promise<T>;
}

nodeOnly("WebRTC between two pages", "it drives Chromium from Node", () => {
  describeInBrowser("direct replication between two Chromium contexts over a data channel", () => {
    const dir = mkdtempSync(join(tmpdir(), "hyperlog-webrtc-"));
    let server: RunningServer | undefined;
    let port = 0;
    let harness: BrowserHarness;
    let pages: Page[] = [];
    const contexts: BrowserContext[] = [];

    before(async () => {
      server = await serve({ dir, port: 0 });
      port = server.port;
      const code = await bundleForBrowser("./fixtures/webrtc-page.ts");
      harness = await startBrowser({ "/main.js": code }, [...CHROMIUM_ARGS, ...WEBRTC_ARGS]);
      for (let i = 0; i < 2; i++) contexts.push(await harness.browser.newContext());
    });

    after(async () => {
      await harness?.close();
      await server?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("opens a data channel between the pages, delivers directly with the relay stopped, then the relay catches up", async () => {
      const relay = `ws://127.0.0.1:${port}/logs/rtc/ws`;
      pages = [
        await harness.open(`/?relay=${encodeURIComponent(relay)}`, contexts[0]),
        await harness.open(`/?relay=${encodeURIComponent(relay)}`, contexts[1]),
      ];
      const [a, b] = pages as [Page, Page];
      for (const page of pages) {
        await page.waitForFunction(
          "Object.values(globalThis.hyperlogTest.peers()).includes('direct')",
          undefined,
          { timeout: WAIT },
        );
      }
      await run(a, 't.append("hello while the relay is up")');
      await b.waitForFunction(
        "globalThis.hyperlogTest.texts().then((t) => t.includes('hello while the relay is up'))",
        undefined,
        { timeout: WAIT, polling: 50 },
      );

      // The relay goes away: both pages lose it, the data channel stays.
      await server!.close();
      server = undefined;
      for (const page of pages) {
        await page.waitForFunction("globalThis.hyperlogTest.state() !== 'live'", undefined, { timeout: WAIT });
      }
      const before = await run<number>(b, "t.directReceived()");
      await run(a, 't.append("typed with the relay stopped")');
      await b.waitForFunction(
        "globalThis.hyperlogTest.texts().then((t) => t.includes('typed with the relay stopped'))",
        undefined,
        { timeout: WAIT, polling: 50 },
      );
      assert.ok((await run<number>(b, "t.directReceived()")) > before, "the node came over the data channel");
      assert.notEqual(await run(b, "t.state()"), "live", "the relay was still down when it arrived");
      await run(b, 't.append("answer with the relay stopped")');
      await a.waitForFunction(
        "globalThis.hyperlogTest.texts().then((t) => t.includes('answer with the relay stopped'))",
        undefined,
        { timeout: WAIT, polling: 50 },
      );

      // The relay comes back on the same port and catches up with both.
      server = await serve({ dir, port });
      for (const page of pages) {
        await page.waitForFunction("globalThis.hyperlogTest.state() === 'live'", undefined, { timeout: WAIT });
      }
      const info = async () => (await (await fetch(`http://127.0.0.1:${port}/logs/rtc`)).json()) as { length: number };
      const deadline = Date.now() + WAIT;
      while ((await info()).length !== 3) {
        if (Date.now() > deadline) throw new Error(`The relay has ${(await info()).length} nodes, not 3`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.deepEqual((await run<string[]>(a, "t.texts()")).sort(), (await run<string[]>(b, "t.texts()")).sort());

      // One page goes away: the other's peer event says the direct connection closed.
      await b.close();
      await a.waitForFunction("Object.values(globalThis.hyperlogTest.peers()).includes('closed')", undefined, {
        timeout: WAIT,
      });
    });
  });
});

nodeOnly("the demo page with ?direct=1", "it starts the relay in Miniflare and drives Chromium from Node", () => {
  describeInBrowser("the demo page: who is here, direct peers, and the chat with the relay stopped", () => {
    let relay: { url: string; stop(): Promise<void> } | undefined;
    let browser: import("playwright-core").Browser | undefined;

    before(async () => {
      const { startRelay } = await import("./fixtures/relay-miniflare.ts");
      relay = await startRelay({ demo: true, kv: false });
      const { chromium } = await import("playwright-core");
      browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...WEBRTC_ARGS] });
    });

    after(async () => {
      await browser?.close();
      await relay?.stop();
    });

    it("lists the other page by name as a direct peer; with the relay stopped, a message still arrives", async () => {
      const room = `direct-${Date.now().toString(36)}`;
      const open = async (name: string) => {
        const page = await (await browser!.newContext()).newPage();
        page.on("pageerror", (err) => console.error(`[page error] ${err.message}`));
        await page.goto(`${relay!.url}/?room=${room}&direct=1`);
        await page.waitForSelector("html[data-ready=true]", { timeout: WAIT });
        await page.fill("#author", name);
        return page;
      };
      const a = await open("alice");
      const b = await open("bob");
      await a.waitForSelector('#people li[data-direct="direct"]:has-text("bob")', { timeout: WAIT });
      await b.waitForSelector('#people li[data-direct="direct"]:has-text("alice")', { timeout: WAIT });
      assert.equal(await a.textContent("#toggle"), "Stop relay");
      await a.click("#toggle");
      await b.click("#toggle");
      assert.equal(await a.getAttribute("#state", "data-state"), "offline");
      await a.fill("#message", "peer to peer");
      await a.click("#send");
      await b.waitForSelector('#messages li:has-text("peer to peer")', { timeout: WAIT });
      assert.equal(await b.getAttribute("#state", "data-state"), "offline", "b never went back to the relay");
    });
  });
});
