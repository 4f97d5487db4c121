/**
 * The replication engine against a hostile peer: every bound is a number measured here (bytes out per byte in,
 * nodes read, bytes queued). The attacks talk to a `Session` directly (it has no I/O but the log's), to a driver, or
 * to a relay core in process; the same session runs under every transport.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { driveChannel, Hyperlog, MemoryStorage, type ReplicateOptions, Session } from "../mod.ts";
import { decodeMessage, encodeMessage, type ReconEntry } from "../src/wire.ts";
import { RelayCore, type RelaySocket } from "../worker/relay-core.ts";
import { DEFAULT_LIMITS } from "../worker/limits.ts";
import { splitAll } from "./_hostile.ts";
import { waitFor } from "./_relay-clients.ts";

const ATTACKER_ID = "0".repeat(32);

async function filled(count: number, storage = new MemoryStorage()): Promise<Hyperlog<unknown>> {
  const log = new Hyperlog(storage, { valueEncoding: "utf-8" });
  for (let i = 0; i < count; i += 1000) {
    await log.batch(Array.from({ length: Math.min(1000, count - i) }, (_, j) => ({ value: `node ${i + j}` })));
  }
  return log as Hyperlog<unknown>;
}

/** The attacker's HELLO: a log that claims `count` keys and a fingerprint that matches nothing. */
function attackerHello(count: number, mode = "sync"): Uint8Array {
  return encodeMessage({
    type: "hello",
    hello: {
      mode: mode as "sync",
      live: false,
      id: ATTACKER_ID,
      nonce: "e".repeat(32),
      length: count,
      count,
      xor: new Uint8Array(16).fill(7),
      maxFrame: 1 << 20,
      window: 1 << 19,
    },
  });
}

const bytesOf = (bodies: readonly Uint8Array[]) => bodies.reduce((n, b) => n + b.length, 0);

/** A victim session brought to the point where the attacker (the smaller id, so it leads) reconciles. */
async function victimInReconciliation(log: Hyperlog<unknown>) {
  const session = new Session(log, {});
  await session.start();
  const out = await session.receive([attackerHello(log.length + 1)]);
  assert.equal(decodeMessage(out[0]!).type, "check");
  assert.deepEqual(await session.receive([encodeMessage({ type: "check", checkpoint: null })]), []);
  return session;
}

describe("bounded against a hostile peer", () => {
  it("the amplification attack (the empty prefix repeated in one message) is refused with nothing sent back", async () => {
    const log = await filled(5000);
    const session = await victimInReconciliation(log);
    const entry: ReconEntry = { kind: "fp", prefix: "", fp: { count: 10, xor: new Uint8Array(16) } };
    const request = encodeMessage({ type: "recon", end: true, entries: Array(100).fill(entry) });
    assert.ok(request.length < 2048);
    await assert.rejects(session.receive([request]), /answers nothing this side asked/);
    // Its children, repeated, are refused too.
    const again = await victimInReconciliation(log);
    const child: ReconEntry = { kind: "fp", prefix: "a", fp: { count: 10, xor: new Uint8Array(16) } };
    await assert.rejects(
      again.receive([encodeMessage({ type: "recon", end: true, entries: [child, child] })]),
      /repeated a reconciliation entry/,
    );
  });

  it("the worst legitimate-looking reconciliation: each reply <= 128 x its request, each key listed once", async () => {
    const n = 5000;
    const log = await filled(n);
    const session = await victimInReconciliation(log);
    // The attacker splits every range the victim names, with fingerprints that never match, as deep as it goes.
    let open = [""];
    let received = 0;
    let sentTotal = 0;
    let keysListed = 0;
    for (let turn = 0; open.length > 0; turn++) {
      assert.ok(turn < 70, "the reconciliation ends");
      const entries = splitAll(open, turn);
      const request = encodeMessage({ type: "recon", end: true, entries });
      sentTotal += request.length;
      const reply = await session.receive([request]);
      const bytes = bytesOf(reply);
      received += bytes;
      assert.ok(bytes <= 128 * request.length, `${bytes} bytes back for ${request.length}`);
      open = [];
      for (const body of reply) {
        const message = decodeMessage(body);
        if (message.type !== "recon") continue;
        for (const e of message.entries) {
          if (e.kind === "fp") open.push(e.prefix);
          if (e.kind === "keys") keysListed += e.keys.length;
        }
      }
    }
    assert.equal(keysListed, n, "every key of the victim listed exactly once");
    assert.ok(received < 40 * n + 64 * 1024, `${received} bytes back in all for ${sentTotal} (${n} keys)`);
  });

  it("a reconciliation message out of turn, a second CHECK, and a list over the threshold are refused", async () => {
    const log = await filled(100);
    const early = new Session(log, {});
    await early.start();
    await early.receive([attackerHello(200)]);
    await assert.rejects(
      early.receive([encodeMessage({ type: "recon", end: true, entries: [] })]),
      /out of turn/,
    );
    const twice = await victimInReconciliation(log);
    await assert.rejects(twice.receive([encodeMessage({ type: "check", checkpoint: null })]), /CHECK out of turn/);
  });

  it("a flood of nodes past the window fails the session instead of queueing (the held-queue flood)", async () => {
    const log = await filled(10);
    const peer = await filled(1);
    const page = await peer.storage.read({ since: 0, until: 1, limit: 1, reverse: false });
    const { encodeNodesBodies } = await import("../src/wire.ts");
    const nodes = encodeNodesBodies(page, 1 << 16)[0]!;
    const sent: Uint8Array[] = [];
    let closedWith: Error | undefined;
    const options: ReplicateOptions = { window: 64 * 1024, maxFrame: 16 * 1024 };
    const driver = driveChannel(log, options, {
      send: (body) => void sent.push(body),
      buffered: () => 0,
      close: (error) => void (closedWith = error),
    });
    driver.done.catch(() => {});
    driver.deliver(attackerHello(0));
    // Synchronously, faster than anything is stored: the bound is the window plus two frames.
    let delivered = 0;
    while (!driver.over && delivered < 10_000_000) {
      driver.deliver(nodes);
      delivered += nodes.length;
    }
    await assert.rejects(driver.done, /not yet handled .* it must wait for CREDIT/);
    assert.ok(delivered <= 64 * 1024 + 2 * 16 * 1024 + nodes.length, `${delivered} bytes taken before refusing`);
    assert.ok(closedWith instanceof Error);
  });

  for (const order of ["many first", "one first"] as const) {
    it(`20 000 nodes against 1 with 64 KiB frames converge (${order} in id order)`, async () => {
      let many: Hyperlog<unknown>;
      let one: Hyperlog<unknown>;
      for (;;) {
        many = new Hyperlog();
        one = new Hyperlog();
        await Promise.all([many.ready(), one.ready()]);
        if ((many.id < one.id) === (order === "many first")) break;
      }
      for (let i = 0; i < 20_000; i += 1000) {
        await many.batch(Array.from({ length: 1000 }, (_, j) => ({ value: `n ${i + j}` })));
      }
      await one.append("alone");
      const ra = many.replicate({ maxFrame: 64 * 1024 });
      const rb = one.replicate({ maxFrame: 64 * 1024 });
      ra.readable.pipeTo(rb.writable).catch(() => {});
      rb.readable.pipeTo(ra.writable).catch(() => {});
      await Promise.all([ra.done, rb.done]);
      assert.equal(one.length, 20_001);
      assert.equal(many.length, 20_001);
    });
  }

  it("first contact does not read the log: the key index is kept up to date on commit", async () => {
    let reads = 0;
    class Counting extends MemoryStorage {
      override async read(range: Parameters<MemoryStorage["read"]>[0]) {
        const page = await super.read(range);
        reads += page.length;
        return page;
      }
    }
    const victim = await filled(2000, new Counting());
    const peers: Hyperlog<unknown>[] = [];
    for (let i = 0; i < 5; i++) {
      const peer = new Hyperlog();
      // A push from the victim: the peer gets everything, and no checkpoint is kept on either side.
      const rv = victim.replicate({ mode: "push" });
      const rp = peer.replicate({ mode: "pull" });
      rv.readable.pipeTo(rp.writable).catch(() => {});
      rp.readable.pipeTo(rv.writable).catch(() => {});
      await Promise.all([rv.done, rp.done]);
      await peer.append(`peer ${i}`);
      peers.push(peer);
    }
    reads = 0;
    for (const peer of peers) {
      const rv = victim.replicate();
      const rp = peer.replicate();
      rv.readable.pipeTo(rp.writable).catch(() => {});
      rp.readable.pipeTo(rv.writable).catch(() => {});
      const [stats] = await Promise.all([rv.done, rp.done]);
      assert.equal(stats.nodesReceived, 1);
    }
    assert.equal(victim.length, 2005);
    assert.equal(reads, 0, "five first contacts that reconciled read no node of the victim's log");
  });
});

describe("a relay resumes a socket in the middle of its initial exchange (hibernation)", () => {
  it("a new core on the same storage and socket states carries the exchange on, no reconnect", async () => {
    const storage = new MemoryStorage();
    const states = new Map<RelaySocket, unknown>();
    const host = {
      sockets: () => states.keys(),
      save: (ws: RelaySocket, state: unknown) => void states.set(ws, structuredClone(state)),
      load: (ws: RelaySocket) => states.get(ws),
      waitUntil: () => {},
    };
    const options = { name: "resume", storage, limits: DEFAULT_LIMITS };
    let core = new RelayCore(host, options);
    const client = await filled(3000);
    const held: Uint8Array[] = [];
    let holding = false;
    let closed: number | undefined;
    // The socket: what the relay sends goes to the client's driver, what the client sends goes to the current core.
    const ws: RelaySocket = {
      readyState: 1,
      send: (data) => driver.deliver(new Uint8Array(data as Uint8Array)),
      close: (code) => void (closed = code),
    };
    const driver = driveChannel(client, { live: true }, {
      send: (body) => {
        const copy = body.slice();
        if (holding) held.push(copy);
        else void core.message(ws, copy);
      },
      buffered: () => 0,
      close: () => {},
    });
    driver.done.catch(() => {});
    states.set(ws, undefined);
    await core.accept(ws, "write");
    // Once the relay has stored some of the client's nodes, hold the client's messages and drop the core.
    await waitFor(() => core.log.length > 0, 10_000, "the first nodes at the relay");
    holding = true;
    await waitFor(
      () => {
        const state = states.get(ws) as { session: { stats: { nodesReceived: number } } | null } | undefined;
        return (state?.session?.stats.nodesReceived ?? 0) > 0;
      },
      10_000,
      "a saved state with nodes received",
    );
    const old = core;
    core = new RelayCore(host, options);
    await core.ready();
    for (const body of held.splice(0)) void core.message(ws, body);
    holding = false;
    await driver.synced;
    await waitFor(() => core.log.length === 3000, 10_000, "every node at the relay");
    assert.equal(closed, undefined, "the socket was never closed (no 4010)");
    await driver.close();
    await core.close();
    await old.close();
  });
});
