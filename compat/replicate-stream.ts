/**
 * The hyperlog 4 replication stream of the compat entry: a Node `Duplex` of framed bytes (as hyperlog 4's
 * `log.replicate()` returns) driving an {@link H4Session}. Events as hyperlog 4's: `push`, `pull`, `live`,
 * `metadata`, `error`; the stream ends when the sync is done (unless live) or when the peer's stream ends.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { Duplex, type Transform } from "node:stream";
import type { H4Log } from "../src/hyperlog4/h4-log.ts";
import { decodeH4Node, frameH4, H4Deframer, type H4Node } from "../src/hyperlog4/messages.ts";
import { H4Session } from "../src/hyperlog4/session.ts";

/**
 * Options of {@link h4ReplicationStream}: the session's, plus hyperlog 4's `process` (an object-mode transform
 * that received nodes pass through before they are stored) and the biggest message accepted.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { H4Log } from "../src/hyperlog4/h4-log.ts";
 * import { decodeH4Handshake, H4Deframer } from "../src/hyperlog4/messages.ts";
 * import { h4ReplicationStream, type H4StreamOptions } from "./replicate-stream.ts";
 * const options: H4StreamOptions = { mode: "pull", live: true, maxMessage: 1 << 20 };
 * const stream = h4ReplicationStream(new H4Log(new Hyperlog()), options);
 * const chunk = await new Promise<Uint8Array>((resolve) => stream.once("data", resolve));
 * stream.destroy();
 * const handshake = decodeH4Handshake(new H4Deframer(1 << 20).push(chunk)[0]!, 1); // its first message
 * console.assert(handshake.mode === "pull" && handshake.live === true);
 * ```
 */
export interface H4StreamOptions {
  /** "sync" (both ways, the default), "push" or "pull". */
  mode?: "sync" | "push" | "pull" | undefined;
  /** Stay open after the sync and send new nodes both ways (either side may ask). */
  live?: boolean | undefined;
  /** Opaque bytes for the peer (its `metadata` event). */
  metadata?: Uint8Array | undefined;
  /** The most received nodes that may wait for earlier nodes of their log (default 100 000). */
  maxPending?: number | undefined;
  /** Milliseconds the initial exchange may go without a message from the peer (default 0: none, as hyperlog 4). */
  idleTimeout?: number | undefined;
  /** Received nodes go through this object-mode stream before they are stored. */
  process?: Transform | undefined;
  /** The biggest message accepted, in bytes (default 64 MiB). */
  maxMessage?: number | undefined;
}

/**
 * A Node duplex speaking hyperlog 4.12.1's replication protocol for `dag`.
 *
 * @example
 * ```ts ignore
 * import { h4ReplicationStream } from "./replicate-stream.ts";
 * process.stdin.pipe(h4ReplicationStream(dag, {})).pipe(process.stdout);
 * ```
 */
export function h4ReplicationStream(dag: H4Log | Promise<H4Log>, options: H4StreamOptions = {}): Duplex {
  const deframer = new H4Deframer(options.maxMessage ?? 64 * 1024 * 1024);
  let wantMore: (() => void) | undefined;
  let full = false;
  let ended = false;
  let session: H4Session | undefined;
  // Made once the log is open; bytes that come before wait for it (assigned below, after the stream exists).
  // deno-lint-ignore prefer-const
  let ready: Promise<H4Session> | undefined;
  const stream = new Duplex({
    read() {
      full = false;
      const wake = wantMore;
      wantMore = undefined;
      wake?.();
    },
    write(chunk: Buffer, _encoding, callback) {
      let messages: Uint8Array[];
      try {
        messages = deframer.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      } catch (err) {
        return callback(err as Error);
      }
      ready!.then(async (session) => {
        for (const message of messages) {
          if (message[0] === 3 && options.process !== undefined) {
            const node = decodeH4Node(message, 1);
            if (!options.process.write(node)) await new Promise((r) => options.process!.once("drain", r));
          } else await session.receive(message);
        }
      }).then(() => callback(), (err) => callback(err as Error));
    },
    final(callback) {
      ready!.then((session) => session.remoteEnded(), () => {});
      callback();
    },
    destroy(err, callback) {
      session?.stop();
      const wake = wantMore;
      wantMore = undefined;
      wake?.();
      callback(err);
    },
  });
  const push = (bytes: Uint8Array): void => {
    if (ended || stream.destroyed) return;
    if (!stream.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))) full = true;
  };
  const start = (h4: H4Log): H4Session => {
    // No deadline unless asked: hyperlog 4 streams have none, and an error event where hyperlog 4 emitted none
    // would crash programs that do not listen for one.
    const session = new H4Session(h4, { ...options, idleTimeout: options.idleTimeout ?? 0 }, {
      send: (message) => {
        push(frameH4(message));
        return Promise.resolve();
      },
      drain: () => {
        if (!full || stream.destroyed) return Promise.resolve();
        return new Promise((resolve) => (wantMore = resolve));
      },
      end: () => {
        if (!ended && !stream.destroyed) {
          ended = true;
          stream.push(null);
        }
        return Promise.resolve();
      },
      event: (name, detail) => {
        if (name === "metadata") stream.emit("metadata", Buffer.from(detail as Uint8Array));
        else stream.emit(name);
      },
    });
    session.onError = (err) => stream.destroy(err);
    // As hyperlog 4's protocol stream: once our output has been read to its end, our input is ended too.
    stream.on("end", () => {
      if (!stream.writableEnded) stream.end();
    });
    if (options.process !== undefined) {
      const processed = options.process;
      // Events rather than async iteration: hyperlog 4 callers pass readable-stream 2 transforms (through2).
      processed.on("data", (node: H4Node) => {
        processed.pause();
        session.receiveNode(node).then(() => processed.resume(), (err) => stream.destroy(err as Error));
      });
      processed.on("error", (err: Error) => stream.destroy(err));
    }
    session.start();
    return session;
  };
  stream.on("close", () => session?.stop());
  ready = Promise.resolve(dag).then(start);
  ready.then((s) => (session = s), (err) => stream.destroy(err as Error));
  return stream;
}
