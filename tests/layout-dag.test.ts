import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type DagLayout, type DagNode, layoutDag } from "../mod.ts";

/** Checks every property a drawing relies on, whatever the DAG. */
function checkLayout(nodes: readonly DagNode[], layout: DagLayout): void {
  const { rows, edges, width } = layout;
  assert.equal(rows.length, nodes.length, "one row per node");
  assert.deepEqual(new Set(rows.map((r) => r.node.key)), new Set(nodes.map((n) => n.key)));
  const rowOf = new Map(rows.map((r, i) => [r.node.key, i]));
  const keys = new Set(nodes.map((n) => n.key));
  // Every link between two nodes of the input is one edge, from the child's row down to the parent's.
  const expected = new Set<string>();
  for (const node of nodes) {
    for (const link of node.links) if (keys.has(link)) expected.add(`${rowOf.get(node.key)}>${rowOf.get(link)}`);
  }
  const drawn = edges.map((e) => `${e.from}>${e.to}`);
  assert.equal(drawn.length, new Set(drawn).size, "no edge twice");
  assert.deepEqual(new Set(drawn), expected, "every edge drawn");
  const children = new Set(nodes.flatMap((n) => n.links));
  let seenOther = false;
  for (const [i, row] of rows.entries()) {
    assert.ok(row.column >= 0 && row.column < width);
    assert.equal(row.head, !children.has(row.node.key), `head flag of row ${i}`);
    if (!row.head) seenOther = true;
    else assert.ok(!seenOther, `head ${row.node.key} on top, before every other node`);
    assert.equal(row.outside, new Set(row.node.links.filter((l) => !keys.has(l))).size);
  }
  const busy = new Uint8Array(rows.length * width);
  const arrivals = new Set(edges.map((e) => `${e.to}:${e.lane}`));
  for (const edge of edges) {
    assert.ok(edge.from < edge.to, "edges go down");
    assert.ok(edge.lane >= 0 && edge.lane < width);
    for (let r = edge.from + 1; r < edge.to; r++) {
      if (rows[r]!.column === edge.lane) assert.fail(`lane ${edge.lane} of ${edge.from}>${edge.to} crosses row ${r}`);
      // One edge per lane between two rows.
      const cell = r * width + edge.lane;
      if (busy[cell] === 1) assert.fail(`lane ${edge.lane} holds two edges at row ${r}`);
      busy[cell] = 1;
    }
    // The edge leaves its child and reaches its parent: the lane is the child's column for its first link, and the
    // parent's column is the lane of one of the edges that reach it.
    assert.ok(arrivals.has(`${edge.to}:${rows[edge.to]!.column}`), "parent column is a lane");
  }
}

const chain = (n: number): DagNode[] =>
  Array.from({ length: n }, (_, i) => ({ key: `n${n - 1 - i}`, links: i === n - 1 ? [] : [`n${n - 2 - i}`] }));

describe("layoutDag", () => {
  it("lays a chain in one lane", () => {
    const nodes = chain(5);
    const layout = layoutDag(nodes);
    checkLayout(nodes, layout);
    assert.equal(layout.width, 1);
    assert.deepEqual(layout.rows.map((r) => r.node.key), ["n4", "n3", "n2", "n1", "n0"]);
    assert.deepEqual(layout.rows.map((r) => r.head), [true, false, false, false, false]);
    assert.deepEqual(layout.edges.map((e) => [e.from, e.to, e.lane]), [[0, 1, 0], [1, 2, 0], [2, 3, 0], [3, 4, 0]]);
  });

  it("puts both heads of a fork on top, each in its lane", () => {
    const nodes = [
      { key: "b2", links: ["b1"] },
      { key: "a1", links: ["root"] },
      { key: "b1", links: ["root"] },
      { key: "root", links: [] },
    ];
    const layout = layoutDag(nodes);
    checkLayout(nodes, layout);
    assert.deepEqual(layout.rows.map((r) => [r.node.key, r.column, r.head]), [
      ["b2", 0, true],
      ["a1", 1, true],
      ["b1", 0, false],
      ["root", 0, false],
    ]);
    assert.equal(layout.width, 2);
  });

  it("merges three branches", () => {
    const nodes = [
      { key: "m", links: ["a", "b", "c"] },
      { key: "c", links: ["r"] },
      { key: "b", links: ["r"] },
      { key: "a", links: ["r"] },
      { key: "r", links: [] },
    ];
    const layout = layoutDag(nodes);
    checkLayout(nodes, layout);
    assert.equal(layout.width, 3);
    // The first link keeps the merge's lane; the others take new ones.
    assert.deepEqual(layout.rows.map((r) => [r.node.key, r.column]), [["m", 0], ["c", 2], ["b", 1], ["a", 0], [
      "r",
      0,
    ]]);
    assert.equal(layout.edges.filter((e) => e.from === 0).length, 3);
    assert.equal(layout.edges.filter((e) => e.to === 4).length, 3);
  });

  it("draws a criss-cross merge", () => {
    const nodes = [
      { key: "x2", links: ["x1", "y1"] },
      { key: "y2", links: ["y1", "x1"] },
      { key: "x1", links: ["r"] },
      { key: "y1", links: ["r"] },
      { key: "r", links: [] },
    ];
    const layout = layoutDag(nodes);
    checkLayout(nodes, layout);
    assert.deepEqual(layout.rows.slice(0, 2).map((r) => r.head), [true, true]);
    assert.equal(layout.edges.length, 6);
  });

  it("counts links outside the window and leaves them undrawn", () => {
    const nodes = chain(6).slice(0, 3);
    const layout = layoutDag(nodes);
    checkLayout(nodes, layout);
    assert.deepEqual(layout.rows.map((r) => r.outside), [0, 0, 1]);
  });

  it("keeps every property on 1 000 random nodes", () => {
    let seed = 19;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let round = 0; round < 5; round++) {
      const oldestFirst: DagNode[] = [];
      for (let i = 0; i < 1000; i++) {
        const links = new Set<string>();
        // A few roots; one to three links, mostly to recent nodes (forks and merges close together), a few old.
        const count = i === 0 || random() < 0.02 ? 0 : 1 + Math.floor(random() * 3);
        for (let j = 0; j < count; j++) {
          const back = random() < 0.95 ? 1 + Math.floor(random() * 8) : 1 + Math.floor(random() * i);
          links.add(`k${Math.max(0, i - back)}`);
        }
        oldestFirst.push({ key: `k${i}`, links: [...links] });
      }
      const nodes = oldestFirst.reverse();
      checkLayout(nodes, layoutDag(nodes));
    }
  });

  it("refuses nodes out of order and repeated keys", () => {
    assert.throws(
      () => layoutDag([{ key: "a", links: [] }, { key: "b", links: ["a"] }]),
      { name: "RangeError", message: "Node b links to a, which comes before it: give the nodes newest first" },
    );
    assert.throws(() => layoutDag([{ key: "a", links: [] }, { key: "a", links: [] }]), /appears twice/);
    assert.deepEqual(layoutDag([]), { rows: [], edges: [], width: 0 });
  });
});
