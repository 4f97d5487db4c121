/**
 * The relay against a hostile peer, over real WebSockets: `hyperlog serve` on the runtime running the test (Node,
 * Deno, Bun) and the relay worker in Miniflare (Node only). The attacker is a WebSocket client written on a bare TCP
 * socket (`_hostile.ts`): it sends what it likes and can stop reading. Each case measures its bound where the bound
 * is structural (reply bytes per request byte, bytes taken before a refusal, bytes sent ahead of a paused reader);
 * the 50 000-node figures and the relay's memory (its RSS, in a process of its own) are measured by
 * `npm run bench -- --only hostile`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  decodeMessage,
  driveChannel,
  encodeMessage,
  Hyperlog,
  MemoryStorage,
  nodesInMessage,
  type ReconEntry,
  replicateWebSocket,
} from "../mod.ts";
import { NODES_LIVE, YOURS } from "../src/live-decode.ts";
import { encodeNodesBodies } from "../src/wire.ts";
import { DEFAULT_LIMITS } from "../worker/limits.ts";
import { RelayCore, type RelaySocket } from "../worker/relay-core.ts";
import { flood, HIGH_ID, hostileHello, type RawSocket, rawSocket, splitAll, turnReply } from "./_hostile.ts";
import {
  attackerInReconciliation,
  filled,
  FRAME,
  type Host,
  onEveryHost,
  RELAY_WINDOW,
  relayLog,
  syncWith,
} from "./_hostile-relay.ts";
import { json, waitFor } from "./_relay-clients.ts";

/** Reply bytes per request byte: a 2 KB message may get 256 KiB back (the target). */
const AMPLIFICATION = 128;

function hostileCases(host: () => Host, prefix: string): void {
  let n = 0;
  const fresh = () => `${prefix}-${n++}`;

  it("amplification: the empty prefix repeated in one message gets an error, not a key list", async () => {
    const h = host();
    const name = fresh();
    await relayLog(h, name, 3000);
    const ws = await attackerInReconciliation(h, name, 3000);
    const entry: ReconEntry = { kind: "fp", prefix: "", fp: { count: 10, xor: new Uint8Array(16) } };
    const request = encodeMessage({ type: "recon", end: true, entries: Array(100).fill(entry) });
    assert.ok(request.length <= 2048);
    const before = ws.received;
    await ws.send(request);
    const { code, reason } = await ws.closed;
    assert.equal(code, 4000);
    assert.match(reason, /nothing this side asked|repeated/);
    assert.ok(ws.received - before < 1024, `${ws.received - before} bytes back for ${request.length}`);
  });

  it(`amplification: the deepest split an attacker can ask for gets <= ${AMPLIFICATION}x its request back`, async () => {
    const h = host();
    const name = fresh();
    const count = 3000;
    await relayLog(h, name, count);
    const ws = await attackerInReconciliation(h, name, count);
    let open = [""];
    let keysListed = 0;
    let worst = 0;
    for (let turn = 0; open.length > 0; turn++) {
      assert.ok(turn < 70, "the reconciliation ends");
      const entries = splitAll(open, turn);
      // Sent in messages of at most 2 KB, as a reader on the relay would.
      open = [];
      for (let i = 0; i < entries.length; i += 60) {
        const request = encodeMessage({
          type: "recon",
          end: i + 60 >= entries.length,
          entries: entries.slice(i, i + 60),
        });
        assert.ok(request.length <= 2048);
        await ws.send(request);
        if (i + 60 < entries.length) continue;
        const back = await turnReply(() => ws.next());
        worst = Math.max(worst, back.bytes / (request.length * Math.ceil(entries.length / 60)));
        for (const e of back.entries) {
          if (e.kind === "fp") open.push(e.prefix);
          if (e.kind === "keys") keysListed += e.keys.length;
        }
      }
    }
    assert.ok(worst <= AMPLIFICATION, `${worst.toFixed(1)} reply bytes per request byte`);
    assert.equal(keysListed, count, "every key listed once, none twice");
    ws.destroy();
  });

  it("NODES_LIVE from a client (only a relay sends it): refused before it is read, nothing back", async () => {
    const h = host();
    const name = fresh();
    await relayLog(h, name, 3000);
    const ws = await rawSocket(`${h.url()}/logs/${name}/ws`);
    await ws.send(hostileHello({ count: 3001, refs: true }));
    assert.equal((await ws.nextMessage()).type, "hello");
    await ws.send(encodeMessage({ type: "check", checkpoint: null }));
    assert.equal((await ws.nextMessage()).type, "check");
    // 30 000 "yours" entries of 3 bytes (each a reference to a node the relay sent): each could cost the relay a read
    // of its log, were the message read at all.
    const entries = 30_000;
    const request = new Uint8Array(2 + entries * 3);
    request.set([NODES_LIVE, 1]);
    for (let i = 0; i < entries; i++) request.set([2, YOURS, 2], 2 + 3 * i);
    const before = ws.received;
    await ws.send(request);
    const { code, reason } = await ws.closed;
    assert.equal(code, 4000);
    assert.match(reason, /NODES_LIVE|did not offer/);
    assert.ok(ws.received - before < 1024, `${ws.received - before} bytes back for ${request.length}`);
  });

  it("the node flood: nodes sent without waiting for CREDIT are refused or handled as they come, never queued", async () => {
    const h = host();
    const name = fresh();
    await relayLog(h, name, 10);
    const other = await filled(200, 1000, "flood");
    const page = await other.storage.read({ since: 0, until: 200, limit: 200, reverse: false });
    const bodies = encodeNodesBodies(page, 64 * 1024);
    const ws = await rawSocket(`${h.url()}/logs/${name}/ws`);
    await ws.send(hostileHello({ count: 0, length: 0, xor: new Uint8Array(16), id: HIGH_ID, window: 1 << 19 }));
    const total = 32 << 20;
    const sent = await flood(ws, (i) => bodies[i % bodies.length]!, total);
    ws.destroy();
    // Either the relay fell behind and refused (its bound on bytes not yet handled: the window and two frames), or
    // it kept up, storing the 200 nodes once and dropping the copies: nothing piles up either way.
    const { code, reason } = await ws.closed;
    if (sent < total) assert.match(`${code} ${reason}`, /^4000 .*CREDIT|^1006/);
    // The relay serves others meanwhile.
    const reader = new Hyperlog();
    await syncWith(h, name, reader);
    assert.ok(reader.length >= 10);
    // Refused part way, the relay may have stored some of the 200 (each stored once); kept up, all of them.
    const stored = (await json(await fetch(`${h.url()}/logs/${name}`))).length as number;
    assert.ok(stored >= 10 && stored <= 210, `${stored} nodes stored: the 10, and each flood node at most once`);
    if (sent === total) assert.equal(stored, 210);
  });

  it("nodes whose links never come are refused at once (no held queue)", async () => {
    const h = host();
    const name = fresh();
    await relayLog(h, name, 10);
    const other = new Hyperlog();
    for (let i = 0; i < 20; i++) await other.append(`chain ${i}`);
    const page = await other.storage.read({ since: 1, until: 20, limit: 20, reverse: false });
    const ws = await rawSocket(`${h.url()}/logs/${name}/ws`);
    await ws.send(hostileHello({ count: 0, length: 0, xor: new Uint8Array(16), id: HIGH_ID }));
    for (const body of encodeNodesBodies(page, 64 * 1024)) await ws.send(body);
    const { code, reason } = await ws.closed;
    assert.equal(code, 4008, reason);
    assert.equal((await json(await fetch(`${h.url()}/logs/${name}`))).length, 10);
  });

  it("the RECON flood: reconciliation messages out of turn end the socket at once", async () => {
    const h = host();
    const name = fresh();
    await relayLog(h, name, 100);
    const ws = await attackerInReconciliation(h, name, 100);
    const inBefore = h.metric?.("bytes_in_total") ?? 0;
    // Distinct messages, so that no "repeated entry" check is what stops them: the relay's turn never comes.
    const sent = await flood(
      ws,
      (i) =>
        encodeMessage({
          type: "recon",
          end: false,
          entries: Array.from({ length: 60 }, (_, j) => ({
            kind: "fp" as const,
            prefix: ((i * 60 + j) % 4096).toString(16).padStart(3, "0"),
            fp: { count: 5, xor: new Uint8Array(16).fill(i & 255) },
          })),
        }),
      256 << 20,
    );
    const { code, reason } = await ws.closed;
    assert.equal(code, 4000, reason);
    assert.ok(sent < 256 << 20, "the relay closed the socket before the flood ended");
    if (h.metric !== undefined) {
      const taken = h.metric("bytes_in_total") - inBefore;
      assert.ok(taken <= 4 * FRAME, `the relay took ${taken} bytes of the flood`);
    }
  });

  it("paused readers: a client that stops reading gets no more than the relay's window ahead of its CREDIT", async () => {
    const h = host();
    const name = fresh();
    const count = 1500;
    await relayLog(h, name, count, 2048);
    const readers: RawSocket[] = [];
    const outBefore = h.metric?.("bytes_out_total") ?? 0;
    for (let i = 0; i < 5; i++) {
      const ws = await rawSocket(`${h.url()}/logs/${name}/ws`);
      // An empty log that asks for a huge window, then reads nothing.
      await ws.send(
        hostileHello({ count: 0, length: 0, xor: new Uint8Array(16), id: HIGH_ID, window: 1 << 30, live: true }),
      );
      ws.pause();
      readers.push(ws);
    }
    if (h.metric !== undefined) {
      // Every paused reader's session waits for it (for CREDIT or for room in the socket's buffer).
      await waitFor(() => h.metric!("sockets_waiting") >= readers.length, 20_000, "five sessions waiting");
      const out = h.metric("bytes_out_total") - outBefore;
      assert.ok(out <= readers.length * (RELAY_WINDOW + FRAME), `${out} bytes sent to five paused readers`);
      assert.ok(h.metric("buffered_bytes") <= readers.length * (RELAY_WINDOW + FRAME));
    }
    // Meanwhile another client syncs the whole log.
    const reader = new Hyperlog();
    await syncWith(h, name, reader);
    assert.equal(reader.length, count);
    // The first paused reader reads again, and sends something that ends its session (an empty message): every
    // node the relay sent it came before the relay's ERROR.
    const ws = readers[0]!;
    ws.resume();
    await ws.send(new Uint8Array(0));
    await ws.closed;
    assert.ok(ws.received <= RELAY_WINDOW + FRAME, `${ws.received} bytes reached a reader that sent no CREDIT`);
    assert.ok(ws.received > 0, "the reader got nodes");
    for (const r of readers) r.destroy();
  });

  it("a paused live reader: nodes written while it does not read wait for its CREDIT, not in the relay", async () => {
    const h = host();
    const name = fresh();
    await relayLog(h, name, 1);
    const ws = await rawSocket(`${h.url()}/logs/${name}/ws`);
    // An empty live client that asks for a huge window: it finishes the initial exchange, then stops reading.
    await ws.send(
      hostileHello({ count: 0, length: 0, xor: new Uint8Array(16), id: HIGH_ID, window: 1 << 30, live: true }),
    );
    await ws.send(encodeMessage({ type: "synced" }));
    for (let message = await ws.nextMessage(); message.type !== "synced"; message = await ws.nextMessage());
    await ws.send(encodeMessage({ type: "ack" }));
    ws.pause();
    const start = ws.received;
    const outBefore = h.metric?.("bytes_out_total") ?? 0;
    // A writer adds 3 MB while it is live.
    await syncWith(h, name, await filled(1500, 2048, `${name}-live`));
    if (h.metric !== undefined) {
      await waitFor(() => h.metric!("sockets_waiting") >= 1, 20_000, "the paused reader's session waiting");
      const out = h.metric("bytes_out_total") - outBefore;
      assert.ok(out <= RELAY_WINDOW + 2 * FRAME, `${out} bytes sent while the live reader did not read`);
    }
    ws.resume();
    await ws.send(new Uint8Array(0));
    await ws.closed;
    const got = ws.received - start;
    assert.ok(got > 0, "the live reader got nodes");
    assert.ok(got <= RELAY_WINDOW + FRAME, `${got} bytes reached a live reader that sent no CREDIT`);
  });

  for (const order of ["many first", "one first"] as const) {
    it(`20 000 nodes against a 1-node relay with 256 KiB frames (${order} in id order)`, async () => {
      const h = host();
      const name = fresh();
      await relayLog(h, name, 1);
      // The relay's log id, from its HELLO.
      const probe = await rawSocket(`${h.url()}/logs/${name}/ws`);
      const hello = await probe.nextMessage();
      probe.destroy();
      assert.equal(hello.type, "hello");
      const relayId = hello.type === "hello" ? hello.hello.id : "";
      let many: Hyperlog<unknown>;
      do {
        many = new Hyperlog();
        await many.ready();
      } while ((many.id < relayId) !== (order === "many first"));
      for (let i = 0; i < 20_000; i += 2000) {
        await many.batch(Array.from({ length: 2000 }, (_, j) => ({ value: `m ${i + j}` })));
      }
      await syncWith(h, name, many);
      assert.equal(many.length, 20_001);
      assert.equal((await json(await fetch(`${h.url()}/logs/${name}`))).length, 20_001);
    });
  }

  it("40 concurrent first contacts each get the log and give their node", async () => {
    const h = host();
    const name = fresh();
    await relayLog(h, name, 2000);
    const clients = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
      const log = new Hyperlog();
      await log.append(`client ${i}`);
      return log;
    }));
    await Promise.all(clients.map((log) => syncWith(h, name, log)));
    assert.equal((await json(await fetch(`${h.url()}/logs/${name}`))).length, 2040);
    for (const log of clients) assert.ok(log.length >= 2001);
  });

  it("the handshake deadline: a socket that sends no HELLO is closed with 4408", async () => {
    const h = host();
    const ws = await rawSocket(`${h.url()}/logs/${fresh()}/ws`);
    const { code, reason } = await ws.closed;
    assert.equal(code, 4408);
    // The host's HELLO timer or the session's own deadline, whichever fires first (both are 1.5 s here).
    assert.match(reason, /No HELLO within 1500 ms|Waited 1500 ms for the peer's HELLO/);
  });

  it("the idle deadline: an initial exchange whose client stops answering is closed with 4408", async () => {
    const h = host();
    const name = fresh();
    await relayLog(h, name, 50);
    // The attacker leads the reconciliation, then never sends its turn.
    const ws = await attackerInReconciliation(h, name, 50);
    const { code, reason } = await ws.closed;
    assert.equal(code, 4408);
    assert.match(reason, /Waited 1500 ms for the peer's reconciliation reply/);
  });
}

describe("the relay waits for a socket's buffer (bufferedAmount)", () => {
  it("sends stop while the socket buffers more than 512 KiB and go on when it drains", async () => {
    const storage = new MemoryStorage();
    const states = new Map<RelaySocket, unknown>();
    const core = new RelayCore({
      sockets: () => states.keys(),
      save: (ws, state) => void states.set(ws, state),
      load: (ws) => states.get(ws),
      waitUntil: () => {},
    }, { name: "buffered", storage, limits: DEFAULT_LIMITS });
    const source = await filled(1500, 2048, "buffered");
    // The relay's log: pushed in process.
    const relayLog = core.log as unknown as Hyperlog<unknown>;
    const a = source.replicate({ mode: "push" });
    const b = relayLog.replicate({ mode: "pull" });
    a.readable.pipeTo(b.writable).catch(() => {});
    b.readable.pipeTo(a.writable).catch(() => {});
    await Promise.all([a.done, b.done]);
    assert.equal(relayLog.length, 1500);
    // A socket whose buffer fills with the first nodes sent, until the test drains it.
    let buffered = 0;
    let full = true;
    let sent = 0;
    let looks = 0;
    const client = new Hyperlog();
    const ws: RelaySocket & { bufferedAmount: number } = {
      readyState: 1,
      get bufferedAmount() {
        if (buffered > 0) looks++;
        return buffered;
      },
      send: (data) => {
        if (typeof data === "string") return; // presence: none here
        sent += data.length;
        // NODES, or NODES_REFS when the client takes link references.
        if (full && nodesInMessage(data) > 0) buffered = 600 * 1024;
        driver.deliver(new Uint8Array(data));
      },
      close: () => {},
    };
    const driver = driveChannel(client, { window: 1 << 22 }, {
      send: (body) => void core.message(ws, body.slice()),
      buffered: () => 0,
      close: () => {},
    });
    driver.done.catch(() => {});
    states.set(ws, undefined);
    await core.accept(ws, "read");
    // The relay looks at the buffer again and again while it waits (the client's CREDIT comes meanwhile); the
    // nodes of one step go out together, within the room there was (512 KiB).
    await waitFor(() => looks >= 20, 10_000, "the relay looking at the socket's buffer");
    const atFill = sent;
    await waitFor(() => looks >= 40, 10_000, "the relay looking at the socket's buffer again");
    assert.equal(core.waiting, 1);
    assert.equal(sent, atFill, "nothing sent while the buffer was full");
    assert.ok(sent < 512 * 1024 + 2 * FRAME, `${sent} bytes sent before the buffer was full`);
    assert.ok(client.length < 1500, "the client has part of the log");
    full = false;
    buffered = 0;
    await driver.done;
    assert.equal(client.length, 1500, "the rest came once the socket drained");
    await core.close();
  });
});

onEveryHost("hostile peers", hostileCases, (host) => {
  it("hibernation in the middle of an initial exchange: the exchange carries on, no 4010", async () => {
    const h = host();
    const client = await filled(6000, 200, "hib");
    const socket = new WebSocket(`${h.url().replace(/^http/, "ws")}/logs/hib/ws`);
    let closeCode = 0;
    socket.addEventListener("close", (e) => (closeCode = e.code));
    const session = replicateWebSocket(client, socket, { maxFrame: 16 * 1024, window: 16 * 1024 });
    await waitFor(
      async () => ((await json(await fetch(`${h.url()}/logs/hib`))).length as number) > 0,
      20_000,
      "the first nodes at the relay",
    );
    await h.forget!("hib");
    const stats = await session.done;
    socket.close();
    assert.equal(stats.nodesSent, 6000);
    assert.notEqual(closeCode, 4010);
    assert.equal((await json(await fetch(`${h.url()}/logs/hib`))).length, 6000);
  });
});
