import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ClosedError, Hyperlog, MemoryStorage, type Node } from "../mod.ts";

/** A log of `count` nodes whose values are 1..count (more than a page of 1024 when count > 1024). */
async function fill(count: number, storage?: MemoryStorage): Promise<Hyperlog<number>> {
  const log = new Hyperlog<number>(storage ?? new MemoryStorage());
  await log.batch(Array.from({ length: count }, (_, i) => ({ value: i + 1 })));
  return log;
}

/** The values a reader gives until the stream ends. */
async function drain(stream: ReadableStream<Node<number>>): Promise<number[]> {
  const reader = stream.getReader();
  const out: number[] = [];
  for (let next = await reader.read(); !next.done; next = await reader.read()) out.push(next.value.value);
  reader.releaseLock();
  return out;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("createReadStream's async iterator", () => {
  it("locks the stream while iterating and leaves it closed at the end", async () => {
    const log = await fill(2100);
    const stream = log.createReadStream();
    const got: number[] = [];
    for await (const node of stream) {
      got.push(node.value);
      if (got.length === 1) assert.equal(stream.locked, true);
    }
    assert.deepEqual(got, range(1, 2100));
    assert.equal(stream.locked, false);
    const reader = stream.getReader();
    await reader.closed;
    assert.deepEqual(await reader.read(), { done: true, value: undefined });
    assert.throws(() => {
      const again = log.createReadStream();
      again.getReader();
      again.values();
    }, TypeError);
  });

  it("gives what a reader gives, with every option", async () => {
    const log = await fill(2500);
    for (
      const options of [{}, { reverse: true }, { since: 1000, until: 2049 }, { limit: 1025 }, {
        reverse: true,
        since: 3,
        limit: 2000,
      }]
    ) {
      const iterated: number[] = [];
      for await (const node of log.createReadStream(options)) iterated.push(node.value);
      assert.deepEqual(iterated, await drain(log.createReadStream(options)), JSON.stringify(options));
    }
  });

  it("cancels the stream on break, and keeps it readable with preventCancel", async () => {
    const log = await fill(2100);
    const cancelled = log.createReadStream();
    for await (const node of cancelled) if (node.value === 5) break;
    assert.equal(cancelled.locked, false);
    assert.deepEqual(await drain(cancelled), []);

    // Stopping in the second page: the rest of that page goes back in the stream's queue, in order.
    const kept = log.createReadStream();
    for await (const node of kept.values({ preventCancel: true })) if (node.value === 1500) break;
    const reader = kept.getReader();
    assert.equal((await reader.read()).value?.value, 1501);
    reader.releaseLock();
    const rest: number[] = [];
    for await (const node of kept) rest.push(node.value);
    assert.deepEqual(rest, range(1502, 2100));
  });

  it("goes on after nodes read with a reader", async () => {
    const log = await fill(1030);
    const stream = log.createReadStream();
    const reader = stream.getReader();
    assert.equal((await reader.read()).value?.value, 1);
    reader.releaseLock();
    const rest: number[] = [];
    for await (const node of stream) rest.push(node.value);
    assert.deepEqual(rest, range(2, 1030));
  });

  it("answers next() calls made at once in order", async () => {
    const log = await fill(1025);
    const iterator = log.createReadStream()[Symbol.asyncIterator]();
    const results = await Promise.all(Array.from({ length: 1027 }, () => iterator.next()));
    assert.deepEqual(results.slice(0, 1025).map((r) => r.value?.value), range(1, 1025));
    assert.deepEqual(results.slice(1025).map((r) => r.done), [true, true]);
  });

  it("rejects with the storage's error or ClosedError, and leaves the stream errored", async () => {
    const storage = new MemoryStorage();
    const log = await fill(1500, storage);
    const failing = log.createReadStream();
    const broken = new Error("Disk gone");
    let reads = 0;
    const read = storage.read.bind(storage);
    storage.read = (range) => (++reads === 2 ? Promise.reject(broken) : read(range));
    const got: number[] = [];
    await assert.rejects(async () => {
      for await (const node of failing) got.push(node.value);
    }, (error) => error === broken);
    assert.equal(got.length, 1024);
    await assert.rejects(failing.getReader().read(), (error) => error === broken);

    await log.close();
    await assert.rejects(async () => {
      for await (const _node of log.createReadStream()) assert.fail("a closed log streams nothing");
    }, ClosedError);
  });
});
