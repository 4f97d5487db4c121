/**
 * First contact in as few one-way flights as the protocol allows (issue 12): nodes found missing during a
 * reconciliation go with the turn that finds them, CREDIT goes first with any reply, and a SYNCED sent with every
 * byte credited wants no ACK. Flights are counted on a wire that holds every chunk for a while (a side's chunk is one
 * flight later than the latest chunk it received), over the byte-stream driver, and in lock step over sessions.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hyperlog, ProtocolError } from "../mod.ts";
import { Session } from "../src/session.ts";
import { decodeMessage, encodeMessage, encodeNodesBodies } from "../src/wire.ts";
import { copies, fill, keys, lockstep, sync } from "./_lockstep.ts";

/** A wire both ways that holds each chunk `ms` (in order, any number in flight) and counts one-way flights. */
function delayedLink(ms: number) {
  const received = [0, 0];
  const state = { flights: 0, chunks: 0 };
  const wire = (from: 0 | 1): TransformStream<Uint8Array, Uint8Array> => {
    const to = from === 0 ? 1 : 0;
    let last = Promise.resolve();
    return new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        const flight = received[from]! + 1;
        state.flights = Math.max(state.flights, flight);
        state.chunks++;
        const due = performance.now() + ms;
        last = last
          .then(() => new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now()))))
          .then(() => {
            received[to] = Math.max(received[to]!, flight);
            controller.enqueue(chunk);
          });
      },
      flush: () => last,
    });
  };
  return { wire, state };
}

/** One sync of `a` and `b` over byte streams with `ms` on the wire each way; the stats and the one-way flights. */
async function delayedSync(a: Hyperlog, b: Hyperlog, ms: number) {
  const link = delayedLink(ms);
  const ra = a.replicate();
  const rb = b.replicate();
  const pipes = Promise.all([
    ra.readable.pipeThrough(link.wire(0)).pipeTo(rb.writable),
    rb.readable.pipeThrough(link.wire(1)).pipeTo(ra.writable),
  ]);
  const stats = await Promise.all([ra.done, rb.done]);
  await pipes;
  return { stats, flights: link.state.flights };
}

describe("first contact in five one-way flights", () => {
  it("over byte streams with 30 ms on the wire, whichever side leads: 5 flights, every node across", async () => {
    for (let pair = 0; pair < 2; pair++) {
      const [a, b] = await copies(5000);
      await fill(a, 5, `a only ${pair}`);
      await fill(b, 5, `b only ${pair}`);
      const { stats, flights } = await delayedSync(a, b, 30);
      assert.equal(stats[0].nodesSent + stats[1].nodesSent, 10);
      // HELLO; CHECK and the leader's first turn; the follower's nodes and its turn; CREDIT, the leader's last
      // turn, its nodes and SYNCED; ACK and the follower's SYNCED (its nodes were credited: no ACK back).
      assert.ok(flights <= 5, `${flights} flights (leader ${a.id < b.id ? "a" : "b"})`);
      assert.deepEqual(await keys(a), await keys(b));
    }
  });

  it("the follower's nodes go with its first turn, credited before the leader's last one; no ACK of them", async () => {
    const [a, b] = await copies(5000);
    await fill(a, 3, "a only");
    await fill(b, 3, "b only");
    const { flights, log, sa, sb } = await lockstep(a, b);
    assert.ok(flights <= 5, `${flights} flights: ${JSON.stringify(log)}`);
    const [leader, follower] = a.id < b.id ? [sa, sb] : [sb, sa];
    assert.equal(leader.stats.nodesSent + follower.stats.nodesSent, 6);
    // One ACK in all: the follower's SYNCED went with all of its nodes credited.
    assert.equal(log.flat().filter((type) => type === "ACK").length, 1, JSON.stringify(log));
    assert.ok(log[2]!.includes("NODES"), `the follower's nodes in flight 3: ${JSON.stringify(log)}`);
    assert.deepEqual(await keys(a), await keys(b));
  });

  it("new nodes that link to each other and to shared nodes at random: always converge, never a missing link", async () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const [a0, b0] = await copies(5000);
    const shared = (await a0.storage.read({ since: 0, until: 5000, limit: 5000, reverse: false })).map((n) => n.key);
    for (let round = 0; round < 6; round++) {
      // Each round: fresh copies of the same 5000 nodes, then nodes on each side linking to random earlier ones.
      const a = new Hyperlog({ valueEncoding: "utf-8" });
      const b = new Hyperlog({ valueEncoding: "utf-8" });
      await sync(a0, a);
      await sync(b0, b);
      for (const [log, tag] of [[a, "a"], [b, "b"]] as const) {
        const added: string[] = [];
        const count = 1 + Math.floor(random() * 40);
        for (let i = 0; i < count; i++) {
          const links = new Set<string>();
          for (let l = Math.floor(random() * 3); l >= 0; l--) {
            const pool = random() < 0.5 && added.length > 0 ? added : shared;
            links.add(pool[Math.floor(random() * pool.length)]!);
          }
          added.push((await log.add([...links], `${tag} ${round} ${i}`)).key);
        }
      }
      const { flights } = await lockstep(a, b);
      assert.ok(flights <= 9, `${flights} flights`);
      assert.deepEqual(await keys(a), await keys(b));
      assert.deepEqual((await a.heads()).map((n) => n.key).sort(), (await b.heads()).map((n) => n.key).sort());
    }
  });

  it("a resync with nothing new: the HELLOs, then each side's SYNCED, and no ACK", async () => {
    const [a, b] = await copies(100);
    const { flights, log } = await lockstep(a, b);
    assert.equal(flights, 2, JSON.stringify(log));
    assert.equal(log.flat().filter((type) => type === "ACK").length, 0, JSON.stringify(log));
  });
});

describe("SYNCED that wants no ACK, against a peer that lies", () => {
  it("decodes only the flag 1, and refuses a claim that every node was credited when some were not", async () => {
    assert.deepEqual(decodeMessage(encodeMessage({ type: "synced", credited: true })), {
      type: "synced",
      credited: true,
    });
    assert.throws(() => decodeMessage(Uint8Array.of(5, 2)), /Malformed SYNCED/);
    assert.throws(() => decodeMessage(Uint8Array.of(5, 1, 0)), /Malformed SYNCED/);

    const a = new Hyperlog({ valueEncoding: "utf-8" });
    const b = new Hyperlog({ valueEncoding: "utf-8" });
    await fill(a, 20, "a");
    const sa = new Session(a as Hyperlog<unknown>);
    const sb = new Session(b as Hyperlog<unknown>);
    const [ha, hb] = [await sa.start(), await sb.start()];
    await sa.receive(hb);
    await sb.receive(ha);
    const nodes = await sa.produce(1 << 20);
    assert.ok(nodes.length > 0);
    // a's nodes, then a forged SYNCED that says b credited them all: b never did.
    const forged = nodes.filter((body) => body[0] !== 5).concat([encodeMessage({ type: "synced", credited: true })]);
    await assert.rejects(sb.receive(forged), (error: Error) => {
      assert.ok(error instanceof ProtocolError);
      assert.match(error.message, /every node it sent was credited, but \d+ bytes were not/);
      return true;
    });
    assert.equal(b.length, 20, "the nodes before it are stored");
  });

  it("refuses nodes before the plan is decided when no reconciliation began on its side", async () => {
    const [a, b] = await copies(10);
    await fill(a, 1, "a only");
    await fill(b, 1, "b only");
    // The side with the larger id follows: it begins the reconciliation only with the leader's CHECK.
    const [leader, follower] = a.id < b.id ? [a, b] : [b, a];
    const sl = new Session(leader as Hyperlog<unknown>);
    const sf = new Session(follower as Hyperlog<unknown>);
    const [hl] = [await sl.start(), await sf.start()];
    await sf.receive(hl);
    const [node] = await leader.storage.read({ since: 10, until: 11, limit: 1, reverse: false });
    await assert.rejects(sf.receive(encodeNodesBodies([node!], 1 << 16)), (error: Error) => {
      assert.ok(error instanceof ProtocolError);
      assert.match(error.message, /before the plan was decided/);
      return true;
    });
    assert.equal(follower.length, 11, "nothing stored");
  });
});
