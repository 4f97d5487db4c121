/**
 * What a view's `map` writes through: the writes of one batch over the view's committed data (reads see them, and
 * they commit with the checkpoint), a cache of committed values, and the checks and conversions of keys, values and
 * range bounds.
 *
 * @module
 */
import type { Storage, ViewRange, ViewWrite } from "./storage.ts";
import { inViewRange } from "./view-keys.ts";
import type { ViewRangeOptions, ViewStore } from "./view-types.ts";

/** A view key: a string; throws a `TypeError` naming the call otherwise. */
export function checkKey(key: unknown, where: string): string {
  if (typeof key !== "string") {
    throw new TypeError(`${where} takes a string key, got ${key === null ? "null" : typeof key}`);
  }
  return key;
}

/** A value's JSON text; throws a `TypeError` for a value JSON cannot hold. */
function jsonOf(key: string, value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new TypeError(`The value of view key ${JSON.stringify(key)} has no JSON form: ${(err as Error).message}`);
  }
  if (text === undefined) {
    throw new TypeError(
      `The value of view key ${
        JSON.stringify(key)
      } is ${typeof value}, which JSON cannot hold; use del() to remove a key`,
    );
  }
  return text;
}

/** Turns the public range options into a storage range (prefix folded into the bounds). */
export function toRange(options: ViewRangeOptions = {}): ViewRange {
  let { gt, gte, lt, lte } = options;
  for (const [name, bound] of Object.entries({ gt, gte, lt, lte, prefix: options.prefix })) {
    if (bound !== undefined && typeof bound !== "string") throw new TypeError(`Range bound ${name} must be a string`);
  }
  const limit = options.limit ?? Infinity;
  if (!(limit >= 0)) throw new RangeError(`Range limit must be a number >= 0, got ${String(options.limit)}`);
  if (options.prefix !== undefined && options.prefix !== "") {
    const prefix = options.prefix;
    if (gte === undefined || gte < prefix) gte = prefix;
    const end = prefixEnd(prefix);
    if (end !== undefined && (lt === undefined || lt > end)) lt = end;
  }
  const range: { -readonly [K in keyof ViewRange]: ViewRange[K] } = { limit, reverse: options.reverse === true };
  if (gt !== undefined) range.gt = gt;
  if (gte !== undefined) range.gte = gte;
  if (lt !== undefined) range.lt = lt;
  if (lte !== undefined) range.lte = lte;
  return range;
}

/** The least string above every string that starts with `prefix`, or `undefined` if there is none. */
function prefixEnd(prefix: string): string | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const code = prefix.charCodeAt(i);
    if (code < 0xffff) return prefix.slice(0, i) + String.fromCharCode(code + 1);
  }
  return undefined;
}

/** The value of stored JSON text (`undefined` for none). */
export function parse(text: string | undefined): unknown {
  return text === undefined ? undefined : JSON.parse(text);
}

/** The most committed values a view keeps in memory (it is their only writer, so they stay true). */
const CACHE_LIMIT = 65536;

/** The writes of one batch over the committed data: reads see them, and they commit with the checkpoint. */
export class BatchStore implements ViewStore {
  readonly writes: ViewWrite[] = [];
  readonly #overlay = new Map<string, string | undefined>();
  readonly #storage: Storage;
  readonly #name: string;
  readonly #cache: Map<string, string | undefined>;

  constructor(storage: Storage, name: string, cache: Map<string, string | undefined>) {
    this.#storage = storage;
    this.#name = name;
    this.#cache = cache;
  }

  async get(key: string): Promise<unknown> {
    checkKey(key, "get");
    if (this.#overlay.has(key)) return parse(this.#overlay.get(key));
    if (this.#cache.has(key)) return parse(this.#cache.get(key));
    const text = await this.#storage.viewGet(this.#name, key);
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
    this.#cache.set(key, text);
    return parse(text);
  }

  /** After the commit: what this batch wrote is what the store now holds. */
  committed(): void {
    if (this.#cache.size + this.#overlay.size > CACHE_LIMIT) this.#cache.clear();
    for (const [key, text] of this.#overlay) this.#cache.set(key, text);
  }

  put(key: string, value: unknown): void {
    checkKey(key, "put");
    const text = jsonOf(key, value);
    this.#overlay.set(key, text);
    this.writes.push({ key, value: text });
  }

  del(key: string): void {
    checkKey(key, "del");
    this.#overlay.set(key, undefined);
    this.writes.push({ key, value: undefined });
  }

  async range(options?: ViewRangeOptions): Promise<Array<[string, unknown]>> {
    const range = toRange(options);
    if (this.#overlay.size === 0) {
      return (await this.#storage.viewRange(this.#name, range)).map(([key, text]) => [key, JSON.parse(text)]);
    }
    const merged = new Map(await this.#storage.viewRange(this.#name, { ...range, limit: Infinity }));
    for (const [key, text] of this.#overlay) {
      if (!inViewRange(key, range)) continue;
      if (text === undefined) merged.delete(key);
      else merged.set(key, text);
    }
    const keys = [...merged.keys()].sort();
    if (range.reverse) keys.reverse();
    return keys.slice(0, range.limit).map((key) => [key, JSON.parse(merged.get(key)!)]);
  }
}
