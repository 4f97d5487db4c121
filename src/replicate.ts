/**
 * Replication: two logs exchange the nodes the other lacks over any pair of byte streams.
 *
 * Protocol version 1. Every message is one frame (see `wire.ts`); its first byte is the type:
 *
 * | type | name | body |
 * |---|---|---|
 * | 1 | HELLO | utf-8 JSON `{ "protocol": "hyperlog", "version": 1, "mode": "sync" \| "push" \| "pull", "live": bool }` |
 * | 2 | HAVE | the raw 32-byte keys of nodes the sender holds, concatenated |
 * | 3 | HAVE_END | empty: the sender has listed every key it held when the session began |
 * | 4 | NODE | one node (see `wire.ts`), always after every node it links to |
 * | 5 | SYNCED | empty: the sender has sent every node the receiver lacked at the start |
 * | 6 | ERROR | utf-8 JSON `{ "name", "message" }`: the sender stops the session for this reason |
 * | 7 | ACK | empty: the sender has stored every node the peer sent before its SYNCED |
 *
 * Each side sends HELLO at once and, if it receives nodes (modes `sync` and `pull`), lists its keys (HAVE ...
 * HAVE_END). A side that sends nodes (modes `sync` and `push`) waits for the peer's HELLO and HAVE_END, then sends,
 * in its own change order (so ancestors come first), every node whose key the peer did not list, then SYNCED; the
 * receiver stores them and answers ACK. A non-live session ends for a side when what it sent was acknowledged and
 * what it received was stored, so an error on either side always reaches the other before it finishes. A live session then forwards every node
 * added to either log, never back to the peer it came from, until either side closes.
 *
 * This first version costs one round trip and 32 bytes per node held by the receiver, whatever the difference;
 * replacing the key list with set reconciliation (so the cost follows the difference) is the next step.
 *
 * @module
 */
import {
  ClosedError,
  EncodingError,
  HyperlogError,
  InvalidNodeError,
  MissingLinksError,
  ProtocolError,
  SignatureError,
} from "./errors.ts";
import { fromHex, toHex } from "./hex.ts";
import type { Hyperlog, RawNode } from "./log.ts";
import type { StoredNode } from "./node.ts";
import { decodeNode, DEFAULT_MAX_FRAME, encodeNodeBody, frame, FrameDecoder } from "./wire.ts";

/** The protocol version this implementation speaks. */
export const PROTOCOL_VERSION = 1;

const HELLO = 1;
const HAVE = 2;
const HAVE_END = 3;
const NODE = 4;
const SYNCED = 5;
const ERROR = 6;
const ACK = 7;

const KEYS_PER_HAVE = 1024;
const NODES_PER_INGEST = 512;
const PAGE = 512;

/**
 * Which way nodes flow: `sync` both ways, `push` only to the peer, `pull` only from it.
 *
 * @example
 * ```ts
 * import type { ReplicationMode } from "./replicate.ts";
 * const mode: ReplicationMode = "pull";
 * console.assert(mode === "pull");
 * ```
 */
export type ReplicationMode = "sync" | "push" | "pull";

/**
 * Options for {@link replicate} and `Hyperlog.replicate`.
 *
 * @example
 * ```ts
 * import type { ReplicateOptions } from "./replicate.ts";
 * const options: ReplicateOptions = { mode: "sync", live: true };
 * console.assert(options.live);
 * ```
 */
export interface ReplicateOptions {
  /** `sync` (the default), `push` or `pull`. */
  mode?: ReplicationMode;
  /** Stay open after the initial exchange and forward new nodes both ways. */
  live?: boolean;
  /** The largest frame accepted from the peer, in bytes (default 16 MiB). */
  maxFrame?: number;
}

/**
 * What a finished session did.
 *
 * @example
 * ```ts
 * import type { ReplicationStats } from "./replicate.ts";
 * const stats: ReplicationStats = { nodesSent: 0, nodesReceived: 0, bytesSent: 0, bytesReceived: 0, roundTrips: 1 };
 * console.assert(stats.roundTrips === 1);
 * ```
 */
export interface ReplicationStats {
  /** Nodes this side sent. */
  nodesSent: number;
  /** New nodes this side received and stored. */
  nodesReceived: number;
  /** Bytes this side wrote to the readable side. */
  bytesSent: number;
  /** Bytes this side read from the writable side. */
  bytesReceived: number;
  /** Round trips the initial exchange took. */
  roundTrips: number;
}

/**
 * One side of a replication session: pipe `readable` to the peer and the peer's bytes into `writable`.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * const a = new Hyperlog();
 * const b = new Hyperlog();
 * await a.append("from a");
 * const ra = a.replicate();
 * const rb = b.replicate();
 * await Promise.all([ra.readable.pipeTo(rb.writable), rb.readable.pipeTo(ra.writable)]);
 * console.assert((await rb.done).nodesReceived === 1);
 * ```
 */
export interface Replication {
  /** Bytes to send to the peer. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes received from the peer. */
  readonly writable: WritableStream<Uint8Array>;
  /** Resolves with the stats when the session ends cleanly; rejects with the reason when it fails. */
  readonly done: Promise<ReplicationStats>;
  /** The stats so far (a copy), for progress reports. */
  readonly stats: ReplicationStats;
  /** Ends the session from this side (for live sessions); resolves like `done`. */
  close(): Promise<ReplicationStats>;
}

interface Hello {
  version: number;
  mode: ReplicationMode;
  live: boolean;
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

const ERRORS: Record<string, new (message: string) => HyperlogError> = {
  InvalidNodeError,
  SignatureError,
  ProtocolError,
  EncodingError,
  ClosedError,
};

function remoteError(name: unknown, message: unknown): HyperlogError {
  const text = `Peer stopped the session: ${typeof message === "string" ? message : "no reason given"}`;
  const Known = typeof name === "string" ? ERRORS[name] : undefined;
  if (name === "MissingLinksError") {
    const err = new HyperlogError(text);
    err.name = "MissingLinksError";
    return err;
  }
  const err = Known !== undefined ? new Known(text) : new ProtocolError(text);
  err.message = text;
  return err;
}

/** Change-number ranges of nodes that arrived from the peer, so live mode never echoes them back. */
class Ranges {
  #ranges: [number, number][] = [];

  add(from: number, to: number): void {
    const last = this.#ranges[this.#ranges.length - 1];
    if (last !== undefined && last[1] + 1 === from) last[1] = to;
    else this.#ranges.push([from, to]);
  }

  has(change: number): boolean {
    // Ranges are added in increasing order; drop those that are behind every later lookup's cursor.
    for (const [from, to] of this.#ranges) if (change >= from && change <= to) return true;
    return false;
  }

  dropBelow(change: number): void {
    while (this.#ranges.length > 0 && this.#ranges[0]![1] < change) this.#ranges.shift();
  }
}

/**
 * Starts a replication session for `log`. Usually called as `log.replicate(options)`.
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
export function replicate<T>(log: Hyperlog<T>, options: ReplicateOptions = {}): Replication {
  const mode = options.mode ?? "sync";
  if (mode !== "sync" && mode !== "push" && mode !== "pull") {
    throw new TypeError(`Unknown replication mode ${JSON.stringify(mode)}: use "sync", "push" or "pull"`);
  }
  const live = options.live === true;
  const maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
  if (!Number.isInteger(maxFrame) || maxFrame < 1024) {
    throw new RangeError("maxFrame must be an integer of at least 1024 bytes");
  }
  const sends = mode !== "pull";
  const receives = mode !== "push";
  const stats: ReplicationStats = { nodesSent: 0, nodesReceived: 0, bytesSent: 0, bytesReceived: 0, roundTrips: 0 };

  const done = deferred<ReplicationStats>();
  const peerHello = deferred<Hello>();
  const peerHaveEnd = deferred<void>();
  const peerSynced = deferred<void>();
  const stop = new AbortController();
  const peerHave = new Set<string>();
  const fromPeer = new Ranges();
  const decoder = new FrameDecoder(maxFrame);
  let failed: Error | undefined;
  let finished = false;
  let sentSynced = false;
  let gotSynced = false;
  let gotAck = false;
  let peerSends = false;
  let peerReceives = false;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const closeReadable = () => {
    try {
      controller.close();
    } catch {
      // Already closed or cancelled.
    }
  };

  const send = (body: Uint8Array) => {
    const bytes = frame(body);
    stats.bytesSent += bytes.length;
    controller.enqueue(bytes);
  };

  const finish = () => {
    if (finished || failed !== undefined) return;
    finished = true;
    stop.abort();
    closeReadable();
    done.resolve(stats);
  };

  const maybeFinish = () => {
    if (live) return;
    const sendDone = !(sends && peerReceives) || gotAck;
    const receiveDone = !(receives && peerSends) || gotSynced;
    if (sendDone && receiveDone) finish();
  };

  const fail = (error: unknown, tellPeer: boolean) => {
    if (finished || failed !== undefined) return;
    failed = error instanceof Error ? error : new ProtocolError(String(error));
    stop.abort();
    for (const d of [peerHello, peerHaveEnd, peerSynced]) d.reject(failed);
    if (tellPeer) {
      try {
        send(
          Uint8Array.of(
            ERROR,
            ...new TextEncoder().encode(JSON.stringify({ name: failed.name, message: failed.message })),
          ),
        );
      } catch {
        // The readable side is gone; nothing can reach the peer.
      }
    }
    closeReadable();
    done.reject(failed);
  };

  async function* outgoing(): AsyncGenerator<void> {
    await log.ready();
    send(
      Uint8Array.of(
        HELLO,
        ...new TextEncoder().encode(JSON.stringify({ protocol: "hyperlog", version: PROTOCOL_VERSION, mode, live })),
      ),
    );
    yield;
    if (receives) {
      for await (const page of pages(log, 0, Infinity, stop.signal)) {
        for (let i = 0; i < page.length; i += KEYS_PER_HAVE) {
          const slice = page.slice(i, i + KEYS_PER_HAVE);
          const body = new Uint8Array(1 + slice.length * 32);
          body[0] = HAVE;
          slice.forEach((node, j) => body.set(fromHex(node.key), 1 + j * 32));
          send(body);
          yield;
        }
      }
      send(Uint8Array.of(HAVE_END));
      yield;
    }
    await peerHello.promise;
    stats.roundTrips = 1;
    if (!(sends && peerReceives)) return;
    await peerHaveEnd.promise;
    stats.roundTrips = 2;
    const snapshot = log.length;
    for await (const page of pages(log, 0, snapshot, stop.signal)) {
      for (const node of page) {
        if (peerHave.has(node.key) || fromPeer.has(node.change)) continue;
        send(encodeNodeBody(NODE, node));
        stats.nodesSent++;
      }
      yield;
    }
    peerHave.clear();
    send(Uint8Array.of(SYNCED));
    sentSynced = true;
    maybeFinish();
    if (!live) return;
    let cursor = snapshot;
    while (!stop.signal.aborted) {
      await log.waitForLength(cursor, stop.signal);
      if (stop.signal.aborted) return;
      if (log.closed) {
        finish();
        return;
      }
      // Nodes this session is storing right now are marked as the peer's only once stored: wait for that, then
      // read up to the length seen in the same synchronous step, so no node of the peer is sent back.
      while (inflight !== undefined) await inflight;
      const bound = log.length;
      for await (const page of pages(log, cursor, bound, stop.signal)) {
        for (const node of page) {
          cursor = node.change;
          if (fromPeer.has(node.change)) continue;
          send(encodeNodeBody(NODE, node));
          stats.nodesSent++;
        }
        fromPeer.dropBelow(cursor);
        yield;
      }
    }
  }

  const generator = outgoing();
  const readable = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    async pull() {
      if (finished || failed !== undefined) return;
      try {
        const step = await generator.next();
        if (step.done && failed === undefined && !finished && !live && !(sends && peerReceives)) maybeFinish();
      } catch (error) {
        fail(error, !(error instanceof ClosedError));
      }
    },
    cancel() {
      if (live && !finished && failed === undefined && (sentSynced || !(sends && peerReceives))) finish();
      else fail(new ProtocolError("The connection closed before the replication session finished"), false);
    },
  }, { highWaterMark: 1 });

  let pending: RawNode[] = [];
  let inflight: Promise<void> | undefined;
  const flush = async () => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    const run = (async () => {
      try {
        markFresh(await log.ingest(batch));
      } finally {
        inflight = undefined;
      }
    })();
    inflight = run.catch(() => {});
    await run;
  };
  const markFresh = (fresh: readonly StoredNode[]) => {
    if (fresh.length === 0) return;
    stats.nodesReceived += fresh.length;
    fromPeer.add(fresh[0]!.change, fresh[fresh.length - 1]!.change);
  };

  const handle = async (body: Uint8Array, hello: Hello | undefined): Promise<void> => {
    const type = body[0];
    if (hello === undefined && type !== HELLO && type !== ERROR) {
      throw new ProtocolError(`The peer sent message type ${String(type)} before its HELLO`);
    }
    switch (type) {
      case HELLO: {
        if (hello !== undefined) throw new ProtocolError("The peer sent HELLO twice");
        let parsed: { protocol?: unknown; version?: unknown; mode?: unknown; live?: unknown };
        try {
          parsed = JSON.parse(new TextDecoder().decode(body.subarray(1)));
        } catch {
          throw new ProtocolError("The peer's HELLO is not valid JSON; is it a hyperlog peer?");
        }
        if (parsed?.protocol !== "hyperlog") throw new ProtocolError("The peer is not speaking the hyperlog protocol");
        if (parsed.version !== PROTOCOL_VERSION) {
          throw new ProtocolError(
            `The peer speaks protocol version ${
              String(parsed.version)
            }, this peer speaks version ${PROTOCOL_VERSION}; upgrade the older side`,
          );
        }
        const peerMode = parsed.mode;
        if (peerMode !== "sync" && peerMode !== "push" && peerMode !== "pull") {
          throw new ProtocolError(`The peer asked for an unknown mode ${JSON.stringify(peerMode)}`);
        }
        peerSends = peerMode !== "pull";
        peerReceives = peerMode !== "push";
        if (!(sends && peerReceives) && !(receives && peerSends)) {
          throw new ProtocolError(
            `Incompatible replication modes: ${mode} on this side with ${peerMode} on the other, so no node can flow`,
          );
        }
        const h: Hello = { version: parsed.version, mode: peerMode, live: parsed.live === true };
        peerHello.resolve(h);
        maybeFinish();
        return;
      }
      case HAVE: {
        if ((body.length - 1) % 32 !== 0) throw new ProtocolError("Malformed HAVE message: not a whole number of keys");
        for (let at = 1; at < body.length; at += 32) peerHave.add(toHex(body.subarray(at, at + 32)));
        return;
      }
      case HAVE_END:
        peerHaveEnd.resolve();
        return;
      case NODE: {
        if (!receives) throw new ProtocolError("The peer sent a node, but this side only pushes");
        pending.push(decodeNode(body, 1));
        if (pending.length >= NODES_PER_INGEST) await flush();
        return;
      }
      case SYNCED:
        if (gotSynced) throw new ProtocolError("The peer sent SYNCED twice");
        await flush();
        gotSynced = true;
        send(Uint8Array.of(ACK));
        peerSynced.resolve();
        maybeFinish();
        return;
      case ACK:
        if (!sentSynced || gotAck) throw new ProtocolError("The peer acknowledged nodes that were not sent");
        gotAck = true;
        maybeFinish();
        return;
      case ERROR: {
        let info: { name?: unknown; message?: unknown } = {};
        try {
          info = JSON.parse(new TextDecoder().decode(body.subarray(1)));
        } catch {
          // Keep the generic message.
        }
        throw Object.assign(remoteError(info.name, info.message), { fromPeer: true });
      }
      default:
        throw new ProtocolError(`The peer sent an unknown message type ${String(type)}`);
    }
  };

  let hello: Hello | undefined;
  const writable = new WritableStream<Uint8Array>({
    async write(chunk) {
      if (failed !== undefined || finished) return;
      if (!(chunk instanceof Uint8Array)) {
        fail(new ProtocolError("Replication takes bytes (Uint8Array chunks)"), true);
        return;
      }
      stats.bytesReceived += chunk.length;
      try {
        for (const body of decoder.push(chunk)) {
          if (body.length === 0) throw new ProtocolError("The peer sent an empty frame");
          await handle(body, hello);
          if (body[0] === HELLO) hello = await peerHello.promise;
          if (failed !== undefined || finished) return;
        }
        await flush();
      } catch (error) {
        const fromPeerError = (error as { fromPeer?: boolean }).fromPeer === true;
        fail(error, !fromPeerError && !(error instanceof ClosedError && log.closed));
      }
    },
    close() {
      if (failed !== undefined || finished) return;
      if (live && (gotSynced || !(receives && peerSends)) && hello !== undefined) finish();
      else if (decoder.buffered > 0) fail(new ProtocolError("The peer's stream ended in the middle of a frame"), true);
      else if (live && gotAck) finish();
      else fail(new ProtocolError("The peer closed the connection before the replication session finished"), true);
    },
    abort(reason) {
      fail(
        new ProtocolError(
          `The connection to the peer failed: ${reason instanceof Error ? reason.message : String(reason)}`,
        ),
        false,
      );
    },
  });

  return {
    readable,
    writable,
    done: done.promise,
    get stats() {
      return { ...stats };
    },
    async close() {
      while (inflight !== undefined) await inflight;
      if (!finished && failed === undefined) {
        if (live && hello !== undefined) finish();
        else fail(new ProtocolError("The replication session was closed before it finished"), true);
      }
      return done.promise;
    },
  };
}

async function* pages<T>(
  log: Hyperlog<T>,
  since: number,
  until: number,
  signal: AbortSignal,
): AsyncGenerator<StoredNode[]> {
  let cursor = since;
  while (!signal.aborted && cursor < until) {
    const page = await log.storage.read({ since: cursor, until, limit: PAGE, reverse: false });
    if (page.length === 0) return;
    yield page;
    cursor = page[page.length - 1]!.change;
  }
}
