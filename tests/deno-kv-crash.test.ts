/**
 * Crash safety of DenoKvStorage, as a test: a child Deno process adds nodes to a Deno KV file in batches (some
 * small enough for one atomic operation, some of 2 000 to 4 000 nodes that go through a journal); the test kills
 * it with SIGKILL at random moments (while it opens the database, in the middle of commits, between them), at
 * least 20 times, and after each kill reopens the database and checks that every batch is wholly there or wholly
 * absent, that the heads are exactly the nodes nothing links to, that change numbers are dense, and that every
 * node's key matches its content. It also counts the kills that left a journal behind: unfinished (invisible) or
 * committed but not yet in place (finished by the reopen). Runs under Deno only (Deno KV).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, it } from "node:test";
import { decodeTip } from "../storage/deno-kv-codec.ts";
import { DenoKvStorage } from "../storage/deno-kv.ts";
import { denoOnly } from "./_helpers.ts";
import { checkCrashed } from "./_crash.ts";

const DENO = fileURLToPath(new URL("../node_modules/.bin/deno", import.meta.url));
const WRITER = fileURLToPath(new URL("./fixtures/deno-kv-crash-writer.ts", import.meta.url));
/** At least this many kills. */
const KILLS = 24;
/** On a slow machine, stop past this many seconds once the minimum of 20 kills is reached. */
const BUDGET_S = 40;

/** Starts the writer and kills it after `delay` ms (counted from `ready` unless `early`); resolves when dead. */
function runAndKill(path: string, run: number, delay: number, early: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(DENO, ["run", "-A", "--unstable-kv", WRITER, path, String(run), String(run * 7919 + 17)], {
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

/** What a kill left, read raw before the storage opens (and finishes or cleans anything). */
async function leftovers(path: string): Promise<{ journals: Set<unknown>; pending: boolean }> {
  const storage = new DenoKvStorage(
    await (globalThis as unknown as { Deno: { openKv(path: string): Promise<DenoKvStorage["kv"]> } }).Deno.openKv(path),
    { closeKv: true },
  );
  const ids = new Set<unknown>();
  for await (const entry of storage.kv.list({ prefix: ["hyperlog", "j"] })) ids.add(entry.key[2]);
  const tip = await storage.kv.get(["hyperlog", "tip"]);
  const pending = tip.value instanceof Uint8Array && decodeTip(tip.value).journal !== "";
  await storage.close();
  return { journals: ids, pending };
}

/** Opens the database and checks every invariant; returns the number of nodes and of whole batches. */
async function check(path: string): Promise<{ nodes: number; batches: number }> {
  const storage = await DenoKvStorage.open(path);
  try {
    const { nodes, batches, keys } = await checkCrashed(storage);
    const sample = keys.filter((_, i) => i % 97 === 0);
    assert.deepEqual(await storage.has(sample), sample.map(() => true), "the key index finds stored nodes");
    return { nodes, batches };
  } finally {
    await storage.close();
  }
}

denoOnly("DenoKvStorage survives SIGKILL", "Deno KV (Deno.openKv) exists in Deno only", () => {
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-denokv-crash-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(`keeps whole batches, dense changes, true heads and keys through at least ${KILLS} kills`, async (t) => {
    const path = join(dir, "crash.kv");
    const start = performance.now();
    let seed = 0x2545f491;
    const random = (bound: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % bound;
    };
    let survived = 0;
    let unfinished = 0;
    let pending = 0;
    let last = { nodes: 0, batches: 0 };
    const seen = new Set<unknown>();
    for (let run = 1; run <= KILLS; run++) {
      if (run > 20 && performance.now() - start > BUDGET_S * 1000) break;
      // One run in five is killed while it may still be opening (or creating) the database.
      const early = run % 5 === 1;
      const delay = early ? random(600) : 5 + random(700);
      await runAndKill(path, run, delay, early);
      const left = await leftovers(path);
      if (left.pending) pending++;
      else if ([...left.journals].some((id) => !seen.has(id))) unfinished++;
      for (const id of left.journals) seen.add(id);
      const now = await check(path);
      assert.ok(now.nodes >= last.nodes, "no committed node was lost");
      last = now;
      survived++;
    }
    const message = `Survived ${survived} SIGKILLs: ${last.nodes} nodes in ${last.batches} whole batches; ` +
      `${unfinished} kills left an unfinished journal (invisible), ${pending} a committed one not yet in place ` +
      `(finished on reopen); ${((performance.now() - start) / 1000).toFixed(1)} s`;
    t.diagnostic(message);
    console.log(message);
    assert.ok(survived >= 20);
    assert.ok(last.nodes > 0, "the writer got to write");
  });
});
