/**
 * SqliteStorage on the runtime's own driver (node:sqlite on Node and Deno, bun:sqlite on Bun): the conformance
 * suite on a file (with reopen) and in memory, then the schema, bad files, big values and concurrent writers.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runStorageConformance } from "./conformance-node-test.ts";
import { chain, makeStoredNode } from "./conformance.ts";
import { openSqlite, openSqliteDriver } from "./sqlite-open.ts";
import { migrateSqliteSchema, SQLITE_SCHEMA_VERSION, type SqliteDriver, SqliteStorage } from "./sqlite.ts";
import type { Storage } from "../src/storage.ts";
import { markChecked, wasChecked } from "../src/checked-commits.ts";
import { Hyperlog } from "../mod.ts";

const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const dir = mkdtempSync(join(tmpdir(), "hyperlog-sqlite-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const newFile = (name = "log"): string => join(dir, `${name}-${++files}.db`);

const paths = new WeakMap<Storage, string>();
runStorageConformance(`SqliteStorage on a file (${runtime})`, {
  create: async () => {
    const path = newFile();
    const storage = await openSqlite(path);
    paths.set(storage, path);
    return storage;
  },
  reopen: async (storage) => {
    await storage.close();
    const path = paths.get(storage)!;
    const again = await openSqlite(path);
    paths.set(again, path);
    return again;
  },
});

runStorageConformance(`SqliteStorage in memory (${runtime})`, { create: () => openSqlite(":memory:") });

/** The bytes of a file and of its WAL, to show that nothing wrote to them. */
function snapshot(path: string): string {
  const wal = (() => {
    try {
      return readFileSync(`${path}-wal`).toString("hex");
    } catch {
      return "none";
    }
  })();
  return `${readFileSync(path).toString("hex")}/${wal}`;
}

/** Expects `promise` to reject with a StorageError whose message names `path` and matches `pattern`. */
async function rejectsNaming(promise: Promise<unknown>, path: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: Error) => {
    assert.equal(err.name, "StorageError", `expected a StorageError, got ${err.name}: ${err.message}`);
    assert.ok(err.message.includes(path), `the message names the file: ${err.message}`);
    assert.match(err.message, pattern);
    assert.match(err.message, /^[A-Z]/, "the message starts with a capital letter");
    assert.doesNotMatch(err.message, /\.$/, "the message has no trailing period");
    return true;
  });
}

describe(`SqliteStorage: files it must not touch (${runtime})`, () => {
  it("refuses a directory, naming it", async () => {
    const path = join(dir, `a-directory-${++files}`);
    mkdirSync(path);
    await rejectsNaming(openSqlite(path), path, /Cannot open the database file .* not a directory/);
  });

  it("refuses a path under a directory that does not exist, and creates nothing", async () => {
    const parent = join(dir, `missing-${++files}`);
    const path = join(parent, "log.db");
    await rejectsNaming(openSqlite(path), path, /Cannot open the database file/);
    assert.throws(() => statSync(parent), { code: "ENOENT" });
  });

  it("refuses a file that is not a database, and leaves it as it was", async () => {
    const path = newFile("random");
    writeFileSync(path, crypto.getRandomValues(new Uint8Array(16384)));
    const before = snapshot(path);
    await rejectsNaming(openSqlite(path), path, /is not a SQLite database/);
    assert.equal(snapshot(path), before);
  });

  it("refuses a text file, and leaves it as it was", async () => {
    const path = newFile("notes");
    writeFileSync(path, "These are my notes, not a database.\n".repeat(200));
    const before = snapshot(path);
    await rejectsNaming(openSqlite(path), path, /is not a SQLite database/);
    assert.equal(snapshot(path), before);
  });

  it("refuses a database of another program, and leaves it as it was", async () => {
    const path = newFile("other-program");
    const raw = await openSqliteDriver(path);
    raw.exec("CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO contacts (name) VALUES ('Ada')");
    raw.close();
    const before = snapshot(path);
    await rejectsNaming(openSqlite(path), path, /belongs to another program \(it has the tables contacts/);
    assert.equal(snapshot(path), before);
  });

  it("opens a database of another program when told to, and leaves its tables alone", async () => {
    const path = newFile("shared");
    const raw = await openSqliteDriver(path);
    raw.exec("CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO contacts (name) VALUES ('Ada')");
    raw.close();
    const storage = await openSqlite(path, { allowOtherTables: true });
    await storage.commit(chain(3));
    assert.deepEqual(storage.driver.all("SELECT name FROM contacts"), [["Ada"]]);
    await storage.close();
  });

  it("reports a corrupted page with the file's name, and does not write to the file", async () => {
    const path = newFile("corrupt");
    const storage = await openSqlite(path);
    const nodes = chain(3000, 1, undefined, "a fairly long value so that the nodes take many pages ".repeat(4));
    for (let i = 0; i < nodes.length; i += 500) await storage.commit(nodes.slice(i, i + 500));
    await storage.close();
    const bytes = readFileSync(path);
    const pageSize = bytes.readUInt16BE(16) === 1 ? 65536 : bytes.readUInt16BE(16);
    const pages = bytes.length / pageSize;
    assert.ok(pages > 20, `the database has ${pages} pages`);
    const garbage = crypto.getRandomValues(new Uint8Array(pageSize));
    for (const page of [Math.floor(pages / 2), Math.floor(pages / 2) + 1]) {
      bytes.set(garbage, page * pageSize);
    }
    writeFileSync(path, bytes);
    const before = snapshot(path);

    // Opening reads only the schema; the damage shows when a damaged page is read, and on check().
    let damaged: Storage | undefined;
    try {
      damaged = await openSqlite(path);
    } catch (err) {
      assert.equal((err as Error).name, "StorageError");
      assert.ok((err as Error).message.includes(path));
    }
    if (damaged !== undefined) {
      const opened = damaged as SqliteStorage;
      await rejectsNaming(opened.check(), path, /is corrupted/);
      await rejectsNaming(
        opened.read({ since: 0, until: Infinity, limit: Infinity, reverse: false }),
        path,
        /is corrupted|failed while reading/,
      );
      await opened.close();
    }
    assert.equal(snapshot(path), before);
  });
});

describe(`SqliteStorage: schema versions (${runtime})`, () => {
  const version = (driver: SqliteDriver): unknown =>
    driver.get("SELECT value FROM hyperlog_info WHERE name = 'schema'")?.[0];

  it("creates the current schema in an empty file (version 0)", async () => {
    const path = newFile("empty");
    writeFileSync(path, new Uint8Array(0));
    const storage = await openSqlite(path);
    assert.equal(version(storage.driver), SQLITE_SCHEMA_VERSION);
    await storage.commit(chain(2));
    await storage.close();
    const again = await openSqlite(path);
    assert.equal(await again.length(), 2);
    await again.close();
  });

  it("refuses a database written by a newer version, naming it, and leaves it as it was", async () => {
    const path = newFile("newer");
    const storage = await openSqlite(path);
    await storage.commit(chain(5));
    storage.driver.run("UPDATE hyperlog_info SET value = ? WHERE name = 'schema'", SQLITE_SCHEMA_VERSION + 1);
    await storage.close();
    const before = snapshot(path);
    await rejectsNaming(
      openSqlite(path),
      path,
      new RegExp(`newer version of hyperlog \\(schema version ${SQLITE_SCHEMA_VERSION + 1}; .*upgrade hyperlog`),
    );
    assert.equal(snapshot(path), before);
  });

  it("migrates an older database step by step, in one transaction, keeping its data", async () => {
    const path = newFile("migrate");
    const storage = await openSqlite(path);
    const nodes = chain(10);
    await storage.commit(nodes);
    await storage.setMeta("id", "kept");
    const current: ((db: SqliteDriver) => void)[] = Array.from({ length: SQLITE_SCHEMA_VERSION }, () => () => {});

    // A migration that fails halfway leaves the database at its version, with none of the step applied.
    const failing = [...current, (db: SqliteDriver) => {
      db.exec("ALTER TABLE hyperlog_meta ADD COLUMN note TEXT");
      throw new Error("Migration step failed on purpose");
    }];
    assert.throws(() => migrateSqliteSchema(storage.driver, failing), /failed on purpose/);
    assert.equal(version(storage.driver), SQLITE_SCHEMA_VERSION);
    assert.equal(
      storage.driver.all("SELECT name FROM pragma_table_info('hyperlog_meta') WHERE name = 'note'").length,
      0,
    );

    // The next version's step runs once, and the version moves with it.
    let runs = 0;
    const next = [...current, (db: SqliteDriver) => {
      runs++;
      db.exec("ALTER TABLE hyperlog_meta ADD COLUMN note TEXT");
    }];
    migrateSqliteSchema(storage.driver, next);
    migrateSqliteSchema(storage.driver, next);
    assert.equal(runs, 1);
    assert.equal(version(storage.driver), SQLITE_SCHEMA_VERSION + 1);
    assert.equal(await storage.getMeta("id"), "kept");
    assert.equal((await storage.get(nodes[9]!.key))?.change, 10);
    await storage.close();

    // This version of hyperlog does not know that schema: it refuses the file.
    await rejectsNaming(openSqlite(path), path, /newer version of hyperlog/);
  });
});

describe(`SqliteStorage: behaviour beyond the conformance suite (${runtime})`, () => {
  it("splits values larger than the driver's blob limit into chunks, and joins them back", async () => {
    const inner = (await openSqlite(":memory:")).driver;
    const small: SqliteDriver = {
      file: inner.file,
      maxParams: 20,
      maxBlob: 1000,
      exec: (sql) => inner.exec(sql),
      run: (sql, ...params) => inner.run(sql, ...params),
      all: (sql, ...params) => inner.all(sql, ...params),
      get: (sql, ...params) => inner.get(sql, ...params),
      transaction: (fn) => inner.transaction(fn),
      close: () => inner.close(),
    };
    const storage = new SqliteStorage(small);
    const sizes = [0, 1, 999, 1000, 1001, 2500, 10_000];
    const nodes = sizes.map((size, i) => {
      const value = new Uint8Array(size);
      for (let j = 0; j < size; j++) value[j] = (j * 7 + i) & 255;
      return makeStoredNode([], value, i + 1);
    });
    await storage.commit(nodes);
    for (const node of nodes) assert.deepEqual((await storage.get(node.key))?.value, node.value);
    const all = await storage.read({ since: 0, until: Infinity, limit: Infinity, reverse: false });
    assert.deepEqual(all.map((node) => node.value.length), sizes);
    assert.equal(small.all("SELECT count(*) FROM hyperlog_chunks")[0]?.[0], 2 + 3 + 10);
    await storage.close();
  });

  it("keeps the key index right across the move of recent keys into the settled index", async () => {
    const path = newFile("settle");
    const storage = await openSqlite(path);
    const nodes = chain(40_000);
    for (let i = 0; i < nodes.length; i += 1000) await storage.commit(nodes.slice(i, i + 1000));
    const settled = Number(storage.driver.get("SELECT value FROM hyperlog_info WHERE name = 'settled'")?.[0]);
    assert.ok(settled >= 16_384 && settled < 40_000, `settled up to ${settled}`);
    const sample = [0, 1, 16_383, 16_384, settled - 1, settled, 39_999].map((i) => nodes[i]!);
    assert.deepEqual(await storage.has(sample.map((node) => node.key)), sample.map(() => true));
    for (const node of sample) assert.equal((await storage.get(node.key))?.change, node.change);
    assert.deepEqual(await storage.commit([{ ...nodes[5]!, change: 40_001 }]), [false], "a settled key is found");
    assert.equal(await storage.length(), 40_000);
    await storage.close();
    const again = await openSqlite(path);
    assert.deepEqual(await again.heads(), [nodes[39_999]!.key]);
    assert.equal((await again.get(nodes[12_345]!.key))?.change, 12_346);
    await again.close();
  });

  it("settles twice into one index: the keys of both settles and the recent ones are found, absent ones are not", async () => {
    const path = newFile("settle-twice");
    const storage = await openSqlite(path);
    // Keys made without hashing (a store takes any): the counter in the first 8 hex characters, mixed.
    const keyOf = (i: number): string =>
      (Math.imul(i + 1, 0x9e3779b1) >>> 0).toString(16).padStart(8, "0") + i.toString(16).padStart(56, "0");
    const count = 90_000;
    const nodes = Array.from({ length: count }, (_, i) => ({
      key: keyOf(i),
      links: i === 0 ? [] : [keyOf(i - 1)],
      value: new Uint8Array([i & 255]),
      change: i + 1,
    }));
    const settles: number[] = [];
    for (let i = 0; i < count; i += 1000) {
      await storage.commit(nodes.slice(i, i + 1000));
      const settled = Number(storage.driver.get("SELECT value FROM hyperlog_info WHERE name = 'settled'")?.[0] ?? 0);
      if (settled > (settles[settles.length - 1] ?? 0)) settles.push(settled);
    }
    assert.equal(settles.length, 2, `settled at ${settles.join(", ")}`);
    assert.equal(Number(storage.driver.get("SELECT count(*) FROM hyperlog_keys")?.[0]), settles[1]);
    const sample = [0, settles[0]! - 1, settles[0]!, settles[1]! - 1, settles[1]!, count - 1].map((i) => nodes[i]!);
    const absent = ["0".repeat(64), keyOf(count), keyOf(count + 1)];
    assert.deepEqual(await storage.has([...sample, ...absent].map((node) => typeof node === "string" ? node : node.key)), [
      ...sample.map(() => true),
      ...absent.map(() => false),
    ]);
    for (const node of sample) assert.equal((await storage.get(node.key))?.change, node.change);
    await storage.close();
    // A new connection (no filter of the settled keys) looks them up in the index.
    const again = await openSqlite(path);
    assert.deepEqual(await again.has(sample.map((node) => node.key)), sample.map(() => true));
    assert.deepEqual(await again.commit([{ ...nodes[10]!, change: count + 1 }]), [false], "a settled key is found");
    await again.close();
  });

  it("finds settled keys whose 6-byte prefixes collide (a peer can choose them), and not an absent key beside them", async () => {
    const storage = await openSqlite(newFile("collide"));
    // 40 000 nodes whose keys share 5 prefixes (the first 12 hex characters), with links to the node before. (Only
    // the prefix collides: 8 000 keys that share 64 bits would take 2^64 hashes each to make, and slow down the
    // in-memory tables, not make them wrong.)
    const prefixes = ["000000000000", "7fffffffffff", "800000000000", "ffffffffffff", "0123456789ab"];
    const keyOf = (i: number): string => prefixes[i % 5]! + i.toString(16).padStart(4, "0") + "0".repeat(48);
    const nodes = Array.from({ length: 40_000 }, (_, i) => ({
      key: keyOf(i),
      links: i === 0 ? [] : [keyOf(i - 1)],
      value: new Uint8Array([i & 255]),
      change: i + 1,
    }));
    for (let i = 0; i < nodes.length; i += 1000) await storage.commit(nodes.slice(i, i + 1000));
    const settled = Number(storage.driver.get("SELECT value FROM hyperlog_info WHERE name = 'settled'")?.[0]);
    assert.ok(settled >= 32_768 && settled < 40_000, `settled up to ${settled}`);
    // Every settled entry is filed under its key's prefix (as keyPrefix computes it), once.
    const entries = storage.driver.all(
      "SELECT k.prefix, lower(hex(n.key)) FROM hyperlog_keys AS k JOIN hyperlog_nodes AS n ON n.change = k.change",
    );
    assert.equal(entries.length, settled);
    assert.ok(entries.every((row) => Number(row[0]) === parseInt((row[1] as string).slice(0, 12), 16)));
    const sample = [0, 1, 4, 5, 12_345, settled - 1, settled, 39_999].map((i) => nodes[i]!);
    assert.deepEqual(await storage.has(sample.map((node) => node.key)), sample.map(() => true));
    for (const node of sample) assert.equal((await storage.get(node.key))?.change, node.change);
    const absent = prefixes.map((prefix) => prefix + "f".repeat(52));
    assert.deepEqual(await storage.has(absent), absent.map(() => false));
    for (const key of absent) assert.equal(await storage.get(key), undefined);
    assert.deepEqual(await storage.commit([{ ...nodes[7]!, change: 40_001 }]), [false], "a settled key is found");
    await storage.close();
  });

  it("refuses the commit of a second writer on the same file with a StorageConflictError, skips its stored nodes", async () => {
    const path = newFile("two-writers");
    const a = await openSqlite(path);
    const b = await openSqlite(path);
    const nodes = chain(3);
    await a.commit([nodes[0]!]);
    assert.deepEqual(await b.has([nodes[0]!.key]), [true]);
    await a.commit([nodes[1]!]);
    // b believes the store has 1 node; its commit of change 2 conflicts, and stores nothing.
    const other = makeStoredNode([nodes[0]!.key], "b's node", 2);
    await assert.rejects(b.commit([other]), { name: "StorageConflictError" });
    assert.equal(await b.get(other.key), undefined);
    // A node a stored is skipped by b's commit, even though b's last lookup said it was absent.
    assert.deepEqual(await b.has([nodes[2]!.key]), [false]);
    await a.commit([nodes[2]!]);
    const late = makeStoredNode([nodes[2]!.key], "b's late node", 5);
    assert.deepEqual(await b.commit([{ ...nodes[2]!, change: 4 }, late]), [false, true]);
    assert.equal((await a.get(late.key))?.change, 4);
    assert.deepEqual(await a.heads(), [late.key]);
    assert.equal(await b.length(), 4);
    await a.close();
    await b.close();
  });

  it("with exclusive: true keeps other connections out until it closes", async () => {
    const path = newFile("exclusive");
    const owner = await openSqlite(path, { exclusive: true });
    await owner.commit(chain(3));
    await rejectsNaming(openSqlite(path, { busyTimeout: 50 }), path, /is locked by another connection/);
    assert.equal(await owner.length(), 3);
    await owner.close();
    const next = await openSqlite(path, { busyTimeout: 50 });
    assert.equal(await next.length(), 3);
    await next.close();
  });

  it("refuses nodes it cannot store losslessly, before writing anything", async () => {
    const storage = await openSqlite(":memory:");
    const good = makeStoredNode([], "good", 1);
    await assert.rejects(storage.commit([good, { ...makeStoredNode([], "x", 2), key: "ABC" }]), TypeError);
    await assert.rejects(storage.commit([{ ...good, links: ["not a key"] }]), TypeError);
    await assert.rejects(storage.commit([{ ...good, identity: "ab".repeat(32) }]), TypeError);
    assert.equal(await storage.length(), 0);
    await storage.close();
  });

  it("skips the hex checks only for the log's own commits, and still checks their values and signatures", async () => {
    const storage = await openSqlite(":memory:");
    const marked: boolean[] = [];
    const commit = storage.commit.bind(storage);
    storage.commit = (nodes) => {
      marked.push(wasChecked(nodes));
      return commit(nodes);
    };
    const log = new Hyperlog(storage);
    await log.batch([{ value: "a" }, { value: "b", links: [0] }]);
    await log.ingest([{ links: [], value: new TextEncoder().encode(JSON.stringify("c")) }]);
    assert.deepEqual(marked, [true, true], "the log marks what it commits");
    assert.equal(await storage.length(), 3);
    // A marked commit still refuses a value that is not bytes, or a malformed signature, and stores nothing.
    const good = makeStoredNode([], "good", 4);
    const bad = [good, { ...makeStoredNode([], "x", 5), value: "text" as unknown as Uint8Array }];
    markChecked(bad);
    await assert.rejects(storage.commit(bad), /its value is not bytes/);
    const forged = [{ ...good, identity: "ab".repeat(32), signature: "XY".repeat(64) }];
    markChecked(forged);
    await assert.rejects(storage.commit(forged), /signature of 128 lower-case hex/);
    assert.equal(await storage.length(), 3);
    await log.close();
  });

  it("opens a 20 000-node file without reading its nodes", async () => {
    const path = newFile("big");
    const storage = await openSqlite(path);
    const nodes = chain(20_000);
    for (let i = 0; i < nodes.length; i += 2000) await storage.commit(nodes.slice(i, i + 2000));
    await storage.close();
    // Count the rows the storage reads while it opens and answers length and heads: a handful, not 20 000.
    const driver = await openSqliteDriver(path);
    let rows = 0;
    const counting: SqliteDriver = {
      file: driver.file,
      maxParams: driver.maxParams,
      maxBlob: driver.maxBlob,
      exec: (sql) => driver.exec(sql),
      run: (sql, ...params) => driver.run(sql, ...params),
      all: (sql, ...params) => {
        const result = driver.all(sql, ...params);
        rows += result.length;
        return result;
      },
      get: (sql, ...params) => {
        const result = driver.get(sql, ...params);
        if (result !== undefined) rows++;
        return result;
      },
      transaction: (fn) => driver.transaction(fn),
      configure: () => driver.configure?.(),
      close: () => driver.close(),
      ...(driver.rollbackOnError === undefined ? {} : { rollbackOnError: driver.rollbackOnError }),
    };
    const again = new SqliteStorage(counting);
    await again.open();
    assert.equal(await again.length(), 20_000);
    assert.equal((await again.heads()).length, 1);
    await again.close();
    assert.ok(rows < 50, `opening read ${rows} rows`);
  });
});
