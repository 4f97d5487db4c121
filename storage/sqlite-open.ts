/**
 * Opens a SQLite log by path with the driver of the runtime it runs on: `bun:sqlite` on Bun, `node:sqlite` on
 * Node (>= 22.5; 22.5 to 22.12 need `--experimental-sqlite`) and Deno 2. The drivers are imported dynamically, so
 * importing this file loads neither, and `src/` stays free of runtime imports.
 *
 * @module
 */
import { type SqliteDriver, type SqliteFileOptions, SqliteStorage } from "./sqlite.ts";

export type { SqliteFileOptions, SqliteSync } from "./sqlite.ts";

/**
 * Opens the SQLite file at `path` (created if needed; `":memory:"` for a database in memory) with the driver of
 * the runtime, without checking what it holds. Most callers want {@link openSqlite}; this is for sharing a
 * connection or tooling.
 *
 * @example
 * ```ts ignore
 * import { openSqliteDriver } from "./sqlite-open.ts";
 * const driver = await openSqliteDriver(":memory:");
 * console.log(driver.all("SELECT 1 + 1"));
 * driver.close();
 * ```
 */
export async function openSqliteDriver(
  path: string,
  options: Pick<SqliteFileOptions, "synchronous" | "busyTimeout" | "exclusive"> = {},
): Promise<SqliteDriver> {
  if (typeof (globalThis as { Bun?: unknown }).Bun !== "undefined") {
    const { openBunSqliteDriver } = await import("./sqlite-bun.ts");
    return await openBunSqliteDriver(path, options);
  }
  const { openNodeSqliteDriver } = await import("./sqlite-node.ts");
  return openNodeSqliteDriver(path, options);
}

/**
 * Opens (creating it if needed) the SQLite database at `path`, or one in memory for `":memory:"`, as a
 * {@link SqliteStorage}, and opens the storage, so that a path that cannot be opened, a file that is not a
 * database, a database of another program or of a newer hyperlog rejects here, with a `StorageError` that names
 * the file, and leaves the file as it was. Files use WAL with `synchronous=NORMAL` unless `options.synchronous` is
 * `"full"`.
 *
 * @example
 * ```ts ignore
 * import { Hyperlog } from "../mod.ts";
 * import { openSqlite } from "./sqlite-open.ts";
 * const log = new Hyperlog(await openSqlite("chat.db"), { valueEncoding: "json" });
 * await log.append({ text: "hello" });
 * await log.close();
 * ```
 */
export async function openSqlite(path: string, options: SqliteFileOptions = {}): Promise<SqliteStorage> {
  const storage = new SqliteStorage(await openSqliteDriver(path, options), options);
  try {
    await storage.open();
  } catch (err) {
    await storage.close();
    throw err;
  }
  return storage;
}
