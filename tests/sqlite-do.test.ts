/**
 * The Durable Object driver in workerd: bundles `tests/fixtures/do-conformance-worker.ts` with esbuild, starts it
 * in Miniflare with a SQLite-backed Durable Object, and runs every storage conformance case there, one request
 * (and one new Object) per case. Node only: Miniflare drives the workerd binary from Node.
 */
import assert from "node:assert/strict";
import { nodeOnly } from "./_helpers.ts";
import { after, before, describe, it } from "node:test";
import type { DurableObjectSqlStorage } from "../storage/sqlite-do.ts";
import { allCases } from "./fixtures/do-conformance-worker.ts";

/** The names of the cases the worker runs, in order (listing them runs nothing). */
const names = allCases({} as DurableObjectSqlStorage).map((c) => c.name);

nodeOnly("SqliteStorage in a Durable Object (workerd, through Miniflare)", "Miniflare starts workerd from Node", () => {
  // Imported here so that the other runtimes never load them.
  let mf: import("miniflare").Miniflare | undefined;

  before(async () => {
    const { Miniflare } = await import("miniflare");
    const { bundleWorker } = await import("./fixtures/relay-miniflare.ts");
    const code = await bundleWorker(new URL("./fixtures/do-conformance-worker.ts", import.meta.url));
    mf = new Miniflare({
      modules: [{ type: "ESModule", path: "worker.mjs", contents: code }],
      compatibilityDate: "2025-09-01",
      compatibilityFlags: ["nodejs_compat"],
      durableObjects: { CONFORMANCE: { className: "ConformanceObject", useSQLite: true } },
    });
    const response = await mf.dispatchFetch("http://worker/cases");
    assert.deepEqual(await response.json(), names, "the worker has the same cases as this file");
  });

  after(async () => {
    await mf?.dispose();
  });

  for (const [index, name] of names.entries()) {
    it(name, async () => {
      const response = await mf!.dispatchFetch(`http://worker/run/${index}`);
      assert.equal(response.status, 200, await response.clone().text());
      const outcome = await response.json() as { name: string; ok: boolean; error?: string };
      assert.equal(outcome.name, name);
      assert.ok(outcome.ok, `in workerd: ${outcome.error}`);
    });
  }
});
