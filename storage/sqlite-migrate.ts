/**
 * The data step of the SQLite schema migration from version 1 to 2 (see `MIGRATIONS` in `sqlite-schema.ts`): the
 * links of every node, stored as 32-byte keys, are rewritten as change-number references (`sqlite-links.ts`). It
 * runs inside the migration's transaction, a page of nodes at a time, so its memory does not grow with the log.
 *
 * @module
 */
import { StorageError } from "../src/errors.ts";
import type { SqliteDriver } from "./sqlite-driver.ts";
import { encodeLinks } from "./sqlite-links.ts";
import { lookupJson } from "./sqlite-prefix.ts";

/** Nodes rewritten per page. */
const PAGE = 500;
/** The most keys one lookup statement is given (a Durable Object caps a statement's text). */
const KEYS_PER_LOOKUP = 2048;

/**
 * Rewrites the links of every node that has some as references, looking the keys up with `lookupSql` (in the
 * key index, which must hold every node; a key that is not stored stays a key).
 */
export function migrateLinksToChanges(db: SqliteDriver, lookupSql: string): void {
  let after = 0;
  for (;;) {
    const rows = db.all(
      "SELECT change, lower(hex(links)) FROM hyperlog_nodes WHERE change > ? AND length(links) > 0 " +
        "ORDER BY change LIMIT ?",
      after,
      PAGE,
    );
    if (rows.length === 0) return;
    const pages: { change: number; links: string[] }[] = [];
    const wanted = new Set<string>();
    for (const row of rows) {
      const change = Number(row[0]);
      const hex = String(row[1]);
      if (hex.length % 64 !== 0) {
        throw new StorageError(
          `The database ${db.file} is damaged: the links of node ${change} are not whole keys (${hex.length / 2} ` +
            "bytes), so it was not migrated to schema version 2 and was left as it was; restore it from a backup",
        );
      }
      const links: string[] = new Array(hex.length >> 6);
      for (let i = 0; i < links.length; i++) {
        const link = hex.slice(i * 64, i * 64 + 64);
        links[i] = link;
        wanted.add(link);
      }
      pages.push({ change, links });
    }
    const found = new Map<string, number>();
    const asked = [...wanted].sort();
    for (let at = 0; at < asked.length; at += KEYS_PER_LOOKUP) {
      for (const row of db.all(lookupSql, lookupJson(asked.slice(at, at + KEYS_PER_LOOKUP)))) {
        found.set(row[1] as string, Number(row[0]));
      }
    }
    for (const { change, links } of pages) {
      db.run(
        "UPDATE hyperlog_nodes SET links = unhex(?) WHERE change = ?",
        encodeLinks(change, links, (key) => found.get(key)),
        change,
      );
    }
    after = pages[pages.length - 1]!.change;
  }
}
