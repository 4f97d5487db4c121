import assert from "node:assert/strict";
import { test } from "node:test";
import { KeyFilter } from "./sqlite-filter.ts";
import {
  KeyTable,
  MAX_RECENT_KEYS,
  MIN_RECENT_KEYS,
  SETTLE_FACTOR,
  shouldSettle,
  sortedOrder,
} from "./sqlite-keys.ts";

/** `count` random keys (64 hex characters) in a table, numbered from 1. */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));
function randomKeys(count: number): KeyTable {
  const table = new KeyTable();
  const bytes = new Uint8Array(32 * 2048);
  const keys: string[] = new Array(count);
  for (let i = 0; i < count; i++) {
    if (i % 2048 === 0) crypto.getRandomValues(bytes);
    let key = "";
    for (let j = (i % 2048) * 32, end = j + 32; j < end; j++) key += HEX[bytes[j]!]!;
    keys[i] = key;
  }
  table.addAll(keys, 1);
  return table;
}

/** How many of the keys of `table` the filter may have. */
function found(filter: KeyFilter, table: KeyTable): number {
  let count = 0;
  for (const { words, at } of table.entries()) if (filter.mayHave(words, at)) count++;
  return count;
}

test("KeyFilter: every added key is found, absent keys mostly are not, and a settle-sized series makes few filters", () => {
  const filter = new KeyFilter();
  // Batches the size of the settles of a log growing to 1 000 000 nodes (see shouldSettle).
  let settled = 0;
  const batches: number[] = [];
  while (settled < 1_000_000) {
    const n = Math.ceil(Math.max(MIN_RECENT_KEYS, Math.sqrt(SETTLE_FACTOR * settled)));
    batches.push(n);
    settled += n;
  }
  const added: KeyTable[] = [];
  for (const n of batches) {
    const table = randomKeys(n);
    filter.add(table.words, table.size);
    added.push(table);
  }
  assert.equal(filter.size, settled);
  assert.ok(batches.length >= 8, `${batches.length} settles`);
  // One filter per doubling, not one per settle: a probe of an absent key reads this many cache lines.
  assert.ok(filter.parts <= 2, `${filter.parts} filters for ${batches.length} settles`);
  assert.ok(filter.bytes <= 4 * 1024 * 1024, `${filter.bytes} bytes for ${settled} keys`);
  for (const table of added) assert.equal(found(filter, table), table.size, "an added key was not found");
  const absent = randomKeys(200_000);
  const positives = found(filter, absent);
  // 12 bits a key, 6 probes in a 512-bit block: ~0.6 % per filter when full; the filters are not all full.
  assert.ok(positives / absent.size < 0.02, `false positive rate ${(positives / absent.size * 100).toFixed(2)} %`);
});

test("KeyFilter: an empty filter has nothing, a batch larger than the first capacity gets a filter of its size", () => {
  const filter = new KeyFilter();
  const table = randomKeys(150_000);
  assert.equal(found(filter, table), 0);
  filter.add(table.words, table.size);
  assert.equal(filter.parts, 1);
  assert.equal(found(filter, table), table.size);
  const absent = randomKeys(100_000);
  const positives = found(filter, absent);
  assert.ok(positives / absent.size < 0.01, `false positive rate ${(positives / absent.size * 100).toFixed(2)} %`);
});

test("KeyFilter: keys alike in their first words (chosen by a peer) still spread over the filter", () => {
  // Keys that share their first 8 hex characters five ways and differ only in the next 8.
  const keysOf = (from: number, count: number): KeyTable => {
    const table = new KeyTable();
    const keys = Array.from(
      { length: count },
      (_, i) =>
        ["00000000", "ffffffff", "12345678", "7fffffff", "80000000"][i % 5]! +
        (from + i).toString(16).padStart(8, "0") + "0".repeat(48),
    );
    table.addAll(keys, 1);
    return table;
  };
  const filter = new KeyFilter();
  const added = keysOf(0, 100_000);
  filter.add(added.words, added.size);
  assert.equal(found(filter, added), added.size);
  const absent = keysOf(100_000, 100_000);
  const positives = found(filter, absent);
  assert.ok(positives / absent.size < 0.02, `false positive rate ${(positives / absent.size * 100).toFixed(2)} %`);
});

test("sortedOrder: a settle's prefixes in order by their high 32 bits, packed or (past 2^21 entries) compared", () => {
  for (const count of [100_000, 2 ** 21 + 3]) {
    const prefixes = new Float64Array(count);
    for (let i = 0; i < count; i++) prefixes[i] = Math.floor(Math.random() * 2 ** 48);
    const order = sortedOrder(prefixes);
    assert.equal(order.length, count);
    const seen = new Uint8Array(count);
    let ordered = true;
    for (let i = 0; i < count; i++) {
      seen[order[i]!] = 1;
      if (i > 0 && Math.floor(prefixes[order[i]!]! / 65536) < Math.floor(prefixes[order[i - 1]!]! / 65536)) {
        ordered = false;
      }
    }
    assert.ok(ordered, `${count} entries out of order`);
    assert.ok(seen.every((v) => v === 1), `${count}: not a permutation`);
  }
});

test("recent keys settle at sqrt(SETTLE_FACTOR x settled), at least MIN_RECENT_KEYS, at most MAX_RECENT_KEYS", () => {
  // The first recent count that settles, for a store settled up to `settled`.
  const limit = (settled: number): number => {
    let lo = 1;
    let hi = 1 << 30;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (shouldSettle(settled + mid, settled)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  assert.equal(limit(0), MIN_RECENT_KEYS);
  assert.equal(limit(1_000_000), Math.ceil(Math.sqrt(SETTLE_FACTOR * 1_000_000)));
  // The memory a connection holds for an open log stays bounded however long the log grows.
  for (const settled of [2_000_000, 10_000_000, 1_000_000_000]) assert.equal(limit(settled), MAX_RECENT_KEYS);
});
