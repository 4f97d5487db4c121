/**
 * IndexedDB benchmark: this library on IndexedDBStorage in the system Chromium (headless, driven by
 * playwright-core): raw storage commits, batch, sequential append (relaxed and strict durability), random get, full
 * read stream, heads, and reopen. Each repetition runs in a fresh browser context; each figure is the median.
 * hyperlog 4.12.1 ran in browsers on level-js, which is not installed here, so there is no ratio.
 *
 * Run it through the driver: `npm run bench -- --only indexeddb`. Skipped (with a note) when /usr/bin/chromium
 * is missing.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { bundleForBrowser, CHROMIUM, startBrowser } from "../tests/_browser.ts";
import type { IndexedDBResult } from "./_indexeddb-page.ts";
import { type BenchContext, type BenchModule, type Figure, median, secondsSince } from "./_util.ts";

/** Nodes in the batch-built log (and in the raw commits). */
const N = 20_000;
/** Sequential appends per run. */
const APPENDS = 1000;
/** Random gets per run. */
const GETS = 2000;

async function run(context: BenchContext): Promise<Figure[]> {
  if (!existsSync(CHROMIUM)) {
    context.progress(`indexeddb: skipped, ${CHROMIUM} is missing (apt-get install -y chromium)`);
    return [];
  }
  const main = await bundleForBrowser(fileURLToPath(new URL("./_indexeddb-page.ts", import.meta.url)), {
    minify: true,
  });
  const harness = await startBrowser({ "/main.js": main });
  const results: IndexedDBResult[] = [];
  try {
    for (let rep = 1; rep <= context.reps; rep++) {
      const start = performance.now();
      const context_ = await harness.browser.newContext();
      const page = await harness.open("/", context_);
      results.push(await page.evaluate(`hyperlogBench.run(${N}, ${APPENDS}, ${GETS})`) as IndexedDBResult);
      await context_.close();
      context.progress(`indexeddb [${rep}/${context.reps}] n=${N} (${secondsSince(start).toFixed(1)} s)`);
    }
  } finally {
    await harness.close();
  }
  const med = (key: keyof IndexedDBResult) => median(results.map((r) => r[key]));
  const figure = (bench: string, n: number, unit: string, key: keyof IndexedDBResult): Figure => ({
    bench,
    n,
    unit,
    ours: med(key),
    hyperlog: null,
    ratio: null,
  });
  return [
    figure("idb commit (raw storage, 1000 per commit)", N, "nodes/s", "commit"),
    figure("idb batch (chunks of 1000)", N, "nodes/s", "batch"),
    figure("idb sequential append (relaxed)", APPENDS, "nodes/s", "append"),
    figure("idb sequential append (strict)", APPENDS, "nodes/s", "appendStrict"),
    figure("idb get by key", GETS, "gets/s", "get"),
    figure("idb get by key, cold (a chunk read per get)", N / 1000, "gets/s", "getCold"),
    figure("idb full read stream", N + APPENDS, "nodes/s", "read"),
    figure("idb heads()", 100, "calls/s", "heads"),
    figure("idb reopen (open, id, length, heads)", N + APPENDS, "ms", "reopen"),
    figure("idb storm commit (~49 links a node, 1000 per commit)", N / 2, "nodes/s", "stormCommit"),
    figure("idb storm read (pages of 1000, fresh storage)", N / 2, "nodes/s", "stormRead"),
    figure("idb storm storage used (storage.estimate)", N / 2, "bytes/node", "stormBytes"),
  ];
}

/** The IndexedDB benchmark module. */
export const benchmark: BenchModule = {
  name: "indexeddb",
  title: "IndexedDB: this library on IndexedDBStorage in headless Chromium (system /usr/bin/chromium)",
  notes: [
    `commit: storage.commit() of prepared nodes (hashed beforehand), 1000 per commit, ${N} nodes, one transaction each.`,
    `batch: ${N} nodes via log.batch() in chunks of 1000 JSON documents; append: ${APPENDS} awaited log.append() calls, with the default relaxed durability and with { durability: "strict" } (a flush per commit).`,
    `get: ${GETS} log.get() calls on known keys (the first ${GETS} nodes) from a second log on the same database: the first get of a chunk reads it, later ones are answered from the chunks the storage keeps in memory; cold get: a fresh storage gets one key per 1000-node commit, so each get reads a chunk of 1000 nodes; read: the whole log through createReadStream().`,
    `storm: ${N / 2} prepared nodes by 50 writers in turn, each linking to the latest node of every writer (~49 links, ~48-byte values), committed 1000 at a time, then read back by a fresh storage in pages of 1000 (every link resolved to its key); storage used: what navigator.storage.estimate() grew by, per node.`,
    "reopen: a new Hyperlog on the database until ready() and heads() resolve. Each repetition runs in a fresh browser context (an in-memory profile).",
  ],
  run,
};
