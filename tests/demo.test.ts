/**
 * The demo page end to end: the relay worker runs in Miniflare (serving `/` and `/demo.js` as `npm start` does), and
 * Chromium (playwright-core, `/usr/bin/chromium`) opens the page in two browser contexts, so two peers with their
 * own IndexedDB. Everything goes through the page's UI: inputs are filled, buttons clicked, the DOM read. Waits poll
 * for conditions with generous timeouts; nothing sleeps for correctness.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, describeInBrowser } from "./_browser.ts";
import { nodeOnly } from "./_helpers.ts";
import { type RunningRelay, startRelay } from "./fixtures/relay-miniflare.ts";
import { waitFor } from "./_wait.ts";

const WAIT = 60_000;

/** The messages a page shows, in its order, as `author: text`. */
function messages(page: Page): Promise<string[]> {
  return page.$$eval(
    "#messages li",
    (items) =>
      items.map((li) => `${li.querySelector(".author")?.textContent}: ${li.querySelector(".text")?.textContent}`),
  );
}

/** The values a page shows for `key`, sorted (empty when the key is not shown). */
async function values(page: Page, key: string): Promise<string[]> {
  const shown = await page.$$eval(
    `#kv tr[data-key="${key}"] .value`,
    (spans) => spans.map((span) => span.textContent ?? ""),
  );
  return shown.sort();
}

/** The whole table a page shows: key = values. */
function table(page: Page): Promise<string[]> {
  return page.$$eval(
    "#kv tr",
    (rows) =>
      rows.map((row) =>
        `${row.dataset.key} = ${[...row.querySelectorAll(".value")].map((v) => v.textContent).join(" | ")}`
      ),
  );
}

/** The history tab's graph: each node's label by key, the heads, and the edges as `from>to` keys. */
async function history(
  page: Page,
  open = true,
): Promise<{ labels: Record<string, string>; heads: string[]; edges: string[] }> {
  if (open) await page.click("#tab-history");
  await page.waitForSelector("#history svg", { timeout: WAIT });
  return await page.$eval("#history svg", (svg) => {
    const labels: Record<string, string> = {};
    const heads: string[] = [];
    for (const g of svg.querySelectorAll("g.node")) {
      const key = g.getAttribute("data-key")!;
      labels[key] = g.querySelector(".value")?.textContent?.trim() ?? "";
      if (g.classList.contains("head")) heads.push(key);
    }
    const edges = [...svg.querySelectorAll("path.edge")].map((p) =>
      `${p.getAttribute("data-from")}>${p.getAttribute("data-to")}`
    );
    return { labels, heads, edges };
  });
}

/** The key of the node labelled `label` in a history. */
function keyOf(graph: { labels: Record<string, string> }, label: string): string {
  const found = Object.entries(graph.labels).find(([, text]) => text === label);
  if (found === undefined) throw new Error(`No node labelled ${label} in ${JSON.stringify(graph.labels)}`);
  return found[0];
}

function state(page: Page): Promise<string | null> {
  return page.getAttribute("#state", "data-state");
}

async function send(page: Page, text: string): Promise<void> {
  await page.fill("#message", text);
  await page.click("#send");
}

async function set(page: Page, key: string, value: string): Promise<void> {
  await page.fill("#kv-key", key);
  await page.fill("#kv-value", value);
  await page.click("#kv-set");
}

nodeOnly("the demo page", "it starts the relay in Miniflare and drives Chromium from Node", () => {
  describeInBrowser("the demo page in two Chromium contexts, against the relay in Miniflare", () => {
    const dir = mkdtempSync(join(tmpdir(), "hyperlog-demo-e2e-"));
    const room = `e2e-${Date.now().toString(36)}`;
    let relay: RunningRelay | undefined;
    let port = 0;
    let browser: Browser | undefined;
    let contextA: BrowserContext;
    let contextB: BrowserContext;
    let a: Page;
    let b: Page;

    async function startTheRelay(): Promise<void> {
      relay = await startRelay({ persist: dir, demo: true, ...(port === 0 ? {} : { port }) });
      port = Number(new URL(relay.url).port);
    }

    async function stopTheRelay(): Promise<void> {
      await relay!.stop();
      relay = undefined;
    }

    async function open(context: BrowserContext): Promise<Page> {
      const page = await context.newPage();
      page.on("pageerror", (err) => console.error(`[page error] ${err.message}`));
      await page.goto(`http://127.0.0.1:${port}/?room=${room}`);
      await page.waitForSelector("html[data-ready=true]", { timeout: WAIT });
      return page;
    }

    before(async () => {
      await startTheRelay();
      const { chromium } = await import("playwright-core");
      browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS], timeout: WAIT });
      contextA = await browser.newContext();
      contextB = await browser.newContext();
    });

    after(async () => {
      await browser?.close();
      await relay?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it("serves the page at / and its script as a static asset", async () => {
      const html = await (await fetch(`http://127.0.0.1:${port}/`)).text();
      assert.match(html, /<script type="module" src="\/demo.js"><\/script>/);
      const script = await fetch(`http://127.0.0.1:${port}/demo.js`);
      assert.equal(script.status, 200);
      assert.match(script.headers.get("content-type") ?? "", /javascript/);
      assert.ok((await script.text()).length > 10_000);
    });

    it("a message typed in one page appears in the other, in the same order in both", async () => {
      a = await open(contextA);
      b = await open(contextB);
      await waitFor(
        async () => (await state(a)) === "live" && (await state(b)) === "live",
        WAIT,
        "both pages are live",
      );
      await a.fill("#author", "alice");
      await b.fill("#author", "bob");
      await send(a, "hello from alice");
      await waitFor(
        async () => (await messages(b)).includes("alice: hello from alice"),
        WAIT,
        "bob sees alice's message",
      );
      await send(b, "hi alice");
      await waitFor(async () => (await messages(a)).includes("bob: hi alice"), WAIT, "alice sees bob's answer");
      assert.deepEqual(await messages(a), ["alice: hello from alice", "bob: hi alice"]);
      assert.deepEqual(await messages(b), await messages(a));
    });

    it("a page reloaded with nothing new reaches live again, and receives what the other page sends next", async () => {
      // Both pages are up to date with the relay: the reloaded page reconnects with nothing to send or receive.
      for (let round = 1; round <= 2; round++) {
        await b.reload();
        await b.waitForSelector("html[data-ready=true]", { timeout: WAIT });
        await waitFor(async () => (await state(b)) === "live", WAIT, `the reloaded page is live (round ${round})`);
        await send(a, `after reload ${round}`);
        await waitFor(
          async () => (await messages(b)).includes(`alice: after reload ${round}`),
          WAIT,
          `the reloaded page shows the next message (round ${round})`,
        );
      }
      await b.fill("#author", "bob");
      assert.deepEqual(await messages(b), await messages(a));
    });

    it("a value set in both pages at once shows both values in both until one page resolves it", async () => {
      // "At once": neither page has seen the other's write. Each page goes offline (its own button), sets the
      // key, and comes back online.
      await a.click("#toggle");
      await b.click("#toggle");
      assert.equal(await a.textContent("#toggle"), "Go online");
      await set(a, "color", "blue");
      await set(b, "color", "green");
      await waitFor(
        async () => (await values(a, "color")).join() === "blue" && (await values(b, "color")).join() === "green",
        WAIT,
        "each page shows its own value",
      );
      await a.click("#toggle");
      await b.click("#toggle");
      for (const page of [a, b]) {
        await waitFor(
          async () => (await values(page, "color")).join() === "blue,green",
          WAIT,
          "both values show side by side",
        );
        assert.equal(await page.getAttribute('#kv tr[data-key="color"]', "class"), "conflict");
      }
      // The history tab shows the conflict as a fork: both writes are heads.
      await waitFor(
        async () => {
          const labels = Object.values((await history(a)).labels);
          return labels.includes("color = blue") && labels.includes("color = green");
        },
        WAIT,
        "alice's history shows both writes",
      );
      const fork = await history(a);
      const blue = keyOf(fork, "color = blue");
      const green = keyOf(fork, "color = green");
      assert.ok(fork.heads.includes(blue) && fork.heads.includes(green), "the two concurrent writes are heads");
      // Alice keeps the tab open while bob resolves the conflict.
      await set(b, "color", "teal");
      for (const page of [a, b]) {
        await waitFor(async () => (await values(page, "color")).join() === "teal", WAIT, "the conflict is resolved");
        assert.equal(await page.getAttribute('#kv tr[data-key="color"]', "class"), null);
      }
      // ... and the resolving write as the merge: a head linking to both, drawn live in the open tab.
      await waitFor(
        async () => Object.values((await history(a, false)).labels).includes("color = teal"),
        WAIT,
        "alice's history shows the merge",
      );
      const merged = await history(a, false);
      const teal = keyOf(merged, "color = teal");
      assert.ok(merged.heads.includes(teal) && !merged.heads.includes(blue) && !merged.heads.includes(green));
      assert.ok(
        merged.edges.includes(`${teal}>${blue}`) && merged.edges.includes(`${teal}>${green}`),
        "teal merges both",
      );
      assert.equal(merged.labels[teal], "color = teal");
      await a.click("#tab-room");
    });

    it("keeps working while the relay is down, and converges without a reload once it is back", async () => {
      await stopTheRelay();
      await waitFor(
        async () => (await state(a)) === "offline" && (await state(b)) === "offline",
        WAIT,
        "both pages are offline",
      );
      await send(a, "alice, offline");
      await send(b, "bob, offline");
      await set(a, "size", "large");
      await set(b, "shape", "round");
      await waitFor(
        async () =>
          (await messages(a)).includes("alice: alice, offline") && (await messages(b)).includes("bob: bob, offline"),
        WAIT,
        "each page shows its own writes",
      );
      assert.ok(!(await messages(a)).includes("bob: bob, offline"), "alice cannot see bob's offline message yet");

      await startTheRelay();
      for (const page of [a, b]) {
        await waitFor(async () => (await state(page)) === "live", WAIT, "the page is live again");
        await waitFor(async () => (await messages(page)).length === 6, WAIT, "the page has both offline messages");
        await waitFor(async () => (await table(page)).length === 3, WAIT, "the page has both offline values");
      }
      assert.deepEqual(await messages(b), await messages(a), "both pages show the same causal order");
      assert.deepEqual(await table(a), ["color = teal", "shape = round", "size = large"]);
      assert.deepEqual(await table(b), await table(a));
    });

    it("a page reloaded while the relay is down still shows everything it had", async () => {
      const had = { messages: await messages(a), table: await table(a) };
      // The page itself comes from the relay: its service worker keeps a copy for reloads while the relay is down.
      await a.evaluate(async () => {
        await navigator.serviceWorker.ready;
      });
      await stopTheRelay();
      await waitFor(async () => (await state(a)) === "offline", WAIT, "the page is offline");
      await a.reload();
      await a.waitForSelector("html[data-ready=true]", { timeout: WAIT });
      await waitFor(async () => (await messages(a)).length === 6, WAIT, "the reloaded page shows every message");
      await waitFor(async () => (await table(a)).length === 3, WAIT, "the reloaded page shows the table");
      assert.deepEqual(await messages(a), had.messages);
      assert.deepEqual(await table(a), had.table);
      assert.notEqual(await state(a), "live");
      await startTheRelay();
    });
  });
});
