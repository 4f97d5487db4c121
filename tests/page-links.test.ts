/**
 * The session's encoder (src/link-refs.ts) finds a link among the nodes it sent by the change number a SQLite page
 * carries (src/page-links.ts) instead of by its key: the bytes on the wire are the same either way, whatever was
 * sent before, received, skipped or sent out of order, and the receiver gets the same nodes back.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LinkRefs, REF_RING } from "../src/link-refs.ts";
import { computeKey, type StoredNode } from "../src/node.ts";
import { pageLinksOf } from "../src/page-links.ts";
import { openSqlite } from "../storage/sqlite-open.ts";
import type { SqliteStorage } from "../storage/sqlite.ts";

/** `n` nodes: each links to the one before; every 3rd also far back (some past the ring), every 50th dangles. */
function dag(n: number): StoredNode[] {
  const nodes: StoredNode[] = [];
  for (let i = 1; i <= n; i++) {
    const links: string[] = [];
    if (i > 1) links.push(nodes[i - 2]!.key);
    if (i % 3 === 0 && i > REF_RING + 60) links.push(nodes[i - REF_RING - 50]!.key);
    else if (i % 3 === 0 && i > 40) links.push(nodes[i - 40]!.key);
    if (i % 50 === 0) links.push(i.toString(16).padStart(64, "e"));
    const value = new Uint8Array([i & 255, i >> 8, 0]);
    nodes.push({ key: computeKey(links, value), links, value, change: i });
  }
  return nodes;
}

async function stored(nodes: StoredNode[]): Promise<SqliteStorage> {
  const storage = await openSqlite(":memory:");
  for (let at = 0; at < nodes.length; at += 1000) await storage.commit(nodes.slice(at, at + 1000));
  return storage;
}

/**
 * Sends the pages of `storage` starting at each of `starts` (256 nodes each, leaving out `skip`) through two
 * encoders, one given the pages' links by change and one not, after both received `received`; returns the messages.
 */
async function sendBoth(
  storage: SqliteStorage,
  starts: number[],
  received: StoredNode[],
  skip: (change: number) => boolean,
) {
  const hinted = new LinkRefs();
  const plain = new LinkRefs();
  hinted.received(received);
  plain.received(received);
  const a: Uint8Array[] = [];
  const b: Uint8Array[] = [];
  for (const since of starts) {
    const page = await storage.read({ since, until: Infinity, limit: 256, reverse: false });
    const links = pageLinksOf(page);
    assert.ok(links !== undefined, "a SQLite page carries its links by change");
    const nodes = page.filter((node) => !skip(node.change));
    a.push(...hinted.encode(nodes, 1 << 16, links));
    b.push(...plain.encode(nodes, 1 << 16));
  }
  return { a, b };
}

describe("links by change in the session's encoder", () => {
  it("writes the same bytes as by key: in order, after received nodes, with nodes skipped, out of order", async () => {
    const nodes = dag(REF_RING + 1200);
    const storage = await stored(nodes);
    const pages = Array.from({ length: Math.ceil(nodes.length / 256) }, (_, i) => i * 256);
    const cases: [string, number[], StoredNode[], (change: number) => boolean][] = [
      ["in order", pages, [], () => false],
      ["after received nodes, which are not sent back", pages, nodes.slice(299, 420), (c) => c >= 300 && c <= 420],
      ["out of order", [1024, 0, 3000, 256, 512, ...pages.slice(5)], [], () => false],
    ];
    for (const [what, starts, received, skip] of cases) {
      const { a, b } = await sendBoth(storage, starts, received, skip);
      assert.equal(a.length, b.length, what);
      for (let i = 0; i < a.length; i++) assert.deepEqual(a[i], b[i], `${what}: message ${i}`);
    }
    await storage.close();
  });

  it("the receiver gets every node back, links resolved (references inside the ring, keys past it)", async () => {
    const nodes = dag(REF_RING + 600);
    const storage = await stored(nodes);
    const sender = new LinkRefs();
    const receiver = new LinkRefs();
    const got: StoredNode[] = [];
    let refs = 0;
    for (let since = 0; since < nodes.length; since += 256) {
      const page = await storage.read({ since, until: Infinity, limit: 256, reverse: false });
      for (const message of sender.encode(page, 1 << 16, pageLinksOf(page))) {
        refs += message.length;
        for (const node of await receiver.decode(message, () => Promise.reject(new Error("Not expected")))) {
          got.push({ ...node, change: got.length + 1 } as StoredNode);
        }
      }
    }
    assert.deepEqual(got.map((n) => [n.key, n.links]), nodes.map((n) => [n.key, n.links]));
    // Most links travel as a byte or two: far less than the 32 bytes a key would take.
    const links = nodes.reduce((sum, n) => sum + n.links.length, 0);
    assert.ok(refs < nodes.length * 12 + links * 6, `${refs} bytes for ${nodes.length} nodes and ${links} links`);
    await storage.close();
  });
});
