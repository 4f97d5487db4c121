/**
 * First contact's wire behaviour (issue 12: nodes with a reconciliation turn, `SYNCED` that wants no `ACK`) against a
 * hostile peer, on every relay host: `hyperlog serve` on the runtime running the test (Node, Deno, Bun) and the relay
 * worker in Miniflare (Node only). The attacker is the bare-TCP WebSocket client of `_hostile.ts`. Each case checks
 * the close code (or that the relay goes on correctly where the protocol allows it), the bytes the relay sends back,
 * that another client still syncs afterwards and gets only nodes that verify (`assertServesSound`), and, under
 * repeats, that the relay's sockets and unhandled bytes come back to where they were (serve's gauges). The relay's
 * RSS under repeats, in a process of its own, is `npm run bench -- --only hostile` ("early nodes repeated").
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { encodeMessage, Hyperlog, type Message, type StoredNode } from "../mod.ts";
import { encodeNodesBodies } from "../src/wire.ts";
import { flood, HIGH_ID, hostileHello, LOW_ID, type RawSocket, rawSocket, splitAll } from "./_hostile.ts";
import {
  assertServesSound,
  attackerInReconciliation,
  filled,
  FRAME,
  type Host,
  onEveryHost,
  RELAY_WINDOW,
  relayLength,
  relayLog,
} from "./_hostile-relay.ts";
import { waitFor } from "./_relay-clients.ts";

/** What the relay may send back to a message it refuses: its ERROR and the close frame. */
const REFUSAL_BYTES = 1024;
/** The most node bytes one reconciliation turn carries (`Outbox.early`, session-send.ts). */
const TURN_NODES = 64 * 1024;

/** `count` nodes that link to nothing (each of about `size` bytes), as a log's storage returns them. */
async function roots(count: number, size = 16, tag = "root"): Promise<StoredNode[]> {
  const log = new Hyperlog(undefined, { valueEncoding: "utf-8" });
  const pad = "x".repeat(Math.max(0, size - 16));
  for (let i = 0; i < count; i++) await log.add([], `${tag} ${i} ${pad}`);
  return await log.storage.read({ since: 0, until: count, limit: count, reverse: false });
}

/** `count` nodes of a chain, all but its first (so the first one's links are missing). */
async function dangling(count: number, tag: string): Promise<StoredNode[]> {
  const log = new Hyperlog(undefined, { valueEncoding: "utf-8" });
  for (let i = 0; i <= count; i++) await log.append(`${tag} ${i}`);
  return await log.storage.read({ since: 1, until: count + 1, limit: count, reverse: false });
}

/** NODES messages of `nodes`, up to `bytes` each. */
function nodesOf(nodes: StoredNode[], bytes = TURN_NODES): Uint8Array[] {
  return encodeNodesBodies(nodes, bytes);
}

function size(bodies: readonly Uint8Array[]): number {
  return bodies.reduce((n, body) => n + body.length, 0);
}

/** Reads the relay's messages until `stop` says so; returns them (rejects if the socket closes first). */
async function readUntil(ws: RawSocket, stop: (message: Message) => boolean): Promise<Message[]> {
  const seen: Message[] = [];
  for (;;) {
    const message = await ws.nextMessage();
    seen.push(message);
    if (stop(message)) return seen;
  }
}

/** Sends `bodies`, then waits for the relay to close the socket; returns its code, reason and the bytes it sent. */
async function refused(
  ws: RawSocket,
  bodies: readonly Uint8Array[],
): Promise<{ code: number; reason: string; back: number }> {
  const before = ws.received;
  await ws.sendAll(bodies);
  const { code, reason } = await ws.closed;
  return { code, reason, back: ws.received - before };
}

/** The relay's sockets and unhandled bytes are where they were (serve: the Worker's isolate keeps its own). */
async function settled(h: Host, sockets: number): Promise<void> {
  if (h.metric === undefined) return;
  await waitFor(() => h.metric!("sockets") <= sockets, 10_000, "the relay's sockets back to where they were");
  assert.equal(h.metric("receiving_bytes"), 0, "nothing received is left unhandled");
}

function earlyCases(host: () => Host, prefix: string): void {
  let n = 0;
  const fresh = () => `${prefix}-early-${n++}`;

  it("a lying SYNCED (every byte credited, some not): refused with 4000, or credited in time and the relay goes on", async () => {
    const h = host();
    const name = fresh();
    await relayLog(h, name, 10);
    const ws = await rawSocket(`${h.url()}/logs/${name}/ws`);
    // An empty writer: both HELLOs decide at once (the relay sends everything), so SYNCED is in turn.
    await ws.send(hostileHello({ count: 0, length: 0, xor: new Uint8Array(16), id: HIGH_ID }));
    await readUntil(ws, (m) => m.type === "synced");
    const nodes = nodesOf(await roots(5, 100, `${name}-lie`));
    // Its nodes and a SYNCED that says the relay credited them all, in one write: the relay handles them together.
    const lie = [...nodes, encodeMessage({ type: "synced", credited: true })];
    const before = ws.received;
    await ws.sendAll(lie);
    const seen: Message[] = [];
    const outcome = await Promise.race([
      ws.closed,
      readUntil(ws, (m) => {
        seen.push(m);
        return m.type === "error" || (m.type === "credit" && seen.filter((s) => s.type === "credit")
              .reduce((sum, s) => sum + (s.type === "credit" ? s.bytes : 0), 0) >= size(nodes));
      }).catch(() => seen),
    ]);
    if ("code" in outcome || seen.some((m) => m.type === "error")) {
      const { code, reason } = await ws.closed;
      assert.equal(code, 4000, reason);
      assert.match(reason, /every node it sent was credited, but \d+ bytes were not/);
    } else {
      // The relay credited every byte before it read the SYNCED (it read them apart): no lie, and it goes on. It
      // wants the ACK of its own SYNCED, then its initial exchange is done.
      await ws.send(encodeMessage({ type: "ack" }));
      ws.destroy();
    }
    assert.ok(ws.received - before < REFUSAL_BYTES, `${ws.received - before} bytes back for ${size(lie)}`);
    // The nodes before the SYNCED are valid: stored or not, the log holds only nodes that verify.
    const length = await assertServesSound(h, name);
    assert.ok(length === 10 || length === 15, `${length} nodes`);
  });

  it("a malformed SYNCED, and SYNCED before any plan: 4000, nothing back but the ERROR", async () => {
    const h = host();
    const name = fresh();
    await relayLog(h, name, 10);
    for (const body of [Uint8Array.of(5, 2), Uint8Array.of(5, 1, 0)]) {
      const ws = await rawSocket(`${h.url()}/logs/${name}/ws`);
      await ws.send(hostileHello({ count: 0, length: 0, xor: new Uint8Array(16), id: HIGH_ID }));
      await readUntil(ws, (m) => m.type === "synced");
      const { code, reason, back } = await refused(ws, [body]);
      assert.equal(code, 4000, reason);
      assert.match(reason, /Malformed SYNCED/);
      assert.ok(back < REFUSAL_BYTES, `${back} bytes back`);
    }
    // The sets differ and the attacker leads: no plan until the reconciliation ends.
    const ws = await rawSocket(`${h.url()}/logs/${name}/ws`);
    await ws.send(hostileHello({ count: 11 }));
    assert.equal((await ws.nextMessage()).type, "hello");
    assert.equal((await ws.nextMessage()).type, "check");
    const { code, reason, back } = await refused(ws, [encodeMessage({ type: "synced", credited: true })]);
    assert.equal(code, 4000, reason);
    assert.match(reason, /SYNCED out of turn/);
    assert.ok(back < REFUSAL_BYTES, `${back} bytes back`);
    assert.equal(await assertServesSound(h, name), 10);
  });

  it("nodes before any plan (or before HELLO) are refused with 4000 and not stored", async () => {
    const h = host();
    const name = fresh();
    await relayLog(h, name, 10);
    const nodes = nodesOf(await roots(20, 100, `${name}-early`));
    // The attacker leads (lowest id) and has sent no CHECK: the relay has begun nothing.
    const ws = await rawSocket(`${h.url()}/logs/${name}/ws`);
    await ws.send(hostileHello({ count: 11, id: LOW_ID }));
    assert.equal((await ws.nextMessage()).type, "hello");
    const first = await refused(ws, nodes);
    assert.equal(first.code, 4000, first.reason);
    assert.match(first.reason, /before the plan was decided/);
    assert.ok(first.back < REFUSAL_BYTES, `${first.back} bytes back`);
    const early = await rawSocket(`${h.url()}/logs/${name}/ws`);
    const second = await refused(early, nodes);
    assert.equal(second.code, 4000, second.reason);
    assert.match(second.reason, /before its HELLO/);
    // The relay's HELLO (about 125 bytes) may go first.
    assert.ok(second.back < REFUSAL_BYTES, `${second.back} bytes back`);
    assert.equal(await assertServesSound(h, name), 10);
  });

  it("early nodes with the attacker's turn (links held): stored, and the exchange goes on to both SYNCEDs", async () => {
    const h = host();
    const name = fresh();
    await relayLog(h, name, 100);
    const ws = await attackerInReconciliation(h, name, 100);
    const nodes = nodesOf(await roots(5, 100, `${name}-early`));
    const before = ws.received;
    // Nodes before the turn, then a final turn that asks for everything: the relay answers with nodes only.
    await ws.sendAll([...nodes, encodeMessage({ type: "recon", end: true, entries: [{ kind: "all", prefix: "" }] })]);
    const got = await readUntil(ws, (m) => m.type === "synced");
    const credit = got.reduce((sum, m) => sum + (m.type === "credit" ? m.bytes : 0), 0);
    assert.equal(credit, size(nodes), "every early byte credited");
    const sent = got.reduce((sum, m) => sum + (m.type === "nodes" ? m.nodes.length : 0), 0);
    assert.equal(sent, 100, "the relay's own nodes, not the attacker's back");
    await ws.send(encodeMessage({ type: "synced", credited: true }));
    await ws.send(encodeMessage({ type: "ack" }));
    assert.ok(ws.received - before <= RELAY_WINDOW + FRAME, `${ws.received - before} bytes back`);
    ws.destroy();
    assert.equal(await assertServesSound(h, name), 105);
  });

  it("early nodes whose links the relay does not hold: 4008, nothing of them stored", async () => {
    const h = host();
    const name = fresh();
    await relayLog(h, name, 100);
    const ws = await attackerInReconciliation(h, name, 100);
    const nodes = nodesOf(await dangling(20, `${name}-dangling`));
    const { code, reason, back } = await refused(ws, [
      ...nodes,
      encodeMessage({ type: "recon", end: true, entries: [{ kind: "all", prefix: "" }] }),
    ]);
    assert.equal(code, 4008, reason);
    assert.match(reason, /link/i);
    assert.ok(back < REFUSAL_BYTES, `${back} bytes back`);
    assert.equal(await assertServesSound(h, name), 100);
  });

  it(`more than a turn's ${TURN_NODES / 1024} KiB of early nodes, then past the relay's window: taken as they come or refused, never queued`, async () => {
    const h = host();
    const name = fresh();
    await relayLog(h, name, 100);
    const ws = await attackerInReconciliation(h, name, 100);
    const inBefore = h.metric?.("bytes_in_total") ?? 0;
    // 600 KB of distinct valid nodes (over the 64 KiB of a turn and the relay's 512 KiB window), sent without
    // waiting for any CREDIT, then the same again and again up to 16 MB.
    const nodes = nodesOf(await roots(600, 1000, `${name}-many`));
    assert.ok(size(nodes) > RELAY_WINDOW);
    const total = 16 << 20;
    const sent = await flood(ws, (i) => nodes[i % nodes.length]!, total);
    if (sent < total) {
      // Refused: the relay fell behind by more than its bound on unhandled bytes (its window and two frames).
      const { code, reason } = await ws.closed;
      assert.match(`${code} ${reason}`, /^4000 .*CREDIT|^1006/);
      if (h.metric !== undefined) {
        const taken = h.metric("bytes_in_total") - inBefore;
        assert.ok(taken <= sent, `the relay took ${taken} bytes`);
      }
    } else {
      // Kept up: each node stored once, the copies dropped; the reconciliation goes on.
      const before = ws.received;
      await ws.send(encodeMessage({ type: "recon", end: true, entries: [{ kind: "all", prefix: "" }] }));
      await readUntil(ws, (m) => m.type === "synced");
      assert.ok(ws.received - before <= RELAY_WINDOW + FRAME, `${ws.received - before} bytes back`);
      ws.destroy();
    }
    const length = await assertServesSound(h, name);
    assert.ok(length >= 100 && length <= 700, `${length} nodes: the 100, and each early node at most once`);
    if (sent === total) assert.equal(length, 700);
  });

  it("early nodes with every turn of the deepest reconciliation: each stored once, the turns bounded as before", async () => {
    const h = host();
    const name = fresh();
    const count = 3000;
    await relayLog(h, name, count);
    const ws = await attackerInReconciliation(h, name, count);
    const batches: Uint8Array[][] = [];
    for (let turn = 0; turn < 8; turn++) batches.push(nodesOf(await roots(10, 100, `${name}-turn-${turn}`)));
    let open = [""];
    let turns = 0;
    let requestBytes = 0;
    let replyBytes = 0;
    let final = false;
    for (; open.length > 0; turns++) {
      assert.ok(turns < 8, "the reconciliation ends");
      const split = splitAll(open, turns);
      const messages = [...batches[turns]!, ...batches[turns]!]; // each turn's nodes, twice
      for (let i = 0; i < split.length; i += 60) {
        messages.push(encodeMessage({ type: "recon", end: i + 60 >= split.length, entries: split.slice(i, i + 60) }));
      }
      requestBytes += size(messages);
      const before = ws.received;
      await ws.sendAll(messages);
      open = [];
      const reply = await readUntil(ws, (m) => m.type === "recon" && m.end);
      replyBytes += ws.received - before;
      const entries = reply.flatMap((m) => m.type === "recon" ? m.entries : []);
      for (const e of entries) if (e.kind === "fp") open.push(e.prefix);
      final = entries.every((e) => e.kind === "all" || e.kind === "need");
    }
    // The attacker's last turn answers the relay's lists with nothing: it ends the reconciliation (a final turn of
    // the relay's ended it already).
    if (!final) await ws.send(encodeMessage({ type: "recon", end: true, entries: [] }));
    await readUntil(ws, (m) => m.type === "synced");
    ws.destroy();
    assert.ok(replyBytes <= 128 * requestBytes, `${replyBytes} bytes back for ${requestBytes}`);
    assert.equal(await assertServesSound(h, name), count + 10 * turns, "each turn's nodes stored once");
  });

  it("repeats: 30 attackers with early nodes, refused one after another, leave the relay as it was", async () => {
    const h = host();
    const name = fresh();
    await relayLog(h, name, 100);
    const sockets = h.metric?.("sockets") ?? 0;
    const inBefore = h.metric?.("bytes_in_total") ?? 0;
    const nodes = nodesOf(await dangling(50, `${name}-again`));
    let sent = 0;
    for (let i = 0; i < 30; i++) {
      const ws = await attackerInReconciliation(h, name, 100);
      const bodies = [...nodes, encodeMessage({ type: "recon", end: true, entries: [{ kind: "all", prefix: "" }] })];
      sent += size(bodies);
      const { code, back } = await refused(ws, bodies);
      assert.equal(code, 4008);
      assert.ok(back < REFUSAL_BYTES, `${back} bytes back`);
    }
    await settled(h, sockets);
    if (h.metric !== undefined) {
      const taken = h.metric("bytes_in_total") - inBefore;
      assert.ok(taken <= sent + 30 * 1024, `the relay took ${taken} bytes of ${sent}`);
    }
    assert.equal(await assertServesSound(h, name), 100);
  });
}

onEveryHost("first contact's hostile cases", earlyCases);
