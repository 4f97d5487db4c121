/**
 * Replication over a pair of byte streams (stdin/stdout, TCP, an in-process pipe): the byte-stream driver of the
 * session (`session.ts`). Each message is varint-framed (`frame.ts`); the protocol is in `wire.ts` and `session.ts`.
 *
 * Backpressure runs end to end: the session makes nodes only when `readable` is pulled, and a write to `writable`
 * resolves once its messages are handled, so a peer that stops reading, or sends faster than this side stores,
 * holds a bounded amount here.
 *
 * @module
 */
import { Driver } from "./driver.ts";
import { ProtocolError } from "./errors.ts";
import type { LogHandle } from "./log-handle.ts";
import type { ReplicateOptions, Replication } from "./replicate-types.ts";
import { Session } from "./session.ts";
import { frame, FrameDecoder, varintLength } from "./frame.ts";

export type { ReplicateOptions, Replication, ReplicationMode, ReplicationStats } from "./replicate-types.ts";
export { PROTOCOL_VERSION } from "./wire.ts";

/** Bytes queued on `readable` before the session waits for the reader. */
const HIGH_WATER = 256 * 1024;

/**
 * Starts a replication session for `log` over byte streams. Usually called as `log.replicate(options)`.
 *
 * @example Two logs converge over an in-process pipe
 * ```ts
 * import { Hyperlog, replicate } from "../mod.ts";
 * const a = new Hyperlog();
 * const b = new Hyperlog();
 * await a.append("a");
 * await b.append("b");
 * const ra = replicate(a);
 * const rb = replicate(b);
 * await Promise.all([ra.readable.pipeTo(rb.writable), rb.readable.pipeTo(ra.writable), ra.done, rb.done]);
 * console.assert(a.length === 2 && b.length === 2);
 * ```
 */
export function replicate(log: LogHandle, options: ReplicateOptions = {}): Replication {
  const session = new Session(log, options);
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let wake: (() => void) | undefined;
  let closed = false;
  const readable = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    pull() {
      const w = wake;
      wake = undefined;
      w?.();
    },
    cancel() {
      closed = true;
      wake?.();
      driver.ended();
    },
  }, { highWaterMark: HIGH_WATER, size: (chunk) => chunk.length });
  const driver = new Driver(session, {
    send(body) {
      const framed = frame(body);
      if (!closed) controller.enqueue(framed);
      return framed.length;
    },
    room: () => (closed ? 1 << 20 : controller.desiredSize ?? 0),
    drained: () => new Promise<void>((resolve) => (wake = resolve)),
    close() {
      if (closed) return;
      closed = true;
      try {
        controller.close();
      } catch {
        // Already closed or cancelled.
      }
    },
  }, options);
  const decoder = new FrameDecoder(session.maxFrame);
  const writable = new WritableStream<Uint8Array>({
    async write(chunk) {
      if (driver.over) return;
      if (!(chunk instanceof Uint8Array)) {
        driver.fail(new ProtocolError("Replication takes bytes (Uint8Array chunks)"));
        return;
      }
      let bodies: Uint8Array[];
      try {
        bodies = decoder.push(chunk);
      } catch (error) {
        driver.fail(error as Error);
        return;
      }
      for (const body of bodies) driver.deliver(body, varintLength(body.length) + body.length);
      // A write resolves once its messages are handled: the peer's bytes wait in its stream, not here.
      await driver.handled;
    },
    close() {
      if (driver.over) return;
      if (decoder.buffered > 0) driver.fail(new ProtocolError("The peer's stream ended in the middle of a frame"));
      else driver.ended();
    },
    abort(reason) {
      driver.ended(reason instanceof Error ? reason : new Error(String(reason)));
    },
  });
  return driver.replication(readable, writable);
}
