/**
 * What a memory `batch` could reach on this Node at all: the core benchmark's `batch` (100 000 `{ value }`
 * documents in chunks of 1000, the caller keeping every key) beside a floor that does only what any such `batch`
 * must: `JSON.stringify` each value, hash `length\ntext` with the runtime's native SHA-256 to a hex key, keep one
 * small node object a node (key, links, change, text) and hand the nodes back. No value bytes, no key index, no
 * heads, no checks. Between them, the steps of this library's `batch` one at a time, through its own functions:
 * `place` (the key and the value's bytes in a slab, `placeNode`, kept in a small object), `lazy` (the lazy json node
 * and its stored-node object, `lazyStoredObject`, kept), `commit` (those committed to a `MemoryStorage` a chunk at a
 * time, which keeps them). Each runs in its own child, with V8's default young generation and with
 * `--max-semi-space-size=8`, alternated round by round; prints the medians, and each step's cost a node over the
 * one before it.
 *
 * `node bench/_batch-floor.ts [--n 100000] [--rounds 5]` (Node only: the floor hashes with `node:crypto`). One
 * child by hand: `node bench/_batch-floor.ts --child floor|place|lazy|commit|ours [--n N]`.
 *
 * @module
 */
import { hash } from "node:crypto";
import { parseArgs } from "node:util";
import { type BenchValue, benchValue } from "./_impls.ts";
import { median, runChild, secondsSince } from "./_util.ts";
import { Hyperlog, MemoryStorage } from "../mod.ts";
import { markChecked, unmarkChecked } from "../src/checked-commits.ts";
import { NO_LINKS } from "../src/log-checks.ts";
import { lazyStoredObject } from "../src/log-values.ts";
import { placeNode } from "../src/node.ts";
import type { StoredNode } from "../src/node.ts";

/** Documents per `batch` call, as in the core benchmark. */
const CHUNK = 1000;

/** What a child prints: nodes per second. */
interface FloorResult {
  rate: number;
}

/** A floor node: what any log has to keep of a node it adds (the text stands in for the stored value). */
interface FloorNode {
  key: string;
  links: readonly string[];
  change: number;
  text: string;
}

/** The floor's `batch`: json text, native hex key, one kept object a node. */
function floorBatch(kept: unknown[], docs: readonly { value: BenchValue }[]): Promise<FloorNode[]> {
  const out = new Array<FloorNode>(docs.length);
  for (let i = 0; i < docs.length; i++) {
    const text = JSON.stringify(docs[i]!.value);
    const key = hash("sha256", `${text.length}\n${text}`, "hex");
    const node: FloorNode = { key, links: NO_LINKS, change: kept.length + 1, text };
    kept.push(node);
    out[i] = node;
  }
  return Promise.resolve(out);
}

/** The children, from the floor to this library's `batch`. */
const STEPS = ["floor", "place", "lazy", "commit", "ours"] as const;
type Step = typeof STEPS[number];

/** A step's `batch` up to that step (see the module doc): what it keeps, it keeps in `kept` or its storage. */
function stepBatch(step: Exclude<Step, "floor" | "ours">, kept: unknown[], storage: MemoryStorage) {
  let change = 0;
  return async (docs: readonly { value: BenchValue }[]): Promise<{ key: string }[]> => {
    const out = new Array<{ key: string }>(docs.length);
    const stored: StoredNode[] = [];
    for (let i = 0; i < docs.length; i++) {
      const placed = placeNode(NO_LINKS, JSON.stringify(docs[i]!.value));
      change++;
      if (step === "place") {
        const { key, bytes, offset, size } = placed;
        const node = { key, links: NO_LINKS, change, bytes, offset, size };
        kept.push(node);
        out[i] = node;
        continue;
      }
      const node = lazyStoredObject(placed.key, NO_LINKS, placed.bytes, placed.offset, placed.size, change);
      out[i] = node;
      if (step === "lazy") kept.push(node);
      else stored.push(node);
    }
    if (step === "commit") {
      // Marked as the log marks its own commits (their fields are well-formed), so the store asks only their changes.
      markChecked(stored);
      try {
        await storage.commit(stored);
      } finally {
        unmarkChecked(stored);
      }
    }
    return out;
  };
}

/** Child: adds `n` nodes in chunks through one step's `batch`. */
async function measure(step: Step, n: number): Promise<FloorResult> {
  const kept: unknown[] = [];
  let add: (docs: { value: BenchValue }[]) => Promise<{ key: string }[]>;
  if (step === "ours") {
    const log = new Hyperlog<BenchValue>({ valueEncoding: "json" });
    await log.ready();
    add = (docs) => log.batch(docs);
  } else {
    add = step === "floor" ? (docs) => floorBatch(kept, docs) : stepBatch(step, kept, new MemoryStorage());
  }
  const keys: string[] = [];
  const start = performance.now();
  for (let i = 0; i < n; i += CHUNK) {
    const values: BenchValue[] = [];
    for (let j = i; j < Math.min(i + CHUNK, n); j++) values.push(benchValue(j));
    for (const node of await add(values.map((value) => ({ value })))) keys.push(node.key);
  }
  const rate = n / secondsSince(start);
  if (keys.length !== n) throw new Error(`${step}: ${keys.length} keys for ${n} documents`);
  return { rate };
}

const { values } = parseArgs({
  options: { child: { type: "string" }, n: { type: "string" }, rounds: { type: "string" } },
});
const n = Number(values.n ?? 100_000);
if (values.child !== undefined) {
  if (!(STEPS as readonly string[]).includes(values.child)) {
    throw new Error(`Unknown child ${values.child}: expected one of ${STEPS.join(", ")}`);
  }
  console.log(JSON.stringify(await measure(values.child as Step, n)));
} else {
  const rounds = Number(values.rounds ?? 5);
  const self = new URL(import.meta.url);
  const runs = new Map<string, number[]>();
  const inherited = process.env.NODE_OPTIONS ?? "";
  for (let r = 0; r < rounds; r++) {
    for (const capped of [false, true]) {
      // Children inherit NODE_OPTIONS: the cap reaches them that way (runChild passes no V8 flags).
      process.env.NODE_OPTIONS = capped ? `${inherited} --max-semi-space-size=8`.trim() : inherited;
      for (const step of STEPS) {
        const { rate } = await runChild(self, ["--child", step, "--n", String(n)]) as FloorResult;
        const name = `${step}${capped ? " capped" : ""}`;
        const rates = runs.get(name) ?? [];
        rates.push(rate);
        runs.set(name, rates);
      }
    }
  }
  process.env.NODE_OPTIONS = inherited;
  console.log(`batch of ${n} nodes in chunks of ${CHUNK}, ${rounds} alternated rounds, medians:`);
  for (const capped of ["", " capped"]) {
    let before: number | undefined;
    for (const step of STEPS) {
      const rates = runs.get(step + capped)!;
      const rate = median(rates);
      const us = 1e6 / rate;
      const more = before === undefined ? "" : ` (${us >= before ? "+" : ""}${(us - before).toFixed(2)} us)`;
      console.log(
        `${(step + capped).padEnd(14)} ${String(Math.round(rate)).padStart(8)} nodes/s, ${
          us.toFixed(2)
        } us a node${more}; runs: ${rates.map((rate) => Math.round(rate / 1000)).join(", ")} thousand`,
      );
      before = us;
    }
  }
}
