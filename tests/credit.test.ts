/**
 * CREDIT in a bulk transfer: the receiver grants its window a quarter at a time while the peer's nodes keep coming
 * (src/driver.ts, CREDIT_WAIT), not once per batch it stores: every CREDIT is a write that wakes the peer.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Hyperlog } from "../mod.ts";
import { FrameDecoder } from "../src/frame.ts";
import { DEFAULT_WINDOW } from "../src/session.ts";
import { CREDIT, decodeMessage } from "../src/wire.ts";

/** A stream that passes bytes on and records each CREDIT message in them. */
function creditCounter(credits: number[]): TransformStream<Uint8Array, Uint8Array> {
  const decoder = new FrameDecoder();
  return new TransformStream({
    transform(chunk, controller) {
      for (const body of decoder.push(chunk)) {
        if (body[0] === CREDIT) {
          const message = decodeMessage(body);
          if (message.type === "credit") credits.push(message.bytes);
        }
      }
      controller.enqueue(chunk);
    },
  });
}

describe("CREDIT in a bulk transfer", () => {
  it("a fresh sync of 2 MB is credited in quarters of the window, not once a message", async () => {
    const a = new Hyperlog({ valueEncoding: "utf-8" });
    const pad = "x".repeat(100);
    for (let i = 0; i < 20_000; i += 1000) {
      await a.batch(Array.from({ length: 1000 }, (_, j) => ({ value: `credit ${i + j} ${pad}` })));
    }
    const b = new Hyperlog({ valueEncoding: "utf-8" });
    const ra = a.replicate();
    const rb = b.replicate();
    const credits: number[] = [];
    let messages = 0;
    const decoder = new FrameDecoder();
    const countNodes = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        messages += decoder.push(chunk).length;
        controller.enqueue(chunk);
      },
    });
    ra.readable.pipeThrough(countNodes).pipeTo(rb.writable).catch(() => {});
    rb.readable.pipeThrough(creditCounter(credits)).pipeTo(ra.writable).catch(() => {});
    const [sent, received] = await Promise.all([ra.done, rb.done]);
    assert.equal(received.nodesReceived, 20_000);
    assert.equal(sent.nodesSent, 20_000);
    const bytes = sent.bytesSent;
    assert.ok(bytes > 4 * DEFAULT_WINDOW, `${bytes} bytes sent`);
    const quarter = DEFAULT_WINDOW / 4;
    // Once a message would be one CREDIT per NODES message the receiver stored (the old way: ~40 here).
    assert.ok(messages > 2 * Math.ceil(bytes / quarter), `${messages} messages`);
    // A quarter at a time, the rest at the end (and a few more if the sender paused for 2 ms on a busy machine).
    assert.ok(credits.length <= Math.ceil(bytes / quarter) + 6, `${credits.length} CREDITs for ${bytes} bytes`);
    assert.ok(credits.filter((n) => n >= quarter).length >= Math.floor(bytes / quarter) - 6, credits.join());
    assert.deepEqual(await b.heads(), await a.heads());
  });
});
