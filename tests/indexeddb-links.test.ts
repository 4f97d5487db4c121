/**
 * IndexedDB layout 3's links (storage/indexeddb-links.ts, toChunks/fromChunk of storage/indexeddb-layout.ts), without
 * a browser: which links become change numbers, that chunks give back the keys, and the stored size per node of a
 * storm-shaped log before (layout 2: keys) and after (change numbers). The IndexedDB side (commits, reads across
 * chunks and commits, the version-2 upgrade) runs in Chromium: tests/indexeddb.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { makeStoredNode } from "../storage/conformance.ts";
import { type ChunkRecord, fromChunk, toChunks } from "../storage/indexeddb-layout.ts";
import { encodeLinks } from "../storage/indexeddb-links.ts";
import type { StoredNode } from "../src/node.ts";

const key = (n: number) => n.toString(16).padStart(64, "0");

/** `count` nodes by `writers` writers in turn, each linking to the latest node of every writer (~`writers` links). */
function storm(count: number, writers: number): StoredNode[] {
  const tips: string[] = [];
  const nodes: StoredNode[] = [];
  for (let change = 1; change <= count; change++) {
    const writer = change % writers;
    const value = JSON.stringify({ c: writer, i: change, text: `entry ${change} of a storm` });
    const node = makeStoredNode(tips.filter((tip) => tip !== undefined), value, change);
    nodes.push(node);
    tips[writer] = node.key;
  }
  return nodes;
}

/** The JSON length of chunk records, values counted as their bytes. */
function recordBytes(chunks: readonly ChunkRecord[]): number {
  let bytes = 0;
  for (const chunk of chunks) {
    bytes += JSON.stringify({ ...chunk, values: [] }).length;
    for (const value of chunk.values) bytes += value.byteLength;
  }
  return bytes;
}

/** Every node of `chunks` read back, change numbers outside a chunk resolved through all of them. */
function readBack(chunks: readonly ChunkRecord[]): StoredNode[] {
  const keys = chunks.flatMap((chunk) => chunk.keys);
  const out: StoredNode[] = [];
  for (const chunk of chunks) {
    fromChunk(chunk, out, (change) => {
      assert.ok(change < chunk.last - chunk.keys.length + 1, `change ${change} is looked up outside its chunk`);
      return keys[change - 1]!;
    });
  }
  return out;
}

describe("IndexedDB links as change numbers", () => {
  it("numbers only links to earlier stored nodes; later, unknown and dangling links stay keys", () => {
    const changes = new Map([[key(1), 1], [key(2), 2], [key(7), 7], [key(9), 9]]);
    const links = [key(2), key(1), key(9), key(7), key(5), "ab".repeat(32)];
    assert.deepEqual(
      encodeLinks(8, links, (k) => changes.get(k)),
      [2, 1, key(9), 7, key(5), "ab".repeat(32)],
    );
    assert.deepEqual(encodeLinks(1, [key(1)], () => 1), [key(1)], "a node never links to itself by number");
    assert.deepEqual(encodeLinks(3, [key(0)], () => 0), [key(0)], "change 0 names no node");
  });

  it("a storm-shaped log reads back the same keys across chunks, and takes under a third of the bytes", () => {
    const nodes = storm(5000, 50);
    const inLog = new Map(nodes.map((node) => [node.key, node.change]));
    const before = toChunks(nodes);
    const after = toChunks(nodes, (k) => inLog.get(k));
    assert.ok(after.length >= 5, `${after.length} chunks`);
    assert.deepEqual(readBack(after), nodes);
    assert.deepEqual(readBack(before), nodes);
    // Every link names an earlier node: all are numbers.
    assert.ok(after.every((chunk) => chunk.links.every((links) => links.every((l) => typeof l === "number"))));
    const links = (chunks: ChunkRecord[]) => chunks.reduce((n, c) => n + JSON.stringify(c.links).length, 0);
    const perNode = (bytes: number) => Math.round(bytes / nodes.length);
    const [linksBefore, linksAfter] = [perNode(links(before)), perNode(links(after))];
    const [recordBefore, recordAfter] = [perNode(recordBytes(before)), perNode(recordBytes(after))];
    console.log(
      `storm of ${nodes.length} nodes, 50 writers: per node, links ${linksBefore} -> ${linksAfter} bytes of JSON, ` +
        `chunk records ${recordBefore} -> ${recordAfter}`,
    );
    assert.ok(linksAfter * 10 < linksBefore, `links ${linksBefore} -> ${linksAfter}`);
    assert.ok(recordAfter * 3 < recordBefore, `records ${recordBefore} -> ${recordAfter}`);
  });

  it("a chunk reads its own numbers by position, and a number the reader cannot resolve throws", () => {
    const nodes = storm(30, 4);
    const inLog = new Map(nodes.map((node) => [node.key, node.change]));
    const [chunk] = toChunks(nodes.slice(10), (k) => inLog.get(k));
    // Links to changes 1..10 are outside the chunk: `keyOf` is asked for each of them, and only those.
    const asked = new Set<number>();
    const read = fromChunk(chunk!, [], (change) => {
      asked.add(change);
      return nodes[change - 1]!.key;
    });
    assert.deepEqual(read, nodes.slice(10));
    assert.deepEqual([...asked].sort((a, b) => a - b), [7, 8, 9, 10]);
    assert.throws(() =>
      fromChunk(chunk!, [], () => {
        throw new TypeError("No such change");
      }), { message: "No such change" });
    // A page within the chunk: its nodes only.
    assert.deepEqual(fromChunk(chunk!, [], (c) => nodes[c - 1]!.key, 15, 17).map((n) => n.change), [15, 16, 17]);
  });
});
