/**
 * The page behind `bench/indexeddb.ts`, bundled for Chromium: builds a log on IndexedDBStorage and times it.
 *
 * @module
 */
import { Hyperlog } from "../src/log.ts";
import { chain, makeStoredNode } from "../storage/conformance.ts";
import type { StoredNode } from "../src/node.ts";
import { IndexedDBStorage } from "../storage/indexeddb.ts";

/** What one run measures (rates per second, reopen in milliseconds). */
export interface IndexedDBResult {
  commit: number;
  batch: number;
  append: number;
  appendStrict: number;
  get: number;
  getCold: number;
  read: number;
  heads: number;
  reopen: number;
  /** Storm-shaped nodes (50 writers, ~49 links each): raw commits and reads of pages of 1000 by a fresh storage. */
  stormCommit: number;
  stormRead: number;
  /** `navigator.storage.estimate()` usage grown per storm node (0 where the browser does not say). */
  stormBytes: number;
}

/** `count` nodes by 50 writers in turn, each linking to the latest node of every writer (~49 links). */
function storm(count: number): StoredNode[] {
  const tips: string[] = [];
  const nodes: StoredNode[] = [];
  for (let change = 1; change <= count; change++) {
    const writer = change % 50;
    const value = JSON.stringify({ c: writer, i: change, text: `entry ${change} of a storm` });
    const node = makeStoredNode(tips.filter((tip) => tip !== undefined), value, change);
    nodes.push(node);
    tips[writer] = node.key;
  }
  return nodes;
}

async function runStorm(n: number): Promise<Pick<IndexedDBResult, "stormCommit" | "stormRead" | "stormBytes">> {
  const nodes = storm(n);
  const name = `storm-${crypto.randomUUID()}`;
  const usage = async () => (await navigator.storage?.estimate?.())?.usage ?? 0;
  const before = await usage();
  const storage = new IndexedDBStorage(name);
  await storage.open();
  let start = performance.now();
  for (let i = 0; i < n; i += 1000) await storage.commit(nodes.slice(i, i + 1000));
  const stormCommit = rate(n, start);
  await storage.close();
  const stormBytes = Math.max(0, (await usage()) - before) / n;
  const reader = new IndexedDBStorage(name);
  await reader.open();
  start = performance.now();
  let count = 0;
  for (let since = 0; since < n; since += 1000) {
    count += (await reader.read({ since, until: Infinity, limit: 1000, reverse: false })).length;
  }
  const stormRead = rate(count, start);
  await reader.close();
  await IndexedDBStorage.destroy(name);
  return { stormCommit, stormRead, stormBytes };
}

const rate = (count: number, start: number) => count / ((performance.now() - start) / 1000);

async function run(n: number, appends: number, gets: number): Promise<IndexedDBResult> {
  const stormed = await runStorm(n / 2);
  const tag = crypto.randomUUID();
  // Raw storage commits of 1000 prepared nodes (hashing done beforehand).
  const nodes = chain(n, 1, undefined, "raw");
  const raw = new IndexedDBStorage(`raw-${tag}`);
  await raw.open();
  let start = performance.now();
  for (let i = 0; i < n; i += 1000) await raw.commit(nodes.slice(i, i + 1000));
  const commit = rate(n, start);
  await raw.close();

  const name = `log-${tag}`;
  const log = new Hyperlog<unknown>(new IndexedDBStorage(name), { valueEncoding: "json" });
  await log.ready();
  start = performance.now();
  for (let i = 0; i < n; i += 1000) {
    await log.batch(Array.from({ length: 1000 }, (_, j) => ({ value: { i: i + j, text: `message ${i + j}` } })));
  }
  const batch = rate(n, start);
  start = performance.now();
  for (let i = 0; i < appends; i++) await log.append({ appended: i });
  const append = rate(appends, start);
  const keys: string[] = [];
  for await (const node of log.createReadStream({ limit: gets })) keys.push(node.key);
  const reader = new Hyperlog<unknown>(new IndexedDBStorage(name), { valueEncoding: "json" });
  await reader.ready();
  start = performance.now();
  for (let i = 0; i < gets; i++) await reader.get(keys[(i * 7919) % keys.length]!);
  const get = rate(gets, start);
  // Cold gets: a fresh storage, one key per 1000-node commit, so each get loads a chunk it has not seen.
  const spread: string[] = [];
  for await (const node of log.createReadStream()) if (node.change % 1000 === 500) spread.push(node.key);
  const cold = new IndexedDBStorage(name);
  await cold.open();
  start = performance.now();
  for (const key of spread) await cold.get(key);
  const getCold = rate(spread.length, start);
  await cold.close();
  start = performance.now();
  let count = 0;
  for await (const _node of reader.createReadStream()) count++;
  const read = rate(count, start);
  start = performance.now();
  for (let i = 0; i < 100; i++) await reader.storage.heads();
  const heads = rate(100, start);
  await reader.close();
  await log.close();
  start = performance.now();
  const again = new Hyperlog<unknown>(new IndexedDBStorage(name), { valueEncoding: "json" });
  await again.ready();
  await again.heads();
  const reopen = performance.now() - start;
  await again.close();

  const strict = new Hyperlog<unknown>(new IndexedDBStorage(`strict-${tag}`, { durability: "strict" }));
  start = performance.now();
  for (let i = 0; i < appends; i++) await strict.append({ appended: i });
  const appendStrict = rate(appends, start);
  await strict.close();
  for (const db of [`raw-${tag}`, name, `strict-${tag}`]) await IndexedDBStorage.destroy(db);
  return { commit, batch, append, appendStrict, get, getCold, read, heads, reopen, ...stormed };
}

Object.assign(globalThis, { hyperlogBench: { run }, hyperlogReady: true });
