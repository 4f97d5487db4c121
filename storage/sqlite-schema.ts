/**
 * The SQLite schema (see `sqlite.ts` for what each table holds), its migrations, and the statements
 * `SqliteStorage` runs. The statements are built inside a function marked pure, so that a bundle that does
 * not use SQLite (a browser's, through `mod.ts`) leaves them out.
 *
 * @module
 */
import { StorageError } from "../src/errors.ts";
import type { SqliteDriver } from "./sqlite-driver.ts";
import { migrateLinksToChanges } from "./sqlite-migrate.ts";

/** A migration: brings the schema from its index to the next version, inside the caller's transaction. */
export type Migration = (db: SqliteDriver) => void;

/** The tables of schema version 1 (links as 32-byte keys, recent keys in a table); kept to build v1 files in tests. */
export const SCHEMA_V1 = `
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
export const MIGRATIONS: readonly Migration[] = [(db) => db.exec(SCHEMA_V1), migrateV1ToV2];

/**
 * Version 1 to 2: the links become change-number references (see `sqlite-links.ts`), and the key index is
 * rebuilt with integer prefixes, the recent keys with it (version 2 keeps them in memory, read from the node rows
 * after `settled`; see `sqlite-keys.ts`), so `settled` becomes the length.
 */
function migrateV1ToV2(db: SqliteDriver): void {
  db.exec(
    "DROP TABLE hyperlog_keys; DROP TABLE hyperlog_recent_keys; " +
      "CREATE TABLE hyperlog_keys (prefix INTEGER NOT NULL, change INTEGER NOT NULL, PRIMARY KEY (prefix, change)) " +
      "WITHOUT ROWID",
  );
  db.run(SQL.settleKeys, 0);
  const length = db.get(SQL.length)?.[0];
  db.run(SQL.setSettled, length === null || length === undefined ? 0 : Number(length));
  migrateLinksToChanges(db, SQL.lookupSettled);
}

/**
 * The schema version this code writes, and the newest it can open.
 *
 * @example
 * ```ts
 * import { SQLITE_SCHEMA_VERSION } from "./sqlite.ts";
 * console.assert(SQLITE_SCHEMA_VERSION >= 1);
 * ```
 */
export const SQLITE_SCHEMA_VERSION: number = /* @__PURE__ */ (() => MIGRATIONS.length)();

export const INFO_TABLE = "hyperlog_info";
const INFO_DDL = "CREATE TABLE IF NOT EXISTS hyperlog_info (name TEXT PRIMARY KEY, value) WITHOUT ROWID";
/** Columns of a node as hyperlog reads them: SQLite turns the byte columns into hex, cheaper than JS would. */
const COLUMNS = "change, lower(hex(key)), lower(hex(links)), value, " +
  "CASE WHEN identity IS NULL THEN NULL ELSE lower(hex(identity || signature)) END";
/**
 * A page of nodes packed into one row (see `unpack` in `sqlite-read.ts`): one list of `change,links length,value
 * length` per node, the keys as hex (their bytes concatenated, then hexed once: per key, `hex` and `lower` took 13% of
 * the statement), the links' and values' bytes concatenated (a blob per page, not per node: drivers make a buffer
 * for each blob they return), and the signed nodes' changes with their identity and signature.
 * A chunked value (NULL) adds no bytes and its length is -1. `group_concat` of a blob keeps its bytes (a UTF-8
 * database's text of a blob is the blob itself) and `CAST(... AS BLOB)` gives them back as they were.
 */
const PACKED_COLUMNS = /* @__PURE__ */ (() =>
  "SELECT group_concat(change || ',' || length(links) || ',' || " +
  "coalesce(length(CAST(value AS BLOB)), -1), ','), lower(hex(CAST(group_concat(key, '') AS BLOB))), " +
  "CAST(group_concat(links, '') AS BLOB), CAST(group_concat(value, '') AS BLOB), " +
  "group_concat(CASE WHEN identity IS NULL THEN NULL ELSE change || lower(hex(identity || signature)) END, ',') ")();
const PACKED = /* @__PURE__ */ (() =>
  PACKED_COLUMNS + "FROM (SELECT change, key, links, value, identity, signature FROM hyperlog_nodes " +
  "WHERE change > ? AND change <= ? ORDER BY change")();
/**
 * Parameters a row of a node insert binds: its links and value, and a signed node's identity and signature (see
 * {@link insertSql}: the change and the key are shared by the statement's rows).
 */
export const INSERT_COLUMNS = 4;
/** Parameters an insert of nodes binds once, whatever its rows: the first change and the keys. */
export const INSERT_SHARED = 2;
/** Most rows per multi-row INSERT: larger statements stop paying off past a few dozen rows. */
export const MAX_ROWS_PER_INSERT = 32;
/**
 * The index prefix of a node's key in SQL (a key's first 6 bytes as an integer, as `keyPrefix` in
 * `sqlite-keys.ts` computes it from hex), from `h`, the upper-case hex of those bytes: SQLite has no function
 * for it, so each hex digit is found with `instr`. Only the migration runs it (a commit settles from JavaScript).
 */
const PREFIX_OF_HEX =
  /* @__PURE__ */ (() =>
    Array.from({ length: 12 }, (_, i) => `(instr('0123456789ABCDEF', substr(h, ${i + 1}, 1)) - 1) * ${16 ** (11 - i)}`)
      .join(" + "))();
export const VIEW_DDL = "CREATE TABLE IF NOT EXISTS hyperlog_views " +
  "(name TEXT PRIMARY KEY, version INTEGER NOT NULL, change INTEGER NOT NULL) WITHOUT ROWID;\n" +
  "CREATE TABLE IF NOT EXISTS hyperlog_view_data " +
  "(view TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (view, key)) WITHOUT ROWID";
/** The most characters of JSON given to one statement of a view commit (Durable Objects cap a value at 2 MB). */
export const VIEW_JSON_CHARS = 256 * 1024;

// Built in a function marked pure, so that a bundle that does not use SQLite (a browser's) leaves it out.
export const SQL = /* @__PURE__ */ (() =>
  ({
    viewState: "SELECT version, change FROM hyperlog_views WHERE name = ?",
    // Text is read back as bytes: Deno's node:sqlite cuts text at the first NUL character.
    viewGet: "SELECT CAST(value AS BLOB) FROM hyperlog_view_data WHERE view = ? AND key = ?",
    viewPut: "INSERT INTO hyperlog_view_data (view, key, value) SELECT ?1, key, value FROM json_each(?2) WHERE true " +
      "ON CONFLICT (view, key) DO UPDATE SET value = excluded.value",
    viewDel: "DELETE FROM hyperlog_view_data WHERE view = ?1 AND key IN (SELECT value FROM json_each(?2))",
    viewSetState: "INSERT INTO hyperlog_views (name, version, change) VALUES (?, ?, ?) " +
      "ON CONFLICT (name) DO UPDATE SET version = excluded.version, change = excluded.change",
    length: "SELECT max(change) FROM hyperlog_nodes",
    /** The length and the change up to which keys are settled, in one snapshot. */
    state: "SELECT (SELECT max(change) FROM hyperlog_nodes), " +
      `(SELECT value FROM ${INFO_TABLE} WHERE name = 'settled')`,
    /** The keys of the nodes after a change, which no index on disk holds (see `sqlite-keys.ts`). */
    keysAfter: "SELECT change, lower(hex(key)) FROM hyperlog_nodes WHERE change > ? ORDER BY change",
    // The IN form, not a join: bun:sqlite runs the join three times slower, node:sqlite both the same.
    /** The node with key ?1 (hex), whose prefix (see `keyPrefix`) is ?2. */
    get: `SELECT ${COLUMNS} FROM hyperlog_nodes WHERE change IN ` +
      "(SELECT change FROM hyperlog_keys WHERE prefix = ?2) AND key = unhex(?1)",
    getChange: `SELECT ${COLUMNS} FROM hyperlog_nodes WHERE change = ?`,
    /**
     * The change and key of each settled node whose key is in the JSON object ?1, of hex keys to their prefixes
     * (see `lookupJson` in `sqlite-keys.ts`); the full key is compared on the row, so prefixes may collide.
     */
    lookupSettled: "SELECT n.change, j.key FROM json_each(?1) AS j " +
      "JOIN hyperlog_keys AS k ON k.prefix = j.value " +
      "JOIN hyperlog_nodes AS n ON n.change = k.change AND n.key = unhex(j.key)",
    /** The keys of the changes in the JSON array ?1: the nodes that a page links to outside itself. */
    keysOf: "SELECT change, lower(hex(key)) FROM hyperlog_nodes WHERE change IN (SELECT value FROM json_each(?1))",
    heads: "SELECT lower(hex(n.key)) FROM hyperlog_heads AS h JOIN hyperlog_nodes AS n ON n.change = h.change",
    readUp: `SELECT ${COLUMNS} FROM hyperlog_nodes WHERE change > ? AND change <= ? ORDER BY change LIMIT ?`,
    readDown: `SELECT ${COLUMNS} FROM hyperlog_nodes WHERE change > ? AND change <= ? ORDER BY change DESC LIMIT ?`,
    /**
     * The nodes of a range of changes packed into one row (see `PACKED`) straight off the table, with no subquery
     * to order and limit them (a quarter cheaper): for a range no bigger than the page (changes are dense). Then the
     * lowest and highest change stored, which say whether a range that holds fewer nodes than the page is all there is.
     */
    readRangePacked: `${PACKED_COLUMNS}, (SELECT min(change) FROM hyperlog_nodes), ` +
      "(SELECT max(change) FROM hyperlog_nodes) FROM hyperlog_nodes WHERE change > ? AND change <= ?",
    /** A page of `readUp` packed into one row (see `PACKED`). */
    readUpPacked: `${PACKED} LIMIT ?)`,
    /** A page of `readDown` packed into one row (see `PACKED`). */
    readDownPacked: `${PACKED} DESC LIMIT ?)`,
    chunks: "SELECT data FROM hyperlog_chunks WHERE change = ? ORDER BY seq",
    insertChunk: "INSERT INTO hyperlog_chunks (change, seq, data) VALUES (?, ?, ?)",
    deleteHeads: "DELETE FROM hyperlog_heads WHERE change IN (SELECT value FROM json_each(?))",
    deleteHead: "DELETE FROM hyperlog_heads WHERE change = ?",
    insertHeads: "INSERT INTO hyperlog_heads (change) SELECT value FROM json_each(?)",
    insertHead: "INSERT INTO hyperlog_heads (change) VALUES (?)",
    /**
     * Moves the keys of the nodes after change ?1 into the index, in one sorted pass of SQL (the migration's way; a
     * commit settles from the keys it holds in memory, see `RecentKeys.settle`).
     */
    settleKeys: `INSERT INTO hyperlog_keys (prefix, change) SELECT ${PREFIX_OF_HEX}, change ` +
      "FROM (SELECT hex(substr(key, 1, 6)) AS h, change FROM hyperlog_nodes WHERE change > ?) ORDER BY 1, 2",
    setSettled: `INSERT INTO ${INFO_TABLE} (name, value) VALUES ('settled', ?) ` +
      "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    getMeta: "SELECT value FROM hyperlog_meta WHERE name = ?",
    setMeta:
      "INSERT INTO hyperlog_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    tables: "SELECT name FROM sqlite_schema WHERE type = 'table'",
    version: `SELECT value FROM ${INFO_TABLE} WHERE name = 'schema'`,
    setVersion: `INSERT INTO ${INFO_TABLE} (name, value) VALUES ('schema', ?) ` +
      "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
  }) as const)();

/** An insert of `rows` entries (prefix, change) into the key index. */
export function insertKeysSql(rows: number): string {
  return "INSERT INTO hyperlog_keys (prefix, change) VALUES " + new Array(rows).fill("(?, ?)").join(", ");
}

/**
 * An insert of `rows` node rows, numbered on from change ?1, their keys the 32-byte pieces of the blob ?2 in row
 * order; each row then binds its links (hex) and value, and unless `plain` (unsigned nodes) its identity and
 * signature (hex). Sharing the change and the key spares two of the four parameters of an unsigned node's row
 * (binding a parameter crosses from JavaScript into the binding, and a key's 64 characters were copied twice, then
 * turned back into bytes by `unhex`).
 */
export function insertSql(verb: string, rows: number, plain = false): string {
  let sql = verb + " INTO hyperlog_nodes (change, key, links, value, identity, signature) VALUES ";
  for (let k = 0; k < rows; k++) {
    sql += `${k === 0 ? "" : ", "}(${k === 0 ? "?1" : `?1 + ${k}`}, substr(?2, ${32 * k + 1}, 32), unhex(?), ?, ` +
      (plain ? "NULL, NULL)" : "unhex(?), unhex(?))");
  }
  return sql;
}

export function newerVersionError(file: string, version: number, newest: number): StorageError {
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

export function migrate(db: SqliteDriver, migrations: readonly Migration[]): void {
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
