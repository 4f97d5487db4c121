/**
 * The Worker's registry of logs (worker/registry.ts): the throttled reporter a log's Object uses, and the registry
 * Object's answers over a SQL store (node:sqlite standing in for the Durable Object's, on Node and Deno).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type RegistryReport, RegistryReporter, registryResponse, type RegistrySql } from "../worker/registry.ts";

const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";

describe("RegistryReporter", () => {
  it("sends the first report at once, then one per interval with everything that happened in it", async () => {
    const sent: RegistryReport[] = [];
    const timers: { fn: () => void; ms: number }[] = [];
    const reporter = new RegistryReporter("chat", (report) => {
      sent.push(structuredClone(report));
      return Promise.resolve();
    }, (fn, ms) => timers.push({ fn, ms }), 5_000);
    reporter.changed(100, 1_000);
    assert.equal(sent.length, 1);
    assert.deepEqual(sent[0], { name: "chat", bytes: 100, modified: 1_000, refusals: {} });
    assert.deepEqual(timers.map((t) => t.ms), [5_000]);
    for (let i = 0; i < 50; i++) reporter.changed(200 + i, 2_000 + i);
    reporter.refused(4029);
    reporter.refused(4408);
    reporter.refused(4029);
    assert.equal(sent.length, 1, "nothing more within the interval");
    timers.shift()!.fn();
    assert.equal(sent.length, 2);
    assert.deepEqual(sent[1], { name: "chat", bytes: 249, modified: 2_049, refusals: { 4029: 2, 4408: 1 } });
    // An interval with nothing new sends nothing and stops the timer; the next change goes at once.
    timers.shift()!.fn();
    assert.equal(sent.length, 2);
    assert.equal(timers.length, 0);
    reporter.refused(4000);
    assert.equal(sent.length, 3);
    assert.deepEqual(sent[2]!.refusals, { 4000: 1 });
  });

  it("carries on after a report fails", async () => {
    let calls = 0;
    const timers: (() => void)[] = [];
    const reporter = new RegistryReporter("chat", () => {
      calls++;
      return Promise.reject(new Error("The registry is away"));
    }, (fn) => timers.push(fn));
    reporter.changed(1);
    reporter.changed(2);
    timers.shift()!();
    await Promise.resolve();
    assert.equal(calls, 2);
  });
});

if (runtime !== "bun") {
  const { DatabaseSync } = await import("node:sqlite");
  const store = (): RegistrySql => {
    const db = new DatabaseSync(":memory:");
    return {
      exec(query: string, ...bindings: unknown[]) {
        const statement = db.prepare(query);
        statement.setReturnArrays(true);
        const rows = /^\s*SELECT/i.test(query)
          ? statement.all(...bindings as never[]) as unknown as unknown[][]
          : (statement.run(...bindings as never[]), []);
        return { raw: () => rows };
      },
    };
  };
  const post = (sql: RegistrySql, body: unknown, now: number) =>
    registryResponse(
      sql,
      new Request("https://registry/report", { method: "POST", body: JSON.stringify(body) }),
      now,
    );
  const list = async (sql: RegistrySql, now: number) =>
    await (await registryResponse(sql, new Request("https://registry/list"), now)).json() as {
      logs: { name: string; bytes: number; modified: number }[];
      refusals: Record<string, number>;
    };

  describe("the registry Object's answers", () => {
    it("keeps one row per log written and the refusals of the last hour", async () => {
      const sql = store();
      const hour = 60 * 60_000;
      assert.equal((await post(sql, { name: "a", bytes: 10, modified: 5, refusals: { 4029: 2 } }, 0)).status, 200);
      assert.equal((await post(sql, { name: "a", bytes: 30, modified: 9, refusals: {} }, 1)).status, 200);
      assert.equal((await post(sql, { name: "b", bytes: null, modified: 0, refusals: { 4408: 1 } }, 1)).status, 200);
      assert.equal((await post(sql, { name: "c", bytes: 7, modified: 3, refusals: { 4029: 1 } }, hour / 2)).status, 200);
      const now = await list(sql, hour / 2);
      assert.deepEqual(now.logs.sort((x, y) => x.name < y.name ? -1 : 1), [
        { name: "a", bytes: 30, modified: 9 },
        { name: "c", bytes: 7, modified: 3 },
      ]);
      assert.deepEqual(now.refusals, { 4029: 3, 4408: 1 });
      // An hour on, the first minute's refusals are gone; the logs stay.
      const later = await list(sql, hour + 60_000);
      assert.deepEqual(later.refusals, { 4029: 1 });
      assert.equal(later.logs.length, 2);
    });

    it("refuses reports that are not what a log's Object sends", async () => {
      const sql = store();
      const bad: unknown[] = [
        null,
        [],
        { name: "no/slash", bytes: 1, modified: 1, refusals: {} },
        { name: "hyperlog:registry", bytes: 1, modified: 1, refusals: {} },
        { name: "a", bytes: -1, modified: 1, refusals: {} },
        { name: "a", bytes: 1, modified: 1.5, refusals: {} },
        { name: "a", bytes: 1, modified: 1, refusals: { "constructor": 1 } },
        { name: "a", bytes: 1, modified: 1, refusals: { 4029: -3 } },
        { name: "a", bytes: 1, modified: 1, refusals: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [4000 + i, 1])) },
      ];
      for (const body of bad) {
        const response = await post(sql, body, 0);
        assert.equal(response.status, 400, JSON.stringify(body));
        assert.match(String((await response.json() as { error: string }).error), /^A report/);
      }
      const garbage = await registryResponse(sql, new Request("https://registry/report", { method: "POST", body: "{" }));
      assert.equal(garbage.status, 400);
      assert.equal((await registryResponse(sql, new Request("https://registry/other"))).status, 404);
      assert.deepEqual(await list(sql, 0), { logs: [], refusals: {} });
    });
  });
}
