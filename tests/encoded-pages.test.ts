/**
 * The relay's framed change order (issue 21, src/encoded-pages.ts): a fresh session copies its initial NODES_REFS
 * messages from the cache, byte for byte what it would have framed itself; a session that is not fresh, or goes past
 * the cache's bound, carries on the ordinary way; the cache follows the log as nodes are added; `hyperlog serve`'s
 * late joiner gets the log from it.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, Hyperlog } from "../mod.ts";
import { serve } from "../worker/serve.ts";
import { Driver, type MessageTransport } from "../src/driver.ts";
import { EncodedPages, type SharedBytes } from "../src/encoded-pages.ts";
import { LinkRefs, NODES_REFS } from "../src/link-refs.ts";
import type { StoredNode } from "../src/node.ts";
import { Session } from "../src/session.ts";
import type { SessionOptions } from "../src/session-types.ts";
import { waitFor } from "./_wait.ts";

/** A log whose nodes each link to up to `width` nodes before them, and every 1000th to node 1 (far back). */
async function storm(n: number, width: number): Promise<Hyperlog> {
  const log = new Hyperlog();
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const links = keys.slice(Math.max(0, keys.length - width));
    if (i % 1000 === 999 && !links.includes(keys[0]!)) links.push(keys[0]!);
    keys.push((await log.batch([{ value: { i, text: `entry ${i}` }, links }]))[0]!.key);
  }
  return log;
}

/** The log's storage read, counting the nodes it returns. */
function counted(log: Hyperlog) {
  const count = { nodes: 0 };
  const read = async (since: number, until: number, limit: number): Promise<StoredNode[]> => {
    const page = await log.storage.read({ since, until, limit, reverse: false });
    count.nodes += page.length;
    return page;
  };
  return { read, count };
}

/** Two sessions back to back in memory; the NODES_REFS messages a sends, concatenated without their type bytes. */
async function pair(a: Hyperlog, b: Hyperlog, oa: SessionOptions = {}) {
  const parts: Uint8Array[] = [];
  const drivers: Driver[] = [];
  const to = (peer: () => Driver, mine: boolean): MessageTransport => ({
    send: (body) => {
      if (mine && body[0] === NODES_REFS) parts.push(body.slice(1));
      queueMicrotask(() => peer().deliver(body));
    },
    room: () => 1 << 20,
    drained: () => Promise.resolve(),
    close: () => queueMicrotask(() => peer().ended()),
  });
  drivers.push(new Driver(new Session(a, oa), to(() => drivers[1]!, true)));
  drivers.push(new Driver(new Session(b, {}), to(() => drivers[0]!, false)));
  const [sa, sb] = await Promise.all(drivers.map((d) => d.done));
  return { wire: concat(parts), sent: sa!, received: sb! };
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Resolves once `log` holds `n` nodes. */
async function holds(log: Hyperlog, n: number): Promise<void> {
  while (log.length < n) await log.waitForLength(log.length);
}

async function keysOf(log: Hyperlog): Promise<string[]> {
  return (await log.storage.read({ since: 0, until: log.length, limit: log.length + 1, reverse: false }))
    .map((n) => n.key);
}

describe("EncodedPages", () => {
  it("a fresh session's messages are copies of the cache, the same bytes as framing each node, read once", async () => {
    const a = await storm(5000, 12);
    const { read, count } = counted(a);
    const pages = new EncodedPages(read);
    const plain = await pair(a, new Hyperlog());
    const b1 = new Hyperlog();
    const first = await pair(a, b1, { pages });
    assert.equal(count.nodes, 5000, "the cache read the log once");
    const b2 = new Hyperlog();
    const second = await pair(a, b2, { pages, read: () => Promise.reject(new Error("Not read again")) });
    assert.equal(count.nodes, 5000, "the second joiner read nothing from the log");
    assert.deepEqual(first.wire, plain.wire, "the same framed nodes as a session framing them itself");
    assert.deepEqual(second.wire, plain.wire);
    for (const b of [b1, b2]) assert.deepEqual(await keysOf(b), await keysOf(a));
    assert.equal(second.sent.nodesSent, 5000);
    assert.equal(second.received.nodesReceived, 5000);
    // Links more than REF_RING back went as keys (tag 0): the messages hold some 32-byte keys.
    const direct = concat(new LinkRefs().encode(
      await a.storage.read({ since: 0, until: 5000, limit: 5000, reverse: false }),
      1 << 30,
    )).subarray(1);
    assert.deepEqual(first.wire, direct);
  });

  it("a session that is not fresh, or goes past the cache's bound, carries on the ordinary way", async () => {
    const a = await storm(1500, 8);
    const { read, count } = counted(a);
    // About 300 nodes' worth: the rest goes the ordinary way.
    const pages = new EncodedPages(read, 60_000);
    const b = new Hyperlog();
    const plain = await pair(a, new Hyperlog());
    const bounded = await pair(a, b, { pages });
    assert.ok(pages.frontier > 0 && pages.frontier < 1500, `the cache stopped at ${pages.frontier}`);
    assert.ok(pages.bytes < 60_000 + 512 * 200, `${pages.bytes} bytes held`);
    assert.deepEqual(bounded.wire, plain.wire);
    assert.deepEqual(await keysOf(b), await keysOf(a));
    // A peer that holds some of the log gets what it lacks, not from the cache.
    const c = new Hyperlog();
    await pair(a, c);
    await a.append({ more: 1 });
    const before = count.nodes;
    const again = await pair(a, c, { pages });
    assert.equal(again.sent.nodesSent, 1);
    assert.equal(count.nodes, before, "the cache was not asked");
    assert.equal(c.length, 1501);
  });

  it("follow frames the nodes a log adds, so that a late joiner's cache needs no read", async () => {
    // Binary, as a relay's log: its "add" events carry the stored bytes.
    const a = new Hyperlog(undefined, { valueEncoding: "binary" }) as unknown as Hyperlog;
    const { read, count } = counted(a);
    const pages = new EncodedPages(read);
    a.addEventListener("add", (e) => pages.follow((e as CustomEvent<StoredNode>).detail));
    const source = await storm(1200, 10);
    for (const node of await source.storage.read({ since: 0, until: 1200, limit: 1200, reverse: false })) {
      await a.ingest([node]);
    }
    assert.equal(pages.frontier, 1200);
    const b = new Hyperlog();
    const joined = await pair(a, b, { pages });
    assert.equal(count.nodes, 0, "nothing was read: every node was framed as it was added");
    assert.deepEqual(joined.wire, (await pair(a, new Hyperlog())).wire);
    assert.deepEqual(await keysOf(b), await keysOf(a));
    pages.clear();
    assert.equal(pages.frontier, 0);
    assert.equal(pages.bytes, 0);
  });

  it("caches sharing a byte budget frame nothing more once it is held, and give it back when cleared", async () => {
    const a = await storm(1500, 8);
    const other = await storm(300, 4);
    const shared: SharedBytes = { max: 60_000, used: 0 };
    const first = new EncodedPages(counted(a).read, 1 << 30, shared);
    const second = new EncodedPages(counted(other).read, 1 << 30, shared);
    const plain = await pair(a, new Hyperlog());
    const bounded = await pair(a, new Hyperlog(), { pages: first });
    assert.deepEqual(bounded.wire, plain.wire, "past the shared budget the session framed the rest itself");
    assert.ok(first.frontier > 0 && first.frontier < 1500, `the first cache stopped at ${first.frontier}`);
    assert.equal(shared.used, first.bytes);
    assert.ok(shared.used >= shared.max && shared.used < shared.max + 512 * 200, `${shared.used} bytes held`);
    // The budget is held: the other log's cache frames nothing, and its joiner still gets the whole log.
    const joiner = new Hyperlog();
    await pair(other, joiner, { pages: second });
    assert.equal(second.frontier, 0);
    assert.deepEqual(await keysOf(joiner), await keysOf(other));
    first.clear();
    assert.equal(shared.used, 0, "cleared, the first cache gave its bytes back");
    await pair(other, new Hyperlog(), { pages: second });
    assert.equal(second.frontier, 300, "with room again, the other log is framed whole");
    assert.equal(shared.used, second.bytes);
  });
});

describe("hyperlog serve's late joiner", () => {
  it("gets the log from the framed pages while a writer stays, and again after everyone left", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hyperlog-pages-"));
    const server = await serve({ dir, port: 0 });
    const writer = new Hyperlog();
    const url = `${server.url.replace(/^http/, "ws")}/logs/pages/ws`;
    const a = connect(writer, url);
    try {
      const keys: string[] = [];
      for (let i = 0; i < 600; i++) {
        const links = keys.slice(-6);
        keys.push((await writer.batch([{ value: { i }, links }]))[0]!.key);
      }
      await a.when("live");
      for (let round = 0; round < 2; round++) {
        const reader = new Hyperlog();
        const b = connect(reader, url);
        await holds(reader, 600);
        await b.close();
        assert.deepEqual(await keysOf(reader), await keysOf(writer));
      }
      await a.close();
      const reader = new Hyperlog();
      const b = connect(reader, url);
      await holds(reader, 600);
      await b.close();
      assert.deepEqual(await keysOf(reader), await keysOf(writer));
    } finally {
      await a.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("PAGES_CACHE_BYTES bounds what every log's cache holds together; a joiner past it still gets the whole log", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hyperlog-pages-shared-"));
    const max = 40_000;
    const server = await serve({ dir, port: 0, settings: { PAGES_CACHE_BYTES: String(max) } });
    const held = () => {
      const line = server.relay.metrics.render().split("\n").find((l) => l.startsWith("hyperlog_pages_cache_bytes "));
      return Number(line?.split(" ")[1]);
    };
    const writers: Hyperlog[] = [];
    const syncs: ReturnType<typeof connect>[] = [];
    try {
      for (const name of ["one", "two"]) {
        const writer = new Hyperlog();
        for (let i = 0; i < 400; i++) await writer.append({ name, i, text: "x".repeat(100) });
        const sync = connect(writer, `${server.url.replace(/^http/, "ws")}/logs/${name}/ws`);
        await sync.when("live");
        writers.push(writer);
        syncs.push(sync);
      }
      for (const [i, name] of ["one", "two"].entries()) {
        const reader = new Hyperlog();
        const b = connect(reader, `${server.url.replace(/^http/, "ws")}/logs/${name}/ws`);
        await holds(reader, 400);
        await b.close();
        assert.deepEqual(await keysOf(reader), await keysOf(writers[i]!));
        // Each log may frame one run past the budget before it sees it is held (a run is 512 nodes at most).
        assert.ok(held() > 0 && held() < max + 512 * 200, `${held()} bytes held by the caches`);
      }
    } finally {
      for (const sync of syncs) await sync.close();
    }
    try {
      // Every socket gone: each log dropped its cache and gave its bytes back.
      await waitFor(() => held() === 0, 10_000, "the caches to be dropped once their sockets closed");
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
