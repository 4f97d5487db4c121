/**
 * The browser client bundle as `npm run bench -- --only bundle` measures it (minified, from mod.ts), loaded in a
 * real Chromium: a page keeps a log in IndexedDB, syncs live with a WebSocket peer (`tests/fixtures/ws-peer.ts`
 * on Deno), goes offline when the peer stops, writes offline, and converges after the peer restarts; a reloaded
 * page still has everything.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { browserBundleSize } from "../bench/bundle.ts";
import { type BrowserHarness, describeInBrowser, startBrowser } from "./_browser.ts";
import { waitFor } from "./_wait.ts";

const DENO = fileURLToPath(new URL("../node_modules/.bin/deno", import.meta.url));
const PEER = fileURLToPath(new URL("./fixtures/ws-peer.ts", import.meta.url));

/** The page: the bundle, plus a few functions the test calls. */
const MAIN = `
import { Hyperlog, IndexedDBStorage, connect } from "/client.js";
const log = new Hyperlog(new IndexedDBStorage("client-test"), { valueEncoding: "json" });
await log.ready();
const states = [];
let sync;
globalThis.page = {
  states,
  start(url) {
    sync = connect(log, url, { minDelay: 50, maxDelay: 500 });
    sync.addEventListener("statechange", (e) => states.push(e.detail.state));
  },
  state: () => sync?.state,
  append: async (value) => (await log.append(value)).key,
  length: () => log.length,
  keys: async () => {
    const keys = [];
    for await (const node of log.createReadStream()) keys.push(node.key);
    return keys.sort();
  },
  close: () => sync.close(),
};
globalThis.hyperlogReady = true;
`;

describeInBrowser("the browser client bundle in Chromium", () => {
  let harness: BrowserHarness | undefined;
  let peer: ChildProcess | undefined;
  let port = 0;
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-browser-client-"));
  const db = join(dir, "peer.db");

  async function startPeer(): Promise<void> {
    const args = ["run", "-A", PEER, "--db", db, ...(port === 0 ? [] : ["--port", String(port)])];
    const child = spawn(DENO, args, { stdio: ["ignore", "pipe", "inherit"] });
    peer = child;
    port = await new Promise<number>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d: Buffer) => {
        out += d;
        const match = /PORT (\d+)/.exec(out);
        if (match) resolve(Number(match[1]));
      });
      child.on("exit", (code) => reject(new Error(`The WebSocket peer exited with ${code}`)));
    });
  }

  async function stopPeer(): Promise<void> {
    const child = peer!;
    const exited = new Promise((resolve) => child.on("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    peer = undefined;
  }

  async function remoteKeys(): Promise<string[]> {
    return ((await (await fetch(`http://127.0.0.1:${port}/keys`)).json()) as { keys: string[] }).keys;
  }

  before(async () => {
    const { code } = await browserBundleSize();
    harness = await startBrowser({ "/client.js": code, "/main.js": MAIN });
    await startPeer();
  });

  after(async () => {
    peer?.kill("SIGKILL");
    await harness?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  let context: BrowserContext;
  let page: Page;

  it("syncs live, writes offline, converges after the peer restarts, and keeps everything across a reload", async () => {
    context = await harness!.browser.newContext();
    page = await harness!.open("/", context);
    await page.evaluate(`page.append({ text: "before connecting" })`);
    await page.evaluate(`page.start("ws://127.0.0.1:${port}/ws?live=1")`);
    await waitFor(async () => (await page.evaluate("page.state()")) === "live", 60_000, "the page is live");
    assert.deepEqual(await page.evaluate("page.states"), ["connecting", "syncing", "live"]);
    assert.deepEqual(await remoteKeys(), await page.evaluate("page.keys()"));

    await fetch(`http://127.0.0.1:${port}/add`, { method: "POST", body: JSON.stringify({ text: "from the peer" }) });
    await waitFor(async () => (await page.evaluate("page.length()")) === 2, 60_000, "the peer's node reaches the page");

    await stopPeer();
    await waitFor(async () => (await page.evaluate("page.state()")) === "offline", 60_000, "the page is offline");
    await page.evaluate(`page.append({ text: "written offline" })`);
    await page.evaluate(`page.append({ text: "also offline" })`);
    assert.equal((await remoteKeys().catch(() => [])).length, 0, "the peer is down");

    await startPeer();
    await waitFor(async () => (await page.evaluate("page.state()")) === "live", 60_000, "the page is live again");
    await waitFor(async () => (await remoteKeys()).length === 4, 60_000, "the offline writes reach the peer");
    assert.deepEqual(await remoteKeys(), await page.evaluate("page.keys()"));
    const keys = await page.evaluate("page.keys()");
    await page.evaluate("page.close()");
    assert.equal(await page.evaluate("page.state()"), "closed");

    await page.reload();
    await page.waitForFunction("globalThis.hyperlogReady === true");
    assert.deepEqual(await page.evaluate("page.keys()"), keys, "IndexedDB kept everything across the reload");
    await context.close();
  });
});
