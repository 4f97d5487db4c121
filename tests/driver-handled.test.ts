/**
 * `Driver.handledSoFar`: the messages delivered up to a point are handled, whatever came after them. A relay host
 * counts a client's message as held until then (`worker/hosted-socket.ts`): with `Driver.handled`, which waits until
 * the handling loop has nothing left, a steady flood kept every message it had already handled counted as held.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Hyperlog } from "../mod.ts";
import { Driver, type MessageTransport } from "../src/driver.ts";
import { MemoryStorage } from "../src/memory-storage.ts";
import type { StoredNode } from "../src/node.ts";
import { Session } from "../src/session.ts";
import { NODES_REFS } from "../src/link-refs.ts";
import { NODES } from "../src/node-codec.ts";

/** A memory storage whose commits wait while `gate` is shut. */
class GatedStorage extends MemoryStorage {
  gate: Promise<void> | undefined;
  commits = 0;
  override async commit(nodes: readonly StoredNode[]): Promise<boolean[]> {
    this.commits++;
    if (this.gate !== undefined) await this.gate;
    return await super.commit(nodes);
  }
}

describe("Driver.handledSoFar", () => {
  it("resolves once the messages delivered so far are handled, while later ones still wait", async () => {
    const a = new Hyperlog({ valueEncoding: "utf-8" });
    const pad = "y".repeat(200);
    await a.batch(Array.from({ length: 1500 }, (_, i) => ({ value: `handled ${i} ${pad}` })));
    const storage = new GatedStorage();
    const b = new Hyperlog(storage, { valueEncoding: "utf-8" });
    // a's messages from its first node message on wait here; the rest goes to b at once.
    const held: Uint8Array[] = [];
    const drivers: Driver[] = [];
    const to = (peer: () => Driver, hold: boolean): MessageTransport => ({
      send: (body) => {
        // From a's first node message on, everything it sends waits (in order: its SYNCED comes after its nodes).
        if (hold && (held.length > 0 || body[0] === NODES || body[0] === NODES_REFS)) held.push(body);
        else queueMicrotask(() => peer().deliver(body));
      },
      room: () => 1 << 20,
      drained: () => Promise.resolve(),
      close: () => queueMicrotask(() => peer().ended()),
    });
    drivers.push(new Driver(new Session(a, {}), to(() => drivers[1]!, true)));
    drivers.push(new Driver(new Session(b, {}), to(() => drivers[0]!, false)));
    const receiver = drivers[1]!;
    for (let i = 0; i < 100 && held.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 0));
    assert.ok(held.length >= 2, `${held.length} node messages from a`);

    let release!: () => void;
    storage.gate = new Promise((resolve) => (release = resolve));
    const commits = storage.commits;
    receiver.deliver(held.shift()!);
    const first = receiver.handledSoFar();
    // The first message is being stored (its commit waits at the gate) when the second arrives.
    for (let i = 0; i < 100 && storage.commits === commits; i++) await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(storage.commits, commits + 1, "the first message's commit started");
    receiver.deliver(held.shift()!);
    const second = receiver.handledSoFar();
    const order: string[] = [];
    void first.then(() => order.push("first"));
    void second.then(() => order.push("second"));
    void receiver.handled.then(() => order.push("loop"));
    storage.gate = undefined;
    release();
    await first;
    assert.deepEqual(order, ["first"], "the first message is handled; the second, and so the loop, not yet");
    await second;
    await receiver.handled;
    assert.deepEqual(order, ["first", "second", "loop"]);
    // The rest of a's messages, then both sessions finish.
    while (held.length > 0) receiver.deliver(held.shift()!);
    for (const driver of drivers) void driver.done.catch(() => {});
    for (let i = 0; i < 1000 && (await b.storage.length()) < 1500; i++) {
      while (held.length > 0) receiver.deliver(held.shift()!);
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    assert.equal(await b.storage.length(), 1500);
    for (const driver of drivers) await driver.close().catch(() => {});
    assert.deepEqual(await receiver.handledSoFar(), undefined, "nothing handling: resolved at once");
  });
});
