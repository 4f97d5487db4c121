import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChunkedList } from "../src/chunked-list.ts";
import { MemoryStorage } from "../src/memory-storage.ts";
import { makeStoredNode } from "../storage/conformance.ts";
import type { StoredNode } from "../src/node.ts";

describe("ChunkedList", () => {
  it("keeps every entry across chunk boundaries, and truncates anywhere, then grows again", () => {
    const list = new ChunkedList<number>();
    const mirror: number[] = [];
    // Cuts inside the first chunk, at a chunk boundary, to nothing, and one past a boundary.
    for (const [round, cut] of [16_384, 100, 0, 32_769].entries()) {
      for (let i = 0; i < 40_000; i++) {
        list.push(i * 4 + round);
        mirror.push(i * 4 + round);
      }
      assert.equal(list.length, mirror.length);
      for (let i = 0; i < mirror.length; i++) if (list.at(i) !== mirror[i]) assert.fail(`entry ${i} of round ${round}`);
      list.set(mirror.length - 1, -1);
      mirror[mirror.length - 1] = -1;
      assert.equal(list.at(mirror.length - 1), -1);
      list.truncate(cut);
      mirror.length = cut;
      assert.equal(list.length, cut);
      list.truncate(cut + 10);
      assert.equal(list.length, cut, "truncating to more than there are keeps everything");
    }
    assert.deepEqual(Array.from({ length: list.length }, (_, i) => list.at(i)), mirror);
  });
});

describe("MemoryStorage past one chunk of nodes", () => {
  it("gets, reads both ways and keeps heads across chunks of its lists", async () => {
    const s = new MemoryStorage();
    const count = 40_000;
    // Chains of two: every second node links to the one before it, so half the nodes stay heads.
    const nodes: StoredNode[] = [];
    for (let i = 0; i < count; i++) {
      nodes.push(makeStoredNode(i % 2 === 1 ? [nodes[i - 1]!.key] : [], `value ${i}`, i + 1));
    }
    for (let i = 0; i < count; i += 7_000) await s.commit(nodes.slice(i, i + 7_000));
    assert.equal(await s.length(), count);
    for (const i of [0, 16_383, 16_384, 16_385, 32_767, 32_768, count - 1]) {
      assert.equal((await s.get(nodes[i]!.key))?.change, i + 1);
    }
    const forward = await s.read({ since: 16_380, until: 16_390, limit: 100, reverse: false });
    assert.deepEqual(forward.map((node) => node.change), Array.from({ length: 10 }, (_, i) => 16_381 + i));
    const back = await s.read({ since: 0, until: 32_770, limit: 4, reverse: true });
    assert.deepEqual(back.map((node) => node.change), [32_770, 32_769, 32_768, 32_767]);
    const heads = await s.heads();
    assert.equal(heads.length, count / 2);
    assert.deepEqual(new Set(heads), new Set(nodes.filter((_, i) => i % 2 === 1).map((node) => node.key)));
    // The head list is compacted by `heads`; it grows again past the cut.
    await s.commit([makeStoredNode([nodes[count - 1]!.key], "last", count + 1)]);
    assert.equal((await s.heads()).length, count / 2);
  });
});
