/**
 * Helpers shared by storage backends for views: checking a view commit, and a sorted key set for in-memory ranges.
 *
 * @module
 */
import { HyperlogError } from "./errors.ts";
import type { ViewRange, ViewState, ViewWrite } from "./storage.ts";

/**
 * Throws a `TypeError`-like {@link HyperlogError} when a view commit is malformed, before a backend writes anything.
 *
 * @example
 * ```ts
 * import { checkViewCommit } from "./view-keys.ts";
 * checkViewCommit("kv", [{ key: "a", value: "1" }], { version: 1, change: 3 });
 * ```
 */
export function checkViewCommit(name: string, writes: readonly ViewWrite[], state: ViewState): void {
  if (typeof name !== "string" || name === "") {
    throw new HyperlogError("A view name must be a non-empty string");
  }
  if (!Number.isSafeInteger(state.version) || !Number.isSafeInteger(state.change) || state.change < 0) {
    throw new HyperlogError(
      `View ${name}: a checkpoint needs an integer version and a change >= 0, got ${JSON.stringify(state)}`,
    );
  }
  for (const write of writes) {
    if (typeof write.key !== "string") throw new HyperlogError(`View ${name}: a key must be a string`);
    if (write.value !== undefined && typeof write.value !== "string") {
      throw new HyperlogError(`View ${name}: the value of ${JSON.stringify(write.key)} must be a string or undefined`);
    }
  }
}

/** Whether `key` lies within the bounds of `range` (limit and order aside). */
export function inViewRange(key: string, range: ViewRange): boolean {
  if (range.gt !== undefined && !(key > range.gt)) return false;
  if (range.gte !== undefined && !(key >= range.gte)) return false;
  if (range.lt !== undefined && !(key < range.lt)) return false;
  if (range.lte !== undefined && !(key <= range.lte)) return false;
  return true;
}

function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A set of strings that answers ordered range queries. Additions are cheap (a sort happens at the next range
 * query, merged in when few), so a view that is catching up pays nothing for order it does not ask for.
 *
 * @example
 * ```ts
 * import { SortedKeys } from "./view-keys.ts";
 * const keys = new SortedKeys();
 * keys.add("b"); keys.add("a"); keys.add("c");
 * console.assert(keys.range({ gt: "a", limit: 10, reverse: false }).join() === "b,c");
 * ```
 */
export class SortedKeys {
  #sorted: string[] = [];
  #pending: string[] = [];
  #deleted = new Set<string>();

  /** Adds a key that is not in the set. */
  add(key: string): void {
    if (this.#deleted.delete(key)) return;
    this.#pending.push(key);
  }

  /** Removes a key that is in the set. */
  delete(key: string): void {
    this.#deleted.add(key);
  }

  #settle(): string[] {
    let sorted = this.#sorted;
    if (this.#deleted.size > 0) {
      const deleted = this.#deleted;
      const pending = this.#pending.filter((key) => !deleted.delete(key));
      sorted = sorted.filter((key) => !deleted.has(key));
      this.#pending = pending;
      deleted.clear();
    }
    const pending = this.#pending;
    if (pending.length > 0) {
      if (pending.length < 32) {
        for (const key of pending) sorted.splice(lowerBound(sorted, key), 0, key);
      } else {
        sorted = sorted.concat(pending).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      }
      this.#pending = [];
    }
    this.#sorted = sorted;
    return sorted;
  }

  /** The keys within `range`, in order. */
  range(range: ViewRange): string[] {
    const sorted = this.#settle();
    let start = 0;
    let end = sorted.length;
    if (range.gte !== undefined) start = Math.max(start, lowerBound(sorted, range.gte));
    if (range.gt !== undefined) {
      let i = lowerBound(sorted, range.gt);
      if (sorted[i] === range.gt) i++;
      start = Math.max(start, i);
    }
    if (range.lt !== undefined) end = Math.min(end, lowerBound(sorted, range.lt));
    if (range.lte !== undefined) {
      let i = lowerBound(sorted, range.lte);
      if (sorted[i] === range.lte) i++;
      end = Math.min(end, i);
    }
    if (end <= start) return [];
    const count = Math.min(end - start, range.limit);
    return range.reverse ? sorted.slice(end - count, end).reverse() : sorted.slice(start, start + count);
  }
}
