/**
 * The read side of `SqliteStorage`: node rows (in the column order of `SQL.readUp`) turned into stored nodes, their
 * link references resolved back to keys and chunked values put together.
 *
 * @module
 */
import { StorageError } from "../src/errors.ts";
import type { StoredNode } from "../src/node.ts";
import { concatBytes } from "../src/wire.ts";
import type { SqliteDriver, SqliteRow } from "./sqlite-driver.ts";
import { decodeLinks } from "./sqlite-links.ts";
import { bytesOf } from "./sqlite-rows.ts";
import { SQL } from "./sqlite-schema.ts";

/**
 * The nodes of `rows` (in `COLUMNS` order), their links resolved to keys: from the page itself, or with one
 * statement for the distinct changes it links to outside itself.
 */
export function nodesOf(db: SqliteDriver, rows: readonly SqliteRow[]): StoredNode[] {
  const count = rows.length;
  if (count === 0) return [];
  // A page is a run of consecutive changes (up or down): a link into it is found by arithmetic.
  const first = Number(rows[0]![0]);
  const step = count > 1 && Number(rows[1]![0]) < first ? -1 : 1;
  const inPage = (change: number): string | undefined => {
    const i = (change - first) * step;
    const row = i >= 0 && i < count ? rows[i]! : undefined;
    return row !== undefined && Number(row[0]) === change ? row[1] as string : undefined;
  };
  let refs: (number | string)[][] | undefined;
  let outside: Set<number> | undefined;
  for (let i = 0; i < count; i++) {
    const hex = rows[i]![2] as string;
    if (hex.length === 0) continue;
    const links = decodeLinks(Number(rows[i]![0]), hex);
    (refs ??= new Array(count))[i] = links;
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
    const row = rows[i]!;
    const change = Number(row[0]);
    const stored = refs?.[i];
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
    const raw = row[3];
    const value = raw === null || raw === undefined ? chunkedValue(db, change) : bytesOf(raw);
    const key = row[1] as string;
    const signed = row[4];
    nodes[i] = typeof signed !== "string"
      ? { key, links, value, change }
      : { key, links, value, change, identity: signed.slice(0, 64), signature: signed.slice(64) };
  }
  return nodes;
}

function chunkedValue(db: SqliteDriver, change: number): Uint8Array {
  const parts = db.all(SQL.chunks, change).map((row) => bytesOf(row[0]));
  if (parts.length === 1) return parts[0]!;
  return concatBytes(parts, parts.reduce((size, part) => size + part.length, 0));
}
