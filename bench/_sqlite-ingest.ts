/**
 * The receiving side of the 1 M-node SQLite sync without the session: the nodes of a sender file, read a page at a
 * time, committed into a new file in commits of `--commit` nodes (the receiver's INGEST_BATCH is 512), with the CPU
 * of the commits alone and where their time goes (BEGIN/COMMIT, node inserts, key settles, lookups, the rest). It
 * only reads the sender file's nodes (opening it, as every `SqliteStorage` does, may checkpoint its WAL), and holds
 * them all in memory (the peak RSS it prints is ~800 MB at 1 000 000 nodes: not a receiver's).
 *
 * `node bench/_sqlite-ingest.ts --sender /work/bench-data/sender.db [--n 1000000] [--commit 512] [--reps 1]`
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { markChecked, unmarkChecked } from "../src/checked-commits.ts";
import type { StoredNode } from "../src/node.ts";
import { RecentKeys } from "../storage/sqlite-keys.ts";
import { openSqlite } from "../storage/sqlite-open.ts";
import type { SqliteValue } from "../storage/sqlite.ts";
import { median, peakRssMb } from "./_util.ts";

const { values } = parseArgs({
  options: {
    sender: { type: "string" },
    n: { type: "string" },
    commit: { type: "string" },
    reps: { type: "string" },
  },
});
if (values.sender === undefined) {
  console.error("Usage: node bench/_sqlite-ingest.ts --sender FILE [--n NODES] [--commit NODES] [--reps N]");
  process.exit(2);
}
const n = Number(values.n ?? 1_000_000);
const size = Number(values.commit ?? 512);
const reps = Number(values.reps ?? 1);

// The nodes, read once (the same keys, links and values as the sync sends).
const source = await openSqlite(values.sender);
const pages: StoredNode[][] = [];
for (let at = 0; at < n; at += size) {
  pages.push(await source.read({ since: at, until: Math.min(n, at + size), limit: size, reverse: false }));
}
await source.close();
console.error(`read in ${(performance.now() / 1000).toFixed(2)} s`);

const cpuNow = () => {
  const used = process.cpuUsage();
  return (used.user + used.system) / 1e6;
};
const results: Array<Record<string, number>> = [];
for (let rep = 0; rep < reps; rep++) {
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-ingest-"));
  try {
    const storage = await openSqlite(join(dir, "receiver.db"));
    await storage.open();
    const driver = storage.driver;
    const spent = { begin: 0, commit: 0, insertNodes: 0, settle: 0, lookup: 0, other: 0 };
    // The transaction's BEGIN and COMMIT go to the binding's exec (node:sqlite's DatabaseSync).
    const db = (driver as unknown as { db: { exec(sql: string): void } }).db;
    const exec = db.exec.bind(db);
    const run = driver.run.bind(driver);
    const all = driver.all.bind(driver);
    db.exec = (sql: string) => {
      const start = performance.now();
      exec(sql);
      spent[sql.startsWith("BEGIN") ? "begin" : sql === "COMMIT" ? "commit" : "other"] += performance.now() - start;
    };
    driver.run = (sql: string, ...params: SqliteValue[]) => {
      const start = performance.now();
      run(sql, ...params);
      const kind = sql.includes("hyperlog_nodes") ? "insertNodes" : sql.includes("hyperlog_keys") ? "settle" : "other";
      spent[kind] += performance.now() - start;
    };
    driver.all = (sql: string, ...params: SqliteValue[]) => {
      const start = performance.now();
      const rows = all(sql, ...params);
      spent.lookup += performance.now() - start;
      return rows;
    };
    // The settles, timed whole (the sort, the writes to the index).
    let settles = 0;
    let settleMs = 0;
    const settle = RecentKeys.prototype.settle;
    RecentKeys.prototype.settle = function (...args: Parameters<typeof settle>) {
      const start = performance.now();
      settle.apply(this, args);
      settleMs += performance.now() - start;
      settles++;
    };
    let cpu = 0;
    const usage0 = process.cpuUsage();
    const start = performance.now();
    for (const page of pages) {
      const before = cpuNow();
      markChecked(page);
      await storage.commit(page);
      unmarkChecked(page);
      cpu += cpuNow() - before;
    }
    const seconds = (performance.now() - start) / 1000;
    const usage = process.cpuUsage(usage0);
    console.error(`page size ${driver.get("PRAGMA page_size")?.[0]}, pages ${driver.get("PRAGMA page_count")?.[0]}`);
    await storage.close();
    const result = { seconds, cpu, ...Object.fromEntries(Object.entries(spent).map(([k, v]) => [k, v / 1000])) };
    results.push(result);
    console.log(
      `${n} nodes in commits of ${size}: ${seconds.toFixed(2)} s, CPU ${cpu.toFixed(2)} s ` +
        `(user ${(usage.user / 1e6).toFixed(2)}, system ${(usage.system / 1e6).toFixed(2)}); ` +
        Object.entries(spent).map(([k, v]) => `${k} ${(v / 1000).toFixed(2)}`).join(", ") +
        `; ${settles} settles ${(settleMs / 1000).toFixed(2)} s`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
if (reps > 1) {
  console.log(
    `medians of ${reps}: ${median(results.map((r) => r.seconds!)).toFixed(2)} s, CPU ${
      median(results.map((r) => r.cpu!)).toFixed(2)
    } s`,
  );
}
console.log(`peak RSS ${peakRssMb().toFixed(0)} MB`);
