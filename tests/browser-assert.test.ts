/**
 * The `node:assert/strict` stand-in that browser bundles use (`tests/fixtures/browser-assert.ts`) must agree with
 * Node's module: for each case, both pass or both fail.
 */
import { describe, it } from "node:test";
import nodeAssert from "node:assert/strict";
import shim, { AssertionError } from "./fixtures/browser-assert.ts";

class Custom extends Error {
  constructor() {
    super("custom");
    this.name = "Custom";
  }
}
const bytes = (...values: number[]) => new Uint8Array(values);
const cyclic = () => {
  const value: Record<string, unknown> = { a: 1 };
  value["self"] = value;
  return value;
};

/** [left, right] pairs for equal and deepEqual. */
const pairs: Array<[string, unknown, unknown]> = [
  ["same numbers", 1, 1],
  ["1 and '1'", 1, "1"],
  ["NaN and NaN", NaN, NaN],
  ["0 and -0", 0, -0],
  ["undefined and null", undefined, null],
  ["equal strings", "a\u0000b", "a\u0000b"],
  ["equal arrays", [1, [2, "x"]], [1, [2, "x"]]],
  ["arrays of different length", [1, 2], [1, 2, undefined]],
  ["sparse and dense arrays", [, 1], [undefined, 1]], // eslint-disable-line no-sparse-arrays
  ["equal objects in another key order", { a: 1, b: [2] }, { b: [2], a: 1 }],
  ["objects with a missing key", { a: 1, b: undefined }, { a: 1 }],
  ["object and array", {}, []],
  ["plain and null-prototype objects", { a: 1 }, Object.assign(Object.create(null), { a: 1 })],
  ["equal byte arrays", bytes(1, 2, 3), bytes(1, 2, 3)],
  ["different byte arrays", bytes(1, 2, 3), bytes(1, 2, 4)],
  ["Uint8Array and Int8Array", bytes(1), new Int8Array([1])],
  ["byte arrays of different length", bytes(1), bytes(1, 0)],
  ["equal dates", new Date(5), new Date(5)],
  ["different dates", new Date(5), new Date(6)],
  ["equal maps", new Map([["a", { x: 1 }]]), new Map([["a", { x: 1 }]])],
  ["different maps", new Map([["a", 1]]), new Map([["a", 2]])],
  ["equal sets", new Set([1, "a"]), new Set(["a", 1])],
  ["sets of equal objects", new Set([{ a: 1 }]), new Set([{ a: 1 }])],
  ["different sets", new Set([1]), new Set([2])],
  ["equal cycles", cyclic(), cyclic()],
  ["a node-like record", { key: "k", links: ["a"], change: 1 }, { key: "k", links: ["a"], change: 1 }],
  ["a view state", { version: 3, change: 7 }, { version: 3, change: 7 }],
  ["a view state with another change", { version: 3, change: 7 }, { version: 3, change: 8 }],
  ["pairs", [["a", "1"], ["b", "2"]], [["a", "1"], ["b", "2"]]],
  ["pairs in another order", [["a", "1"], ["b", "2"]], [["b", "2"], ["a", "1"]]],
  ["symbols as keys", { [Symbol.for("s")]: 1 }, { [Symbol.for("s")]: 2 }],
];

function outcome(fn: () => void): string {
  try {
    fn();
    return "pass";
  } catch (err) {
    return (err as Error).name;
  }
}

async function outcomeAsync(fn: () => Promise<void>): Promise<string> {
  try {
    await fn();
    return "pass";
  } catch (err) {
    return (err as Error).name;
  }
}

describe("the browser stand-in for node:assert/strict agrees with Node's", () => {
  it("equal and deepEqual", () => {
    for (const [name, a, b] of pairs) {
      nodeAssert.equal(outcome(() => shim.equal(a, b)), outcome(() => nodeAssert.equal(a, b)), `equal: ${name}`);
      nodeAssert.equal(
        outcome(() => shim.deepEqual(a, b)),
        outcome(() => nodeAssert.deepEqual(a, b)),
        `deepEqual: ${name}`,
      );
    }
  });

  it("ok", () => {
    for (const value of [0, "", null, undefined, NaN, 1, "x", {}, []]) {
      nodeAssert.equal(outcome(() => shim.ok(value)), outcome(() => nodeAssert.ok(value)), `ok(${String(value)})`);
    }
  });

  it("a failed assertion throws an AssertionError that carries the message", () => {
    nodeAssert.throws(() => shim.equal(1, 2, "one is not two"), { name: "AssertionError", message: "one is not two" });
    nodeAssert.throws(() => shim.deepEqual([1], [2]), AssertionError);
    nodeAssert.throws(() => shim.ok(false), (err: Error) => err instanceof AssertionError && err.message.length > 0);
  });

  it("rejects", async () => {
    const reject = (err: unknown) => () => Promise.reject(err);
    const cases: Array<[string, () => Promise<unknown>, unknown]> = [
      ["a rejection of the named error", reject(new Custom()), { name: "Custom" }],
      ["a rejection of another error", reject(new Custom()), { name: "StorageConflictError" }],
      ["a rejection matched on two properties", reject(new Custom()), { name: "Custom", message: "custom" }],
      ["a rejection matched on a message pattern", reject(new Custom()), { message: /^cus/ }],
      ["a rejection by class", reject(new Custom()), Custom],
      ["a rejection of another class", reject(new Error("x")), Custom],
      ["a rejection by regexp", reject(new Custom()), /custom/],
      ["a rejection not matching a regexp", reject(new Custom()), /other/],
      ["a resolution", () => Promise.resolve(1), { name: "Custom" }],
      ["a rejection with a primitive", reject("text"), { name: "Custom" }],
      ["a function that throws synchronously", () => {
        throw new Custom();
      }, { name: "Custom" }],
      ["no expectation", reject(new Error("any")), undefined],
    ];
    for (const [name, fn, expected] of cases) {
      const ours = await outcomeAsync(() => shim.rejects(fn, expected as object));
      const node = await outcomeAsync(() => nodeAssert.rejects(fn, expected as object));
      nodeAssert.equal(ours, node, `rejects: ${name}`);
      if (name !== "a function that throws synchronously") {
        const promised = await outcomeAsync(() =>
          shim.rejects(fn().catch((e) => Promise.reject(e)), expected as object)
        );
        nodeAssert.equal(promised, node, `rejects given a promise: ${name}`);
      }
    }
  });
});
