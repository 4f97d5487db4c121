import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { makeStoredNode } from "../storage/conformance.ts";
import { runStorageConformance } from "../storage/conformance-node-test.ts";
import { MemoryStorage } from "../src/memory-storage.ts";

runStorageConformance("MemoryStorage", { create: () => new MemoryStorage() });

describe("MemoryStorage key index", () => {
  it("finds every key across table growth; a refused commit leaves no key behind, a stored one is skipped", async () => {
    const s = new MemoryStorage();
    const nodes = Array.from({ length: 5000 }, (_, i) => makeStoredNode([], `value ${i}`, i + 1));
    for (let i = 0; i < 3000; i += 700) await s.commit(nodes.slice(i, Math.min(i + 700, 3000)));
    // 999 new nodes, then one numbered wrong: refused before the table grows or takes any of them.
    const refused = [...nodes.slice(3000, 3999), { ...nodes[3999]!, change: 4001 }];
    await assert.rejects(s.commit(refused), { name: "StorageConflictError" });
    assert.equal(await s.length(), 3000);
    assert.deepEqual(await s.has(nodes.slice(2990, 3010).map((node) => node.key)), [
      ...new Array(10).fill(true),
      ...new Array(10).fill(false),
    ]);
    // 999 new nodes, then a stored one: the table grows for them and takes them; the stored one is skipped.
    const report = await s.commit([...nodes.slice(3000, 3999), { ...nodes[1234]!, change: 4000 }]);
    assert.equal(report.filter((fresh) => fresh).length, 999);
    assert.equal(report[999], false);
    assert.equal((await s.get(nodes[1234]!.key))?.change, 1235);
    await s.commit(nodes.slice(3999));
    for (const node of nodes) assert.equal((await s.get(node.key))?.change, node.change);
    assert.equal(await s.get("f".repeat(64)), undefined);
    const bad = { ...makeStoredNode([], "bad", 5001), key: 42 as unknown as string };
    await assert.rejects(s.commit([makeStoredNode([], "fine", 5001), bad]), { name: "TypeError" });
    const badLink = { ...makeStoredNode([], "bad link", 5002), links: [42 as unknown as string] };
    await assert.rejects(s.commit([makeStoredNode([], "fine", 5001), badLink]), { name: "TypeError" });
    assert.equal(await s.length(), 5000);
    assert.equal((await s.heads()).length, 5000);
  });
});
