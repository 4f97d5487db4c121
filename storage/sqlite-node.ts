/**
 * The `node:sqlite` driver for {@link SqliteStorage}: Node >= 22.5 (22.5 to 22.12 need `--experimental-sqlite`)
 * and Deno 2, which provides `node:sqlite` too.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
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
 * A {@link SqliteDriver} over a `node:sqlite` `DatabaseSync`. Statements are prepared once per SQL text.
 *
 * @example
 * ```ts ignore
 * import { DatabaseSync } from "node:sqlite";
 * import { SqliteStorage } from "./sqlite.ts";
 * import { NodeSqliteDriver } from "./sqlite-node.ts";
 * const storage = new SqliteStorage(new NodeSqliteDriver(new DatabaseSync("log.db"), "log.db"));
 * ```
 */
export class NodeSqliteDriver implements SqliteDriver {
  /** The path the database was opened with. */
  readonly file: string;
  /** SQLite's default bound-parameter limit. */
  readonly maxParams = 32766;
  /** No limit below SQLite's own (1 GB). */
  readonly maxBlob = Infinity;
  /** This driver owns its transactions, so a failed statement may roll one back. */
  readonly rollbackOnError = true;
  /** The connection. */
  readonly db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  readonly #settings: Pick<SqliteFileOptions, "synchronous" | "exclusive">;
  readonly #memory: boolean;
  #objects = false;

  /**
   * Wraps an open connection; `file` is what error messages call it.
   *
   * @example
   * ```ts ignore
   * import { DatabaseSync } from "node:sqlite";
   * import { NodeSqliteDriver } from "./sqlite-node.ts";
   * const driver = new NodeSqliteDriver(new DatabaseSync(":memory:"), ":memory:");
   * ```
   */
  constructor(db: DatabaseSync, file: string, options: Pick<SqliteFileOptions, "synchronous" | "exclusive"> = {}) {
    this.db = db;
    this.file = file;
    this.#settings = options;
    this.#memory = file === ":memory:" || file === "";
  }

  #prepare(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      // Arrays are cheaper to build than objects; Node < 22.16 lacks the switch, and `all`/`get` convert then.
      if (typeof statement.setReturnArrays === "function") statement.setReturnArrays(true);
      else this.#objects = true;
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
    const rows = this.#prepare(sql).all(...params) as unknown[];
    return (this.#objects ? rows.map((row) => Object.values(row as object)) : rows) as SqliteRow[];
  }

  /** Runs one statement and returns its first row. */
  get(sql: string, ...params: SqliteValue[]): SqliteRow | undefined {
    const row = this.#prepare(sql).get(...params) as unknown;
    return (this.#objects && row !== undefined ? Object.values(row as object) : row) as SqliteRow | undefined;
  }

  /** Runs `fn` in a `BEGIN IMMEDIATE` transaction (the write lock is taken first, so reads in it are current). */
  transaction<R>(fn: () => R): R {
    return immediateTransaction((sql) => this.db.exec(sql), () => this.db.isTransaction, fn);
  }

  /** WAL, the sync level and the locking mode for a file (see {@link filePragmas}); nothing for `:memory:`. */
  configure(): void {
    if (!this.#memory) this.db.exec(filePragmas(this.#settings.synchronous, this.#settings.exclusive === true));
  }

  /** Closes the connection. */
  close(): void {
    this.#statements.clear();
    if (this.db.isOpen) this.db.close();
  }
}

/**
 * Opens a SQLite file (or `:memory:`) with `node:sqlite` as a driver, creating the file if needed. A path that
 * cannot be opened throws a `StorageError` naming it. Give the driver to {@link SqliteStorage}, or use `openSqlite`
 * from `sqlite-open.ts`, which does both for the runtime it runs on.
 *
 * @example
 * ```ts ignore
 * import { SqliteStorage } from "./sqlite.ts";
 * import { openNodeSqliteDriver } from "./sqlite-node.ts";
 * const storage = new SqliteStorage(openNodeSqliteDriver("log.db", { synchronous: "full" }));
 * ```
 */
export function openNodeSqliteDriver(
  path: string,
  options: Pick<SqliteFileOptions, "synchronous" | "busyTimeout" | "exclusive"> = {},
): NodeSqliteDriver {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path);
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(options.busyTimeout ?? 5000))}`);
  } catch (err) {
    throw sqliteError(err, path, "opening it");
  }
  return new NodeSqliteDriver(db, path, options);
}
