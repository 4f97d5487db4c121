/**
 * Regenerates `docs/screenshot.png`: two pages of the demo in sync. Starts the relay in Miniflare (as the e2e tests
 * do), opens the demo room in two Chromium contexts (two peers, each with its own IndexedDB), exchanges a few
 * messages and sets a key in both at once, then puts the two pages side by side in one image.
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
  await set(alice, "color", "teal");
  // Both set "lunch" at once (each offline for a moment): both values stay until someone picks one.
  await alice.click("#toggle");
  await bob.click("#toggle");
  await set(alice, "lunch", "pizza");
  await set(bob, "lunch", "sushi");
  await alice.click("#toggle");
  await bob.click("#toggle");
  for (const p of [alice, bob]) {
    await until("both values show", async () => (await p.$$('#kv tr[data-key="lunch"] .value')).length === 2);
    await until("the page is live", async () => (await p.getAttribute("#state", "data-state")) === "live");
  }
  await say(alice, "we both set lunch at once: pick one?", 3);
  await until("color shows", async () => (await bob.$$('#kv tr[data-key="color"]')).length === 1);

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
} finally {
  await browser.close();
  await relay.stop();
}
