/**
 * The row helpers of `SqliteStorage`: checks of the nodes it stores, the parameters of a node's row, key
 * prefixes, and the conversion of column values.
 *
 * @module
 */
import { hexInto } from "../src/hex.ts";
import { SIZE, type StoredNode } from "../src/node.ts";
import type { SqliteValue } from "./sqlite-driver.ts";
import { VIEW_JSON_CHARS } from "./sqlite-schema.ts";

const KEY = /^[0-9a-f]{64}$/;
const SIGNATURE = /^[0-9a-f]{128}$/;

/** Whether `value` is a node key as stored: 64 lower-case hex characters. */
export function isKey(value: unknown): value is string {
  return typeof value === "string" && value.length === 64 && KEY.test(value);
}

export function bytesOf(value: SqliteValue | undefined): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value === null || value === undefined) return new Uint8Array(0);
  throw new TypeError(`Expected a blob, got ${typeof value}`);
}

/** Checks that a node can be stored. */
export function checkNode(node: StoredNode): void {
  if (!isKey(node.key)) {
    throw new TypeError(`Cannot store node ${JSON.stringify(node.key)}: a key must be 64 lower-case hex characters`);
  }
  const links = node.links;
  for (let i = 0; i < links.length; i++) {
    if (!isKey(links[i])) {
      throw new TypeError(
        `Cannot store node ${node.key}: link ${i} (${JSON.stringify(links[i])}) is not 64 lower-case hex characters`,
      );
    }
  }
  if (
    (node.identity !== undefined || node.signature !== undefined) &&
    !(isKey(node.identity) && typeof node.signature === "string" && SIGNATURE.test(node.signature))
  ) {
    throw new TypeError(
      `Cannot store node ${node.key}: a signed node needs an identity of 64 and a signature of 128 lower-case hex characters`,
    );
  }
  valueIsBytes(node);
}

/**
 * Checks a node the log made (see `checked-commits.ts`): its key and links are well-formed already, so only its
 * value is checked (and a signed node's identity and signature, as by {@link checkNode}).
 */
export function checkValue(node: StoredNode): void {
  if (node.identity === undefined && node.signature === undefined) valueIsBytes(node);
  else checkNode(node);
}

function valueIsBytes(node: StoredNode): void {
  // A node a log made or decoded says where its value lies (`SIZE`): bytes by construction, and reading its value
  // would make a view for nothing.
  if ((node as { [SIZE]?: number })[SIZE] !== undefined) return;
  if (!(node.value instanceof Uint8Array)) throw new TypeError(`Cannot store node ${node.key}: its value is not bytes`);
}

/**
 * Appends the parameters of one row of `insertSql` (the links, the value, and unless `plain` the identity and
 * signature); the change and the key are the statement's (see {@link keysInto}).
 */
export function pushRow(
  params: SqliteValue[],
  node: StoredNode,
  links: string,
  maxBlob: number,
  plain = false,
): void {
  // Read once: a node a log made or decoded makes a view each time its value is read (see `StoredNode`).
  const value = node.value;
  const blob = value.length > maxBlob ? null : value;
  if (plain) params.push(links, blob);
  else params.push(links, blob, node.identity ?? null, node.signature ?? null);
}

/**
 * Writes the keys of `nodes[from..to)` as bytes, 32 each, into `out` (grown when too small) and returns the bytes
 * written: the blob of keys an insert of those rows binds once.
 *
 * @example
 * ```ts
 * import { keysInto } from "./sqlite-rows.ts";
 * const nodes = [{ key: "ab".repeat(32) }, { key: "0f".repeat(32) }];
 * const keys = keysInto(nodes, 0, 2, new Uint8Array(64));
 * console.assert(keys.length === 64 && keys[0] === 0xab && keys[32] === 0x0f);
 * ```
 */
export function keysInto(nodes: ReadonlyArray<{ key: string }>, from: number, to: number, out: Uint8Array): Uint8Array {
  const bytes = (to - from) * 32;
  const target = out.length >= bytes ? out : new Uint8Array(bytes);
  for (let i = from, at = 0; i < to; i++, at += 32) {
    hexInto(nodes[i]!.key, target, at);
  }
  return target.subarray(0, bytes);
}

export const UTF8: TextDecoder = /* @__PURE__ */ new TextDecoder();

/** A text column read as bytes (see `SQL.viewGet`), as a string. */
export function text(value: SqliteValue | undefined): string {
  return value instanceof Uint8Array ? UTF8.decode(value) : String(value);
}

/**
 * Splits items into JSON texts of at most about {@link VIEW_JSON_CHARS} characters: arrays of keys, or objects of
 * key/value pairs when `asObject` is true (an object, so that SQLite's json_each yields them as key and value).
 */
export function* jsonChunks<T>(items: readonly T[], size: (item: T) => number, asObject = false): Generator<string> {
  let start = 0;
  while (start < items.length) {
    let end = start;
    let chars = 0;
    while (end < items.length && (end === start || chars + size(items[end]!) < VIEW_JSON_CHARS)) {
      chars += size(items[end]!) + 8;
      end++;
    }
    const part = items.slice(start, end);
    yield JSON.stringify(asObject ? Object.fromEntries(part as Array<[string, string]>) : part);
    start = end;
  }
}
