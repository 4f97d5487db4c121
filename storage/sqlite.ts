/**
 * SQLite storage: one schema and one {@link SqliteStorage} over a small synchronous driver seam
 * ({@link SqliteDriver}), so that the same code keeps a log in a file under Node, Deno and Bun, and in a Durable
 * Object's SQLite database on Cloudflare. This file imports no runtime module; the drivers live beside it
 * (`sqlite-node.ts`, `sqlite-bun.ts`, `sqlite-do.ts`) and `sqlite-open.ts` picks one by runtime. The seam, the file
 * options and the error messages are in `sqlite-driver.ts`, the schema, its migrations and the statements in
 * `sqlite-schema.ts`, the row checks and conversions in `sqlite-rows.ts`; this file re-exports what they make public.
 *
 * The schema (version 2; `sqlite-schema.ts` migrates a version 1 file in one transaction on open):
 *
 * - `hyperlog_nodes`: one row per node, keyed by its change number (the rowid), written in change order only:
 *   reading a change range walks the table in order, `length()` is `max(change)` (one B-tree descent), and a
 *   commit appends at the end of the table. The key, the identity and the signature are stored as bytes, half the
 *   size of hex; SQLite's `hex()` and `unhex()` convert them, which is cheaper than JavaScript. The links are
 *   change-number references (`sqlite-links.ts`: one byte for a link up to 127 changes back, the key itself only
 *   for a link to a node not stored before it), resolved back to keys on read, one statement a page.
 * - The key index (`sqlite-keys.ts`): `hyperlog_keys` maps a key's first 6 bytes to the change numbers of the
 *   nodes up to `settled`; the full key is compared on the rows found. The keys of the nodes after `settled` are
 *   on no index on disk (nothing is written per node but its row): each connection holds them in memory in a
 *   typed-array table, read from the rows after `settled` on its first lookup and caught up before each lookup.
 *   Once more than `sqrt(64000 * settled)` (at least 32 768, at most 262 144) are recent, a commit moves them
 *   into `hyperlog_keys` in one sorted pass of SQL, so that big index is rewritten rarely. A connection that saw
 *   every settle also keeps a Bloom filter of the settled keys (`sqlite-filter.ts`), so the keys of a fresh sync
 *   skip the index.
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
import { ClosedError, StorageError } from "../src/errors.ts";
import type { StoredNode } from "../src/node.ts";
import type { ReadRange, Storage, ViewRange, ViewState, ViewWrite } from "../src/storage.ts";
import { checkViewCommit } from "../src/view-keys.ts";
import {
  type SqliteDriver,
  sqliteError,
  type SqliteRow,
  type SqliteStorageOptions,
  type SqliteValue,
} from "./sqlite-driver.ts";
import { wasChecked } from "../src/checked-commits.ts";
import { commitNodes, type Inserts, inserts, lengthOf, lookup } from "./sqlite-commit.ts";
import { RecentKeys } from "./sqlite-keys.ts";
import { type LastPage, nodesOf, readPage } from "./sqlite-read.ts";
import { keyPrefix } from "./sqlite-prefix.ts";
import { checkNode, checkValue, isKey, jsonChunks, text, UTF8 } from "./sqlite-rows.ts";
import {
  INFO_TABLE,
  migrate,
  MIGRATIONS,
  newerVersionError,
  SQL,
  SQLITE_SCHEMA_VERSION,
  VIEW_DDL,
} from "./sqlite-schema.ts";

export {
  filePragmas,
  immediateTransaction,
  type SqliteDriver,
  sqliteError,
  type SqliteFileOptions,
  type SqliteRow,
  type SqliteStorageOptions,
  type SqliteSync,
  type SqliteValue,
} from "./sqlite-driver.ts";
export { migrateSqliteSchema, SQLITE_SCHEMA_VERSION } from "./sqlite-schema.ts";

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
  readonly #inserts: Inserts;
  #opened = false;
  #closed = false;
  /** The keys of the nodes after the settled ones, in memory (see `sqlite-keys.ts`). */
  readonly #recent: RecentKeys = new RecentKeys();
  /** The page `read` read last: the next page's links into it need no statement (change numbers never move). */
  readonly #lastPage: LastPage = {};

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
    this.#inserts = inserts(driver);
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

  /**
   * The number of nodes: the highest change number, read from the end of the table's B-tree (no scan).
   *
   * @example
   * ```ts ignore
   * console.log(await storage.length());
   * ```
   */
  length(): Promise<number> {
    return this.#call("reading its length", () => lengthOf(this.driver));
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
      const db = this.driver;
      const recent = this.#recent;
      let change = recent.keys.get(key);
      let row: SqliteRow | undefined;
      if (change === undefined) {
        // A settled key, or one another connection added since this one last looked.
        const settled = recent.settled;
        if (settled > 0) row = db.get(SQL.get, key, keyPrefix(key));
        if (row === undefined) {
          recent.catchUp(db);
          change = recent.keys.get(key);
          if (change === undefined && recent.settled > settled) row = db.get(SQL.get, key, keyPrefix(key));
        }
      }
      if (change !== undefined) row = db.get(SQL.getChange, change);
      return row === undefined ? undefined : nodesOf(this.driver, [row])[0];
    });
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
      this.#recent.catchUp(this.driver);
      const found = lookup(this.driver, this.#recent, keys.filter(isKey));
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
      return readPage(this.driver, range.reverse, since, until, limit, this.#lastPage);
    });
  }

  /**
   * Stores the new nodes, their change order and the new heads in one transaction, or nothing, and says which of
   * the given nodes were new: a node whose key is stored, or came earlier in the commit, is skipped (the new nodes
   * take dense change numbers). A commit whose changes do not continue the store densely is refused with a
   * `StorageConflictError`.
   *
   * @example
   * ```ts ignore
   * import { makeStoredNode } from "./conformance.ts";
   * const [fresh] = await storage.commit([makeStoredNode([], "hello", 1)]);
   * ```
   */
  commit(nodes: readonly StoredNode[]): Promise<boolean[]> {
    return this.#call("committing nodes", () => {
      if (nodes.length === 0) return [];
      // The log's own commits hold well-formed hex already (`checked-commits.ts`): only their values are checked.
      nodes.forEach(wasChecked(nodes) ? checkValue : checkNode);
      const recent = this.#recent;
      const done = this.driver.transaction(() => commitNodes(this.driver, this.#inserts, recent, nodes));
      recent.added(done.added, done.first, done.settled);
      return done.fresh;
    });
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
    try {
      this.driver.close();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(sqliteError(err, this.driver.file, "closing it"));
    }
  }
}
