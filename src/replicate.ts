/**
 * Replication: two logs exchange the nodes the other lacks over any pair of byte streams, at a cost that follows
 * their difference.
 *
 * Protocol version 1. Every message is one frame (see `wire.ts`); its first byte is the type:
 *
 * | type | name | body |
 * |---|---|---|
 * | 1 | HELLO | utf-8 JSON `{ protocol: "hyperlog", version: 1, mode, live, id, nonce, length, nodes?, maxFrame? }` |
 * | 2 | CHECK | utf-8 JSON `{ checkpoint, count?, xor? }`: the session id this side stored for the peer, and its fingerprint |
 * | 3 | RECON | set reconciliation entries (see `reconcile.ts`) |
 * | 4 | NODE | one node (see `wire.ts`), always after every node it links to |
 * | 5 | SYNCED | empty: the sender has sent every node the receiver lacked |
 * | 6 | ACK | empty: the sender has stored every node the peer sent before its SYNCED |
 * | 7 | ERROR | utf-8 JSON `{ name, message }`: the sender stops the session for this reason |
 * | 8 | NODES | several NODE messages, each framed as on a byte stream; sent only to a peer whose HELLO has `nodes: true` |
 *
 * 1. Both sides send HELLO at once; `length` is the number of nodes the side holds at that moment (its snapshot).
 * 2. If either side is empty, nothing needs comparing: the other side sends everything.
 * 3. Otherwise both send CHECK. After a completed two-way sync, each side stores a checkpoint for the other: the
 *    session id (from both nonces), its snapshot, and the change numbers of the nodes it received. If both sides
 *    name the same session, each sends only what it added since its snapshot that did not come from the peer:
 *    the resync costs the new nodes plus a few hundred bytes, in three round trips.
 * 4. Otherwise the sides reconcile their key sets (`reconcile.ts`; the side with the smaller id leads), which costs
 *    O(d log n) bytes for n shared nodes and d differences, in about log16(n / 32) round trips.
 * 5. A side that sends (modes `sync` and `push`) sends the nodes the peer lacks in its own change order, so every
 *    node arrives after the nodes it links to and is stored at once, then SYNCED; the receiver stores and answers
 *    ACK. A non-live session ends for a side when what it sent was acknowledged and what it received was stored,
 *    so an error on either side always reaches the other before it finishes.
 * 6. A live session then forwards every node added to either log, never back to the peer it came from, until
 *    either side closes.
 *
 * @module
 */

import {
  ClosedError,
  EncodingError,
  HyperlogError,
  InvalidNodeError,
  ProtocolError,
  SignatureError,
} from "./errors.ts";
import { fromHex, isKey, toHex } from "./hex.ts";
import { answer, decodeRecon, encodeRecon, type Fingerprint, KeyIndex, type ReconEntry } from "./reconcile.ts";
import { sha256Hex } from "./sha256.ts";
import type { Hyperlog } from "./log.ts";
import type { StoredNode } from "./node.ts";
import {
  ACK,
  CHECK,
  decodeNodes,
  DEFAULT_MAX_FRAME,
  encodeNodeFrames,
  encodeNodesMessages,
  ERROR,
  frame,
  FrameDecoder,
  HELLO,
  NODE,
  NODES,
  RECON,
  splitNodes,
  SYNCED,
} from "./wire.ts";
import { WIRE_NODES } from "./internal.ts";

/** The protocol version this implementation speaks. */
export const PROTOCOL_VERSION = 1;


/** Past this many ranges a checkpoint is not worth keeping; the next session reconciles instead. */
const MAX_CHECKPOINT_RANGES = 256;
const NODES_PER_INGEST = 512;
/** The most bytes of nodes packed into one NODES message (well under any peer's frame limit). */
const NODES_MESSAGE_BYTES = 64 * 1024;
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
  /**
   * Resolves when the initial exchange is complete: each side has every node the other had when the session began.
   * A live session stays open after that; for a non-live one it comes just before `done`.
   */
  readonly synced: Promise<void>;
  /** Ends the session from this side (for live sessions); resolves like `done`. */
  close(): Promise<ReplicationStats>;
}

interface Hello {
  mode: ReplicationMode;
  live: boolean;
  id: string;
  nonce: string;
  length: number;
}

interface Check {
  checkpoint: string | null;
  fp: Fingerprint | undefined;
}

/** What a side remembers about a peer after a completed two-way sync. */
interface Checkpoint {
  /** The session id both sides derived. */
  sid: string;
  /** This side's length when the session began: everything up to it that the peer lacked was sent. */
  snapshot: number;
  /** Change numbers (this side's) of the nodes that came from the peer in that session. */
  ranges: [number, number][];
}

function checkpointKey(peerId: string): string {
  return `replication:${peerId}`;
}

async function loadCheckpoint(log: Hyperlog<unknown>, peerId: string): Promise<Checkpoint | undefined> {
  const text = await log.storage.getMeta(checkpointKey(peerId));
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Checkpoint;
    if (typeof value.sid === "string" && Number.isInteger(value.snapshot) && Array.isArray(value.ranges)) return value;
  } catch {
    // A damaged checkpoint is as good as none: the session reconciles instead.
  }
  return undefined;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

function jsonBody(type: number, value: unknown): Uint8Array {
  const bytes = textEncoder.encode(JSON.stringify(value));
  const body = new Uint8Array(1 + bytes.length);
  body[0] = type;
  body.set(bytes, 1);
  return body;
}

function parseJson(body: Uint8Array, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(textDecoder.decode(body.subarray(1)));
    if (typeof value === "object" && value !== null) return value as Record<string, unknown>;
  } catch {
    // Fall through to the error.
  }
  throw new ProtocolError(`The peer's ${what} is not valid JSON; is it a hyperlog peer?`);
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
  #ranges: [number, number][];

  constructor(ranges: [number, number][] = []) {
    this.#ranges = ranges.map(([from, to]) => [from, to]);
  }

  list(): [number, number][] {
    return this.#ranges.map(([from, to]) => [from, to]);
  }

  get count(): number {
    return this.#ranges.length;
  }

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
  const anyLog = log as Hyperlog<unknown>;
  const sends = mode !== "pull";
  const receives = mode !== "push";
  const stats: ReplicationStats = { nodesSent: 0, nodesReceived: 0, bytesSent: 0, bytesReceived: 0, roundTrips: 0 };
  const nonce = toHex(crypto.getRandomValues(new Uint8Array(16)));

  const done = deferred<ReplicationStats>();
  const peerHello = deferred<Hello>();
  const peerCheck = deferred<Check>();
  const synced = deferred<void>();
  const stop = new AbortController();
  const fromPeer = new Ranges();
  const decoder = new FrameDecoder(maxFrame);
  // Reconciliation messages from the peer, waiting for the outgoing side to answer them.
  const reconInbox: ReconEntry[][] = [];
  let reconWaiter: (() => void) | undefined;
  let reconOpen = false;
  let failed: Error | undefined;
  let finished = false;
  let sentSynced = false;
  let gotSynced = false;
  let gotAck = false;
  let peerSends = false;
  /** Whether the peer's HELLO says it takes NODES messages, and how big they may be. */
  let peerTakesNodes = false;
  let nodesMessageBytes = NODES_MESSAGE_BYTES;
  let peerReceives = false;
  let hello: Hello | undefined;
  let checkReceived = false;
  let snapshot = 0;
  let checkpointUsable = false;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const closeReadable = () => {
    try {
      controller.close();
    } catch {
      // Already closed or cancelled.
    }
  };

  let frames = 0;
  const sendBytes = (bytes: Uint8Array) => {
    stats.bytesSent += bytes.length;
    frames++;
    controller.enqueue(bytes);
  };
  const send = (body: Uint8Array) => sendBytes(frame(body));
  /** Sends nodes as one chunk: NODES messages to a peer that takes them (fewer WebSocket messages), else NODEs. */
  const sendNodes = (nodes: readonly StoredNode[]) => {
    if (nodes.length === 0) return;
    sendBytes(
      nodes.length > 1 && peerTakesNodes
        ? encodeNodesMessages(nodes, nodesMessageBytes)
        : encodeNodeFrames(NODE, nodes),
    );
    stats.nodesSent += nodes.length;
  };

  const finish = async () => {
    if (finished || failed !== undefined) return;
    finished = true;
    stop.abort();
    closeReadable();
    if (checkpointUsable && hello !== undefined) {
      // Both sides have everything the other had at the start: remember it, so the next sync costs the difference.
      const sid = sha256Hex(textEncoder.encode([nonce, hello.nonce].sort().join(""))).slice(0, 32);
      const ranges = fromPeer.list();
      try {
        if (ranges.length <= MAX_CHECKPOINT_RANGES) {
          await anyLog.storage.setMeta(checkpointKey(hello.id), JSON.stringify({ sid, snapshot, ranges }));
        }
      } catch {
        // The log closed meanwhile; the next session reconciles instead.
      }
    }
    done.resolve(stats);
  };

  const maybeFinish = () => {
    if (hello === undefined) return;
    const sendDone = !(sends && peerReceives) || gotAck;
    const receiveDone = !(receives && peerSends) || gotSynced;
    if (!(sendDone && receiveDone)) return;
    synced.resolve();
    if (!live) void finish();
  };

  const fail = (error: unknown, tellPeer: boolean) => {
    if (finished || failed !== undefined) return;
    failed = error instanceof Error ? error : new ProtocolError(String(error));
    stop.abort();
    for (const d of [peerHello, peerCheck, synced]) d.reject(failed);
    reconWaiter?.();
    if (tellPeer) {
      try {
        send(jsonBody(ERROR, { name: failed.name, message: failed.message }));
      } catch {
        // The readable side is gone; nothing can reach the peer.
      }
    }
    closeReadable();
    done.reject(failed);
  };

  const nextRecon = async (): Promise<ReconEntry[]> => {
    while (reconInbox.length === 0) {
      if (failed !== undefined) throw failed;
      await new Promise<void>((resolve) => (reconWaiter = resolve));
      reconWaiter = undefined;
    }
    if (failed !== undefined) throw failed;
    return reconInbox.shift()!;
  };

  /** Works out which keys the peer lacks, by checkpoint or by reconciliation; `undefined` means everything. */
  async function* plan(
    peer: Hello,
    toSend: Set<string>,
  ): AsyncGenerator<void, { since: number; skip: Ranges } | undefined> {
    if (snapshot === 0 || peer.length === 0) return { since: 0, skip: new Ranges() };
    const stored = await loadCheckpoint(anyLog, peer.id);
    let index: KeyIndex | undefined;
    if (stored === undefined) index = await buildIndex(anyLog, snapshot, stop.signal);
    const fp = index?.fingerprint("");
    send(jsonBody(CHECK, {
      checkpoint: stored?.sid ?? null,
      ...(fp === undefined ? {} : { count: fp.count, xor: toHex(fp.xor) }),
    }));
    yield;
    const check = await peerCheck.promise;
    stats.roundTrips++;
    if (stored !== undefined && check.checkpoint === stored.sid) {
      return { since: Math.min(stored.snapshot, snapshot), skip: new Ranges(stored.ranges) };
    }
    index ??= await buildIndex(anyLog, snapshot, stop.signal);
    const mine = index.fingerprint("");
    if (check.fp !== undefined && check.fp.count === mine.count && check.fp.xor.every((b, i) => b === mine.xor[i])) {
      return undefined;
    }
    reconOpen = true;
    let messages = 0;
    if (anyLog.id < peer.id) {
      const first = check.fp === undefined
        ? [{ kind: "fp", prefix: "", fp: mine } as ReconEntry]
        : answer(index, [{ kind: "fp", prefix: "", fp: check.fp }], toSend);
      send(encodeRecon(RECON, first));
      messages++;
      yield;
      if (first.length === 0) return undefined;
    }
    for (;;) {
      const entries = await nextRecon();
      messages++;
      if (entries.length === 0) break;
      const reply = answer(index, entries, toSend);
      send(encodeRecon(RECON, reply));
      messages++;
      yield;
      if (reply.length === 0) break;
    }
    reconOpen = false;
    stats.roundTrips += Math.ceil(messages / 2);
    return undefined;
  }

  async function* outgoing(): AsyncGenerator<void> {
    await log.ready();
    snapshot = log.length;
    send(
      jsonBody(HELLO, {
        protocol: "hyperlog",
        version: PROTOCOL_VERSION,
        mode,
        live,
        id: log.id,
        nonce,
        length: snapshot,
        nodes: true,
        maxFrame,
      }),
    );
    yield;
    const peer = await peerHello.promise;
    stats.roundTrips = 1;
    const toSend = new Set<string>();
    const planning = plan(peer, toSend);
    let step = await planning.next();
    while (step.done !== true) {
      yield;
      step = await planning.next();
    }
    const range = step.value;
    if (sends && peerReceives) {
      if (range !== undefined) {
        // Everything after the checkpoint that did not come from the peer (or everything, for an empty peer).
        const skip = range.skip;
        for await (const page of pages(log, range.since, snapshot, stop.signal)) {
          sendNodes(skip.count === 0 ? page : page.filter((node) => !skip.has(node.change)));
          yield;
        }
      } else {
        for await (const batch of nodesByKey(anyLog, toSend, snapshot, stop.signal)) {
          sendNodes(batch);
          yield;
        }
      }
      send(Uint8Array.of(SYNCED));
      sentSynced = true;
      stats.roundTrips++;
    }
    checkpointUsable = mode === "sync" && peer.mode === "sync" && !live;
    maybeFinish();
    if (!live || !(sends && peerReceives)) return;
    let cursor = snapshot;
    while (!stop.signal.aborted) {
      await log.waitForLength(cursor, stop.signal);
      if (stop.signal.aborted) return;
      if (log.closed) {
        void finish();
        return;
      }
      // Nodes this session is storing right now are marked as the peer's only once stored: wait for that, then
      // read up to the length seen in the same synchronous step, so no node of the peer is sent back.
      while (inflight !== undefined) await inflight;
      const bound = log.length;
      for await (const page of pages(log, cursor, bound, stop.signal)) {
        sendNodes(page.filter((node) => !fromPeer.has(node.change)));
        cursor = page[page.length - 1]!.change;
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
      // A pull must enqueue something (or end): the stream calls pull again only after a chunk is taken.
      const before = frames;
      try {
        while (!finished && failed === undefined && frames === before) {
          if ((await generator.next()).done === true) return;
        }
      } catch (error) {
        fail(error, !(error instanceof ClosedError));
      }
    },
    cancel() {
      if (live && !finished && failed === undefined && (sentSynced || !(sends && peerReceives))) void finish();
      else fail(new ProtocolError("The connection closed before the replication session finished"), false);
    },
  }, { highWaterMark: 1 });

  let pending: Uint8Array[] = [];
  let inflight: Promise<void> | undefined;
  const flush = async () => {
    if (pending.length === 0) return;
    const batch = decodeNodes(pending, 1);
    pending = [];
    const run = (async () => {
      try {
        markFresh(await log.ingest(batch, WIRE_NODES));
      } finally {
        inflight = undefined;
      }
    })();
    inflight = run.catch(() => {});
    await run;
  };
  let flushTimer: ReturnType<typeof setTimeout> | undefined;
  const scheduleFlush = () => {
    flushTimer ??= setTimeout(() => {
      flushTimer = undefined;
      flush().catch((error) => fail(error, !(error instanceof ClosedError && log.closed)));
    }, 0);
  };
  const markFresh = (fresh: readonly StoredNode[]) => {
    if (fresh.length === 0) return;
    stats.nodesReceived += fresh.length;
    fromPeer.add(fresh[0]!.change, fresh[fresh.length - 1]!.change);
  };

  const handle = async (body: Uint8Array): Promise<void> => {
    const type = body[0];
    if (hello === undefined && type !== HELLO && type !== ERROR) {
      throw new ProtocolError(`The peer sent message type ${String(type)} before its HELLO`);
    }
    switch (type) {
      case HELLO: {
        if (hello !== undefined) throw new ProtocolError("The peer sent HELLO twice");
        const parsed = parseJson(body, "HELLO");
        if (parsed.protocol !== "hyperlog") throw new ProtocolError("The peer is not speaking the hyperlog protocol");
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
        if (typeof parsed.id !== "string" || parsed.id.length === 0 || parsed.id.length > 128) {
          throw new ProtocolError("The peer's HELLO has no valid log id");
        }
        if (typeof parsed.nonce !== "string" || !/^[0-9a-f]{32}$/.test(parsed.nonce)) {
          throw new ProtocolError("The peer's HELLO has no valid nonce");
        }
        if (typeof parsed.length !== "number" || !Number.isInteger(parsed.length) || parsed.length < 0) {
          throw new ProtocolError("The peer's HELLO has no valid length");
        }
        await log.ready();
        if (parsed.id === log.id) {
          throw new ProtocolError(`Both sides are the same log (id ${log.id}); a log cannot replicate with itself`);
        }
        peerSends = peerMode !== "pull";
        peerReceives = peerMode !== "push";
        peerTakesNodes = parsed.nodes === true;
        // A NODES message stays well under the peer's frame limit, when it says what that is.
        if (typeof parsed.maxFrame === "number" && parsed.maxFrame >= 1024) {
          nodesMessageBytes = Math.min(NODES_MESSAGE_BYTES, Math.floor(parsed.maxFrame / 2));
        }
        if (!(sends && peerReceives) && !(receives && peerSends)) {
          throw new ProtocolError(
            `Incompatible replication modes: ${mode} on this side with ${peerMode} on the other, so no node can flow`,
          );
        }
        hello = {
          mode: peerMode,
          live: parsed.live === true,
          id: parsed.id,
          nonce: parsed.nonce,
          length: parsed.length,
        };
        peerHello.resolve(hello);
        return;
      }
      case CHECK: {
        if (checkReceived) throw new ProtocolError("The peer sent CHECK twice");
        checkReceived = true;
        const parsed = parseJson(body, "CHECK");
        const checkpoint = typeof parsed.checkpoint === "string" ? parsed.checkpoint : null;
        let fp: Fingerprint | undefined;
        if (typeof parsed.count === "number" && typeof parsed.xor === "string" && /^[0-9a-f]{32}$/.test(parsed.xor)) {
          fp = { count: parsed.count, xor: fromHex(parsed.xor) };
        }
        peerCheck.resolve({ checkpoint, fp });
        return;
      }
      case RECON: {
        if (!reconOpen && !checkReceived) throw new ProtocolError("The peer sent a reconciliation message out of turn");
        reconInbox.push(decodeRecon(body, 1));
        reconWaiter?.();
        return;
      }
      case NODE: {
        if (!receives) throw new ProtocolError("The peer sent a node, but this side only pushes");
        pending.push(body);
        if (pending.length >= NODES_PER_INGEST) await flush();
        return;
      }
      case NODES: {
        if (!receives) throw new ProtocolError("The peer sent nodes, but this side only pushes");
        for (const node of splitNodes(body)) {
          pending.push(node);
          if (pending.length >= NODES_PER_INGEST) await flush();
        }
        return;
      }
      case SYNCED:
        if (gotSynced) throw new ProtocolError("The peer sent SYNCED twice");
        await flush();
        gotSynced = true;
        send(Uint8Array.of(ACK));
        maybeFinish();
        return;
      case ACK:
        if (!sentSynced || gotAck) throw new ProtocolError("The peer acknowledged nodes that were not sent");
        gotAck = true;
        maybeFinish();
        return;
      case ERROR: {
        let info: Record<string, unknown> = {};
        try {
          info = parseJson(body, "ERROR");
        } catch {
          // Keep the generic message.
        }
        throw Object.assign(remoteError(info.name, info.message), { fromPeer: true });
      }
      default:
        throw new ProtocolError(`The peer sent an unknown message type ${String(type)}`);
    }
  };

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
          await handle(body);
          if (failed !== undefined || finished) return;
        }
        // Store what arrived once the peer pauses, so that a burst of small messages (one frame each over a
        // WebSocket) is stored in a few commits rather than one each.
        if (pending.length > 0) scheduleFlush();
      } catch (error) {
        const fromPeerError = (error as { fromPeer?: boolean }).fromPeer === true;
        fail(error, !fromPeerError && !(error instanceof ClosedError && log.closed));
      }
    },
    async close() {
      if (failed !== undefined || finished) return;
      try {
        await flush();
      } catch (error) {
        fail(error, true);
        return;
      }
      if (live && hello !== undefined && (gotSynced || !(receives && peerSends))) void finish();
      else if (decoder.buffered > 0) fail(new ProtocolError("The peer's stream ended in the middle of a frame"), true);
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
    synced: synced.promise,
    get stats() {
      return { ...stats };
    },
    async close() {
      while (inflight !== undefined) await inflight;
      if (!finished && failed === undefined) {
        if (live && hello !== undefined) void finish();
        else fail(new ProtocolError("The replication session was closed before it finished"), true);
      }
      return await done.promise;
    },
  };
}

/** Reads the keys of the first `length` nodes into a reconciliation index. */
async function buildIndex(log: Hyperlog<unknown>, length: number, signal: AbortSignal): Promise<KeyIndex> {
  const keys: string[] = [];
  for await (const page of pages(log, 0, length, signal)) for (const node of page) keys.push(node.key);
  return new KeyIndex(keys);
}

/** The nodes with these keys, in change order (ancestors first), in batches. */
async function* nodesByKey(
  log: Hyperlog<unknown>,
  keys: ReadonlySet<string>,
  length: number,
  signal: AbortSignal,
): AsyncGenerator<StoredNode[]> {
  if (keys.size === 0) return;
  if (keys.size * 8 > length) {
    // Many of them: one pass over the log is cheaper than a lookup each.
    for await (const page of pages(log, 0, length, signal)) yield page.filter((node) => keys.has(node.key));
    return;
  }
  const nodes: StoredNode[] = [];
  for (const key of keys) {
    const node = isKey(key) ? await log.storage.get(key) : undefined;
    if (node === undefined) throw new ProtocolError(`Node ${key} was offered to the peer but is not in the log`);
    nodes.push(node);
  }
  nodes.sort((a, b) => a.change - b.change);
  for (let i = 0; i < nodes.length; i += PAGE) yield nodes.slice(i, i + PAGE);
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
