/**
 * The hyperlog 4 protocol of a new log (`log.replicate({ protocol: "hyperlog4" })`) against bad input and in live
 * mode: a malformed message, a frame over the size limit (refused from its length prefix, before it is buffered),
 * a node that does not match its key, and a flood of nodes that can never be stored (their log's earlier nodes never
 * come) each end the session with a clear error and store nothing of the bad input; a live session with the real
 * hyperlog 4.12.1 carries nodes written later on either side, through the new API too.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { Duplex } from "node:stream";
import { describe, it } from "node:test";
import { Hyperlog } from "../mod.ts";
// The compat entry registers hyperlog 4's protocol for log.replicate({ protocol: "hyperlog4" }).
import "../compat/mod.ts";
import { computeKey } from "../src/node.ts";
import { encodeH4Handshake, encodeH4Log, encodeH4Node, frameH4 } from "../src/hyperlog4/messages.ts";

const require = createRequire(import.meta.url);
// deno-lint-ignore no-explicit-any
type Any = any;

/** Feeds raw bytes to a hyperlog 4 session of `log` (the peer's side), draining what it sends. */
async function feed(log: Hyperlog<unknown>, chunks: Uint8Array[], options: object = {}) {
  const session = log.replicate({ protocol: "hyperlog4", ...options });
  let sent = 0;
  const drained = session.readable.pipeTo(new WritableStream({ write: (c) => void (sent += c.length) })).catch(
    () => {},
  );
  const writer = session.writable.getWriter();
  const wrote = (async () => {
    for (const chunk of chunks) await writer.write(chunk);
  })().catch(() => {});
  const outcome = await session.done.then(() => undefined, (err: Error) => err);
  await wrote;
  await drained;
  return { error: outcome, sent };
}

const text = new TextEncoder();

describe("log.replicate({ protocol })", () => {
  it("refuses a protocol it does not know, naming the ones it does", () => {
    const log = new Hyperlog();
    assert.throws(() => log.replicate({ protocol: "hyperlog3" } as never), {
      name: "TypeError",
      message: 'Unknown replication protocol "hyperlog3": leave it out for hyperlog\'s own, or give "hyperlog4"',
    });
  });
});

describe("hyperlog 4 protocol: bad input and live sessions", () => {
  it("a malformed message ends the session with a ProtocolError", async () => {
    const log = new Hyperlog();
    const { error } = await feed(log, [
      frameH4(encodeH4Handshake({ version: 1, mode: "sync" })),
      frameH4(new Uint8Array([3, 0xff, 0xff])), // a node message that is not a protocol buffer
    ]);
    assert.equal(error?.name, "ProtocolError");
    assert.equal(log.length, 0);
  });

  it("a frame over the size limit is refused from its length prefix", async () => {
    const log = new Hyperlog();
    // A prefix announcing 1 GiB, followed by a few bytes: the session must fail without waiting for the rest.
    const huge = new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x04, 1, 2, 3]);
    const { error } = await feed(log, [huge], { maxMessage: 1024 * 1024 });
    assert.equal(error?.name, "ProtocolError");
    assert.match(error!.message, /over the limit of 1048576 bytes/);
  });

  it("a node whose key does not match its content is refused; what came before it stays", async () => {
    const log = new Hyperlog({ valueEncoding: "utf-8" });
    const good = text.encode("good");
    const goodKey = computeKey([], good);
    const { error } = await feed(log, [
      frameH4(encodeH4Handshake({ version: 1, mode: "push" })),
      frameH4(encodeH4Node({ change: 1, key: goodKey, log: "peer", seq: 1, value: good, links: [] }, 3)),
      frameH4(
        encodeH4Node({
          change: 2,
          key: goodKey.replace(/^./, "0"),
          log: "peer",
          seq: 2,
          value: text.encode("bad"),
          links: [],
        }, 3),
      ),
    ], { mode: "pull" });
    assert.match(String(error?.message), /Checksum mismatch/);
    assert.equal(log.length, 1);
    assert.equal((await log.get(goodKey)).value, "good");
  });

  it("nodes that can never be stored wait in a bounded queue, then the session fails", async () => {
    const log = new Hyperlog();
    const chunks = [frameH4(encodeH4Handshake({ version: 1, mode: "push" }))];
    // seq 2, 3, ... of a log whose seq 1 never comes: none can be stored.
    for (let seq = 2; seq < 2 + 20; seq++) {
      const value = text.encode(`orphan ${seq}`);
      chunks.push(
        frameH4(encodeH4Node({ change: seq, key: computeKey([], value), log: "peer", seq, value, links: [] }, 3)),
      );
    }
    const { error } = await feed(log, chunks, { mode: "pull", maxPending: 10 });
    assert.match(String(error?.message), /More than 10 received nodes wait for earlier nodes/);
    assert.equal(log.length, 0);
  });

  it("a have for a log we lack is answered with a want, and nothing else is sent for it", async () => {
    const log = new Hyperlog();
    const session = log.replicate({ protocol: "hyperlog4" });
    const reader = session.readable.getReader();
    const writer = session.writable.getWriter();
    await writer.write(frameH4(encodeH4Handshake({ version: 1, mode: "sync" })));
    await writer.write(frameH4(encodeH4Log(1, { log: "peer", seq: 3 })));
    const seen: number[] = [];
    let buffered = new Uint8Array();
    while (!seen.includes(2)) {
      const { value, done } = await reader.read();
      if (done) break;
      const all = new Uint8Array(buffered.length + value.length);
      all.set(buffered);
      all.set(value, buffered.length);
      let at = 0;
      while (at < all.length && at + 1 + all[at]! <= all.length) {
        seen.push(all[at + 1]!);
        at += 1 + all[at]!;
      }
      buffered = all.slice(at);
    }
    assert.deepEqual(seen.slice(0, 3), [0, 4, 2], "handshake, sentHeads (empty log), then want");
    reader.cancel().catch(() => {});
    writer.abort().catch(() => {});
    await session.done.catch(() => {});
  });

  it("live with a hyperlog 4.12.1 peer: nodes added later on either side reach the other", async () => {
    const original = require("hyperlog4") as (db: unknown, opts?: object) => Any;
    const memdb = require("memdb") as () => unknown;
    const old = original(memdb(), { valueEncoding: "utf-8" });
    const log = new Hyperlog({ valueEncoding: "utf-8" });
    const session = log.replicate({ protocol: "hyperlog4", live: true });
    const nodeSide = Duplex.fromWeb({ readable: session.readable as Any, writable: session.writable as Any });
    const oldStream = old.replicate({ live: true });
    nodeSide.pipe(oldStream).pipe(nodeSide);
    nodeSide.on("error", () => {});
    oldStream.on("error", () => {});
    await session.synced;
    const oldGot = new Promise<void>((resolve) => {
      old.createReadStream({ live: true }).on("data", (n: Any) => n.value.toString() === "new side" && resolve());
    });
    await log.append("new side");
    await oldGot;
    const added = new Promise<void>((resolve) => {
      log.addEventListener("add", (e) => (e as CustomEvent).detail.value === "old side" && resolve());
    });
    await new Promise((resolve) => old.add(null, "old side", resolve));
    await added;
    assert.equal(log.length, 2);
    await session.close();
    nodeSide.destroy();
    oldStream.destroy();
  });
});

describe("hyperlog 4 protocol: deadlines", () => {
  it("a peer that claims nodes and never sends them is given up on, with a clear error", async () => {
    const log = new Hyperlog();
    const session = log.replicate({ protocol: "hyperlog4", idleTimeout: 200 });
    session.readable.pipeTo(new WritableStream()).catch(() => {});
    const writer = session.writable.getWriter();
    await writer.write(frameH4(encodeH4Handshake({ version: 1, mode: "sync" })));
    await writer.write(frameH4(encodeH4Log(1, { log: "peer", seq: 1_000_000 }))); // then silence
    await writer.write(frameH4(new Uint8Array([4])));
    // The session's deadline timer does not keep the event loop alive by itself (unref): this test does.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      await assert.rejects(session.done, /sent nothing for 200 ms before the sync finished/);
    } finally {
      clearInterval(keepAlive);
    }
    assert.equal(log.length, 0);
  });
});
