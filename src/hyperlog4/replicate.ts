/**
 * `log.replicate({ protocol: "hyperlog4" })`: a replication session in hyperlog 4.12.1's protocol (see
 * `session.ts`), as Web Streams, so a new log converges with a peer that still runs hyperlog 4 (or the compat
 * entry) over any byte stream: `stdin.pipeThrough(log.replicate({ protocol: "hyperlog4" })).pipeTo(stdout)`.
 * Received nodes are stored by the log's `ingest`, which checks each one as usual (key against content, links,
 * signature rules); the log's `preadd`/`add`/`reject` events fire as for any write.
 *
 * @module
 */
import { ProtocolError } from "../errors.ts";
import { type Hyperlog, registerProtocol } from "../log.ts";
import type { Hyperlog4ReplicateOptions } from "../log-types.ts";
import type { Replication, ReplicationStats } from "../replicate.ts";
import { H4Log } from "./h4-log.ts";
import { frameH4, H4Deframer } from "./messages.ts";
import { H4Session } from "./session.ts";

export type { Hyperlog4ReplicateOptions } from "../log-types.ts";

// deno-lint-ignore no-explicit-any
const VIEWS = new WeakMap<Hyperlog<any>, H4Log>();

/**
 * The hyperlog 4 view of `log`, one per log (its writes share one lock).
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../log.ts";
 * import { hyperlog4View } from "./replicate.ts";
 * const log = new Hyperlog();
 * console.assert(hyperlog4View(log) === hyperlog4View(log));
 * ```
 */
// deno-lint-ignore no-explicit-any
export function hyperlog4View(log: Hyperlog<any>): H4Log {
  let view = VIEWS.get(log);
  if (view === undefined) VIEWS.set(log, view = new H4Log(log));
  return view;
}

/**
 * Starts a hyperlog 4 replication session on `log` (see the module doc).
 *
 * @example A new log and a compat (hyperlog 4 API) log converge
 * ```ts
 * import { Hyperlog } from "../log.ts";
 * import { replicateHyperlog4 } from "./replicate.ts";
 * const a = new Hyperlog({ valueEncoding: "utf-8" });
 * const b = new Hyperlog({ valueEncoding: "utf-8" });
 * await a.append("from a");
 * await b.append("from b");
 * const ra = replicateHyperlog4(a);
 * const rb = replicateHyperlog4(b);
 * ra.readable.pipeTo(rb.writable);
 * rb.readable.pipeTo(ra.writable);
 * await Promise.all([ra.done, rb.done]);
 * console.assert(a.length === 2 && b.length === 2);
 * ```
 */
// deno-lint-ignore no-explicit-any
export function replicateHyperlog4(log: Hyperlog<any>, options: Hyperlog4ReplicateOptions = {}): Replication {
  const dag = hyperlog4View(log);
  const deframer = new H4Deframer(options.maxMessage ?? 64 * 1024 * 1024);
  const stats: ReplicationStats = { nodesSent: 0, nodesReceived: 0, bytesSent: 0, bytesReceived: 0, roundTrips: 0 };
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let wantMore: (() => void) | undefined;
  let outputEnded = false;
  let inputEnded = false;
  let settled = false;
  let resolveDone!: (stats: ReplicationStats) => void;
  let rejectDone!: (err: Error) => void;
  const done = new Promise<ReplicationStats>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  done.catch(() => {});
  let resolveSynced!: () => void;
  let rejectSynced!: (err: Error) => void;
  const synced = new Promise<void>((resolve, reject) => {
    resolveSynced = resolve;
    rejectSynced = reject;
  });
  synced.catch(() => {});
  const snapshot = (): ReplicationStats => ({
    ...stats,
    nodesSent: session.stats.nodesSent,
    nodesReceived: session.stats.nodesReceived,
  });
  const fail = (err: Error): void => {
    if (settled) return;
    settled = true;
    session.stop();
    try {
      controller.error(err);
    } catch { /* already closed */ }
    rejectSynced(err);
    rejectDone(err);
  };
  const maybeDone = (): void => {
    if (settled || !outputEnded || !inputEnded) return;
    if (!session.synced) {
      return fail(new ProtocolError("The hyperlog 4 peer ended the stream before the sync finished"));
    }
    settled = true;
    session.stop();
    resolveDone(snapshot());
  };
  const session: H4Session = new H4Session(dag, options, {
    send: (message) => {
      if (outputEnded || settled) return Promise.resolve();
      const frame = frameH4(message);
      stats.bytesSent += frame.length;
      controller.enqueue(frame);
      return Promise.resolve();
    },
    drain: () => {
      if (settled || (controller.desiredSize ?? 1) > 0) return Promise.resolve();
      return new Promise((resolve) => (wantMore = resolve));
    },
    end: () => {
      if (!outputEnded) {
        outputEnded = true;
        if (!settled) controller.close();
        maybeDone();
      }
      return Promise.resolve();
    },
    event: () => {},
  });
  session.onError = fail;
  session.onSynced = resolveSynced;
  const readable = new ReadableStream<Uint8Array>({
    start: (c) => {
      controller = c;
    },
    pull: () => {
      const wake = wantMore;
      wantMore = undefined;
      wake?.();
    },
    cancel: (reason) =>
      fail(reason instanceof Error ? reason : new ProtocolError("The replication stream was cancelled")),
  }, { highWaterMark: 64 });
  const writable = new WritableStream<Uint8Array>({
    write: async (chunk) => {
      stats.bytesReceived += chunk.length;
      try {
        for (const message of deframer.push(chunk)) await session.receive(message);
      } catch (err) {
        fail(err as Error);
        throw err;
      }
    },
    close: () => {
      inputEnded = true;
      session.remoteEnded();
      maybeDone();
    },
    abort: (reason) => fail(reason instanceof Error ? reason : new ProtocolError("The peer's stream was aborted")),
  });
  session.start();
  return {
    readable,
    writable,
    done,
    synced,
    get stats(): ReplicationStats {
      return snapshot();
    },
    close: async () => {
      await session.close();
      if (!inputEnded) {
        inputEnded = true;
        maybeDone();
      }
      return await done;
    },
  };
}

// `log.replicate({ protocol: "hyperlog4" })` runs this session once this module is loaded.
registerProtocol("hyperlog4", replicateHyperlog4);
