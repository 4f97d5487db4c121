/**
 * The write path of `SqliteStorage` (see `sqlite.ts` for the tables): one statement that finds which keys are
 * stored, and a commit that, inside the caller's transaction, skips the stored keys, numbers the new nodes on
 * from the length, inserts them in multi-row statements, moves the heads and settles the recent keys when they
 * are enough.
 *
 * @module
 */
import type { StoredNode } from "../src/node.ts";
import { checkCommitChanges } from "../src/storage.ts";
import type { SqliteDriver, SqliteValue } from "./sqlite-driver.ts";
import { prefixOf, pushRow } from "./sqlite-rows.ts";
import { INSERT_COLUMNS, insertSql, MAX_ROWS_PER_INSERT, MIN_RECENT_KEYS, SQL } from "./sqlite-schema.ts";

/** The insert statements of a driver: as many rows per statement as its parameter limit allows, and one row. */
export interface Inserts {
  readonly rowsPerInsert: number;
  readonly insertMany: string;
  readonly insertOne: string;
}

/** The insert statements for `driver`. */
export function inserts(driver: SqliteDriver): Inserts {
  const rowsPerInsert = Math.max(1, Math.min(MAX_ROWS_PER_INSERT, Math.floor(driver.maxParams / INSERT_COLUMNS)));
  const verb = driver.rollbackOnError === true ? "INSERT OR ROLLBACK" : "INSERT";
  return { rowsPerInsert, insertMany: insertSql(verb, rowsPerInsert), insertOne: insertSql(verb, 1) };
}

/** The number of nodes: the highest change number. */
export function lengthOf(db: SqliteDriver): number {
  const n = db.get(SQL.length)?.[0];
  return n === null || n === undefined ? 0 : Number(n);
}

/**
 * The change numbers of those of `keys` (valid keys only) that are stored, and the length, read in one
 * statement. `prefixes`, when given, are the keys' prefixes (see `prefixOf`), computed already.
 */
export function lookup(
  db: SqliteDriver,
  keys: Iterable<string>,
  prefixes?: Iterable<number>,
): { length: number; found: Map<string, number> } {
  const wanted = keys instanceof Set ? keys as Set<string> : new Set<string>(keys);
  let asked = prefixes;
  if (asked === undefined) {
    const distinct = new Set<number>();
    for (const key of wanted) distinct.add(prefixOf(key));
    asked = distinct;
  }
  const found = new Map<string, number>();
  let length = 0;
  for (const row of db.all(SQL.lookup, JSON.stringify(Array.isArray(asked) ? asked : [...asked]))) {
    const key = row[1];
    if (key === null || key === undefined) length = row[0] === null || row[0] === undefined ? 0 : Number(row[0]);
    else if (wanted.has(key as string)) found.set(key as string, Number(row[0]));
  }
  return { length, found };
}

/**
 * Commits `given` (whose links, as one hex string each, are `givenLinks`) inside the caller's transaction: says
 * which were new, and returns the change up to which keys are settled now (`settledBefore` unless this commit
 * settled them).
 */
export function commitNodes(
  db: SqliteDriver,
  sql: Inserts,
  settledBefore: number,
  given: readonly StoredNode[],
  givenLinks: readonly string[],
): { fresh: boolean[]; settled: number } {
  const base = lengthOf(db);
  checkCommitChanges(given, base);
  // One lookup, inside the transaction, finds both the keys of the commit that are already stored (skipped) and
  // the stored nodes the commit links to (which stop being heads); nothing looked up before is trusted.
  // Each key's prefix is computed once: for the lookup, and for the recent keys when every node is new.
  const asked = new Set<string>();
  const prefixes: number[] = new Array(given.length);
  const askedPrefixes: number[] = [];
  for (let i = 0; i < given.length; i++) {
    const node = given[i]!;
    const prefix = prefixOf(node.key);
    prefixes[i] = prefix;
    if (!asked.has(node.key)) {
      asked.add(node.key);
      askedPrefixes.push(prefix);
    }
    const links = node.links;
    for (let j = 0; j < links.length; j++) {
      const link = links[j]!;
      if (!asked.has(link)) {
        asked.add(link);
        askedPrefixes.push(prefixOf(link));
      }
    }
  }
  const found = lookup(db, asked, askedPrefixes).found;
  const fresh: boolean[] = new Array(given.length);
  const keys = new Set<string>();
  const nodes: StoredNode[] = [];
  const links: string[] = [];
  const newPrefixes: number[] = [];
  for (let i = 0; i < given.length; i++) {
    let node = given[i]!;
    if ((found.size > 0 && found.has(node.key)) || keys.has(node.key)) {
      fresh[i] = false;
      continue;
    }
    fresh[i] = true;
    keys.add(node.key);
    const change = base + nodes.length + 1;
    if (node.change !== change) node = { ...node, change };
    nodes.push(node);
    links.push(givenLinks[i]!);
    newPrefixes.push(prefixes[i]!);
  }
  if (nodes.length === 0) return { fresh, settled: settledBefore };
  const outside = new Set<string>();
  for (const node of nodes) for (const link of node.links) if (!keys.has(link)) outside.add(link);

  const maxBlob = db.maxBlob;
  const params: SqliteValue[] = [];
  const many = sql.rowsPerInsert;
  let i = 0;
  for (; i + many <= nodes.length; i += many) {
    params.length = 0;
    for (let j = i; j < i + many; j++) pushRow(params, nodes[j]!, links[j]!, maxBlob);
    db.run(sql.insertMany, ...params);
  }
  for (; i < nodes.length; i++) {
    params.length = 0;
    pushRow(params, nodes[i]!, links[i]!, maxBlob);
    db.run(sql.insertOne, ...params);
  }
  for (const node of nodes) {
    const value = node.value;
    if (value.length <= maxBlob) continue;
    for (let at = 0, seq = 0; at < value.length; at += maxBlob, seq++) {
      db.run(SQL.insertChunk, node.change, seq, value.subarray(at, at + maxBlob));
    }
  }

  if (nodes.length === 1) db.run(SQL.insertRecentOne, newPrefixes[0]!, base + 1);
  else db.run(SQL.insertRecent, JSON.stringify(newPrefixes), base + 1);

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
  const settled = settledBefore;
  if (length - settled >= Math.max(MIN_RECENT_KEYS, Math.sqrt(1000 * settled))) {
    db.exec(SQL.settle);
    db.run(SQL.setSettled, length);
    return { fresh, settled: length };
  }
  return { fresh, settled };
}
