/**
 * SQLite schema version 2 on the runtime's own driver: a real version 1 file (written with the v1 tables and
 * layout) is migrated in one transaction with everything it holds; links are stored as change references and
 * resolved back to keys; the recent keys held in memory stay right across connections and settles.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { StoredNode } from "../src/node.ts";
import { chain, makeStoredNode } from "./conformance.ts";
import { openSqlite, openSqliteDriver } from "./sqlite-open.ts";
import { SCHEMA_V1 } from "./sqlite-schema.ts";
import { SQLITE_SCHEMA_VERSION, type SqliteDriver } from "./sqlite.ts";

const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const dir = mkdtempSync(join(tmpdir(), "hyperlog-sqlite-schema-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const newFile = (name: string): string => join(dir, `${name}-${++files}.db`);

/** Version 1's key prefix: the first 48 bits of the key as a signed integer. */
function prefixV1(key: string): number {
  return (parseInt(key.slice(0, 4), 16) - 32768) * 4294967296 + parseInt(key.slice(4, 12), 16);
}

/**
 * Writes `nodes` into `path` the way hyperlog with schema version 1 did: links as concatenated 32-byte keys, keys
 * up to `settled` in hyperlog_keys and the rest in hyperlog_recent_keys, values over `chunkAbove` bytes in
 * hyperlog_chunks, and the given heads, views and metadata.
 */
async function writeV1(
  path: string,
  nodes: readonly StoredNode[],
  options: { settled: number; heads: readonly StoredNode[]; chunkAbove: number },
): Promise<void> {
  const db = await openSqliteDriver(path);
  db.transaction(() => {
    db.exec(SCHEMA_V1);
    db.exec("CREATE TABLE hyperlog_info (name TEXT PRIMARY KEY, value) WITHOUT ROWID");
    db.run("INSERT INTO hyperlog_info (name, value) VALUES ('schema', 1), ('settled', ?)", options.settled);
    for (const node of nodes) {
      const chunked = node.value.length > options.chunkAbove;
      db.run(
        "INSERT INTO hyperlog_nodes (change, key, links, value, identity, signature) " +
          "VALUES (?, unhex(?), unhex(?), ?, unhex(?), unhex(?))",
        node.change,
        node.key,
        node.links.join(""),
        chunked ? null : node.value,
        node.identity ?? null,
        node.signature ?? null,
      );
      if (chunked) {
        for (let at = 0, seq = 0; at < node.value.length; at += options.chunkAbove, seq++) {
          db.run(
            "INSERT INTO hyperlog_chunks (change, seq, data) VALUES (?, ?, ?)",
            node.change,
            seq,
            node.value.subarray(at, at + options.chunkAbove),
          );
        }
      }
      const table = node.change <= options.settled ? "hyperlog_keys" : "hyperlog_recent_keys";
      db.run(`INSERT INTO ${table} (prefix, change) VALUES (?, ?)`, prefixV1(node.key), node.change);
    }
    for (const head of options.heads) db.run("INSERT INTO hyperlog_heads (change) VALUES (?)", head.change);
    db.run("INSERT INTO hyperlog_meta (name, value) VALUES ('id', 'a v1 log')");
    db.exec(
      "CREATE TABLE hyperlog_views (name TEXT PRIMARY KEY, version INTEGER NOT NULL, change INTEGER NOT NULL) " +
        "WITHOUT ROWID; CREATE TABLE hyperlog_view_data (view TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, " +
        "PRIMARY KEY (view, key)) WITHOUT ROWID",
    );
    db.run("INSERT INTO hyperlog_views (name, version, change) VALUES ('kv', 3, ?)", nodes.length);
    db.run("INSERT INTO hyperlog_view_data (view, key, value) VALUES ('kv', 'greeting', '\"hello\"')");
  });
  db.close();
}

/** A log of every shape version 1 held: chains, merges, a dangling link, big values, signatures. */
function v1Nodes(): { nodes: StoredNode[]; heads: StoredNode[] } {
  const nodes: StoredNode[] = [];
  const add = (links: readonly string[], value: string | Uint8Array): StoredNode => {
    const node = makeStoredNode(links, value, nodes.length + 1);
    nodes.push(node);
    return node;
  };
  const a = chain(300, 1, undefined, "a");
  nodes.push(...a);
  const b = add([], "b");
  // A merge of many heads (a storm-shaped node), and links far back (distances over one varint byte).
  const merge = add([a[299]!.key, b.key, a[0]!.key, a[150]!.key], "merge");
  const dangling = add(["ee".repeat(32)], "links a node that is not stored");
  const big = new Uint8Array(5000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 255;
  const chunked = add([merge.key], big);
  const signed: StoredNode = {
    ...makeStoredNode([chunked.key], "signed", nodes.length + 1),
    identity: "ab".repeat(32),
    signature: "cd".repeat(64),
  };
  nodes.push(signed);
  return { nodes, heads: [dangling, signed] };
}

function sameNodes(actual: readonly (StoredNode | undefined)[], expected: readonly StoredNode[]): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    const got = actual[i];
    const want = expected[i]!;
    assert.ok(got, `node ${want.change} is there`);
    assert.equal(got.key, want.key);
    assert.equal(got.change, want.change);
    assert.deepEqual([...got.links], [...want.links], `the links of node ${want.change}`);
    assert.deepEqual([...got.value], [...want.value], `the value of node ${want.change}`);
    assert.equal(got.identity, want.identity);
    assert.equal(got.signature, want.signature);
  }
}

const schemaOf = (db: SqliteDriver): number =>
  Number(db.get("SELECT value FROM hyperlog_info WHERE name = 'schema'")?.[0]);

describe(`SqliteStorage: schema version 2 (${runtime})`, () => {
  it("migrates a version 1 file: nodes, links, chunks, signatures, heads, views and metadata", async () => {
    const path = newFile("v1");
    const { nodes, heads } = v1Nodes();
    await writeV1(path, nodes, { settled: 200, heads, chunkAbove: 1000 });
    const storage = await openSqlite(path);
    assert.equal(SQLITE_SCHEMA_VERSION, 2);
    assert.equal(schemaOf(storage.driver), 2);
    const tables = storage.driver.all("SELECT name FROM sqlite_schema WHERE type = 'table'").map((r) => r[0]);
    assert.ok(!tables.includes("hyperlog_recent_keys"), "the recent-keys table is gone");
    assert.equal(await storage.length(), nodes.length);
    sameNodes(await storage.read({ since: 0, until: Infinity, limit: Infinity, reverse: false }), nodes);
    // Pages that link outside themselves, both ways.
    for (const reverse of [false, true]) {
      const paged: StoredNode[] = [];
      for (let since = 0; since < nodes.length; since += 7) {
        paged.push(...await storage.read({ since, until: since + 7, limit: 7, reverse }));
      }
      sameNodes(paged.sort((x, y) => x.change - y.change), nodes);
    }
    sameNodes(await Promise.all(nodes.map((node) => storage.get(node.key))), nodes);
    assert.deepEqual(await storage.has([nodes[0]!.key, "ee".repeat(32), nodes[250]!.key]), [true, false, true]);
    assert.deepEqual((await storage.heads()).sort(), heads.map((node) => node.key).sort());
    assert.equal(await storage.getMeta("id"), "a v1 log");
    assert.deepEqual(await storage.viewState("kv"), { version: 3, change: nodes.length });
    assert.equal(await storage.viewGet("kv", "greeting"), '"hello"');
    assert.equal(Number(storage.driver.get("SELECT count(*) FROM hyperlog_keys")?.[0]), nodes.length);
    // Links are change references now: a chain link is one byte, the dangling link keeps its key.
    const linkBytes = (change: number): number =>
      Number(storage.driver.get("SELECT length(links) FROM hyperlog_nodes WHERE change = ?", change)?.[0]);
    assert.equal(linkBytes(2), 1);
    assert.equal(linkBytes(302), 1 + 1 + 2 + 2, "four links, two of them more than 127 back");
    assert.equal(linkBytes(303), 33, "a dangling link is a marker and its key");
    // The migrated log takes new nodes that link to old ones, and finds them after a reopen.
    const next = makeStoredNode([heads[0]!.key, heads[1]!.key], "after the migration", nodes.length + 1);
    assert.deepEqual(await storage.commit([next]), [true]);
    assert.deepEqual(await storage.heads(), [next.key]);
    await storage.close();
    const again = await openSqlite(path);
    sameNodes([await again.get(next.key)], [next]);
    sameNodes([await again.get(nodes[5]!.key)], [nodes[5]!]);
    await again.close();
  });

  it("leaves a version 1 file as it was when the migration fails, and migrates it next time", async () => {
    const path = newFile("v1-fail");
    const { nodes, heads } = v1Nodes();
    await writeV1(path, nodes, { settled: 0, heads, chunkAbove: 1000 });
    // A row whose links column is cut short cannot be migrated: the whole migration rolls back.
    const db = await openSqliteDriver(path);
    db.run("UPDATE hyperlog_nodes SET links = unhex('ab') WHERE change = 5");
    db.close();
    await assert.rejects(openSqlite(path));
    const raw = await openSqliteDriver(path);
    assert.equal(schemaOf(raw), 1);
    assert.equal(Number(raw.get("SELECT count(*) FROM hyperlog_recent_keys")?.[0]), nodes.length);
    assert.equal(Number(raw.get("SELECT length(links) FROM hyperlog_nodes WHERE change = 3")?.[0]), 32);
    raw.run("UPDATE hyperlog_nodes SET links = unhex(?) WHERE change = 5", nodes[3]!.key);
    raw.close();
    const storage = await openSqlite(path);
    assert.equal(schemaOf(storage.driver), 2);
    sameNodes([await storage.get(nodes[4]!.key)], [nodes[4]!]);
    await storage.close();
  });

  it("refuses a file that a newer version wrote, and leaves it as it was", async () => {
    const path = newFile("v3");
    const storage = await openSqlite(path);
    await storage.commit(chain(3));
    storage.driver.run("UPDATE hyperlog_info SET value = 3 WHERE name = 'schema'");
    await storage.close();
    await assert.rejects(
      openSqlite(path),
      /newer version of hyperlog \(schema version 3; this version reads up to 2\)/,
    );
  });

  it("stores a storm-shaped node's links in a few bytes each, and reads them back as keys", async () => {
    const storage = await openSqlite(newFile("storm"));
    // 50 writers: each round, every writer's node links all the heads of the round before.
    const nodes: StoredNode[] = [];
    let heads: string[] = [];
    for (let round = 0; round < 20; round++) {
      const next: StoredNode[] = [];
      for (let w = 0; w < 50; w++) next.push(makeStoredNode(heads, `w${w} r${round}`, nodes.length + next.length + 1));
      nodes.push(...next);
      heads = next.map((node) => node.key);
    }
    for (let at = 0; at < nodes.length; at += 130) await storage.commit(nodes.slice(at, at + 130));
    const bytes = Number(storage.driver.get("SELECT sum(length(links)) FROM hyperlog_nodes")?.[0]);
    const links = nodes.reduce((sum, node) => sum + node.links.length, 0);
    assert.equal(links, 19 * 50 * 50);
    assert.ok(bytes <= links, `${bytes} bytes for ${links} links`);
    for (const limit of [1, 17, 1000]) {
      const read: StoredNode[] = [];
      for (let since = 0; since < nodes.length; since += limit) {
        read.push(...await storage.read({ since, until: Infinity, limit, reverse: false }));
      }
      sameNodes(read, nodes);
    }
    assert.deepEqual((await storage.heads()).sort(), [...heads].sort());
    await storage.close();
  });

  it("finds keys another connection added or settled since this one last looked", async () => {
    const path = newFile("two-connections");
    const a = await openSqlite(path);
    const b = await openSqlite(path);
    const nodes = chain(80_000);
    await a.commit(nodes.slice(0, 10));
    assert.deepEqual(await b.has([nodes[9]!.key, nodes[10]!.key]), [true, false], "b has read its recent keys");
    for (let at = 10; at < nodes.length; at += 5000) await a.commit(nodes.slice(at, at + 5000));
    const settled = Number(a.driver.get("SELECT value FROM hyperlog_info WHERE name = 'settled'")?.[0]);
    assert.ok(settled > 10 && settled < nodes.length, `a settled up to ${settled}`);
    const sample = [0, 9, 10, settled - 1, settled, nodes.length - 1].map((i) => nodes[i]!);
    assert.deepEqual(await b.has(sample.map((node) => node.key)), sample.map(() => true));
    for (const node of sample) assert.equal((await b.get(node.key))?.change, node.change);
    // b's commit skips what a stored, and links to it by change number.
    const late = makeStoredNode([nodes[nodes.length - 1]!.key], "b's node", nodes.length + 2);
    assert.deepEqual(await b.commit([{ ...nodes[5]!, change: nodes.length + 1 }, late]), [false, true]);
    assert.deepEqual((await a.get(late.key))?.links, [nodes[nodes.length - 1]!.key]);
    assert.deepEqual(await a.heads(), [late.key]);
    await a.close();
    await b.close();
  });

  it("keeps nothing of a commit that rolled back in its recent keys", async () => {
    const storage = await openSqlite(":memory:");
    const nodes = chain(3);
    await storage.commit([nodes[0]!]);
    await assert.rejects(storage.commit([nodes[1]!, { ...nodes[2]!, change: 7 }]), { name: "StorageConflictError" });
    assert.deepEqual(await storage.has([nodes[1]!.key]), [false]);
    assert.equal(await storage.get(nodes[1]!.key), undefined);
    assert.deepEqual(await storage.commit([nodes[1]!]), [true]);
    assert.equal((await storage.get(nodes[1]!.key))?.change, 2);
    await storage.close();
  });
});
