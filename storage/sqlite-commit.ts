/**
 * The write path of `SqliteStorage` (see `sqlite.ts` for the tables): the lookup of which keys are stored (the
 * recent keys in memory, the settled ones in one statement), and a commit that, inside the caller's transaction,
 * skips the stored keys, numbers the new nodes on from the length, inserts them in multi-row statements with their
 * links as change references, moves the heads and settles the recent keys when they are enough.
 *
 * @module
 */
import { type StoredNode, valueSize, withChange } from "../src/node.ts";
import { KeyPlaces } from "../src/key-places.ts";
import { checkCommitChanges } from "../src/storage.ts";
import type { SqliteDriver, SqliteValue } from "./sqlite-driver.ts";
import { type RecentKeys, shouldSettle } from "./sqlite-keys.ts";
import { lookupJson } from "./sqlite-prefix.ts";
import { encodeLinks } from "./sqlite-links.ts";
import { keysInto, pushRow } from "./sqlite-rows.ts";
import { INSERT_COLUMNS, INSERT_SHARED, insertSql, MAX_ROWS_PER_INSERT, SQL } from "./sqlite-schema.ts";

/**
 * The insert statements of a driver: as many rows per statement as its parameter limit allows, and one row; the
 * `plain` ones for unsigned nodes (no identity and signature to bind).
 */
export interface Inserts {
  readonly rowsPerInsert: number;
  readonly insertMany: string;
  readonly insertOne: string;
  readonly plainMany: string;
  readonly plainOne: string;
  /** The insert of `rows` rows (fewer than `rowsPerInsert`: the rest of a commit), made once per count. */
  rest(rows: number, plain: boolean): string;
}

/** The most keys one lookup statement is given (a Durable Object caps a statement's text). */
const KEYS_PER_LOOKUP = 2048;

/** The insert statements for `driver`. */
export function inserts(driver: SqliteDriver): Inserts {
  const rowsPerInsert = Math.max(
    1,
    Math.min(MAX_ROWS_PER_INSERT, Math.floor((driver.maxParams - INSERT_SHARED) / INSERT_COLUMNS)),
  );
  const verb = driver.rollbackOnError === true ? "INSERT OR ROLLBACK" : "INSERT";
  const rests: string[] = [];
  return {
    rowsPerInsert,
    rest: (rows, plain) => (rests[2 * rows + (plain ? 1 : 0)] ??= insertSql(verb, rows, plain)),
    insertMany: insertSql(verb, rowsPerInsert),
    insertOne: insertSql(verb, 1),
    plainMany: insertSql(verb, rowsPerInsert, true),
    plainOne: insertSql(verb, 1, true),
  };
}

/** The number of nodes: the highest change number. */
export function lengthOf(db: SqliteDriver): number {
  const n = db.get(SQL.length)?.[0];
  return n === null || n === undefined ? 0 : Number(n);
}

/**
 * Adds to `found` the change numbers of those of `keys` (valid keys only) that are stored: the recent ones from
 * `recent` (caught up by the caller), the settled ones with one statement per few thousand keys.
 */
export function lookup(
  db: SqliteDriver,
  recent: RecentKeys,
  keys: Iterable<string>,
  found: Map<string, number> = new Map(),
): Map<string, number> {
  const table = recent.keys;
  const filter = recent.filter;
  const asked: string[] = [];
  for (const key of keys) {
    const change = table.get(key);
    if (change !== undefined) found.set(key, change);
    else if (recent.settled > 0 && (filter === undefined || filter.mayHave(table.head, 0))) asked.push(key);
  }
  if (asked.length === 0) return found;
  for (let at = 0; at < asked.length; at += KEYS_PER_LOOKUP) {
    const part = asked.length <= KEYS_PER_LOOKUP ? asked : asked.slice(at, at + KEYS_PER_LOOKUP);
    for (const row of db.all(SQL.lookupSettled, lookupJson(part))) found.set(row[1] as string, Number(row[0]));
  }
  return found;
}

/** What a commit did: which nodes were new, the keys it added from change `first` on, and the settled change. */
export interface Committed {
  fresh: boolean[];
  added: string[];
  first: number;
  settled: number;
}

/**
 * Commits `given` inside the caller's transaction. `recent` is caught up with the file first; the caller passes
 * the result to `recent.added` once the transaction committed (so a rolled-back commit leaves nothing in memory).
 */
export function commitNodes(
  db: SqliteDriver,
  sql: Inserts,
  recent: RecentKeys,
  given: readonly StoredNode[],
): Committed {
  const base = recent.catchUp(db);
  checkCommitChanges(given, base);
  const count = given.length;
  // One lookup, inside the transaction, finds both the keys of the commit that are already stored (skipped) and
  // the stored nodes the commit links to (which stop being heads, and are linked by change number); nothing
  // looked up before is trusted. A link to a key of the commit is found with that key. `places` holds the position
  // of each key's first node in `given` (a table hashed by a key's first characters: a `Map` would hash each
  // fresh 64-character key whole).
  const places = new KeyPlaces(given);
  const asked: string[] = [];
  for (let i = 0; i < count; i++) if (places.first(given[i]!.key) === i) asked.push(given[i]!.key);
  const repeats = asked.length < count;
  for (let i = 0; i < count; i++) {
    const links = given[i]!.links;
    for (let j = 0; j < links.length; j++) if (places.first(links[j]!) < 0) asked.push(links[j]!);
  }
  const found = lookup(db, recent, asked);
  // The positions of the commit's keys found stored, marked from the few found (asking `found` for each node would
  // hash every fresh key whole).
  let stored: Uint8Array | undefined;
  for (const key of found.keys()) {
    const at = places.first(key);
    if (at >= 0) (stored ??= new Uint8Array(count))[at] = 1;
  }
  const fresh: boolean[] = new Array(count);
  /** The change of `given[i]` when it is new (its key's first node, not stored), else 0. */
  const changeAt = new Float64Array(count);
  const nodes: StoredNode[] = [];
  const added: string[] = [];
  for (let i = 0; i < count; i++) {
    let node = given[i]!;
    // A node is new when its key's first node is this one and was not found stored.
    const first = repeats ? places.first(node.key) : i;
    if (first !== i || (stored !== undefined && stored[i] === 1)) {
      fresh[i] = false;
      continue;
    }
    fresh[i] = true;
    const change = base + nodes.length + 1;
    changeAt[i] = change;
    if (node.change !== change) node = withChange(node, change);
    nodes.push(node);
    added.push(node.key);
  }
  if (nodes.length === 0) return { fresh, added, first: base + 1, settled: recent.settled };
  // Heads: a stored node the commit links to stops being a head; a node of the commit becomes one unless another
  // node of the commit links to it. Both are noted as the links are encoded (each link is resolved once).
  const linkedAt = new Uint8Array(count);
  const unheaded = new Set<number>();
  const changeOf = (key: string): number | undefined => {
    const at = places.first(key);
    if (at >= 0 && changeAt[at]! > 0) {
      linkedAt[at] = 1;
      return changeAt[at];
    }
    const change = found.get(key);
    if (change !== undefined) unheaded.add(change);
    return change;
  };

  // Rows in multi-row statements; each binds its rows' first change and keys once (see `insertSql`).
  const maxBlob = db.maxBlob;
  const params: SqliteValue[] = [];
  const many = sql.rowsPerInsert;
  const keyBytes = new Uint8Array(32 * Math.min(many, nodes.length));
  for (let i = 0; i < nodes.length; i += many) {
    const end = Math.min(nodes.length, i + many);
    params.length = 0;
    let plain = true;
    for (let j = i; j < end; j++) if (nodes[j]!.identity !== undefined) plain = false;
    params.push(nodes[i]!.change, keysInto(nodes, i, end, keyBytes));
    for (let j = i; j < end; j++) {
      const node = nodes[j]!;
      pushRow(params, node, encodeLinks(node.change, node.links, changeOf), maxBlob, plain);
    }
    const rows = end - i;
    const statement = rows === many
      ? (plain ? sql.plainMany : sql.insertMany)
      : rows === 1
      ? (plain ? sql.plainOne : sql.insertOne)
      : sql.rest(rows, plain);
    db.run(statement, ...params);
  }
  for (const node of nodes) {
    if (valueSize(node) <= maxBlob) continue;
    const value = node.value;
    for (let at = 0, seq = 0; at < value.length; at += maxBlob, seq++) {
      db.run(SQL.insertChunk, node.change, seq, value.subarray(at, at + maxBlob));
    }
  }

  if (unheaded.size === 1) db.run(SQL.deleteHead, unheaded.values().next().value!);
  else if (unheaded.size > 1) db.run(SQL.deleteHeads, JSON.stringify([...unheaded]));
  const heads: number[] = [];
  for (let i = 0; i < count; i++) if (changeAt[i]! > 0 && linkedAt[i] === 0) heads.push(changeAt[i]!);
  if (heads.length === 1) db.run(SQL.insertHead, heads[0]!);
  else if (heads.length > 1) db.run(SQL.insertHeads, JSON.stringify(heads));

  // Settle the recent keys into the index on disk once there are enough of them (see `sqlite-keys.ts`).
  const length = base + nodes.length;
  if (shouldSettle(length, recent.settled)) {
    recent.settle(db, length, added);
    return { fresh, added, first: base + 1, settled: length };
  }
  return { fresh, added, first: base + 1, settled: recent.settled };
}
