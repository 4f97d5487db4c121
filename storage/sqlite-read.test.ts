/**
 * SqliteStorage's page reads (sqlite-read.ts) on the runtime's own driver: a page is read as one packed row, checked,
 * and read row by row when the packed row does not add up; pages across gaps in change numbers; the links by change
 * that ride on a page (src/page-links.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { chain, makeStoredNode } from "./conformance.ts";
import { openSqlite } from "./sqlite-open.ts";
import { type SqliteDriver, type SqliteRow, SqliteStorage } from "./sqlite.ts";
import { linksOfChange, pageLinksOf } from "../src/page-links.ts";
import { decodeLinkBytes, decodeLinks, encodeLinks } from "./sqlite-links.ts";
import type { StoredNode } from "../src/node.ts";

const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";

/** `inner` with every packed row passed through `change` and every statement counted by its SQL. */
function tampered(inner: SqliteDriver, change: (row: SqliteRow) => SqliteRow) {
  const asked: string[] = [];
  const driver: SqliteDriver = {
    file: inner.file,
    maxParams: inner.maxParams,
    maxBlob: inner.maxBlob,
    exec: (sql) => inner.exec(sql),
    run: (sql, ...params) => inner.run(sql, ...params),
    all: (sql, ...params) => (asked.push(sql), inner.all(sql, ...params)),
    get: (sql, ...params) => {
      asked.push(sql);
      const row = inner.get(sql, ...params);
      return row !== undefined && sql.includes("group_concat") ? change([...row]) : row;
    },
    transaction: (fn) => inner.transaction(fn),
    close: () => inner.close(),
  };
  return { driver, asked };
}

/** 40 nodes: values of every length 0-39 with NUL and non-UTF-8 bytes, links back, a few signed. */
function mixed(): StoredNode[] {
  const nodes: StoredNode[] = [];
  for (let i = 0; i < 40; i++) {
    const value = new Uint8Array(i).map((_, j) => (j * 97 + i) & 255);
    const links = i === 0 ? [] : i % 7 === 0 ? [nodes[i - 1]!.key, nodes[Math.floor(i / 2)]!.key] : [nodes[i - 1]!.key];
    const node = makeStoredNode(links, value, i + 1);
    nodes.push(i % 5 === 3 ? { ...node, identity: "d4".repeat(32), signature: "4d".repeat(64) } : node);
  }
  return nodes;
}

function sameNodes(actual: StoredNode[], expected: StoredNode[]): void {
  assert.deepEqual(actual.map((n) => ({ ...n, value: [...n.value] })), expected.map((n) => ({ ...n, value: [...n.value] })));
}

describe(`SqliteStorage: page reads (${runtime})`, () => {
  it("reads a page as one packed row: one statement a page, no row statement", async () => {
    const inner = (await openSqlite(":memory:")).driver;
    const { driver, asked } = tampered(inner, (row) => row);
    const storage = new SqliteStorage(driver);
    const nodes = mixed();
    await storage.commit(nodes);
    asked.length = 0;
    sameNodes(await storage.read({ since: 10, until: Infinity, limit: 8, reverse: false }), nodes.slice(10, 18));
    sameNodes(await storage.read({ since: 0, until: 30, limit: 8, reverse: true }), nodes.slice(22, 30).reverse());
    // Links that leave the page are looked up (one statement each page), rows are not read one by one.
    assert.equal(asked.filter((sql) => sql.includes("LIMIT") && !sql.includes("group_concat")).length, 0);
    assert.equal(asked.filter((sql) => sql.includes("group_concat")).length, 2);
    await storage.close();
  });

  it("finds a page's links into the page read before it there, with no statement for their keys", async () => {
    const inner = (await openSqlite(":memory:")).driver;
    const { driver, asked } = tampered(inner, (row) => row);
    const storage = new SqliteStorage(driver);
    const nodes = chain(40);
    await storage.commit(nodes);
    asked.length = 0;
    for (let since = 0; since < 40; since += 8) {
      sameNodes(await storage.read({ since, until: Infinity, limit: 8, reverse: false }), nodes.slice(since, since + 8));
    }
    assert.deepEqual(asked.filter((sql) => sql.includes("json_each")), [], "no lookup of keys");
    sameNodes(await storage.read({ since: 0, until: 10, limit: 3, reverse: true }), nodes.slice(7, 10).reverse());
    assert.equal(asked.filter((sql) => sql.includes("json_each")).length, 1, "a page far from the last one looks up");
    sameNodes(await storage.read({ since: 0, until: 7, limit: 3, reverse: true }), nodes.slice(4, 7).reverse());
    assert.equal(asked.filter((sql) => sql.includes("json_each")).length, 2, "and the page after it, down");
    sameNodes(await storage.read({ since: 6, until: 12, limit: 3, reverse: false }), nodes.slice(6, 9));
    assert.equal(asked.filter((sql) => sql.includes("json_each")).length, 2, "back up from there: in the last page");
    await storage.close();
  });

  it("reads the page row by row when the packed row fails, is out of order or does not add up, with the same nodes", async () => {
    const nodes = mixed();
    const tamperings: [string, (row: SqliteRow) => SqliteRow][] = [
      ["changes out of order", (row) => {
        const entries = String(row[0]).match(/\d+,\d+,-?\d+/g)!;
        if (entries.length > 1) [entries[0], entries[1]] = [entries[1]!, entries[0]!];
        return [entries.join(","), ...row.slice(1)];
      }],
      ["too big for one string", () => {
        throw new Error("string or blob too big");
      }],
      ["a value byte short", (row) => [...row.slice(0, 3), (row[3] as Uint8Array).subarray(1), ...row.slice(4)]],
      ["a key short", (row) => [...row.slice(0, 1), String(row[1]).slice(2), ...row.slice(2)]],
      ["a change twice", (row) => {
        const entries = String(row[0]).split(",");
        return [[...entries, ...entries.slice(-3, -2), "0", "0"].join(","), String(row[1]) + "00".repeat(32), ...row.slice(2)];
      }],
    ];
    for (const [what, change] of tamperings) {
      const inner = (await openSqlite(":memory:")).driver;
      const { driver, asked } = tampered(inner, change);
      const storage = new SqliteStorage(driver);
      await storage.commit(nodes);
      asked.length = 0;
      sameNodes(await storage.read({ since: 5, until: Infinity, limit: 10, reverse: false }), nodes.slice(5, 15));
      sameNodes(await storage.read({ since: 0, until: 35, limit: 10, reverse: true }), nodes.slice(25, 35).reverse());
      sameNodes(await storage.read({ since: 0, until: Infinity, limit: Infinity, reverse: false }), nodes);
      const rows = asked.filter((sql) => sql.includes("LIMIT") && !sql.includes("group_concat")).length;
      assert.equal(rows, 3, `${what}: each page read row by row`);
      await storage.close();
    }
  });

  it("reads pages across gaps in change numbers (a file another program thinned), both ways", async () => {
    const storage = await openSqlite(":memory:");
    const nodes: StoredNode[] = [];
    for (let i = 1; i <= 60; i++) nodes.push(makeStoredNode([], new Uint8Array([i, 0, 255]), i));
    await storage.commit(nodes);
    storage.driver.run("DELETE FROM hyperlog_nodes WHERE change % 3 = 0 OR (change > 20 AND change < 40)");
    const kept = nodes.filter((n) => n.change % 3 !== 0 && !(n.change > 20 && n.change < 40));
    for (const limit of [1, 4, 7, 100]) {
      for (const reverse of [false, true]) {
        const got: StoredNode[] = [];
        let bound = reverse ? Infinity : 0;
        for (;;) {
          const page = await storage.read({
            since: reverse ? 0 : bound,
            until: reverse ? bound : Infinity,
            limit,
            reverse,
          });
          if (page.length === 0) break;
          assert.ok(page.length <= limit);
          got.push(...page);
          bound = page[page.length - 1]!.change + (reverse ? -1 : 0);
        }
        sameNodes(got, reverse ? [...kept].reverse() : kept);
      }
    }
    await storage.close();
  });

  it("reads a page bigger than one packed row holds (4 096 nodes) in several, as one page", async () => {
    const inner = (await openSqlite(":memory:")).driver;
    const { driver, asked } = tampered(inner, (row) => row);
    const storage = new SqliteStorage(driver);
    const nodes: StoredNode[] = [];
    for (let i = 1; i <= 10_000; i++) {
      nodes.push(makeStoredNode(i === 1 ? [] : [nodes[i - 2]!.key], new Uint8Array([i & 255, i >> 8]), i));
    }
    for (let at = 0; at < nodes.length; at += 2500) await storage.commit(nodes.slice(at, at + 2500));
    asked.length = 0;
    sameNodes(await storage.read({ since: 0, until: Infinity, limit: Infinity, reverse: false }), nodes);
    assert.equal(asked.filter((sql) => sql.includes("group_concat")).length, 3);
    sameNodes(await storage.read({ since: 500, until: 9800, limit: 9000, reverse: true }), nodes.slice(800, 9800).reverse());
    const page = await storage.read({ since: 100, until: Infinity, limit: 5000, reverse: false });
    sameNodes(page, nodes.slice(100, 5100));
    assert.deepEqual(pageLinksOf(page)!.changes, page.map((n) => n.change));
    await storage.close();
  });

  it("decodes stored links from their bytes as from their hex, and refuses them cut short", () => {
    const keys = ["ab".repeat(32), "00".repeat(32), "ff".repeat(32)];
    const changes = new Map([[keys[0]!, 100_000], [keys[2]!, 99]]);
    const hex = encodeLinks(200_000, [keys[0]!, keys[1]!, keys[2]!, keys[0]!], (key) => changes.get(key));
    const bytes = new Uint8Array(hex.length / 2 + 2).map((_, i) => i === 0 ? 7 : parseInt(hex.slice(2 * i - 2, 2 * i), 16));
    const decoded = decodeLinkBytes(200_000, bytes, 1, bytes.length - 1);
    assert.deepEqual(decoded, decodeLinks(200_000, hex));
    assert.deepEqual(decoded, [100_000, keys[1], 99, 100_000]);
    assert.throws(() => decodeLinkBytes(5, bytes, 1, 20), TypeError);
    assert.throws(() => decodeLinkBytes(5, new Uint8Array([0x81]), 0, 1), TypeError);
  });

  it("a page carries its links by change, for the session's encoder", async () => {
    const storage = await openSqlite(":memory:");
    const nodes = mixed();
    await storage.commit(nodes);
    for (const reverse of [false, true]) {
      const page = await storage.read({ since: 10, until: 30, limit: 8, reverse });
      const links = pageLinksOf(page)!;
      assert.ok(links !== undefined && Object.keys(page).length === page.length, "not enumerable");
      for (const node of page) {
        const stored = linksOfChange(links, node.change);
        const expected = node.links.map((key) => nodes.findIndex((n) => n.key === key) + 1);
        assert.deepEqual(stored ?? [], expected);
      }
      assert.equal(linksOfChange(links, 5), null);
    }
    await storage.close();
  });
});
