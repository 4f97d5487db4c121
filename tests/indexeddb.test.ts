/**
 * IndexedDBStorage in a real Chromium: bundles `tests/fixtures/indexeddb-page.ts` with esbuild, serves it to a
 * page, and runs every storage conformance case (with reopen), the scenarios that the chunked layout makes risky
 * (two storages on one database, many small commits, the upgrade from a version-1 database written by the old code
 * in `tests/fixtures/indexeddb-v1.ts`) and the Hyperlog scenarios there, one test each.
 * Node only, and only where /usr/bin/chromium exists (see `tests/_browser.ts`).
 */
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import type { Page } from "playwright-core";
import { type BrowserHarness, bundleForBrowser, describeInBrowser, startBrowser } from "./_browser.ts";
import { storageConformanceCases } from "../storage/conformance.ts";
import type { Outcome } from "./fixtures/page-outcome.ts";

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
const layoutNames = [
  "two storages on one database commit alternately: dense changes, no duplicates, each sees the other's nodes",
  "a large commit holding nodes another storage stored, never looked up here, skips them",
  "a reopen after many small commits and a few large ones keeps everything, and reads cross chunks both ways",
  "a version-1 database is upgraded in place, keeping nodes, heads, metadata and views",
  "storm-shaped links are kept as change numbers and read back as keys across chunks, commits and reopens",
  "a version-2 database (links as keys) is upgraded without a rewrite, read, appended to; version 2 refuses it",
  "a link numbered to a change that is not stored fails the read with a StorageError, and the database stays",
  "a database that is not hyperlog's is refused and left as it was",
];

describeInBrowser("IndexedDBStorage in Chromium", () => {
  let harness: BrowserHarness | undefined;
  let page: Page;

  before(async () => {
    const main = await bundleForBrowser("./fixtures/indexeddb-page.ts");
    harness = await startBrowser({ "/main.js": main });
    page = await harness.open();
    assert.deepEqual(await page.evaluate("hyperlogTests.conformanceNames"), conformanceNames);
    assert.deepEqual(await page.evaluate("hyperlogTests.scenarioNames"), scenarioNames);
    assert.deepEqual(await page.evaluate("hyperlogTests.layoutNames"), layoutNames);
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

  for (const name of layoutNames) {
    it(`layout: ${name}`, async () => {
      const outcome = await page.evaluate(`hyperlogTests.runLayout(${JSON.stringify(name)})`) as Outcome;
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
