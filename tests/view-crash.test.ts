/**
 * Crash safety of views, as a test: a child process adds nodes to a SQLite log while a view applies them, and the
 * test kills it with SIGKILL at random moments, many times. After each kill the view's checkpoint and data must
 * agree: every node up to the checkpoint applied exactly once, none after it. Finally the view catches up and every
 * node of the log has been applied exactly once. Runs under Node only (it spawns and kills the project's Node).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { nodeOnly } from "./_helpers.ts";
import { after, describe, it } from "node:test";
import { Hyperlog } from "../mod.ts";
import { openSqlite } from "../storage/sqlite-open.ts";
import { countApplications } from "./fixtures/view-crash-map.ts";

const WORKER = fileURLToPath(new URL("./fixtures/view-crash-worker.ts", import.meta.url));
const KILLS = 12;

function runAndKill(path: string, delay: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, path], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    let killed = false;
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      if (chunk.includes("ready") && !killed) {
        setTimeout(() => {
          killed = true;
          child.kill("SIGKILL");
        }, delay);
      }
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (signal === "SIGKILL" && killed) resolve();
      else reject(new Error(`The worker ended by itself (code ${code}, signal ${signal}):\n${stderr}`));
    });
  });
}

/** Checks the view's data against its checkpoint; returns the checkpoint. */
async function check(path: string): Promise<number> {
  const storage = await openSqlite(path);
  try {
    const state = await storage.viewState("applied");
    const change = state?.change ?? 0;
    const pairs = await storage.viewRange("applied", { gte: "c:", lt: "c;", limit: Infinity, reverse: false });
    assert.equal(pairs.length, change, `one entry per node up to the checkpoint ${change}`);
    for (const [i, [key, value]] of pairs.entries()) {
      assert.equal(key, `c:${String(i + 1).padStart(8, "0")}`, "no node skipped");
      assert.equal(value, "1", `node ${i + 1} applied exactly once`);
    }
    assert.equal(Number(await storage.viewGet("applied", "total") ?? 0), change, "the total matches the checkpoint");
    return change;
  } finally {
    await storage.close();
  }
}

nodeOnly("views survive SIGKILL", "the crash test spawns and kills the project's Node", () => {
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-view-crash-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(`never apply a node twice or skip one, through ${KILLS} kills`, async () => {
    const path = join(dir, "view.db");
    let seed = 0x9e3779b9;
    const random = (bound: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % bound;
    };
    const checkpoints: number[] = [];
    for (let run = 0; run < KILLS; run++) {
      await runAndKill(path, 20 + random(400));
      checkpoints.push(await check(path));
    }
    assert.ok(checkpoints.some((c) => c > 0), `the view made progress: ${checkpoints.join()}`);
    const log = new Hyperlog<number>(await openSqlite(path), { valueEncoding: "json" });
    const view = log.view({
      name: "applied",
      batchSize: 40,
      map: countApplications,
    });
    await view.ready();
    const length = log.length;
    await log.close();
    assert.equal(await check(path), length, "caught up, every node of the log applied exactly once");
  });
});
