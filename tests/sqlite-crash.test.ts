/**
 * Crash safety of SqliteStorage, as a test: a child process adds nodes to a file database in batches; the test
 * kills it with SIGKILL at random moments (while it opens the database, in the middle of commits, between them),
 * at least 20 times, and after each kill reopens the database and checks that it opens, that every batch is
 * wholly there or wholly absent, that the heads are exactly the nodes nothing links to, that change numbers are
 * dense, and that every node's key matches its content. Runs under Node only: it spawns and kills the project's
 * Node many times, which says nothing more under Deno or Bun.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { nodeOnly } from "./_helpers.ts";
import { after, describe, it } from "node:test";
import { openSqlite } from "../storage/sqlite-open.ts";
import { checkCrashed } from "./_crash.ts";

const WRITER = fileURLToPath(new URL("./fixtures/sqlite-crash-writer.ts", import.meta.url));
/** At least this many kills. */
const KILLS = 24;
/** On a slow machine, stop past this many seconds once the minimum of 20 kills is reached. */
const BUDGET_S = 25;

/** Starts the writer and kills it after `delay` ms (counted from `ready` unless `early`); resolves when dead. */
function runAndKill(path: string, run: number, sync: "normal" | "full", delay: number, early: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, path, String(run), String(run * 7919 + 17), sync], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    let killed = false;
    const kill = (): void => {
      killed = true;
      child.kill("SIGKILL");
    };
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    if (early) setTimeout(kill, delay);
    else {
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        if (chunk.includes("ready") && !killed) setTimeout(kill, delay);
      });
    }
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (signal === "SIGKILL" && killed) resolve();
      else reject(new Error(`The writer ended by itself (code ${code}, signal ${signal}) before the kill:\n${stderr}`));
    });
  });
}

/** Opens the database and checks every invariant; returns the number of nodes and of whole batches. */
async function check(path: string): Promise<{ nodes: number; batches: number }> {
  const storage = await openSqlite(path);
  try {
    const { nodes, batches, heads } = await checkCrashed(storage);
    assert.deepEqual(await storage.has(heads.slice(0, 50)), heads.slice(0, 50).map(() => true));
    return { nodes, batches };
  } finally {
    await storage.close();
  }
}

nodeOnly("SqliteStorage survives SIGKILL", "the crash test spawns and kills the project's Node", () => {
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-sqlite-crash-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(`keeps whole batches, dense changes, true heads and keys through at least ${KILLS} kills`, async (t) => {
    const path = join(dir, "crash.db");
    const start = performance.now();
    let seed = 0x2545f491;
    const random = (bound: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % bound;
    };
    let survived = 0;
    let last = { nodes: 0, batches: 0 };
    for (let run = 1; run <= KILLS; run++) {
      if (run > 20 && performance.now() - start > BUDGET_S * 1000) break;
      // One run in five is killed while it may still be opening (or creating) the database.
      const early = run % 5 === 1;
      const sync = run % 3 === 0 ? "full" : "normal";
      const delay = early ? random(400) : 5 + random(250);
      await runAndKill(path, run, sync, delay, early);
      const now = await check(path);
      assert.ok(now.nodes >= last.nodes, "no committed node was lost");
      last = now;
      survived++;
    }
    const message = `Survived ${survived} SIGKILLs: ${last.nodes} nodes in ${last.batches} whole batches, ` +
      `${((performance.now() - start) / 1000).toFixed(1)} s`;
    t.diagnostic(message);
    console.log(message);
    assert.ok(survived >= 20);
    assert.ok(last.nodes > 0, "the writer got to write");
  });
});
