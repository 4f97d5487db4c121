/**
 * Hashing benchmark: SHA-256 of ~160-byte inputs (the size of a node's key preimage) by the candidates for the
 * node-key hash, backing the README's choice of a synchronous hash. Runs in the driver's process.
 *
 * @module
 */
import { createRequire } from "node:module";
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { benchValue } from "./_impls.ts";
import { type BenchContext, type BenchModule, type Figure, median, ratio, secondsSince } from "./_util.ts";
import { computeKey } from "../src/node.ts";
import { nativeSha256, portableSha256, sha256Hex } from "../src/sha256.ts";

/** The input size in bytes. */
const SIZE = 160;
/** Distinct inputs, cycled through. */
const INPUTS = 256;
/** Digests per `Promise.all` batch. */
const BATCH = 1000;

/** hyperlog 4's key hash: framed SHA-256 of the links and the value, in hex. */
type Hyperlog4Hash = (links: readonly string[], value: Uint8Array) => string;

/** One thing to time: `run(count)` hashes `count` inputs and returns something derived from the digests. */
interface Case {
  name: string;
  count: number;
  run(count: number): unknown;
}

const inputs = Array.from({ length: INPUTS }, () => crypto.getRandomValues(new Uint8Array(SIZE)));
const input = (i: number): Uint8Array<ArrayBuffer> => inputs[i % INPUTS]!;

/** A node like the core benchmark's: one link and a ~90-byte json value, so a ~160-byte key preimage. */
const LINK = "ab".repeat(32);
const nodeValues = Array.from({ length: INPUTS }, (_, i) => new TextEncoder().encode(JSON.stringify(benchValue(i))));
const nodeValue = (i: number): Uint8Array => nodeValues[i % INPUTS]!;
const nodeBuffers = nodeValues.map((bytes) => Buffer.from(bytes));
const nodeBuffer = (i: number): Buffer => nodeBuffers[i % INPUTS]!;

const CASES: readonly Case[] = [
  {
    name: "portable (ours) sync",
    count: 100_000,
    run(count) {
      let sink = 0;
      for (let i = 0; i < count; i++) sink ^= portableSha256(input(i))[0]!;
      return sink;
    },
  },
  {
    name: "noble sync",
    count: 100_000,
    run(count) {
      let sink = 0;
      for (let i = 0; i < count; i++) sink ^= nobleSha256(input(i))[0]!;
      return sink;
    },
  },
  {
    name: "webcrypto awaited 1 by 1",
    count: 20_000,
    async run(count) {
      let sink = 0;
      for (let i = 0; i < count; i++) sink ^= new Uint8Array(await crypto.subtle.digest("SHA-256", input(i)))[0]!;
      return sink;
    },
  },
  {
    name: `webcrypto Promise.all x${BATCH}`,
    count: 100_000,
    async run(count) {
      let sink = 0;
      for (let i = 0; i < count; i += BATCH) {
        const digests = await Promise.all(
          Array.from({ length: BATCH }, (_, j) => crypto.subtle.digest("SHA-256", input(i + j))),
        );
        for (const digest of digests) sink ^= new Uint8Array(digest)[0]!;
      }
      return sink;
    },
  },
  {
    name: `sha256Hex (${nativeSha256 !== undefined ? "native" : "portable"})`,
    count: 200_000,
    run(count) {
      let sink = 0;
      for (let i = 0; i < count; i++) sink ^= sha256Hex(input(i)).charCodeAt(0);
      return sink;
    },
  },
];

/** Hashes per second of one timed run. */
async function rate(run: (count: number) => unknown, count: number): Promise<number> {
  const start = performance.now();
  await run(count);
  return count / secondsSince(start);
}

/** Times every case `reps` times (after a short warm-up), plus node-key hashing against hyperlog 4's. */
async function run(context: BenchContext): Promise<Figure[]> {
  const hyperlogHash = createRequire(import.meta.url)("hyperlog4/lib/hash.js") as Hyperlog4Hash;
  const ours = (count: number): unknown => {
    let sink = 0;
    for (let i = 0; i < count; i++) sink ^= computeKey([LINK], nodeValue(i)).charCodeAt(0);
    return sink;
  };
  const theirs = (count: number): unknown => {
    let sink = 0;
    for (let i = 0; i < count; i++) sink ^= hyperlogHash([LINK], nodeBuffer(i)).charCodeAt(0);
    return sink;
  };
  if (computeKey([LINK], nodeValue(0)) !== hyperlogHash([LINK], nodeBuffer(0))) {
    throw new Error("Our node key differs from hyperlog 4's for the same links and value");
  }
  const keyCount = 100_000;
  const all = [...CASES, { name: "node key: ours", count: keyCount, run: ours }, {
    name: "node key: hyperlog",
    count: keyCount,
    run: theirs,
  }];
  const samples = new Map<string, number[]>(all.map((c) => [c.name, []]));
  for (const c of all) await c.run(Math.min(c.count, 2000));
  for (let rep = 0; rep < context.reps; rep++) {
    for (const c of all) samples.get(c.name)!.push(await rate(c.run, c.count));
    context.progress(`hash [${rep + 1}/${context.reps}]`);
  }
  const of = (name: string): number => median(samples.get(name)!);
  const figures: Figure[] = CASES.map((c) => ({
    bench: "hash",
    case: c.name,
    n: c.count,
    unit: "hashes/s",
    ours: of(c.name),
    hyperlog: null,
    ratio: null,
  }));
  const oursKey = of("node key: ours");
  const theirKey = of("node key: hyperlog");
  figures.push({
    bench: "hash",
    case: "node key (1 link)",
    n: keyCount,
    unit: "keys/s",
    ours: oursKey,
    hyperlog: theirKey,
    ratio: ratio(oursKey, theirKey),
  });
  return figures;
}

/** The hashing benchmark module. */
export const benchmark: BenchModule = {
  name: "hash",
  title: `Hashing: SHA-256 of ${SIZE}-byte inputs (the size of a node's key preimage)`,
  notes: [
    "portable (ours) sync: src/sha256-portable.ts, the fallback where the runtime has no native hash (browsers, Workers); noble sync: sha256() from @noble/hashes/sha2.js, which it replaced, for comparison.",
    "webcrypto awaited 1 by 1: await crypto.subtle.digest('SHA-256', ...) per input, as a per-node async hash would.",
    `webcrypto Promise.all x${BATCH}: ${BATCH} digests started together, awaited with Promise.all.`,
    "sha256Hex: the library's hash (src/sha256.ts), native through process.getBuiltinModule('node:crypto') where available.",
    "node key (1 link): the key of a node with one link and a ~90-byte json value: ours computeKey() vs hyperlog 4's lib/hash.js (framed-hash over crypto.createHash); both give the same key.",
    "Figures are medians of in-process repetitions after a short warm-up.",
  ],
  run,
};
