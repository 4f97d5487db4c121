/**
 * The read side of `SqliteStorage`: node rows (in the column order of `SQL.readUp`) or a page packed into one row
 * (`SQL.readUpPacked`) turned into stored nodes, their link references resolved back to keys and chunked values
 * put together.
 *
 * @module
 */
import { StorageError } from "../src/errors.ts";
import type { StoredNode } from "../src/node.ts";
import { placeOfChange, withPageLinks } from "../src/page-links.ts";
import { concatBytes } from "../src/wire.ts";
import type { SqliteDriver, SqliteRow } from "./sqlite-driver.ts";
import { decodeLinkBytes, decodeLinks } from "./sqlite-links.ts";
import { bytesOf } from "./sqlite-rows.ts";
import { SQL } from "./sqlite-schema.ts";

/** The columns of a page's nodes, in page order: what both ways of reading a page produce. */
interface Columns {
  changes: number[];
  keys: string[];
  /** Each node's stored links (change numbers or keys), `undefined` for a node without links. */
  refs: ((number | string)[] | undefined)[];
  /** Each node's value, `null` when it is stored in chunks. */
  values: (Uint8Array | null)[];
  /** Each signed node's identity and signature (hex, one after the other), `undefined` for others. */
  signed: (string | undefined)[];
}

/** The most nodes one packed row holds: a bigger page is read as several (SQLite and the runtimes cap a string). */
const PACKED_MAX = 4096;

/**
 * One page of nodes after change `since` up to `until` (at most `limit`, -1 for all), in change order or, with
 * `reverse`, from `until` down, read as packed rows of up to {@link PACKED_MAX} nodes (see {@link pageColumns}).
 * With `last`, links into the page read before are found there, and this page is kept in it for the next.
 */
export function readPage(
  db: SqliteDriver,
  reverse: boolean,
  since: number,
  until: number,
  limit: number,
  last?: LastPage,
): StoredNode[] {
  let columns: Columns | undefined;
  let left = limit < 0 ? Infinity : limit;
  while (left > 0 && until > since) {
    const asked = Math.min(left, PACKED_MAX);
    const part = pageColumns(db, reverse, since, until, asked);
    const count = part.changes.length;
    if (columns === undefined) columns = part;
    else {
      for (const name of ["changes", "keys", "refs", "values", "signed"] as const) {
        (columns[name] as unknown[]).push(...part[name]);
      }
    }
    if (count < asked) break;
    left -= count;
    const last = part.changes[count - 1]!;
    if (reverse) until = last - 1;
    else since = last;
  }
  if (columns === undefined) return [];
  const nodes = assemble(db, columns, last);
  // Its changes and keys only: the values (views of the page's one buffer) are not kept alive by it.
  if (last !== undefined && columns.changes.length > 0) last.page = { changes: columns.changes, keys: columns.keys };
  return nodes;
}

/**
 * The columns of one page of at most `limit` (> 0) nodes: one packed row (see `SQL.readUpPacked`), or row by row
 * when that row does not add up (see {@link unpack}). Changes are dense (one per node, from 1), so a page is usually
 * the range of `limit` changes at its start (or, in reverse, its end), read with the cheaper `SQL.readRangePacked`.
 */
function pageColumns(db: SqliteDriver, reverse: boolean, since: number, until: number, limit: number): Columns {
  try {
    const from = reverse ? Math.max(since, until - limit) : since;
    const to = reverse ? until : Math.min(until, since + limit);
    const range = db.get(SQL.readRangePacked, from, to);
    const columns = range === undefined ? undefined : unpack(range, false, from, to, -1);
    // A range that holds `limit` nodes, or all there is in the asked range, is the page; else its changes have gaps.
    const all = range !== undefined &&
      (reverse ? from === since || Number(range[5]) > from : to === until || Number(range[6]) <= to);
    if (columns !== undefined && (columns.changes.length === limit || all)) {
      if (reverse) for (const column of Object.values(columns)) column.reverse();
      return columns;
    }
    const row = db.get(reverse ? SQL.readDownPacked : SQL.readUpPacked, since, until, limit);
    const packed = row === undefined ? undefined : unpack(row, reverse, since, until, limit);
    if (packed !== undefined) return packed;
  } catch {
    // A page whose values together pass SQLite's largest string (1 GB by default) cannot be packed: read by rows,
    // which throw the error themselves if it was another.
  }
  return columnsOf(db.all(reverse ? SQL.readDown : SQL.readUp, since, until, limit));
}

/**
 * The nodes of `rows` (in `COLUMNS` order), their links resolved to keys: from the page itself, or with one
 * statement for the distinct changes it links to outside itself.
 */
export function nodesOf(db: SqliteDriver, rows: readonly SqliteRow[]): StoredNode[] {
  return assemble(db, columnsOf(rows));
}

/** The columns of `rows` (in `COLUMNS` order). */
function columnsOf(rows: readonly SqliteRow[]): Columns {
  const count = rows.length;
  const columns: Columns = {
    changes: new Array(count),
    keys: new Array(count),
    refs: new Array(count),
    values: new Array(count),
    signed: new Array(count),
  };
  for (let i = 0; i < count; i++) {
    const row = rows[i]!;
    const change = Number(row[0]);
    columns.changes[i] = change;
    columns.keys[i] = row[1] as string;
    const hex = row[2] as string;
    columns.refs[i] = hex.length === 0 ? undefined : decodeLinks(change, hex);
    const raw = row[3];
    columns.values[i] = raw === null || raw === undefined ? null : bytesOf(raw);
    const signed = row[4];
    columns.signed[i] = typeof signed === "string" ? signed : undefined;
  }
  return columns;
}

/** The digits of the decimal integer that starts at `at` of `text` (an optional minus sign first), up to `,`. */
const number = { value: 0, end: 0 };
function numberAt(text: string, at: number): void {
  const negative = text.charCodeAt(at) === 45;
  if (negative) at++;
  let value = 0;
  let code = text.charCodeAt(at);
  const start = at;
  while (code >= 48 && code <= 57) {
    value = value * 10 + (code - 48);
    code = text.charCodeAt(++at);
  }
  number.value = at === start ? NaN : negative ? -value : value;
  number.end = at;
}

/**
 * The columns of a packed page row: `change,links length,value length` of each node in one list, the keys' hex
 * one after the other, the links' bytes one after the other, the values' bytes one after the other (none for a
 * chunked value, whose length is -1), and `change` then identity and signature hex of each signed node. SQLite
 * concatenates an aggregate's rows in the order its subquery gives them, which is not a documented promise:
 * `undefined` unless the changes run in the asked order within the range and every length adds up, so that the
 * caller reads the page row by row instead.
 */
function unpack(row: SqliteRow, reverse: boolean, since: number, until: number, limit: number): Columns | undefined {
  const list = row[0];
  if (list === null) return { changes: [], keys: [], refs: [], values: [], signed: [] };
  const keyText = row[1];
  const linkBytes = bytesOf(row[2]);
  const valueBytes = bytesOf(row[3]);
  const signedList = row[4];
  if (typeof list !== "string" || typeof keyText !== "string") return undefined;
  const changes: number[] = [];
  const linkEnds: number[] = [];
  const values: (Uint8Array | null)[] = [];
  let linksAt = 0;
  let valuesAt = 0;
  let last = reverse ? until + 1 : since;
  for (let at = 0; at < list.length; at = number.end + 1) {
    numberAt(list, at);
    const change = number.value;
    if (!(reverse ? change < last && change > since : change > last && change <= until)) return undefined;
    last = change;
    if (list.charCodeAt(number.end) !== 44) return undefined;
    numberAt(list, number.end + 1);
    const links = number.value;
    if (!(links >= 0) || list.charCodeAt(number.end) !== 44) return undefined;
    numberAt(list, number.end + 1);
    const size = number.value;
    if (!(size >= -1) || (number.end < list.length && list.charCodeAt(number.end) !== 44)) return undefined;
    changes.push(change);
    linksAt += links;
    linkEnds.push(linksAt);
    if (size < 0) values.push(null);
    else {
      if (valuesAt + size > valueBytes.length) return undefined;
      values.push(valueBytes.subarray(valuesAt, valuesAt + size));
      valuesAt += size;
    }
  }
  const count = changes.length;
  if (
    (limit >= 0 && count > limit) || keyText.length !== 64 * count || linksAt !== linkBytes.length ||
    valuesAt !== valueBytes.length
  ) return undefined;
  const keys: string[] = new Array(count);
  const refs: ((number | string)[] | undefined)[] = new Array(count);
  const signed: (string | undefined)[] = new Array(count);
  for (let i = 0; i < count; i++) {
    keys[i] = keyText.slice(64 * i, 64 * i + 64);
    const from = i === 0 ? 0 : linkEnds[i - 1]!;
    refs[i] = from === linkEnds[i] ? undefined : decodeLinkBytes(changes[i]!, linkBytes, from, linkEnds[i]!);
  }
  if (typeof signedList === "string") {
    // Each entry: the change, then 192 hex characters (identity, signature); none holds a comma.
    let i = 0;
    for (let at = 0; at < signedList.length; at = number.end + 193) {
      numberAt(signedList, at);
      const change = number.value;
      while (i < count && changes[i] !== change) i++;
      if (i === count || number.end + 192 > signedList.length) return undefined;
      signed[i] = signedList.slice(number.end, number.end + 192);
      if (number.end + 192 < signedList.length && signedList.charCodeAt(number.end + 192) !== 44) return undefined;
    }
  }
  return { changes, keys, refs, values, signed };
}

/** The changes and keys of the page read last (a connection's, kept by `SqliteStorage`). */
export interface LastPage {
  page?: { readonly changes: readonly number[]; readonly keys: readonly string[] };
}

/** The key of `change` in a page's columns, if the page holds it. */
function keyAt(page: { readonly changes: readonly number[]; readonly keys: readonly string[] }, change: number) {
  const i = placeOfChange(page.changes, change);
  return i < 0 ? undefined : page.keys[i];
}

/** The nodes of `columns`, links resolved to keys and chunked values read. */
function assemble(db: SqliteDriver, columns: Columns, last?: LastPage): StoredNode[] {
  const { changes, keys: pageKeys, refs } = columns;
  const count = changes.length;
  if (count === 0) return [];
  const previous = last?.page;
  // Links into the page or the one read before it (pages follow each other: a chain crosses into the last one).
  const inPage = (change: number): string | undefined =>
    keyAt(columns, change) ?? (previous === undefined ? undefined : keyAt(previous, change));
  let outside: Set<number> | undefined;
  for (let i = 0; i < count; i++) {
    const links = refs[i];
    if (links === undefined) continue;
    for (const link of links) {
      if (typeof link === "number" && inPage(link) === undefined) (outside ??= new Set()).add(link);
    }
  }
  let keys: Map<number, string> | undefined;
  if (outside !== undefined) {
    keys = new Map();
    const asked = [...outside];
    for (let at = 0; at < asked.length; at += 4096) {
      for (const row of db.all(SQL.keysOf, JSON.stringify(asked.slice(at, at + 4096)))) {
        keys.set(Number(row[0]), row[1] as string);
      }
    }
  }
  const nodes: StoredNode[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const change = changes[i]!;
    const stored = refs[i];
    let links: string[] = [];
    if (stored !== undefined) {
      links = new Array(stored.length);
      for (let j = 0; j < stored.length; j++) {
        const link = stored[j]!;
        const key = typeof link === "string" ? link : inPage(link) ?? keys?.get(link);
        if (key === undefined) {
          throw new StorageError(
            `The database ${db.file} is damaged: node ${change} links to change ${link}, which is not ` +
              "stored; restore it from a backup, or replicate the log from a peer into a new file",
          );
        }
        links[j] = key;
      }
    }
    const value = columns.values[i] ?? chunkedValue(db, change);
    const key = pageKeys[i]!;
    const signed = columns.signed[i];
    nodes[i] = signed === undefined
      ? { key, links, value, change }
      : { key, links, value, change, identity: signed.slice(0, 64), signature: signed.slice(64) };
  }
  // The links as change numbers ride along: a session's encoder finds them among the nodes it sent by number.
  return withPageLinks(nodes, { changes, refs });
}

function chunkedValue(db: SqliteDriver, change: number): Uint8Array {
  const parts = db.all(SQL.chunks, change).map((row) => bytesOf(row[0]));
  if (parts.length === 1) return parts[0]!;
  return concatBytes(parts, parts.reduce((size, part) => size + part.length, 0));
}
