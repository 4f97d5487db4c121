/**
 * The two implementations under test behind one small promise API: this library on its default MemoryStorage, and
 * hyperlog 4.12.1 (the `hyperlog4` devDependency, CommonJS with callbacks) on memdb.
 *
 * @module
 */
import { createRequire } from "node:module";
import { Hyperlog } from "../mod.ts";

/** The value of benchmark node `i`: about 90 bytes of JSON. */
export interface BenchValue {
  k: string;
  v: number;
  pad: string;
}

const PAD = "x".repeat(64);

/**
 * The value of node `i` of every workload.
 *
 * @example
 * ```ts
 * import { benchValue } from "./_impls.ts";
 * console.assert(benchValue(17).k === "key17");
 * ```
 */
export function benchValue(i: number): BenchValue {
  return { k: `key${i}`, v: i, pad: PAD };
}

/** An open log of either implementation. */
export interface LogUnderTest {
  /** Appends a value linking to every head; resolves when stored. */
  append(value: BenchValue): Promise<void>;
  /** Adds the values as one batch of `{ value }` documents (no links); resolves with their keys in order. */
  batch(values: readonly BenchValue[]): Promise<string[]>;
  /** The value of the node with this key. */
  get(key: string): Promise<BenchValue>;
  /** Reads the whole log through its read stream; resolves with the number of nodes read. */
  readAll(): Promise<number>;
}

/** The names of the implementations. */
export type ImplName = "ours" | "hyperlog";

/** The implementations' display names. */
export const IMPL_TITLES: Readonly<Record<ImplName, string>> = { ours: "ours", hyperlog: "hyperlog 4.12.1" };

/** Opens a fresh, empty log of this library on its default MemoryStorage. */
async function openOurs(): Promise<LogUnderTest> {
  const log = new Hyperlog<BenchValue>({ valueEncoding: "json" });
  await log.ready();
  return {
    async append(value) {
      await log.append(value);
    },
    async batch(values) {
      const nodes = await log.batch(values.map((value) => ({ value })));
      return nodes.map((node) => node.key);
    },
    async get(key) {
      return (await log.get(key)).value;
    },
    async readAll() {
      let count = 0;
      for await (const _node of log.createReadStream()) count++;
      return count;
    },
  };
}

/** A Node-style callback. */
type Callback<R> = (err: Error | null, result: R) => void;

/** A node as hyperlog 4 returns it. */
interface Hyperlog4Node {
  key: string;
  value: unknown;
  change: number;
  links: string[];
}

/** The part of hyperlog 4's API the benchmarks use. */
interface Hyperlog4 {
  ready(cb: () => void): void;
  append(value: unknown, cb: Callback<Hyperlog4Node>): void;
  batch(docs: { links?: string[]; value: unknown }[], cb: Callback<Hyperlog4Node[]>): void;
  get(key: string, cb: Callback<Hyperlog4Node>): void;
  /** An objectMode Node stream of nodes (readable-stream 2). */
  createReadStream(): NodeJS.ReadableStream;
}

/** hyperlog 4's constructor, on a levelup database. */
type Hyperlog4Factory = (db: unknown, options: { valueEncoding: "json" }) => Hyperlog4;

const require = createRequire(import.meta.url);

/** Calls a callback-taking function and resolves with its result. */
function call<R>(fn: (cb: Callback<R>) => void): Promise<R> {
  return new Promise((resolve, reject) => fn((err, result) => (err ? reject(err) : resolve(result))));
}

/** Opens a fresh, empty hyperlog 4.12.1 on an in-memory leveldb (memdb). */
async function openHyperlog4(): Promise<LogUnderTest> {
  const hyperlog = require("hyperlog4") as Hyperlog4Factory;
  const memdb = require("memdb") as () => unknown;
  const log = hyperlog(memdb(), { valueEncoding: "json" });
  await new Promise<void>((resolve) => log.ready(resolve));
  return {
    async append(value) {
      await call<Hyperlog4Node>((cb) => log.append(value, cb));
    },
    async batch(values) {
      const nodes = await call<Hyperlog4Node[]>((cb) => log.batch(values.map((value) => ({ value })), cb));
      return nodes.map((node) => node.key);
    },
    async get(key) {
      return (await call<Hyperlog4Node>((cb) => log.get(key, cb))).value as BenchValue;
    },
    readAll() {
      return new Promise((resolve, reject) => {
        let count = 0;
        log.createReadStream()
          .on("data", () => count++)
          .on("error", reject)
          .on("end", () => resolve(count));
      });
    },
  };
}

/**
 * Opens a fresh, empty log of the named implementation.
 *
 * @example
 * ```ts
 * import { openLog } from "./_impls.ts";
 * const log = await openLog("hyperlog");
 * const [key] = await log.batch([{ k: "a", v: 1, pad: "" }]);
 * console.assert((await log.get(key!)).k === "a");
 * ```
 */
export function openLog(name: ImplName): Promise<LogUnderTest> {
  return name === "ours" ? openOurs() : openHyperlog4();
}
