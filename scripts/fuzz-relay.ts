/**
 * Sends malformed HTTP requests over raw TCP to `hyperlog serve` on this runtime (and, on Node with `--worker`, to the
 * relay worker in Miniflare), then checks that the relay still serves. Prints the tally of answers; exits 1 if any
 * answer was outside 4xx or the relay stopped serving.
 *
 * Usage: node scripts/fuzz-relay.ts [--count 10000] [--seed 13] [--worker]
 *        deno run -A scripts/fuzz-relay.ts ...; bun scripts/fuzz-relay.ts ...
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { serve } from "../worker/serve.ts";
import { fuzz } from "../tests/_http-fuzz.ts";
import { setEventSink } from "../worker/events.ts";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "10000" },
    seed: { type: "string", default: "13" },
    worker: { type: "boolean" },
  },
});
const count = Number(values.count);
const seed = Number(values.seed);
const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
let failed = false;

async function run(label: string, url: string): Promise<void> {
  const port = Number(new URL(url).port);
  const started = performance.now();
  const { tally, bad } = await fuzz(port, count, { seed });
  const seconds = (performance.now() - started) / 1000;
  const health = await fetch(`${url}/health`).then((r) => r.status, () => 0);
  const line = [...tally.entries()].sort().map(([status, n]) => `${status}: ${n}`).join(", ");
  console.log(`${label}: ${count} requests in ${seconds.toFixed(1)} s; answers ${line}; /health after: ${health}`);
  for (const b of bad) console.log(`  outside 4xx: ${b}`);
  if (bad.length > 0 || health !== 200) failed = true;
}

const dir = mkdtempSync(join(tmpdir(), "hyperlog-fuzz-"));
const restore = setEventSink(() => {});
try {
  const server = await serve({ dir, port: 0 });
  await run(`serve on ${runtime}`, server.url);
  await server.close();
  if (values.worker === true && runtime === "node") {
    const { startRelay } = await import("../tests/fixtures/relay-miniflare.ts");
    const relay = await startRelay();
    await run("worker in Miniflare", relay.url);
    await relay.stop();
  }
} finally {
  restore();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
