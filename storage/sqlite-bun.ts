/**
 * The `bun:sqlite` driver for {@link SqliteStorage}. This file imports `bun:sqlite` only when
 * {@link openBunSqliteDriver} runs, so that other runtimes can type-check and load it.
 *
 * @module
 */
import {
  filePragmas,
  immediateTransaction,
  type SqliteDriver,
  sqliteError,
  type SqliteFileOptions,
  type SqliteRow,
  type SqliteValue,
} from "./sqlite.ts";

/**
 * The part of a `bun:sqlite` prepared statement this driver uses.
 *
 * @example
 * ```ts
 * import { type BunDatabase, BunSqliteDriver, type BunStatement } from "./sqlite-bun.ts";
 * let prepared = 0;
 * const statement: BunStatement = { run: () => ({}), values: () => [[1]], finalize: () => {} };
 * const db = { prepare: () => (prepared++, statement) } as unknown as BunDatabase;
 * const driver = new BunSqliteDriver(db, ":memory:");
 * console.assert(driver.get("SELECT 1")?.[0] === 1 && driver.all("SELECT 1").length === 1);
 * console.assert(prepared === 1); // a statement is prepared once and kept
 * ```
 */
export interface BunStatement {
  /** Runs the statement. */
  run(...params: SqliteValue[]): unknown;
  /** Runs the statement and returns its rows as arrays. */
  values(...params: SqliteValue[]): SqliteValue[][];
  /** Frees the statement. */
  finalize(): void;
}

/**
 * The part of a `bun:sqlite` `Database` this driver uses.
 *
 * @example
 * ```ts ignore
 * import { Database } from "bun:sqlite";
 * import type { BunDatabase } from "./sqlite-bun.ts";
 * const db: BunDatabase = new Database(":memory:", { strict: true });
 * ```
 */
export interface BunDatabase {
  /** Prepares a statement. */
  prepare(sql: string): BunStatement;
  /** Runs statements that bind nothing. */
  exec(sql: string): unknown;
  /** Whether a transaction is open. */
  readonly inTransaction: boolean;
  /** Closes the connection. */
  close(): void;
}

/**
 * A {@link SqliteDriver} over a `bun:sqlite` `Database`. Statements are prepared once per SQL text.
 *
 * @example
 * ```ts ignore
 * import { Database } from "bun:sqlite";
 * import { SqliteStorage } from "./sqlite.ts";
 * import { BunSqliteDriver } from "./sqlite-bun.ts";
 * const storage = new SqliteStorage(new BunSqliteDriver(new Database("log.db", { strict: true }), "log.db"));
 * ```
 */
export class BunSqliteDriver implements SqliteDriver {
  /** The path the database was opened with. */
  readonly file: string;
  /** SQLite's default bound-parameter limit. */
  readonly maxParams = 32766;
  /** No limit below SQLite's own (1 GB). */
  readonly maxBlob = Infinity;
  /** This driver owns its transactions, so a failed statement may roll one back. */
  readonly rollbackOnError = true;
  /** The connection. */
  readonly db: BunDatabase;
  readonly #statements = new Map<string, BunStatement>();
  readonly #settings: Pick<SqliteFileOptions, "synchronous" | "exclusive">;
  readonly #memory: boolean;

  /**
   * Wraps an open connection; `file` is what error messages call it.
   *
   * @example
   * ```ts ignore
   * import { Database } from "bun:sqlite";
   * import { BunSqliteDriver } from "./sqlite-bun.ts";
   * const driver = new BunSqliteDriver(new Database(":memory:"), ":memory:");
   * ```
   */
  constructor(db: BunDatabase, file: string, options: Pick<SqliteFileOptions, "synchronous" | "exclusive"> = {}) {
    this.db = db;
    this.file = file;
    this.#settings = options;
    this.#memory = file === ":memory:" || file === "";
  }

  #prepare(sql: string): BunStatement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** Runs statements that bind nothing. */
  exec(sql: string): void {
    this.db.exec(sql);
  }

  /** Runs one statement. */
  run(sql: string, ...params: SqliteValue[]): void {
    this.#prepare(sql).run(...params);
  }

  /** Runs one statement and returns its rows. */
  all(sql: string, ...params: SqliteValue[]): SqliteRow[] {
    return this.#prepare(sql).values(...params);
  }

  /** Runs one statement and returns its first row. */
  get(sql: string, ...params: SqliteValue[]): SqliteRow | undefined {
    return this.#prepare(sql).values(...params)[0];
  }

  /** Runs `fn` in a `BEGIN IMMEDIATE` transaction (the write lock is taken first, so reads in it are current). */
  transaction<R>(fn: () => R): R {
    return immediateTransaction((sql) => this.db.exec(sql), () => this.db.inTransaction, fn);
  }

  /** WAL, the sync level and the locking mode for a file (see `filePragmas` in `sqlite.ts`); nothing for `:memory:`. */
  configure(): void {
    if (!this.#memory) this.db.exec(filePragmas(this.#settings.synchronous, this.#settings.exclusive === true));
  }

  /** Closes the connection. */
  close(): void {
    for (const statement of this.#statements.values()) statement.finalize();
    this.#statements.clear();
    this.db.close();
  }
}

/** Kept in a variable so that other runtimes' module loaders and type checkers do not try to resolve it. */
const BUN_SQLITE: string = "bun:sqlite";

/**
 * Opens a SQLite file (or `:memory:`) with `bun:sqlite` as a driver, creating the file if needed. A path that
 * cannot be opened rejects with a `StorageError` naming it. Bun only. Give the driver to {@link SqliteStorage}, or
 * use `openSqlite` from `sqlite-open.ts`, which does both for the runtime it runs on.
 *
 * @example
 * ```ts ignore
 * import { SqliteStorage } from "./sqlite.ts";
 * import { openBunSqliteDriver } from "./sqlite-bun.ts";
 * const storage = new SqliteStorage(await openBunSqliteDriver("log.db"));
 * ```
 */
export async function openBunSqliteDriver(
  path: string,
  options: Pick<SqliteFileOptions, "synchronous" | "busyTimeout" | "exclusive"> = {},
): Promise<BunSqliteDriver> {
  const { Database } = await import(BUN_SQLITE) as { Database: new (path: string, options: object) => BunDatabase };
  let db: BunDatabase;
  try {
    db = new Database(path, { create: true, readwrite: true, strict: true });
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(options.busyTimeout ?? 5000))}`);
  } catch (err) {
    throw sqliteError(err, path, "opening it");
  }
  return new BunSqliteDriver(db, path, options);
}
