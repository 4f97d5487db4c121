/**
 * What the SIGKILL tests (`sqlite-crash.test.ts`, `deno-kv-crash.test.ts`) check of a store a killed writer left:
 * every invariant of the log, and that every batch the writer committed is there whole or not at all.
 *
 * @module
 */
import assert from "node:assert/strict";
import { computeKey } from "../src/node.ts";
import type { Storage } from "../src/storage.ts";
import type { CrashValue } from "./fixtures/sqlite-crash-writer.ts";

/**
 * Checks `storage` (the writer's values are {@link CrashValue}s): `read` returns `length()` nodes with dense change
 * numbers, each matching its key, linking only to earlier nodes and stored once; each batch whole; the heads the
 * nodes nothing links to. Returns the number of nodes and batches, the keys in change order and the heads (sorted).
 */
export async function checkCrashed(
  storage: Storage,
): Promise<{ nodes: number; batches: number; keys: string[]; heads: string[] }> {
  const length = await storage.length();
  const nodes = await storage.read({ since: 0, until: Infinity, limit: Infinity, reverse: false });
  assert.equal(nodes.length, length, "read returns length() nodes");
  const changeOf = new Map<string, number>();
  const linked = new Set<string>();
  const batches = new Map<string, { n: number; seen: Set<number> }>();
  const decoder = new TextDecoder();
  for (const [index, node] of nodes.entries()) {
    assert.equal(node.change, index + 1, "change numbers are dense, from 1");
    assert.equal(computeKey(node.links, node.value, node.identity), node.key, `node ${node.change} matches its key`);
    for (const link of node.links) {
      const target = changeOf.get(link);
      assert.ok(target !== undefined && target < node.change, `node ${node.change} links to an earlier node`);
      linked.add(link);
    }
    assert.ok(!changeOf.has(node.key), `node ${node.key} is stored once`);
    changeOf.set(node.key, node.change);
    const value = JSON.parse(decoder.decode(node.value)) as CrashValue;
    const batch = batches.get(value.b) ?? { n: value.n, seen: new Set<number>() };
    batches.set(value.b, batch);
    assert.equal(batch.n, value.n);
    assert.ok(!batch.seen.has(value.i));
    batch.seen.add(value.i);
  }
  for (const [b, { n, seen }] of batches) assert.equal(seen.size, n, `batch ${b} is whole: ${seen.size} of ${n}`);
  const heads = [...changeOf.keys()].filter((key) => !linked.has(key)).sort();
  assert.deepEqual((await storage.heads()).sort(), heads, "the heads are the nodes nothing links to");
  return { nodes: length, batches: batches.size, keys: [...changeOf.keys()], heads };
}
