/**
 * The LevelDB-style database under {@link LevelStorage} (`level.ts`) and hyperlog 4's reader (`compat/`): the parts
 * of an abstract-level or levelup database they use, and its two reads (one value, and the pairs of a key range),
 * the same on both kinds of database.
 *
 * @module
 */
import { StorageError } from "../src/errors.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The parts of an abstract-level or levelup database that {@link LevelStorage} uses. Values are strings or bytes.
 *
 * @example
 * ```ts
 * import { LevelStorage } from "./level.ts";
 * import type { LevelDatabase } from "./level-database.ts";
 * let refused: unknown;
 * try {
 *   new LevelStorage({ get: async () => undefined } as unknown as LevelDatabase); // no batch
 * } catch (error) {
 *   refused = error;
 * }
 * console.assert(refused instanceof TypeError);
 * ```
 */
export interface LevelDatabase {
  /** Reads a value (a promise on abstract-level, a callback on levelup). */
  // deno-lint-ignore no-explicit-any
  get(key: string, ...rest: any[]): any;
  /** Applies operations atomically (a promise on abstract-level, a callback on levelup). */
  // deno-lint-ignore no-explicit-any
  batch(...args: any[]): any;
  /** abstract-level: async iterators over ranges. */
  // deno-lint-ignore no-explicit-any
  iterator?(options?: any): any;
  /** levelup: Node streams over ranges. */
  // deno-lint-ignore no-explicit-any
  createReadStream?(options?: any): any;
  /** Opens the database. */
  // deno-lint-ignore no-explicit-any
  open?(...args: any[]): any;
  /** Closes the database. */
  // deno-lint-ignore no-explicit-any
  close?(...args: any[]): any;
}

/**
 * Whether `db` is an abstract-level database (promises, async iterators) rather than a levelup one (callbacks, streams).
 *
 * @example
 * ```ts
 * import { isAbstractLevel } from "./level-database.ts";
 * console.assert(isAbstractLevel({ get() {}, batch() {}, iterator() {} }));
 * console.assert(!isAbstractLevel({ get() {}, batch() {}, iterator() {}, createReadStream() {} }));
 * ```
 */
export function isAbstractLevel(db: LevelDatabase): boolean {
  // abstract-level has no createReadStream (it lives in level-read-stream) and promise-only methods from v2.
  return typeof db.createReadStream !== "function" && typeof db.iterator === "function";
}

/**
 * A value the database returned, as bytes; a `StorageError` when it is neither bytes nor text.
 *
 * @example
 * ```ts
 * import { toBytes } from "./level-database.ts";
 * console.assert(toBytes("hi").length === 2);
 * ```
 */
export function toBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === "string") return encoder.encode(value);
  throw new StorageError(`The level database returned a value of type ${typeof value} where bytes belong`);
}

/**
 * A value the database returned, as text; a `StorageError` when it is neither text nor bytes.
 *
 * @example
 * ```ts
 * import { toText } from "./level-database.ts";
 * console.assert(toText(new TextEncoder().encode("hi")) === "hi");
 * ```
 */
export function toText(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) return decoder.decode(value);
  throw new StorageError(`The level database returned a value of type ${typeof value} where text belongs`);
}

function isNotFound(err: unknown): boolean {
  const e = err as { notFound?: boolean; code?: string; name?: string } | null;
  return e !== null && typeof e === "object" &&
    (e.notFound === true || e.code === "LEVEL_NOT_FOUND" || e.name === "NotFoundError");
}

/**
 * Bounds of a range read with {@link levelRange}.
 *
 * @example
 * ```ts
 * import { type LevelRange, levelRange } from "./level-database.ts";
 * let asked: Record<string, unknown> = {};
 * const rows: [string, string][] = [["a1", "x"], ["a2", "y"]];
 * const iterator = (options: Record<string, unknown>) => (asked = options, rows.values());
 * const db = { get() {}, batch() {}, iterator };
 * const range: LevelRange = { gte: "a", lt: "b", limit: 10, reverse: false };
 * const pairs = await levelRange(db, range, false); // an abstract-level database: read with its iterator
 * console.assert(pairs.length === 2 && asked.gte === "a" && asked.lt === "b" && asked.limit === 10);
 * ```
 */
export interface LevelRange {
  /** Keys greater than this. */
  gt?: string;
  /** Keys greater than or equal to this. */
  gte?: string;
  /** Keys less than this. */
  lt?: string;
  /** Keys less than or equal to this. */
  lte?: string;
  /** The most pairs (Infinity for all). */
  limit: number;
  /** Highest keys first. */
  reverse: boolean;
}

/**
 * Reads one value of an abstract-level or levelup database: bytes (`binary`) or text; `undefined` when absent.
 *
 * @example
 * ```ts ignore
 * import { levelGet } from "./level-database.ts";
 * const id = await levelGet(db, "!!id", false);
 * ```
 */
export async function levelGet(db: LevelDatabase, key: string, binary: boolean): Promise<unknown> {
  const options = { valueEncoding: binary ? "binary" : "utf8" };
  if (isAbstractLevel(db)) {
    try {
      const value = await db.get(key, options);
      return value === null ? undefined : value;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
  return await new Promise((resolve, reject) => {
    db.get(key, options, (err: unknown, value: unknown) => {
      if (err) return isNotFound(err) ? resolve(undefined) : reject(err);
      resolve(value);
    });
  });
}

/**
 * Reads the pairs of a key range of an abstract-level or levelup database, in key order (or reversed); values as
 * bytes (`binary`) or text.
 *
 * @example
 * ```ts ignore
 * import { levelRange } from "./level-database.ts";
 * const changes = await levelRange(db, { gt: "!changes!", lt: "!changes!~", limit: Infinity, reverse: false }, false);
 * ```
 */
export async function levelRange(
  db: LevelDatabase,
  range: LevelRange,
  binary: boolean,
): Promise<Array<[string, unknown]>> {
  const options: Record<string, unknown> = {
    keyEncoding: "utf8",
    valueEncoding: binary ? "binary" : "utf8",
    reverse: range.reverse,
    limit: Number.isFinite(range.limit) ? range.limit : -1,
  };
  for (const bound of ["gt", "gte", "lt", "lte"] as const) {
    if (range[bound] !== undefined) options[bound] = range[bound];
  }
  if (range.limit === 0) return [];
  const out: Array<[string, unknown]> = [];
  if (isAbstractLevel(db)) {
    for await (const [key, value] of db.iterator!(options)) out.push([toText(key), value]);
    return out;
  }
  await new Promise<void>((resolve, reject) => {
    const stream = db.createReadStream!(options);
    stream.on("data", (row: { key: unknown; value: unknown }) => out.push([toText(row.key), row.value]));
    stream.on("error", reject);
    stream.on("end", () => resolve());
  });
  return out;
}
