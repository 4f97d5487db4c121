/**
 * Regenerates `docs/screenshot.png`: two pages of the demo in sync. Starts the relay in Miniflare (as the e2e tests
 * do), opens the demo room in two Chromium contexts (two peers, each with its own IndexedDB), exchanges a few
 * messages, sets a key in both at once and resolves it, sets another in both at once, then puts the two pages side
 * by side in one image. Then `docs/history.png`, the History tab of one page (the DAG: the resolved conflict as a
 * fork and its merge, the open one as two heads), and `docs/relay-graph.png`, the relay's page of the log
 * (`/logs/demo` in a browser: its summary and graph).
 *
 * Run: `npm run screenshot` (Node; needs /usr/bin/chromium).
 *
 * @module
 */
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS } from "../tests/_browser.ts";
import { startRelay } from "../tests/fixtures/relay-miniflare.ts";

const OUT = fileURLToPath(new URL("../docs/screenshot.png", import.meta.url));
const HISTORY_OUT = fileURLToPath(new URL("../docs/history.png", import.meta.url));
const RELAY_OUT = fileURLToPath(new URL("../docs/relay-graph.png", import.meta.url));
const WIDTH = 640;
const HEIGHT = 640;

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const relay = await startRelay({ demo: true });
const { chromium } = await import("playwright-core");
const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS] });
try {
  const open = async (author: string): Promise<Page> => {
    const context = await browser.newContext({ viewport: { width: WIDTH, height: HEIGHT } });
    const page = await context.newPage();
    await page.goto(`${relay.url}/?room=demo`);
    await page.waitForSelector("#state[data-state=live]", { timeout: 60_000 });
    await page.fill("#author", author);
    await page.dispatchEvent("#author", "change");
    return page;
  };
  const alice = await open("alice");
  const bob = await open("bob");
  const say = async (page: Page, text: string, count: number) => {
    await page.fill("#message", text);
    await page.click("#send");
    for (const p of [alice, bob]) {
      await until("the message shows", async () => (await p.$$("#messages li")).length === count);
    }
  };
  const set = async (page: Page, key: string, value: string) => {
    await page.fill("#kv-key", key);
    await page.fill("#kv-value", value);
    await page.click("#kv-set");
  };
  await say(alice, "hi bob! this goes through the relay", 1);
  await say(bob, "hello alice, it works offline too", 2);
  // Both set a key at once (each offline for a moment): both values stay until someone picks one.
  const atOnce = async (key: string, a: string, b: string) => {
    await alice.click("#toggle");
    await bob.click("#toggle");
    await set(alice, key, a);
    await set(bob, key, b);
    await alice.click("#toggle");
    await bob.click("#toggle");
    for (const p of [alice, bob]) {
      await until("both values show", async () => (await p.$$(`#kv tr[data-key="${key}"] .value`)).length === 2);
      await until("the page is live", async () => (await p.getAttribute("#state", "data-state")) === "live");
    }
  };
  await atOnce("color", "blue", "green");
  // Bob resolves it: his write links to both.
  await set(bob, "color", "teal");
  for (const p of [alice, bob]) {
    await until("color is resolved", async () => (await p.$$('#kv tr[data-key="color"] .value')).length === 1);
  }
  await atOnce("lunch", "pizza", "sushi");
  await say(alice, "we both set lunch at once: pick one?", 3);

  const shots = await Promise.all([alice, bob].map(async (p) => (await p.screenshot()).toString("base64")));
  const sheet = await (await browser.newContext({ viewport: { width: WIDTH * 2 + 12, height: HEIGHT } })).newPage();
  await sheet.setContent(
    `<body style="margin:0;background:#888;display:flex;gap:12px">${
      shots.map((s) => `<img width="${WIDTH}" height="${HEIGHT}" src="data:image/png;base64,${s}">`).join("")
    }</body>`,
  );
  await sheet.waitForFunction(() => [...document.images].every((img) => img.complete));
  mkdirSync(new URL("../docs", import.meta.url), { recursive: true });
  await sheet.screenshot({ path: OUT });
  console.log(`wrote ${OUT}`);

  // The History tab: the DAG of the room, live.
  await alice.setViewportSize({ width: WIDTH, height: 560 });
  await alice.click("#tab-history");
  const nodes = await alice.evaluate(() => document.querySelector("#counts")?.textContent ?? "");
  const count = Number(/(\d+) nodes/.exec(nodes)?.[1] ?? 0);
  await until("the history shows every node", async () => (await alice.$$("#history g.node")).length === count);
  await alice.screenshot({ path: HISTORY_OUT });
  console.log(`wrote ${HISTORY_OUT}`);

  // The relay's page of the log, as a browser gets it (Accept: text/html).
  const relayPage = await (await browser.newContext({ viewport: { width: 860, height: 620 } })).newPage();
  await relayPage.goto(`${relay.url}/logs/demo`);
  await relayPage.waitForSelector(".graph svg");
  await relayPage.screenshot({ path: RELAY_OUT });
  console.log(`wrote ${RELAY_OUT}`);
} finally {
  await browser.close();
  await relay.stop();
}
