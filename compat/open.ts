/**
 * The compat entry's helpers: hyperlog 4's value encodings, and opening what `hyperlog(db)` is given (a level
 * database, whose hyperlog 4 data is adopted; a path; a Storage; nothing).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { Hyperlog } from "../src/log.ts";
import { importHyperlog4 } from "./import.ts";
import { type LevelDatabase, levelRange, LevelStorage } from "../storage/level.ts";
import type { Storage } from "../src/storage.ts";

/**
 * A value encoding as hyperlog 4 takes it: "binary" (the default), "json", "utf-8"/"utf8", or a codec.
 *
 * @example
 * ```ts
 * import { type CompatEncoding, decode, encode } from "./open.ts";
 * const json: CompatEncoding = "json";
 * console.assert(new TextDecoder().decode(encode({ a: 1 }, json)) === '{"a":1}');
 * console.assert((decode(encode({ a: 1 }, json), json) as { a: number }).a === 1);
 * ```
 */
export type CompatEncoding = string | { encode(value: unknown): Uint8Array | string; decode(bytes: Buffer): unknown };

/** Encodes a value as hyperlog 4 does (lib/encode.js), to bytes. */
export function encode(value: unknown, enc: CompatEncoding): Uint8Array {
  let out: unknown = value;
  if (typeof enc === "object" && enc !== null && typeof enc.encode === "function") out = enc.encode(value);
  else if (enc === "json") out = JSON.stringify(value);
  if (typeof out === "string") return new Uint8Array(Buffer.from(out));
  if (out instanceof Uint8Array) return new Uint8Array(out);
  if (out === undefined || out === null) return new Uint8Array();
  throw new TypeError(
    `Value cannot be stored with the binary encoding (got ${typeof out}); pass a Buffer or a string, or open the ` +
      "log with valueEncoding json",
  );
}

/** Decodes bytes as hyperlog 4 does: a Buffer for binary. */
export function decode(bytes: Uint8Array, enc: CompatEncoding): unknown {
  const buf = Buffer.from(bytes);
  if (typeof enc === "object" && enc !== null && typeof enc.decode === "function") return enc.decode(buf);
  if (enc === "json") return JSON.parse(buf.toString());
  if (enc === "utf-8" || enc === "utf8") return buf.toString();
  return buf;
}

function isStorage(db: unknown): db is Storage {
  return typeof db === "object" && db !== null && typeof (db as Storage).commit === "function" &&
    typeof (db as Storage).viewCommit === "function";
}

/** The storage for what `hyperlog(db)` was given. */
export function openStorage(db: unknown): Storage | Promise<Storage> {
  if (db === undefined || db === null) return new Hyperlog().storage;
  if (isStorage(db)) return db;
  if (typeof db === "string") return import("../storage/sqlite-open.ts").then((m) => m.openSqlite(db));
  if (typeof db === "object" && typeof (db as LevelDatabase).get === "function") {
    return new LevelStorage(db as LevelDatabase, { closeDatabase: false });
  }
  throw new TypeError(
    "hyperlog(db) takes a LevelDB database (level, classic-level, memdb...), a path, a Storage, or nothing",
  );
}

/**
 * A level database that hyperlog 4 wrote to (the seed's `hyperlog(level('/tmp/log.db'))`, now with the compat
 * entry): its nodes are imported into the new log on open (only those written since the last open), and its log id
 * is kept as this log's id, so the writer's log carries on where it was. Resolves with that id, if any.
 */
// deno-lint-ignore no-explicit-any
export async function adoptHyperlog4(core: Hyperlog<any>, db: LevelDatabase): Promise<string | undefined> {
  const first = await levelRange(db, { gt: "!changes!", lt: "!changes!~", limit: 1, reverse: false }, false);
  if (first.length === 0) return undefined;
  await core.ready();
  const after = await core.storage.getMeta("hyperlog4-import");
  const result = await importHyperlog4(core, db, { after });
  if (result.cursor !== undefined && result.cursor !== after) {
    await core.storage.setMeta("hyperlog4-import", result.cursor);
  }
  return result.id;
}
