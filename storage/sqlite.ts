/**
 * SQLite storage: one schema and one {@link SqliteStorage} over a small synchronous driver seam
 * ({@link SqliteDriver}), so that the same code keeps a log in a file under Node, Deno and Bun, and in a Durable
 * Object's SQLite database on Cloudflare. This file imports no runtime module; the drivers live beside it
 * (`sqlite-node.ts`, `sqlite-bun.ts`, `sqlite-do.ts`) and `sqlite-open.ts` picks one by runtime.
 *
 * The schema (version 1):
 *
 * - `hyperlog_nodes`: one row per node, keyed by its change number (the rowid): reading a change range walks the
 *   table in order, `length()` is `max(change)` (one B-tree descent), and a commit appends at the end of the
 *   table. The key, the links (their 32-byte keys concatenated), the identity and the signature are stored as
 *   bytes, half the size of hex; SQLite's `hex()` and `unhex()` convert them, which is cheaper than JavaScript.
 * - The key index maps `prefix`, a key's first 48 bits as an integer, to change numbers; the full key is
 *   compared on the rows found. Keys are hashes, so the entries of a commit land on pages all over an index, and a
 *   commit writes each page it touches whole: one index of 100 000 keys makes a commit of 1000 nodes rewrite
 *   about 1.5 MB. So the index is split in two, like a small log-structured merge tree: `hyperlog_recent_keys`
 *   takes each commit's entries and stays small (a few dozen pages); once it holds more than
 *   `sqrt(1000 * settled keys)` entries (at least 16 384) they move, in one sorted pass inside a commit, into
 *   `hyperlog_keys`, which is thus rewritten rarely. Lookups probe both.
 * - `hyperlog_heads`: the change numbers of the nodes no node links to.
 * - `hyperlog_chunks`: values larger than the driver's blob limit (2 MB rows in a Durable Object), in order.
 * - `hyperlog_views` and `hyperlog_view_data`: the checkpoint of each view, and its key/value pairs. They are made
 *   on open when missing, outside the schema version, so that dropping them (or just the data) rebuilds the views.
 * - `hyperlog_meta`: the `getMeta`/`setMeta` values. `hyperlog_info`: the schema version, and `settled`, the
 *   change number up to which the keys are in `hyperlog_keys`.
 *
 * Tables carry a `hyperlog_` prefix so that a log can share a database (a Durable Object's) with other tables.
 *
 * @module
 */
import { ClosedError, HyperlogError, StorageConflictError, StorageError } from "../src/errors.ts";
import type { StoredNode } from "../src/node.ts";
import { concatBytes } from "../src/wire.ts";
import type { ReadRange, Storage, ViewRange, ViewState, ViewWrite } from "../src/storage.ts";
import { checkViewCommit } from "../src/view-keys.ts";

/**
 * A value bound to, or read from, a statement. Drivers return blobs as `Uint8Array`.
 *
 * @example
 * ```ts
 * import { type BunDatabase, BunSqliteDriver } from "./sqlite-bun.ts";
 * import type { SqliteValue } from "./sqlite.ts";
 * const bound: SqliteValue[][] = [];
 * const statement = { run: (...params: SqliteValue[]) => void bound.push(params), values: () => [], finalize() {} };
 * const driver = new BunSqliteDriver({ prepare: () => statement } as unknown as BunDatabase, ":memory:");
 * const params: SqliteValue[] = [1, "name", new Uint8Array([1, 2]), null];
 * driver.run("INSERT INTO t VALUES (?, ?, ?, ?)", ...params);
 * console.assert(bound[0]!.length === 4 && bound[0]![2] instanceof Uint8Array); // bound as given
 * ```
 */
export type SqliteValue = null | number | bigint | string | Uint8Array;

/**
 * One result row: the values of the selected columns, in the order of the `SELECT` (arrays are cheaper to build
 * than objects in every binding).
 *
 * @example
 * ```ts
 * import { type BunDatabase, BunSqliteDriver } from "./sqlite-bun.ts";
 * import type { SqliteRow } from "./sqlite.ts";
 * const rows: SqliteRow[] = [[1, "8c7efb22"], [2, "0d3f5e11"]];
 * const statement = { run() {}, values: () => rows, finalize() {} };
 * const driver = new BunSqliteDriver({ prepare: () => statement } as unknown as BunDatabase, ":memory:");
 * const first: SqliteRow | undefined = driver.get("SELECT change, key FROM nodes");
 * console.assert(first?.[1] === "8c7efb22" && driver.all("SELECT change, key FROM nodes").length === 2);
 * ```
 */
export type SqliteRow = SqliteValue[];

/**
 * The synchronous seam between {@link SqliteStorage} and a SQLite binding. A driver prepares each distinct SQL text
 * once and reuses it. Errors are thrown as the binding throws them; {@link SqliteStorage} turns them into typed
 * errors that name {@link SqliteDriver.file}.
 *
 * @example A driver over `node:sqlite`, in a few lines
 * ```ts ignore
 * import { DatabaseSync, type StatementSync } from "node:sqlite";
 * import type { SqliteDriver, SqliteRow, SqliteValue } from "./sqlite.ts";
 * const db = new DatabaseSync(":memory:");
 * const cache = new Map<string, StatementSync>();
 * const prepare = (sql: string) => {
 *   let statement = cache.get(sql);
 *   if (statement === undefined) cache.set(sql, statement = db.prepare(sql)), statement.setReturnArrays(true);
 *   return statement;
 * };
 * const driver: SqliteDriver = {
 *   file: ":memory:",
 *   maxParams: 999,
 *   maxBlob: Infinity,
 *   exec: (sql) => db.exec(sql),
 *   run: (sql, ...params: SqliteValue[]) => void prepare(sql).run(...params),
 *   all: (sql, ...params: SqliteValue[]) => prepare(sql).all(...params) as unknown as SqliteRow[],
 *   get: (sql, ...params: SqliteValue[]) => prepare(sql).get(...params) as unknown as SqliteRow | undefined,
 *   transaction: (fn) => {
 *     db.exec("BEGIN IMMEDIATE");
 *     try { const result = fn(); db.exec("COMMIT"); return result; } catch (e) { db.exec("ROLLBACK"); throw e; }
 *   },
 *   close: () => db.close(),
 * };
 * ```
 */
export interface SqliteDriver {
  /** What error messages call the database: its path, `:memory:`, or a description such as a Durable Object's. */
  readonly file: string;
  /** The most parameters one statement may bind (100 in a Durable Object). */
  readonly maxParams: number;
  /** The largest blob one column may hold; larger values are split into chunks (2 MB rows in a Durable Object). */
  readonly maxBlob: number;
  /** Runs one or more statements that bind nothing. */
  exec(sql: string): void;
  /** Runs one statement. */
  run(sql: string, ...params: SqliteValue[]): void;
  /** Runs one statement and returns all its rows. */
  all(sql: string, ...params: SqliteValue[]): SqliteRow[];
  /** Runs one statement and returns its first row, or `undefined`. */
  get(sql: string, ...params: SqliteValue[]): SqliteRow | undefined;
  /** Runs `fn` in a write transaction: commits if it returns, rolls back and rethrows if it throws. */
  transaction<R>(fn: () => R): R;
  /**
   * Whether a statement may roll back the whole transaction when it fails (`INSERT OR ROLLBACK`), which spares
   * SQLite a statement journal for multi-row inserts. False (the default) where the platform owns transactions,
   * as in a Durable Object.
   */
  readonly rollbackOnError?: boolean;
  /**
   * Called once, after the database proved to be empty or hyperlog's and before anything is written: sets the
   * journal mode and sync level of a file. Absent where the platform manages durability (a Durable Object).
   */
  configure?(): void;
  /** Releases the connection. */
  close(): void;
}

/**
 * Options for {@link SqliteStorage}.
 *
 * @example
 * ```ts
 * import { StorageError } from "../src/errors.ts";
 * import { type SqliteDriver, SqliteStorage, type SqliteStorageOptions } from "./sqlite.ts";
 * // A database with another program's table "notes" and no hyperlog tables:
 * const driver = { file: "notes.db", maxParams: 999, all: () => [["notes"]] } as unknown as SqliteDriver;
 * const refused = await new SqliteStorage(driver).open().catch((error) => error);
 * console.assert(refused instanceof StorageError && refused.message.includes("notes")); // and nothing written
 * const options: SqliteStorageOptions = { allowOtherTables: true }; // adds hyperlog's tables beside them instead
 * ```
 */
export interface SqliteStorageOptions {
  /**
   * Open a database that also holds tables of other programs, and add hyperlog's tables beside them. By default
   * such a database is refused (it is most likely the wrong file); a Durable Object's database allows it.
   */
  allowOtherTables?: boolean;
}

/**
 * How a file database makes a resolved write durable. `"normal"` (the default): WAL with `synchronous=NORMAL`, a
 * resolved write survives the process being killed at any moment, and the database stays consistent through a
 * power loss, which may take back the last writes before it. `"full"`: `synchronous=FULL`, a resolved write also
 * survives a power loss, at the cost of an fsync per commit.
 *
 * @example
 * ```ts
 * import { filePragmas, type SqliteSync } from "./sqlite.ts";
 * const sync: SqliteSync = "full";
 * console.assert(filePragmas(sync).includes("PRAGMA synchronous = FULL"));
 * console.assert(filePragmas().includes("PRAGMA synchronous = NORMAL")); // the default
 * ```
 */
export type SqliteSync = "normal" | "full";

/**
 * Options of the file drivers.
 *
 * @example
 * ```ts
 * import { filePragmas, type SqliteFileOptions } from "./sqlite.ts";
 * const options: SqliteFileOptions = { synchronous: "full", busyTimeout: 10_000, exclusive: true };
 * const pragmas = filePragmas(options.synchronous, options.exclusive); // what a file driver runs on open
 * console.assert(pragmas.includes("synchronous = FULL") && pragmas.includes("locking_mode = EXCLUSIVE"));
 * ```
 */
export interface SqliteFileOptions extends SqliteStorageOptions {
  /** The durability of a resolved write (see {@link SqliteSync}); `"normal"` by default. */
  synchronous?: SqliteSync;
  /** How long a write waits for another connection's write to finish, in milliseconds (5000 by default). */
  busyTimeout?: number;
  /**
   * Keep the file locked from the first read until `close()` (SQLite's `locking_mode=EXCLUSIVE`): no other
   * connection, in this process or another, can read or write it meanwhile, and this one skips the file-lock
   * system calls of every statement (measured here: gets up to 1.4x faster; batches about the same). Off by
   * default.
   */
  exclusive?: boolean;
}

/**
 * Runs `fn` in a `BEGIN IMMEDIATE` transaction (the write lock is taken first, so reads in it are current),
 * committing if it returns and rolling back if it throws. Shared by the file drivers.
 *
 * @example
 * ```ts
 * import { immediateTransaction } from "./sqlite.ts";
 * const log: string[] = [];
 * immediateTransaction((sql) => void log.push(sql), () => false, () => 1);
 * console.assert(log.join() === "BEGIN IMMEDIATE,COMMIT");
 * ```
 */
export function immediateTransaction<R>(exec: (sql: string) => void, inTransaction: () => boolean, fn: () => R): R {
  exec("BEGIN IMMEDIATE");
  try {
    const result = fn();
    exec("COMMIT");
    return result;
  } catch (err) {
    if (inTransaction()) exec("ROLLBACK");
    throw err;
  }
}

/**
 * The pragmas the file drivers set on a database proved to be empty or hyperlog's. WAL lets readers run beside the
 * writer, and a commit appends its pages to one file; with `synchronous=NORMAL` a commit does not wait for the
 * disk (a checkpoint does), with `FULL` it waits for an fsync of the WAL. `wal_autocheckpoint` of 10 000 pages
 * (40 MB) folds the WAL back into the database less often than SQLite's 1000, so that pages rewritten by many
 * commits are copied back once (on this machine, a third less time in commits); the cache holds up to 64 MB of
 * pages; temporary data (the sorter of an index merge) stays in memory; `exclusive` keeps the file locked.
 *
 * @example
 * ```ts
 * import { filePragmas } from "./sqlite.ts";
 * console.assert(filePragmas("normal").includes("journal_mode = WAL"));
 * ```
 */
export function filePragmas(synchronous: SqliteSync = "normal", exclusive = false): string {
  return [
    `PRAGMA locking_mode = ${exclusive ? "EXCLUSIVE" : "NORMAL"}`,
    "PRAGMA journal_mode = WAL",
    `PRAGMA synchronous = ${synchronous === "full" ? "FULL" : "NORMAL"}`,
    "PRAGMA wal_autocheckpoint = 10000",
    "PRAGMA journal_size_limit = 67108864",
    "PRAGMA cache_size = -65536",
    "PRAGMA temp_store = MEMORY",
  ].join(";\n");
}

/** A migration: brings the schema from its index to the next version, inside the caller's transaction. */
type Migration = (db: SqliteDriver) => void;

const SCHEMA_V1 = `
CREATE TABLE hyperlog_nodes (
  change INTEGER PRIMARY KEY,
  key BLOB NOT NULL,
  links BLOB NOT NULL,
  value BLOB,
  identity BLOB,
  signature BLOB
);
CREATE TABLE hyperlog_keys (
  prefix INTEGER NOT NULL,
  change INTEGER NOT NULL,
  PRIMARY KEY (prefix, change)
) WITHOUT ROWID;
CREATE TABLE hyperlog_recent_keys (
  prefix INTEGER NOT NULL,
  change INTEGER NOT NULL,
  PRIMARY KEY (prefix, change)
) WITHOUT ROWID;
CREATE TABLE hyperlog_heads (change INTEGER PRIMARY KEY);
CREATE TABLE hyperlog_chunks (
  change INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (change, seq)
) WITHOUT ROWID;
CREATE TABLE hyperlog_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
`;

/**
 * The schema migrations, in order: entry `i` brings a database from version `i` to `i + 1`. Version 0 is a
 * database without hyperlog's tables (a new file). A migration runs in one transaction with the version bump, so
 * a database is always at one version or the next, never in between.
 */
const MIGRATIONS: readonly Migration[] = [(db) => db.exec(SCHEMA_V1)];

/**
 * The schema version this code writes, and the newest it can open.
 *
 * @example
 * ```ts
 * import { SQLITE_SCHEMA_VERSION } from "./sqlite.ts";
 * console.assert(SQLITE_SCHEMA_VERSION >= 1);
 * ```
 */
export const SQLITE_SCHEMA_VERSION: number = MIGRATIONS.length;

const INFO_TABLE = "hyperlog_info";
const INFO_DDL = `CREATE TABLE IF NOT EXISTS ${INFO_TABLE} (name TEXT PRIMARY KEY, value) WITHOUT ROWID`;
/** Columns of a node as hyperlog reads them: SQLite turns the byte columns into hex, cheaper than JS would. */
const COLUMNS = "change, lower(hex(key)), lower(hex(links)), value, " +
  "CASE WHEN identity IS NULL THEN NULL ELSE lower(hex(identity || signature)) END";
const INSERT_ROW = "(?, unhex(?), unhex(?), ?, unhex(?), unhex(?))";
const INSERT_COLUMNS = 6;
/** Most rows per multi-row INSERT: larger statements stop paying off past a few dozen rows. */
const MAX_ROWS_PER_INSERT = 32;
/** The fewest recent keys that are moved into the settled index at once. */
const MIN_RECENT_KEYS = 16384;
/** The change numbers whose key prefixes are in the JSON array ?1: candidates, whose keys are compared. */
const CANDIDATES = "SELECT k.change AS change FROM json_each(?1) AS j JOIN hyperlog_keys AS k ON k.prefix = j.value " +
  "UNION ALL SELECT r.change FROM json_each(?1) AS j JOIN hyperlog_recent_keys AS r ON r.prefix = j.value";
/** The same for one prefix, ?1. */
const CANDIDATES_ONE = "SELECT change AS change FROM hyperlog_keys WHERE prefix = ?1 " +
  "UNION ALL SELECT change FROM hyperlog_recent_keys WHERE prefix = ?1";

const VIEW_DDL = "CREATE TABLE IF NOT EXISTS hyperlog_views " +
  "(name TEXT PRIMARY KEY, version INTEGER NOT NULL, change INTEGER NOT NULL) WITHOUT ROWID;\n" +
  "CREATE TABLE IF NOT EXISTS hyperlog_view_data " +
  "(view TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (view, key)) WITHOUT ROWID";
/** The most characters of JSON given to one statement of a view commit (Durable Objects cap a value at 2 MB). */
const VIEW_JSON_CHARS = 256 * 1024;

const SQL = {
  viewState: "SELECT version, change FROM hyperlog_views WHERE name = ?",
  // Text is read back as bytes: Deno's node:sqlite cuts text at the first NUL character.
  viewGet: "SELECT CAST(value AS BLOB) FROM hyperlog_view_data WHERE view = ? AND key = ?",
  viewPut: "INSERT INTO hyperlog_view_data (view, key, value) SELECT ?1, key, value FROM json_each(?2) WHERE true " +
    "ON CONFLICT (view, key) DO UPDATE SET value = excluded.value",
  viewDel: "DELETE FROM hyperlog_view_data WHERE view = ?1 AND key IN (SELECT value FROM json_each(?2))",
  viewSetState: "INSERT INTO hyperlog_views (name, version, change) VALUES (?, ?, ?) " +
    "ON CONFLICT (name) DO UPDATE SET version = excluded.version, change = excluded.change",
  length: "SELECT max(change) FROM hyperlog_nodes",
  // The IN form, not a join: bun:sqlite runs the join three times slower, node:sqlite both the same.
  get: `SELECT ${COLUMNS} FROM hyperlog_nodes WHERE change IN (${CANDIDATES_ONE}) AND key = unhex(?2)`,
  /** The length (with a NULL key), then the stored nodes among the candidates: one statement, one snapshot. */
  lookup: "SELECT max(change), NULL FROM hyperlog_nodes UNION ALL " +
    `SELECT n.change, lower(hex(n.key)) FROM (${CANDIDATES}) AS c JOIN hyperlog_nodes AS n ON n.change = c.change`,
  heads: "SELECT lower(hex(n.key)) FROM hyperlog_heads AS h JOIN hyperlog_nodes AS n ON n.change = h.change",
  readUp: `SELECT ${COLUMNS} FROM hyperlog_nodes WHERE change > ? AND change <= ? ORDER BY change LIMIT ?`,
  readDown: `SELECT ${COLUMNS} FROM hyperlog_nodes WHERE change > ? AND change <= ? ORDER BY change DESC LIMIT ?`,
  chunks: "SELECT data FROM hyperlog_chunks WHERE change = ? ORDER BY seq",
  insertChunk: "INSERT INTO hyperlog_chunks (change, seq, data) VALUES (?, ?, ?)",
  insertRecent: "INSERT INTO hyperlog_recent_keys (prefix, change) SELECT value, ?2 + key FROM json_each(?1)",
  insertRecentOne: "INSERT INTO hyperlog_recent_keys (prefix, change) VALUES (?, ?)",
  deleteHeads: "DELETE FROM hyperlog_heads WHERE change IN (SELECT value FROM json_each(?))",
  deleteHead: "DELETE FROM hyperlog_heads WHERE change = ?",
  insertHeads: "INSERT INTO hyperlog_heads (change) SELECT value FROM json_each(?)",
  insertHead: "INSERT INTO hyperlog_heads (change) VALUES (?)",
  settled: `SELECT value FROM ${INFO_TABLE} WHERE name = 'settled'`,
  settle: "INSERT INTO hyperlog_keys (prefix, change) SELECT prefix, change FROM hyperlog_recent_keys; " +
    "DELETE FROM hyperlog_recent_keys",
  setSettled: `INSERT INTO ${INFO_TABLE} (name, value) VALUES ('settled', ?) ` +
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
  getMeta: "SELECT value FROM hyperlog_meta WHERE name = ?",
  setMeta:
    "INSERT INTO hyperlog_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
  tables: "SELECT name FROM sqlite_schema WHERE type = 'table'",
  version: `SELECT value FROM ${INFO_TABLE} WHERE name = 'schema'`,
  setVersion: `INSERT INTO ${INFO_TABLE} (name, value) VALUES ('schema', ?) ` +
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
} as const;

function insertSql(verb: string, rows: number): string {
  return verb + " INTO hyperlog_nodes (change, key, links, value, identity, signature) VALUES " +
    new Array(rows).fill(INSERT_ROW).join(", ");
}

const KEY = /^[0-9a-f]{64}$/;
const SIGNATURE = /^[0-9a-f]{128}$/;

/** Whether `value` is a node key as stored: 64 lower-case hex characters. */
function isKey(value: unknown): value is string {
  return typeof value === "string" && value.length === 64 && KEY.test(value);
}

/** The lookup prefix of a key: its first 48 bits as a signed integer (six bytes in a SQLite record). */
function prefixOf(key: string): number {
  return (parseInt(key.slice(0, 4), 16) - 32768) * 4294967296 + parseInt(key.slice(4, 12), 16);
}

function bytesOf(value: SqliteValue | undefined): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value === null || value === undefined) return new Uint8Array(0);
  throw new TypeError(`Expected a blob, got ${typeof value}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Errors

/** SQLite's primary result codes that say something about the file. */
const CODES: Record<string, number> = {
  BUSY: 5,
  LOCKED: 6,
  READONLY: 8,
  IOERR: 10,
  CORRUPT: 11,
  FULL: 13,
  CANTOPEN: 14,
  TOOBIG: 18,
  NOTADB: 26,
};

/** The primary SQLite result code of a driver's error, from whatever the binding exposes. */
function sqliteCode(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const e = err as { errcode?: unknown; errno?: unknown; code?: unknown; message?: unknown };
  if (typeof e.errcode === "number") return e.errcode & 255; // node:sqlite
  if (typeof e.code === "string" && e.code.startsWith("SQLITE_") && typeof e.errno === "number") {
    return e.errno & 255; // bun:sqlite
  }
  const message = typeof e.message === "string" ? e.message : "";
  const named = /\bSQLITE_([A-Z]+)\b(?!_)/.exec(message)?.[1]; // workerd: "...: SQLITE_CORRUPT"
  if (named !== undefined && named in CODES) return CODES[named];
  // Deno's node:sqlite gives only SQLite's message
  if (/file is not a database/i.test(message)) return CODES["NOTADB"];
  if (/malformed|corrupt/i.test(message)) return CODES["CORRUPT"];
  if (/unable to open database/i.test(message)) return CODES["CANTOPEN"];
  if (/database or disk is full/i.test(message)) return CODES["FULL"];
  if (/database is locked/i.test(message)) return CODES["BUSY"];
  if (/readonly database/i.test(message)) return CODES["READONLY"];
  if (/disk I\/O error/i.test(message)) return CODES["IOERR"];
  if (/too big/i.test(message)) return CODES["TOOBIG"];
  return undefined;
}

/**
 * Turns an error thrown by a SQLite binding into a {@link StorageError} whose message names the file and says what
 * to do. Errors hyperlog threw on purpose (and programming errors such as a `TypeError`) pass through unchanged.
 * Drivers use it for the errors of opening a file.
 *
 * @example
 * ```ts
 * import { sqliteError } from "./sqlite.ts";
 * const err = sqliteError(new Error("file is not a database"), "/tmp/notes.txt", "opening it");
 * console.assert(err.name === "StorageError" && err.message.includes("/tmp/notes.txt"));
 * ```
 */
export function sqliteError(err: unknown, file: string, doing: string): Error {
  if (err instanceof HyperlogError || err instanceof TypeError || err instanceof RangeError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  const options = { cause: err };
  switch (sqliteCode(err)) {
    case CODES["CANTOPEN"]:
      return new StorageError(
        `Cannot open the database file ${file} (${reason}); give the path of a file, not a directory, ` +
          "in a directory that exists and that this process may write to",
        options,
      );
    case CODES["NOTADB"]:
      return new StorageError(
        `The file ${file} is not a SQLite database (${reason}); give the path of a hyperlog database, ` +
          "or a path that does not exist yet to create one",
        options,
      );
    case CODES["CORRUPT"]:
      return new StorageError(
        `The database ${file} is corrupted (${reason}); restore it from a backup, ` +
          "or replicate the log from a peer into a new file",
        options,
      );
    case CODES["FULL"]:
      return new StorageError(
        `Cannot write to the database ${file}: the disk is full; free some space and retry`,
        options,
      );
    case CODES["BUSY"]:
    case CODES["LOCKED"]:
      return new StorageError(
        `The database ${file} is locked by another connection (${reason}); close the other connection or retry later`,
        options,
      );
    case CODES["READONLY"]:
      return new StorageError(
        `The database ${file} is read-only (${reason}); open a file this process may write to`,
        options,
      );
    case CODES["TOOBIG"]:
      return new StorageError(
        `A value is too big for the database ${file} (${reason}); store smaller values`,
        options,
      );
    default:
      return new StorageError(`The database ${file} failed while ${doing}: ${reason}`, options);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The storage

/** Checks that a node can be stored; returns its links as one hex string. */
function checkNode(node: StoredNode): string {
  if (!isKey(node.key)) {
    throw new TypeError(`Cannot store node ${JSON.stringify(node.key)}: a key must be 64 lower-case hex characters`);
  }
  const links = node.links;
  for (let i = 0; i < links.length; i++) {
    if (!isKey(links[i])) {
      throw new TypeError(
        `Cannot store node ${node.key}: link ${i} (${JSON.stringify(links[i])}) is not 64 lower-case hex characters`,
      );
    }
  }
  if (
    (node.identity !== undefined || node.signature !== undefined) &&
    !(isKey(node.identity) && typeof node.signature === "string" && SIGNATURE.test(node.signature))
  ) {
    throw new TypeError(
      `Cannot store node ${node.key}: a signed node needs an identity of 64 and a signature of 128 lower-case hex characters`,
    );
  }
  if (!(node.value instanceof Uint8Array)) throw new TypeError(`Cannot store node ${node.key}: its value is not bytes`);
  return links.length === 0 ? "" : links.length === 1 ? links[0]! : links.join("");
}

/** Appends the parameters of one row of `INSERT_ROW`. */
function pushRow(params: SqliteValue[], node: StoredNode, links: string, maxBlob: number): void {
  params.push(
    node.change,
    node.key,
    links,
    node.value.length > maxBlob ? null : node.value,
    node.identity ?? null,
    node.signature ?? null,
  );
}

/**
 * Keeps a log in a SQLite database, through a {@link SqliteDriver}: a file under Node, Deno or Bun, `:memory:`,
 * or a Durable Object's storage. A commit of nodes, change order and heads is one transaction. Opening checks the
 * database before writing to it: a file that is not a database, a database of another program, or one written by
 * a newer version is refused with a {@link StorageError} naming the file, and left as it was; an older schema is
 * migrated. Several `SqliteStorage` may share a file (even across processes): each commit checks the change
 * numbers inside its transaction, so a second writer gets a `StorageConflictError`, never a gap.
 *
 * Use `openSqlite(path)` from `sqlite-open.ts` to pick the driver for the runtime, or build one from
 * `sqlite-node.ts`, `sqlite-bun.ts` or `sqlite-do.ts`.
 *
 * @example A log in a SQLite file (Node, Deno or Bun)
 * ```ts ignore
 * import { Hyperlog } from "../mod.ts";
 * import { openSqlite } from "./sqlite-open.ts";
 * const log = new Hyperlog(await openSqlite("chat.db"), { valueEncoding: "json" });
 * await log.append({ text: "hello" });
 * await log.close();
 * ```
 */
export class SqliteStorage implements Storage {
  /** The driver this storage runs its statements on. */
  readonly driver: SqliteDriver;
  readonly #allowOtherTables: boolean;
  readonly #rowsPerInsert: number;
  readonly #insertMany: string;
  readonly #insertOne: string;
  #opened = false;
  #closed = false;
  /** The change up to which the keys are in `hyperlog_keys`, as this connection last saw it. */
  #settled = 0;
  /** What the last `has` call found, and the length it was valid at (see `#commit`). */
  #probe: { length: number; found: Map<string, number>; absent: Set<string> } | undefined;

  /**
   * Wraps a driver. Nothing is read or written until `open()` (or the first call).
   *
   * @example
   * ```ts ignore
   * import { DatabaseSync } from "node:sqlite";
   * import { SqliteStorage } from "./sqlite.ts";
   * import { NodeSqliteDriver } from "./sqlite-node.ts";
   * const storage = new SqliteStorage(new NodeSqliteDriver(new DatabaseSync(":memory:"), ":memory:"));
   * await storage.open();
   * ```
   */
  constructor(driver: SqliteDriver, options: SqliteStorageOptions = {}) {
    this.driver = driver;
    this.#allowOtherTables = options.allowOtherTables === true;
    this.#rowsPerInsert = Math.max(1, Math.min(MAX_ROWS_PER_INSERT, Math.floor(driver.maxParams / INSERT_COLUMNS)));
    const verb = driver.rollbackOnError === true ? "INSERT OR ROLLBACK" : "INSERT";
    this.#insertMany = insertSql(verb, this.#rowsPerInsert);
    this.#insertOne = insertSql(verb, 1);
  }

  /** Runs `fn` on an open store, turning driver errors into typed errors. */
  #call<R>(doing: string, fn: () => R): Promise<R> {
    if (this.#closed) return Promise.reject(new ClosedError("The storage is closed"));
    try {
      if (!this.#opened) this.#open();
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(sqliteError(err, this.driver.file, doing));
    }
  }

  /**
   * Opens the database: checks what it holds, then sets it up or migrates it. Idempotent. Reads only the schema
   * and the version, so it takes the same time for any size of log.
   *
   * @example
   * ```ts ignore
   * import { openSqlite } from "./sqlite-open.ts";
   * const storage = await openSqlite(":memory:");
   * await storage.open();
   * ```
   */
  open(): Promise<void> {
    return this.#call("opening it", () => {});
  }

  #open(): void {
    const db = this.driver;
    // The first statement only reads, so a file that is not a database is refused before anything is written.
    const tables = db.all(SQL.tables).map((row) => String(row[0]));
    let version = 0;
    if (tables.includes(INFO_TABLE)) {
      const raw = db.get(SQL.version)?.[0];
      version = typeof raw === "bigint" ? Number(raw) : typeof raw === "number" ? raw : NaN;
      if (!Number.isInteger(version) || version < 0) {
        throw new StorageError(
          `The database ${db.file} has a ${INFO_TABLE} table without a valid schema version and was not changed; ` +
            "it was not written by hyperlog, or was damaged: restore it from a backup",
        );
      }
    } else {
      const foreign = tables.filter((name) => !/^(sqlite_|_cf_|__cf_|hyperlog_)/i.test(name));
      if (foreign.length > 0 && !this.#allowOtherTables) {
        const shown = foreign.slice(0, 5).join(", ") + (foreign.length > 5 ? ` and ${foreign.length - 5} more` : "");
        throw new StorageError(
          `The database ${db.file} belongs to another program (it has the tables ${shown} and no hyperlog tables) ` +
            "and was not changed; give the path of a hyperlog database, or a new path to create one",
        );
      }
    }
    if (version > SQLITE_SCHEMA_VERSION) throw newerVersionError(db.file, version, SQLITE_SCHEMA_VERSION);
    db.configure?.();
    if (version < SQLITE_SCHEMA_VERSION) migrate(db, MIGRATIONS);
    if (!tables.includes("hyperlog_views") || !tables.includes("hyperlog_view_data")) {
      // A view's checkpoint without its data would skip nodes: when the data table is gone, so are the checkpoints.
      const dataGone = !tables.includes("hyperlog_view_data");
      db.transaction(() => {
        db.exec(VIEW_DDL);
        if (dataGone) db.exec("DELETE FROM hyperlog_views");
      });
    }
    this.#settled = Number(db.get(SQL.settled)?.[0] ?? 0);
    this.#opened = true;
  }

  /**
   * Reads a metadata value.
   *
   * @example
   * ```ts ignore
   * const id = await storage.getMeta("id");
   * ```
   */
  getMeta(name: string): Promise<string | undefined> {
    return this.#call("reading metadata", () => {
      const value = this.driver.get(SQL.getMeta, name)?.[0];
      return typeof value === "string" ? value : undefined;
    });
  }

  /**
   * Writes a metadata value.
   *
   * @example
   * ```ts ignore
   * await storage.setMeta("id", "0123456789abcdef0123456789abcdef");
   * ```
   */
  setMeta(name: string, value: string): Promise<void> {
    return this.#call("writing metadata", () => this.driver.run(SQL.setMeta, name, value));
  }

  #length(): number {
    const n = this.driver.get(SQL.length)?.[0];
    return n === null || n === undefined ? 0 : Number(n);
  }

  /**
   * The number of nodes: the highest change number, read from the end of the table's B-tree (no scan).
   *
   * @example
   * ```ts ignore
   * console.log(await storage.length());
   * ```
   */
  length(): Promise<number> {
    return this.#call("reading its length", () => this.#length());
  }

  #node(row: SqliteRow): StoredNode {
    const change = Number(row[0]);
    const key = row[1] as string;
    const hex = row[2] as string;
    const links: string[] = new Array(hex.length >> 6);
    for (let i = 0; i < links.length; i++) links[i] = hex.slice(i * 64, i * 64 + 64);
    const raw = row[3];
    const value = raw === null || raw === undefined ? this.#chunkedValue(change) : bytesOf(raw);
    const signed = row[4];
    if (typeof signed !== "string") return { key, links, value, change };
    return { key, links, value, change, identity: signed.slice(0, 64), signature: signed.slice(64) };
  }

  #chunkedValue(change: number): Uint8Array {
    const parts = this.driver.all(SQL.chunks, change).map((row) => bytesOf(row[0]));
    if (parts.length === 1) return parts[0]!;
    return concatBytes(parts, parts.reduce((size, part) => size + part.length, 0));
  }

  /**
   * The node with this key, or `undefined`.
   *
   * @example
   * ```ts ignore
   * const node = await storage.get("8c7efb22472592f561a7a7647f8c5ee93134880b4ca0c92889a61848cd5c4602");
   * ```
   */
  get(key: string): Promise<StoredNode | undefined> {
    return this.#call("reading a node", () => {
      if (!isKey(key)) return undefined;
      const row = this.driver.get(SQL.get, prefixOf(key), key);
      return row === undefined ? undefined : this.#node(row);
    });
  }

  /**
   * The change numbers of those of `keys` (valid keys only) that are stored, and the length, read in one
   * statement.
   */
  #lookup(keys: Iterable<string>): { length: number; found: Map<string, number> } {
    const wanted = new Set<string>();
    const prefixes = new Set<number>();
    for (const key of keys) {
      wanted.add(key);
      prefixes.add(prefixOf(key));
    }
    const found = new Map<string, number>();
    let length = 0;
    for (const row of this.driver.all(SQL.lookup, JSON.stringify([...prefixes]))) {
      const key = row[1];
      if (key === null || key === undefined) length = row[0] === null || row[0] === undefined ? 0 : Number(row[0]);
      else if (wanted.has(key as string)) found.set(key as string, Number(row[0]));
    }
    return { length, found };
  }

  /**
   * Whether each key is stored. Many keys cost one statement.
   *
   * @example
   * ```ts ignore
   * const [a, b] = await storage.has([keyA, keyB]);
   * ```
   */
  has(keys: readonly string[]): Promise<boolean[]> {
    return this.#call("looking up nodes", () => {
      // The length is read with the keys: if it is still the same when a commit starts, no node was added
      // since, and what this call found is still true then (nodes are never removed).
      const valid = keys.filter(isKey);
      const { length, found } = this.#lookup(valid);
      const absent = new Set<string>();
      for (const key of valid) if (!found.has(key)) absent.add(key);
      this.#probe = { length, found, absent };
      return keys.map((key) => found.has(key));
    });
  }

  /**
   * The keys of the current heads.
   *
   * @example
   * ```ts ignore
   * const heads = await storage.heads();
   * ```
   */
  heads(): Promise<string[]> {
    return this.#call("reading the heads", () => this.driver.all(SQL.heads).map((row) => row[0] as string));
  }

  /**
   * One page of nodes in change order, read straight off the table's B-tree.
   *
   * @example
   * ```ts ignore
   * const first = await storage.read({ since: 0, until: Infinity, limit: 100, reverse: false });
   * ```
   */
  read(range: ReadRange): Promise<StoredNode[]> {
    return this.#call("reading nodes", () => {
      const since = Math.max(0, Math.floor(range.since));
      const until = Math.min(range.until, Number.MAX_SAFE_INTEGER);
      if (!(range.limit > 0) || until <= since) return [];
      const limit = range.limit === Infinity ? -1 : Math.floor(range.limit);
      const rows = this.driver.all(range.reverse ? SQL.readDown : SQL.readUp, since, until, limit);
      const nodes: StoredNode[] = new Array(rows.length);
      for (let i = 0; i < rows.length; i++) nodes[i] = this.#node(rows[i]!);
      return nodes;
    });
  }

  /**
   * Stores nodes, their change order and the new heads in one transaction, or nothing: a commit whose changes do
   * not continue the store densely, or that holds a stored key or the same key twice, is refused with a
   * `StorageConflictError`.
   *
   * @example
   * ```ts ignore
   * import { makeStoredNode } from "./conformance.ts";
   * await storage.commit([makeStoredNode([], "hello", 1)]);
   * ```
   */
  commit(nodes: readonly StoredNode[]): Promise<void> {
    return this.#call("committing nodes", () => {
      if (nodes.length === 0) return;
      const links = nodes.map(checkNode);
      const keys = new Set<string>();
      for (const node of nodes) {
        if (keys.has(node.key)) throw new StorageConflictError(`Commit holds node ${node.key} twice; store it once`);
        keys.add(node.key);
      }
      this.driver.transaction(() => this.#commit(nodes, links, keys));
    });
  }

  #commit(nodes: readonly StoredNode[], links: readonly string[], keys: ReadonlySet<string>): void {
    const db = this.driver;
    const base = this.#length();
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i]!;
      if (node.change !== base + i + 1) {
        throw new StorageConflictError(
          `Commit expected change ${base + i + 1} for node ${node.key} but got ${node.change}; ` +
            "another writer may share this store",
        );
      }
    }
    // One lookup finds both the keys of the commit that are already stored (a conflict) and the stored nodes the
    // commit links to (which stop being heads). What the last `has` call found is reused when no node was added
    // since: the log calls `has` on the same keys just before it commits.
    const outside = new Set<string>();
    for (const node of nodes) for (const link of node.links) if (!keys.has(link)) outside.add(link);
    const probe = this.#probe?.length === base ? this.#probe : undefined;
    this.#probe = undefined;
    const unknown: string[] = [];
    for (const key of keys) {
      if (probe === undefined || !(probe.absent.has(key) || probe.found.has(key))) unknown.push(key);
    }
    for (const key of outside) {
      if (probe === undefined || !(probe.absent.has(key) || probe.found.has(key))) unknown.push(key);
    }
    const found = unknown.length > 0 ? this.#lookup(unknown).found : new Map<string, number>();
    if (probe !== undefined) { for (const [key, change] of probe.found) found.set(key, change); }
    for (const key of keys) {
      if (found.has(key)) {
        throw new StorageConflictError(
          `Commit holds node ${key}, which is already stored; leave stored nodes out of a commit`,
        );
      }
    }

    const maxBlob = db.maxBlob;
    const params: SqliteValue[] = [];
    const many = this.#rowsPerInsert;
    let i = 0;
    for (; i + many <= nodes.length; i += many) {
      params.length = 0;
      for (let j = i; j < i + many; j++) pushRow(params, nodes[j]!, links[j]!, maxBlob);
      db.run(this.#insertMany, ...params);
    }
    for (; i < nodes.length; i++) {
      params.length = 0;
      pushRow(params, nodes[i]!, links[i]!, maxBlob);
      db.run(this.#insertOne, ...params);
    }
    for (const node of nodes) {
      const value = node.value;
      if (value.length <= maxBlob) continue;
      for (let at = 0, seq = 0; at < value.length; at += maxBlob, seq++) {
        db.run(SQL.insertChunk, node.change, seq, value.subarray(at, at + maxBlob));
      }
    }

    if (nodes.length === 1) db.run(SQL.insertRecentOne, prefixOf(nodes[0]!.key), base + 1);
    else db.run(SQL.insertRecent, JSON.stringify(nodes.map((node) => prefixOf(node.key))), base + 1);

    // Heads: a stored node the commit links to stops being a head; a node of the commit becomes one unless a
    // later node of the commit links to it.
    const unheaded: number[] = [];
    for (const link of outside) {
      const change = found.get(link);
      if (change !== undefined) unheaded.push(change);
    }
    if (unheaded.length === 1) db.run(SQL.deleteHead, unheaded[0]!);
    else if (unheaded.length > 1) db.run(SQL.deleteHeads, JSON.stringify(unheaded));
    const linked = new Set<string>();
    for (const node of nodes) for (const link of node.links) linked.add(link);
    const heads: number[] = [];
    for (const node of nodes) if (!linked.has(node.key)) heads.push(node.change);
    if (heads.length === 1) db.run(SQL.insertHead, heads[0]!);
    else if (heads.length > 1) db.run(SQL.insertHeads, JSON.stringify(heads));

    // Settle the recent keys into the big index once there are enough of them (see the module doc). Another
    // connection may have settled meanwhile; a stale count only makes this one settle a little early.
    const length = base + nodes.length;
    const settled = this.#settled;
    if (length - settled >= Math.max(MIN_RECENT_KEYS, Math.sqrt(1000 * settled))) {
      db.exec(SQL.settle);
      db.run(SQL.setSettled, length);
      this.#settled = length;
    }
  }

  /**
   * Runs SQLite's `quick_check` over the whole database (a full scan: seconds for millions of nodes) and rejects
   * with a `StorageError` naming the file if it finds damage.
   *
   * @example
   * ```ts ignore
   * await storage.check();
   * ```
   */
  check(): Promise<void> {
    return this.#call("checking it", () => {
      const rows = this.driver.all("PRAGMA quick_check");
      const problems = rows.map((row) => String(row[0])).filter((text) => text !== "ok");
      if (problems.length > 0) {
        throw new StorageError(
          `The database ${this.driver.file} is corrupted (${problems.slice(0, 3).join("; ")}); ` +
            "restore it from a backup, or replicate the log from a peer into a new file",
        );
      }
    });
  }

  /**
   * The checkpoint of a view, or `undefined`.
   *
   * @example
   * ```ts ignore
   * const state = await storage.viewState("kv"); // { version, change } or undefined
   * ```
   */
  viewState(name: string): Promise<ViewState | undefined> {
    return this.#call("reading a view checkpoint", () => {
      const row = this.driver.get(SQL.viewState, name);
      return row === undefined ? undefined : { version: Number(row[0]), change: Number(row[1]) };
    });
  }

  /**
   * The value of a key in a view, or `undefined`.
   *
   * @example
   * ```ts ignore
   * const value = await storage.viewGet("kv", "some key");
   * ```
   */
  viewGet(name: string, key: string): Promise<string | undefined> {
    return this.#call("reading a view", () => {
      const value = this.driver.get(SQL.viewGet, name, key)?.[0];
      return value instanceof Uint8Array ? UTF8.decode(value) : undefined;
    });
  }

  /**
   * Pairs of a view in key order (UTF-8 byte order, which is JavaScript's order except that characters above
   * U+FFFF sort after U+E000..U+FFFF here and before them in JavaScript).
   *
   * @example
   * ```ts ignore
   * const pairs = await storage.viewRange("kv", { gte: "a", lt: "b", limit: 10, reverse: false });
   * ```
   */
  viewRange(name: string, range: ViewRange): Promise<Array<[string, string]>> {
    return this.#call("reading a view", () => {
      let sql = "SELECT CAST(key AS BLOB), CAST(value AS BLOB) FROM hyperlog_view_data WHERE view = ?";
      const params: SqliteValue[] = [name];
      for (const [bound, op] of [["gt", ">"], ["gte", ">="], ["lt", "<"], ["lte", "<="]] as const) {
        const value = range[bound];
        if (value !== undefined) {
          sql += ` AND key ${op} ?`;
          params.push(value);
        }
      }
      sql += range.reverse ? " ORDER BY key DESC LIMIT ?" : " ORDER BY key LIMIT ?";
      params.push(Number.isFinite(range.limit) ? Math.max(0, Math.floor(range.limit)) : -1);
      return this.driver.all(sql, ...params).map((row) => [text(row[0]), text(row[1])] as [string, string]);
    });
  }

  /**
   * Applies writes to a view and sets its checkpoint in one transaction.
   *
   * @example
   * ```ts ignore
   * await storage.viewCommit("kv", [{ key: "a", value: "1" }], { version: 1, change: 10 });
   * ```
   */
  viewCommit(name: string, writes: readonly ViewWrite[], state: ViewState): Promise<void> {
    return this.#call("committing a view", () => {
      checkViewCommit(name, writes, state);
      // The last write of each key wins; puts and deletes then go in a few statements of JSON each.
      const last = new Map<string, string | undefined>();
      for (const { key, value } of writes) last.set(key, value);
      const puts: Array<[string, string]> = [];
      const dels: string[] = [];
      for (const [key, value] of last) {
        if (value === undefined) dels.push(key);
        else puts.push([key, value]);
      }
      const db = this.driver;
      db.transaction(() => {
        for (const json of jsonChunks(dels, (key) => key.length)) db.run(SQL.viewDel, name, json);
        for (const json of jsonChunks(puts, ([key, value]) => key.length + value.length, true)) {
          db.run(SQL.viewPut, name, json);
        }
        db.run(SQL.viewSetState, name, state.version, state.change);
      });
    });
  }

  /**
   * Removes a view's pairs and checkpoint in one transaction.
   *
   * @example
   * ```ts ignore
   * await storage.viewDrop("kv");
   * ```
   */
  viewDrop(name: string): Promise<void> {
    return this.#call("dropping a view", () => {
      const db = this.driver;
      db.transaction(() => {
        db.run("DELETE FROM hyperlog_view_data WHERE view = ?", name);
        db.run("DELETE FROM hyperlog_views WHERE name = ?", name);
      });
    });
  }

  /**
   * Closes the database. Later calls reject with a `ClosedError`; closing again is harmless.
   *
   * @example
   * ```ts ignore
   * await storage.close();
   * ```
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#probe = undefined;
    try {
      this.driver.close();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(sqliteError(err, this.driver.file, "closing it"));
    }
  }
}

const UTF8 = new TextDecoder();

/** A text column read as bytes (see `SQL.viewGet`), as a string. */
function text(value: SqliteValue | undefined): string {
  return value instanceof Uint8Array ? UTF8.decode(value) : String(value);
}

/**
 * Splits items into JSON texts of at most about {@link VIEW_JSON_CHARS} characters: arrays of keys, or objects of
 * key/value pairs when `asObject` is true (an object, so that SQLite's json_each yields them as key and value).
 */
function* jsonChunks<T>(items: readonly T[], size: (item: T) => number, asObject = false): Generator<string> {
  let start = 0;
  while (start < items.length) {
    let end = start;
    let chars = 0;
    while (end < items.length && (end === start || chars + size(items[end]!) < VIEW_JSON_CHARS)) {
      chars += size(items[end]!) + 8;
      end++;
    }
    const part = items.slice(start, end);
    yield JSON.stringify(asObject ? Object.fromEntries(part as Array<[string, string]>) : part);
    start = end;
  }
}

function newerVersionError(file: string, version: number, newest: number): StorageError {
  return new StorageError(
    `The database ${file} was written by a newer version of hyperlog (schema version ${version}; this version ` +
      `reads up to ${newest}) and was not changed; upgrade hyperlog to open it`,
  );
}

/**
 * Brings a database to the last version of `migrations` in one transaction: entry `i` of `migrations` moves
 * version `i` to `i + 1` (version 0 being a database without hyperlog's tables), and the version is stored with
 * the last step, so a database is at its old version or the new one, never in between. A database that another
 * connection migrated meanwhile is left alone; one newer than `migrations` is refused with a `StorageError`.
 * `SqliteStorage` runs this on open with its own list; it is exported so that the mechanism can be tested.
 *
 * @example
 * ```ts ignore
 * import { migrateSqliteSchema } from "./sqlite.ts";
 * migrateSqliteSchema(driver, [(db) => db.exec("CREATE TABLE hyperlog_nodes (change INTEGER PRIMARY KEY)")]);
 * ```
 */
export function migrateSqliteSchema(db: SqliteDriver, migrations: readonly ((db: SqliteDriver) => void)[]): void {
  migrate(db, migrations);
}

function migrate(db: SqliteDriver, migrations: readonly Migration[]): void {
  const target = migrations.length;
  db.transaction(() => {
    db.exec(INFO_DDL);
    const raw = db.get(SQL.version)?.[0];
    const current = raw === undefined || raw === null ? 0 : Number(raw);
    if (current > target) throw newerVersionError(db.file, current, target);
    if (current === target) return;
    for (let version = current; version < target; version++) migrations[version]!(db);
    db.run(SQL.setVersion, target);
  });
}
