/**
 * IndexedDBStorage in a real Chromium: bundles `tests/fixtures/indexeddb-page.ts` with esbuild, serves it to a
 * page, and runs every storage conformance case (with reopen) and the Hyperlog scenarios there, one test each.
 * Node only, and only where /usr/bin/chromium exists (see `tests/_browser.ts`).
 */
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import type { Page } from "playwright-core";
import { type BrowserHarness, bundleForBrowser, describeInBrowser, startBrowser } from "./_browser.ts";
import { storageConformanceCases } from "../storage/conformance.ts";

/** The cases the page runs, by name and in order (listing them runs nothing). */
const conformanceNames = storageConformanceCases({
  create: () => {
    throw new Error("Listing only");
  },
  reopen: () => {
    throw new Error("Listing only");
  },
}).map((c) => c.name);
const scenarioNames = [
  "a log adds, appends and batches; a reopened log keeps its nodes, heads, order and id",
  "a batch with a missing link stores nothing",
  "two logs in the page replicate, and a second sync moves nothing",
  "a live session forwards new nodes both ways",
];

interface Outcome {
  ok: boolean;
  error?: string;
}

describeInBrowser("IndexedDBStorage in Chromium", () => {
  let harness: BrowserHarness | undefined;
  let page: Page;

  before(async () => {
    const main = await bundleForBrowser("./fixtures/indexeddb-page.ts");
    harness = await startBrowser({ "/main.js": main });
    page = await harness.open();
    assert.deepEqual(await page.evaluate("hyperlogTests.conformanceNames"), conformanceNames);
    assert.deepEqual(await page.evaluate("hyperlogTests.scenarioNames"), scenarioNames);
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

  for (const name of scenarioNames) {
    it(`Hyperlog: ${name}`, async () => {
      const outcome = await page.evaluate(`hyperlogTests.runScenario(${JSON.stringify(name)})`) as Outcome;
      assert.ok(outcome.ok, `in Chromium: ${outcome.error}`);
    });
  }
});
