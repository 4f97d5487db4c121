/**
 * The Durable Object driver for {@link SqliteStorage}: a log in the SQLite database of a SQLite-backed Durable
 * Object (`new_sqlite_classes`), through `ctx.storage.sql`. Durable Objects do not allow `BEGIN` and `COMMIT`:
 * transactions go through `ctx.storage.transactionSync`. Writes are durable as the platform makes them: output
 * gates hold the Object's responses until its writes are confirmed.
 *
 * @module
 */
import {
  type SqliteDriver,
  type SqliteRow,
  SqliteStorage,
  type SqliteStorageOptions,
  type SqliteValue,
} from "./sqlite.ts";

/**
 * The part of a Durable Object's `ctx.storage` this driver uses (structural, so that no Workers types are needed).
 *
 * @example
 * ```ts ignore
 * import type { DurableObjectSqlStorage } from "./sqlite-do.ts";
 * const storage: DurableObjectSqlStorage = ctx.storage;
 * ```
 */
export interface DurableObjectSqlStorage {
  /** The SQL API. */
  readonly sql: {
    /** Runs one or more statements; returns a cursor over the last one's rows. */
    exec(query: string, ...bindings: unknown[]): { raw(): Iterable<unknown[]> };
  };
  /** Runs `fn` in a transaction: commits if it returns, rolls back if it throws. */
  transactionSync<T>(fn: () => T): T;
}

/** Blobs come back from workerd as ArrayBuffers. */
function row(values: unknown[]): SqliteRow {
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value instanceof ArrayBuffer) values[i] = new Uint8Array(value);
  }
  return values as SqliteRow;
}

/**
 * A {@link SqliteDriver} over a Durable Object's `ctx.storage`. Durable Objects bind at most 100 parameters per
 * statement and store at most 2 MB per row, so larger values are split into chunks of 1 MiB.
 *
 * @example
 * ```ts ignore
 * import { DurableObject } from "cloudflare:workers";
 * import { Hyperlog } from "../mod.ts";
 * import { SqliteStorage } from "./sqlite.ts";
 * import { DurableObjectSqliteDriver } from "./sqlite-do.ts";
 * export class LogObject extends DurableObject {
 *   log = new Hyperlog(new SqliteStorage(new DurableObjectSqliteDriver(this.ctx.storage), { allowOtherTables: true }));
 * }
 * ```
 */
export class DurableObjectSqliteDriver implements SqliteDriver {
  /** What error messages call the database. */
  readonly file = "ctx.storage.sql";
  /** The Durable Object limit. */
  readonly maxParams = 100;
  /** Half the 2 MB row limit, leaving room for the links. */
  readonly maxBlob = 1 << 20;
  /** The platform owns transactions: a statement must not end one. */
  readonly rollbackOnError = false;
  readonly #storage: DurableObjectSqlStorage;

  /**
   * Wraps `ctx.storage`.
   *
   * @example
   * ```ts ignore
   * import { DurableObjectSqliteDriver } from "./sqlite-do.ts";
   * const driver = new DurableObjectSqliteDriver(ctx.storage);
   * ```
   */
  constructor(storage: DurableObjectSqlStorage) {
    this.#storage = storage;
  }

  /** Runs statements that bind nothing. */
  exec(sql: string): void {
    for (const _ of this.#storage.sql.exec(sql).raw()) { /* Run to the end */ }
  }

  /** Runs one statement. */
  run(sql: string, ...params: SqliteValue[]): void {
    for (const _ of this.#storage.sql.exec(sql, ...params).raw()) { /* Run to the end */ }
  }

  /** Runs one statement and returns its rows. */
  all(sql: string, ...params: SqliteValue[]): SqliteRow[] {
    return Array.from(this.#storage.sql.exec(sql, ...params).raw(), row);
  }

  /** Runs one statement and returns its first row. */
  get(sql: string, ...params: SqliteValue[]): SqliteRow | undefined {
    for (const values of this.#storage.sql.exec(sql, ...params).raw()) return row(values);
    return undefined;
  }

  /** Runs `fn` in `ctx.storage.transactionSync`. */
  transaction<R>(fn: () => R): R {
    return this.#storage.transactionSync(fn);
  }

  /** Nothing to release: the database belongs to the Durable Object. */
  close(): void {}
}

/**
 * A {@link SqliteStorage} in a Durable Object's SQLite database. Other tables of the Object's database are left
 * alone (hyperlog's tables are named `hyperlog_*`).
 *
 * @example
 * ```ts ignore
 * import { DurableObject } from "cloudflare:workers";
 * import { Hyperlog } from "../mod.ts";
 * import { durableObjectSqlite } from "./sqlite-do.ts";
 * export class LogObject extends DurableObject {
 *   log = new Hyperlog(durableObjectSqlite(this.ctx.storage), { valueEncoding: "json" });
 * }
 * ```
 */
export function durableObjectSqlite(
  storage: DurableObjectSqlStorage,
  options: SqliteStorageOptions = {},
): SqliteStorage {
  return new SqliteStorage(new DurableObjectSqliteDriver(storage), { allowOtherTables: true, ...options });
}
