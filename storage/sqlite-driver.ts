/**
 * The seam between `SqliteStorage` and a SQLite binding: the values and rows a driver passes, the
 * {@link SqliteDriver} interface, the options of a file database, the transaction and pragmas the file drivers
 * share, and the translation of a binding's errors into `StorageError`s that say what to do.
 *
 * @module
 */
import { HyperlogError, StorageError } from "../src/errors.ts";

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
 * The synchronous seam between `SqliteStorage` and a SQLite binding. A driver prepares each distinct SQL text
 * once and reuses it. Errors are thrown as the binding throws them; `SqliteStorage` turns them into typed
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
 * commits are copied back once (on this machine, a third less time in commits); the cache holds up to 32 MB of
 * pages (a sync writes each page of nodes once and never reads it back, and the key index it rewrites at each
 * settle, 20 MB at 1 000 000 nodes, fits: 64 MB made the peak RSS of a 1 000 000-node sync 35 MB higher on each
 * side, for no less CPU); temporary data (the sorter of an index merge) stays in memory; `exclusive` keeps the
 * file locked.
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
    "PRAGMA cache_size = -32768",
    "PRAGMA temp_store = MEMORY",
  ].join(";\n");
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
