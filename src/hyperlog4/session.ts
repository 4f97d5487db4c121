/**
 * hyperlog 4.12.1's replication protocol (its lib/replicate.js and lib/protocol.js), as a message-level session
 * with no I/O: the driver hands it each message received, in order, and gives it a `send` for messages out and an
 * `end` for the end of its output. Messages are a type byte and a protocol buffer (see `messages.ts`): 0 handshake,
 * 1 have, 2 want, 3 node, 4 sentHeads, 5 sentWants. Peers trade, for each writer's log, the highest seq they have
 * (`have`), ask for what they miss (`want`) and send the nodes in change order, each after the logs it links into.
 *
 * Compared with the original: a received node is stored by the new log, which checks its key against its content
 * and its links, and by hyperlog 4's rules (`H4Log.write`); nodes waiting for their log's earlier nodes wait in a
 * bounded queue (`maxPending`); a live session does not send a node back to the peer it came from; a node that is
 * signed with an Ed25519 identity (whose key covers the identity, so a hyperlog 4 peer cannot check it) ends the
 * session with a clear error instead of being refused by the peer with "Checksum mismatch".
 *
 * @module
 */
import { ProtocolError } from "../errors.ts";
import type { H4Log } from "./h4-log.ts";
import type { H4LogEntry } from "./log-index.ts";
import {
  decodeH4Handshake,
  decodeH4Log,
  decodeH4Node,
  encodeH4Handshake,
  encodeH4Log,
  encodeH4Node,
  type H4Node,
} from "./messages.ts";

/**
 * Options of a hyperlog 4 replication session.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../log.ts";
 * import { H4Log } from "./h4-log.ts";
 * import { decodeH4Handshake } from "./messages.ts";
 * import { H4Session, type H4SessionOptions } from "./session.ts";
 * let first!: (message: Uint8Array) => void;
 * const sent = new Promise<Uint8Array>((resolve) => first = resolve);
 * const options: H4SessionOptions = { mode: "push", live: true, metadata: new Uint8Array([7]) };
 * const io = { send: async (m: Uint8Array) => first(m), end: async () => {}, event() {} };
 * const session = new H4Session(new H4Log(new Hyperlog()), options, io);
 * session.start();
 * const { mode, live, metadata } = decodeH4Handshake(await sent, 1); // its handshake says the options
 * session.stop();
 * console.assert(mode === "push" && live === true && metadata?.[0] === 7);
 * ```
 */
export interface H4SessionOptions {
  /** "sync" (both ways, the default), "push" or "pull". */
  mode?: "sync" | "push" | "pull" | undefined;
  /** Stay open after the sync and send new nodes both ways (either side may ask). */
  live?: boolean | undefined;
  /** Opaque bytes for the peer (its `metadata` event). */
  metadata?: Uint8Array | undefined;
  /** The most received nodes that may wait for earlier nodes of their log (default 100 000). */
  maxPending?: number | undefined;
  /**
   * Milliseconds the initial exchange may go without a message from the peer before the session fails (default
   * 120 000; 0 for none). A live session has no deadline once synced.
   */
  idleTimeout?: number | undefined;
}

/**
 * What the session tells its driver: messages to send, the end of its output, and hyperlog 4's stream events
 * (`push`, `pull`, `live`, `metadata`).
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../log.ts";
 * import { H4Log } from "./h4-log.ts";
 * import { encodeH4Handshake } from "./messages.ts";
 * import { H4Session, type H4SessionIO } from "./session.ts";
 * const events: string[] = [];
 * const io: H4SessionIO = { send: async () => {}, end: async () => {}, event: (name) => void events.push(name) };
 * const session = new H4Session(new H4Log(new Hyperlog()), {}, io);
 * session.start();
 * await session.receive(encodeH4Handshake({ version: 1, mode: "sync", metadata: new Uint8Array([1]) }));
 * session.stop();
 * console.assert(events.includes("metadata")); // the peer's metadata, as a hyperlog 4 stream event
 * ```
 */
export interface H4SessionIO {
  /** Queues one message (a type byte and a protocol buffer) for sending. */
  send(message: Uint8Array): Promise<void>;
  /** Resolves when the output has room (the node loops wait for it; replies to the peer do not). */
  drain?(): Promise<void>;
  /** Ends the output (the sync is finished and the session is not live). */
  end(): Promise<void>;
  /** A hyperlog 4 stream event. */
  event(name: "push" | "pull" | "live" | "metadata", detail?: unknown): void;
}

class SortedQueue<T extends { change: number }> {
  list: T[] = [];
  #wait: ((item: T) => void) | undefined;
  push(item: T): void {
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (item.change < this.list[mid]!.change) hi = mid;
      else lo = mid + 1;
    }
    this.list.splice(lo, 0, item);
    const wait = this.#wait;
    if (wait !== undefined) {
      this.#wait = undefined;
      wait(this.list.shift()!);
    }
  }
  pull(): Promise<T> {
    if (this.list.length > 0) return Promise.resolve(this.list.shift()!);
    return new Promise((resolve) => (this.#wait = resolve));
  }
  get length(): number {
    return this.list.length;
  }
}

/**
 * One hyperlog 4 replication session over an {@link H4Log} (see the module doc).
 *
 * @example Two sessions wired to each other converge
 * ```ts
 * import { Hyperlog } from "../log.ts";
 * import { H4Log } from "./h4-log.ts";
 * import { H4Session } from "./session.ts";
 * const a = new H4Log(new Hyperlog());
 * const b = new H4Log(new Hyperlog());
 * await a.ready();
 * await b.ready();
 * await a.write([a.draft([], new TextEncoder().encode("hi"))], {});
 * let sa: H4Session, sb: H4Session;
 * const ended: Promise<void>[] = [];
 * let endA!: () => void, endB!: () => void;
 * ended.push(new Promise((r) => endA = r), new Promise((r) => endB = r));
 * sa = new H4Session(a, {}, { send: (m) => sb.receive(m), end: async () => { sb.remoteEnded(); endA(); }, event() {} });
 * sb = new H4Session(b, {}, { send: (m) => sa.receive(m), end: async () => { sa.remoteEnded(); endB(); }, event() {} });
 * sa.start();
 * sb.start();
 * await Promise.all(ended);
 * console.assert(b.log.length === 1);
 * ```
 */
export class H4Session {
  readonly #dag: H4Log;
  readonly #io: H4SessionIO;
  readonly #mode: "sync" | "push" | "pull";
  readonly #metadata: Uint8Array | undefined;
  readonly #maxPending: number;
  #live: boolean;
  #pushing = new Set<string>();
  #changes = 0;
  #missing = 0;
  #done = false;
  #ended = false;
  #remoteSentWants = false;
  #remoteSentHeads = false;
  #localSentWants = false;
  #localSentHeads = false;
  #gotHandshake = false;
  #gotSentHeads = false;
  #gotSentWants = false;
  #outgoing = new SortedQueue<H4LogEntry & { log: string; seq: number }>();
  #incoming = new SortedQueue<H4Node>();
  #received = new Set<string>();
  #stopped = false;
  #liveAbort = new AbortController();
  readonly #idleTimeout: number;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** The first error of the session (the driver destroys the stream with it). */
  error: Error | undefined;
  /** Called once with the first error. */
  onError: (err: Error) => void = () => {};
  /** Nodes sent and received. */
  readonly stats = { nodesSent: 0, nodesReceived: 0 };
  /** Called once when the initial exchange is complete (each side has what the other had). */
  onSynced: () => void = () => {};

  /** True once the initial exchange is complete. */
  get synced(): boolean {
    return this.#done;
  }

  /** A session over `dag`. Call `start()` to send the handshake. */
  constructor(dag: H4Log, options: H4SessionOptions, io: H4SessionIO) {
    const mode = options.mode ?? "sync";
    if (mode !== "sync" && mode !== "push" && mode !== "pull") {
      throw new TypeError(`Unknown replication mode ${JSON.stringify(mode)}: use "sync", "push" or "pull"`);
    }
    this.#dag = dag;
    this.#io = io;
    this.#mode = mode;
    this.#live = options.live === true;
    this.#metadata = options.metadata;
    this.#maxPending = options.maxPending ?? 100_000;
    this.#idleTimeout = options.idleTimeout ?? 120_000;
  }

  /** (Re)arms the deadline of the initial exchange. */
  #arm(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#idleTimeout <= 0 || this.#done || this.#stopped) return;
    this.#idleTimer = setTimeout(() => {
      this.#fail(
        new ProtocolError(
          `The hyperlog 4 peer sent nothing for ${this.#idleTimeout} ms before the sync finished; giving up`,
        ),
      );
    }, this.#idleTimeout);
    // The deadline alone does not keep a process alive (where timers have unref): a program with nothing else
    // to do exits as it would have with hyperlog 4.
    (this.#idleTimer as { unref?: () => void }).unref?.();
  }

  /** Sends the handshake and starts the loop that sends nodes. */
  start(): void {
    this.#arm();
    this.#guard(async () => {
      await this.#dag.ready();
      await this.#io.send(
        encodeH4Handshake({ version: 1, mode: this.#mode, metadata: this.#metadata, live: this.#live }),
      );
    });
    this.#guard(() => this.#outgoingLoop());
  }

  /** Stops the session (the stream was destroyed or closed). */
  stop(): void {
    this.#stopped = true;
    this.#liveAbort.abort();
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  #fail(err: Error): void {
    if (this.error !== undefined) return;
    this.error = err;
    this.stop();
    this.onError(err);
  }

  #guard(fn: () => Promise<void>): void {
    fn().catch((err) => this.#fail(err as Error));
  }

  async #outgoingLoop(): Promise<void> {
    while (!this.#stopped) {
      const entry = await this.#outgoing.pull();
      if (this.#stopped) return;
      const node = await this.#dag.node(entry.node);
      if (node === undefined) throw new ProtocolError(`Node ${entry.node} of log ${entry.log} is not stored`);
      if (node.log !== entry.log || node.seq !== entry.seq) {
        node.log = entry.log;
        node.seq = entry.seq;
      }
      this.#io.event("push");
      await this.#io.drain?.();
      await this.#sendNode(node);
      await this.#queueEntry(node.log, node.seq + 1);
    }
  }

  async #sendNode(node: H4Node): Promise<void> {
    const stored = await this.#dag.log.storage.get(node.key);
    if (stored?.identity !== undefined) {
      throw new ProtocolError(
        `Node ${node.key} is signed with an Ed25519 identity, which hyperlog 4 peers cannot check (its key covers ` +
          "the identity); replicate signed logs with the new protocol",
      );
    }
    this.stats.nodesSent++;
    await this.#io.send(encodeH4Node(node, 3));
  }

  /** Handles one received message; resolves when the next may be handed in. */
  async receive(message: Uint8Array): Promise<void> {
    if (this.#stopped) return;
    if (!this.#done) this.#arm();
    try {
      await this.#receive(message);
    } catch (err) {
      this.#fail(err as Error);
      throw err;
    }
  }

  async #receive(message: Uint8Array): Promise<void> {
    if (message.length === 0) throw new ProtocolError("A hyperlog 4 message is empty");
    switch (message[0]) {
      case 0:
        if (this.#gotHandshake) return;
        this.#gotHandshake = true;
        return await this.#onHandshake(decodeH4Handshake(message, 1));
      case 1:
        return await this.#onHave(decodeH4Log(message, 1));
      case 2: {
        const want = decodeH4Log(message, 1);
        return await this.#queueEntry(want.log, want.seq + 1);
      }
      case 3:
        return await this.receiveNode(decodeH4Node(message, 1));
      case 4:
        if (this.#gotSentHeads) return;
        this.#gotSentHeads = true;
        if (!this.#localSentWants && this.#missing === 0) await this.#sentWants();
        this.#remoteSentHeads = true;
        return await this.#update();
      case 5:
        if (this.#gotSentWants) return;
        this.#gotSentWants = true;
        this.#remoteSentWants = true;
        return await this.#update();
    }
  }

  async #onHandshake(handshake: { mode: string; metadata?: Uint8Array | undefined; live?: boolean | undefined }) {
    const remote = handshake.mode;
    if (remote !== "pull" && remote !== "push" && remote !== "sync") {
      throw new ProtocolError(`Remote uses invalid mode: ${remote}`);
    }
    if (remote === "pull" && this.#mode === "pull") throw new ProtocolError("Remote and local are both pulling");
    if (remote === "push" && this.#mode === "push") throw new ProtocolError("Remote and local are both pushing");
    this.#remoteSentWants = remote === "push";
    this.#remoteSentHeads = remote === "pull";
    this.#localSentWants = this.#mode === "push" || remote === "pull";
    this.#localSentHeads = this.#mode === "pull" || remote === "push";
    if (handshake.metadata !== undefined) this.#io.event("metadata", handshake.metadata);
    if (!this.#live) this.#live = handshake.live === true;
    if (this.#localSentHeads) return await this.#update();
    await this.#dag.sync();
    const heads = await this.#dag.lock(async () => {
      this.#changes = this.#dag.changes;
      return (await this.#dag.log.storage.heads()).sort();
    });
    for (const key of heads) {
      const node = await this.#dag.node(key);
      if (node !== undefined) await this.#sendHave(node.log);
    }
    this.#localSentHeads = true;
    await this.#io.send(new Uint8Array([4]));
    await this.#update();
  }

  async #onHave(head: { log: string; seq: number }): Promise<void> {
    const seq = await this.#dag.index.head(head.log);
    if (seq >= head.seq) return;
    this.#missing += head.seq - seq;
    await this.#io.send(encodeH4Log(2, { log: head.log, seq }));
  }

  async #sendHave(log: string): Promise<void> {
    if (this.#pushing.has(log)) return;
    this.#pushing.add(log);
    let seq = await this.#dag.index.head(log);
    for (;;) {
      const entry = await this.#dag.index.entry(log, seq);
      if (entry === undefined) return;
      if (entry.change <= this.#changes) break;
      seq--;
    }
    await this.#io.send(encodeH4Log(1, { log, seq }));
  }

  async #queueEntry(log: string, seq: number): Promise<void> {
    const entry = await this.#dag.index.entry(log, seq);
    if (entry === undefined || entry.change > this.#changes) return;
    for (const link of entry.links) await this.#sendHave(link);
    this.#outgoing.push({ change: entry.change, node: entry.node, links: [], log, seq });
  }

  /** Stores a received node (or queues it until the earlier nodes of its log arrive). */
  async receiveNode(node: H4Node): Promise<void> {
    if (this.#stopped) return;
    const stored = await this.#add(node);
    if (!stored) {
      if (this.#incoming.length >= this.#maxPending) {
        throw new ProtocolError(
          `More than ${this.#maxPending} received nodes wait for earlier nodes of their logs; the peer sends nodes ` +
            "out of order",
        );
      }
      this.#incoming.push(node);
      return;
    }
    await this.#afterAdd();
  }

  async #add(node: H4Node): Promise<boolean> {
    try {
      await this.#dag.write([{
        log: node.log,
        key: null,
        value: node.value,
        links: node.links,
        identity: node.identity ?? null,
        signature: node.signature ?? null,
      }], { hash: node.key, log: node.log, seq: node.seq, bubble: true, events: true });
    } catch (err) {
      if ((err as { notFound?: boolean }).notFound === true) return false;
      throw err;
    }
    this.#received.add(node.key);
    this.stats.nodesReceived++;
    return true;
  }

  async #afterAdd(): Promise<void> {
    for (;;) {
      this.#io.event("pull");
      if (!this.#localSentWants && --this.#missing === 0) return await this.#sentWants();
      if (this.#incoming.length === 0) return;
      const next = this.#incoming.list.shift()!;
      if (!(await this.#add(next))) {
        this.#incoming.push(next);
        return;
      }
    }
  }

  async #sentWants(): Promise<void> {
    this.#localSentWants = true;
    await this.#io.send(new Uint8Array([5]));
    await this.#update();
  }

  async #update(): Promise<void> {
    if (
      this.#done || !this.#localSentWants || !this.#localSentHeads || !this.#remoteSentWants || !this.#remoteSentHeads
    ) return;
    this.#done = true;
    this.#arm(); // clears the deadline
    this.onSynced();
    if (!this.#live) return await this.#finish();
    this.#io.event("live");
    this.#guard(() => this.#sendChanges());
  }

  async #finish(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    await this.#io.end();
  }

  /** The peer's input ended: hyperlog 4 then ends its output too. */
  remoteEnded(): void {
    this.#guard(() => this.#finish());
  }

  /** Ends the output now (closing a live session from this side). */
  close(): Promise<void> {
    this.stop();
    return this.#finish();
  }

  async #sendChanges(): Promise<void> {
    let since = this.#changes;
    const signal = this.#liveAbort.signal;
    while (!this.#stopped) {
      const page = await this.#dag.read(since, Infinity, 256, false);
      for (const node of page) {
        since = node.change;
        if (this.#received.has(node.key)) continue; // came from this peer: no echo
        await this.#io.drain?.();
        await this.#sendNode(node);
      }
      if (page.length === 0) await this.#dag.waitForChange(since, signal);
    }
  }
}
