/**
 * LevelStorage in a real Chromium, over browser-level (abstract-level on IndexedDB): bundles
 * `tests/fixtures/level-page.ts` with esbuild and runs every storage conformance case (with reopen) and a log that
 * is closed and reopened, one test each. Node only, and only where /usr/bin/chromium exists (see `tests/_browser.ts`).
 */
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import type { Page } from "playwright-core";
import { type BrowserHarness, bundleForBrowser, describeInBrowser, startBrowser } from "./_browser.ts";
import { storageConformanceCases } from "../storage/conformance.ts";
import type { Outcome } from "./fixtures/page-outcome.ts";

const conformanceNames = storageConformanceCases({
  create: () => {
    throw new Error("Listing only");
  },
  reopen: () => {
    throw new Error("Listing only");
  },
}).map((c) => c.name);

describeInBrowser("LevelStorage on browser-level in Chromium", () => {
  let harness: BrowserHarness | undefined;
  let page: Page;

  before(async () => {
    const main = await bundleForBrowser("./fixtures/level-page.ts");
    harness = await startBrowser({ "/main.js": main });
    page = await harness.open();
    assert.deepEqual(await page.evaluate("hyperlogTests.conformanceNames"), conformanceNames);
  });

  after(async () => {
    await harness?.close();
  });

  for (const [index, name] of conformanceNames.entries()) {
    it(`conformance: ${name}`, async () => {
      const outcome = await page.evaluate(`hyperlogTests.runConformance(${index})`) as Outcome;
      assert.ok(outcome.ok, `in Chromium: ${outcome.error}`);
    });
  }

  it("a log on browser-level is there after a reopen", async () => {
    const outcome = await page.evaluate("hyperlogTests.runLog()") as Outcome;
    assert.ok(outcome.ok, `in Chromium: ${outcome.error}`);
  });
});
