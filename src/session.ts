/**
 * One side of a replication session, with no transport: messages in ({@link Session.receive}), messages out (its
 * return value and {@link Session.produce}). It reads and writes only the log. Drivers (`replicate.ts` for byte
 * streams, `channel.ts` for WebSockets and message channels, the relay) move the messages and ask it for nodes when
 * the transport has room. See `wire.ts` for the messages.
 *
 * 1. Both sides send HELLO at once, with their length (the snapshot) and their fingerprint of every key. Each side
 *    decides from the two HELLOs, then the two CHECKs, so both take the same path (`session-plan.ts`): an empty
 *    side gets everything; equal fingerprints mean nothing to send; the same checkpoint named on both sides means
 *    each sends what it added since; otherwise the sides reconcile (`session-recon.ts`, the smaller id leads), and
 *    a turn that finds nodes the peer lacks sends those whose links the peer holds at once, before the turn.
 * 2. A side that sends (modes `sync` and `push`) sends the nodes the peer lacks in its own change order (ancestors
 *    first), in NODES messages, never more than the peer's window ahead of the peer's CREDIT, then SYNCED
 *    (`session-send.ts`); the receiver stores them, grants CREDIT (first, with any reply), and answers SYNCED with
 *    ACK unless the SYNCED says every byte was credited already (`session-receive.ts`). A driver waits for the
 *    session to have more to send (`session-wake.ts`).
 * 3. Each side then stores a checkpoint for the other (two-way sessions). A non-live session ends; a live one
 *    forwards every node added to either log, never back to the peer it came from, under the same window.
 *
 * @module
 */
import { ClosedError, ProtocolError } from "./errors.ts";
import { toHex } from "./hex.ts";
import type { KeyIndex } from "./key-index.ts";
import type { LogHandle } from "./log-handle.ts";
import {
  decodeMessage,
  encodeMessage,
  ERROR,
  HELLO,
  type Hello,
  type Message,
  nodeBodySize,
  type ReplicationMode,
} from "./wire.ts";
import type { ReplicationStats } from "./replicate-types.ts";
import { ownHello, Planner, sessionSettings, storeCheckpoint } from "./session-plan.ts";
import { checkNodesInTurn, Intake } from "./session-receive.ts";
import { Outbox } from "./session-send.ts";
import { Wakeup } from "./session-wake.ts";
import { LinkRefs, NODES_REFS } from "./link-refs.ts";
import { NODES_LIVE } from "./live-decode.ts";
import { captureState, restoreState } from "./session-state.ts";
import { DEFAULT_WINDOW, type Plan, remoteError, type SessionOptions, type SessionState } from "./session-types.ts";

export { DEFAULT_WINDOW, type SessionOptions, type SessionState };

/**
 * One side of a replication session, with no I/O but the log's (see the module doc).
 *
 * @example Two sessions, messages carried by hand
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { Session } from "./session.ts";
 * const a = new Hyperlog();
 * const b = new Hyperlog();
 * await a.append("hello");
 * const sa = new Session(a), sb = new Session(b);
 * let toB = await sa.start(), toA = await sb.start();
 * while (!(sa.finished && sb.finished)) {
 *   [toB, toA] = [toB.concat(await sa.produce(1 << 16)), toA.concat(await sb.produce(1 << 16))];
 *   // What a side answers goes to the other side.
 *   [toB, toA] = [await sa.receive(toA), await sb.receive(toB)];
 * }
 * console.assert(b.length === 1 && sb.stats.nodesReceived === 1);
 * ```
 */
export class Session {
  /** What the session did so far. */
  readonly stats: ReplicationStats = { nodesSent: 0, nodesReceived: 0, bytesSent: 0, bytesReceived: 0, roundTrips: 0 };
  readonly #log: LogHandle;
  readonly #mode: ReplicationMode;
  readonly #live: boolean;
  readonly #maxFrame: number;
  readonly #window: number;
  /** The most this side sends ahead of the peer's CREDIT (the peer's window, capped by `options.peerWindow`). */
  readonly #peerWindow: number;
  readonly #admit: ((sizes: readonly number[], live: boolean) => void) | undefined;
  readonly #linkRefs: boolean;
  readonly #freshNonce = toHex(crypto.getRandomValues(new Uint8Array(16)));
  #nonceOverride: string | undefined;
  #hello: Hello | undefined;
  #peer: Hello | undefined;
  /** The key index the HELLO's fingerprint came from, if any. */
  #index: KeyIndex | undefined;
  /** What decides the plan: the HELLOs, the CHECKs, or the reconciliation. */
  readonly #planner: Planner;
  #gotSynced = false;
  #gotAck = false;
  #synced = false;
  #finished = false;
  #failed: Error | undefined;
  /** What this side sends: the plan, the cursors, the bytes sent and credited. */
  readonly #out: Outbox;
  /** What this side receives: the peer's nodes stored, the credit owed for them. */
  readonly #in: Intake;
  #busy: Promise<unknown> = Promise.resolve();
  readonly #wakeup = new Wakeup();

  /** A session for `log`; `options` as for `Hyperlog.replicate`, plus the relay's `admit` hook. */
  constructor(log: LogHandle, options: SessionOptions = {}) {
    const settings = sessionSettings(options);
    this.#log = log;
    this.#mode = settings.mode;
    this.#live = settings.live;
    this.#maxFrame = settings.maxFrame;
    this.#window = settings.window;
    this.#admit = options.admit;
    this.#in = new Intake(log, this.stats);
    this.#planner = new Planner(log, this.stats);
    this.#peerWindow = options.peerWindow ?? Infinity;
    this.#linkRefs = options.linkRefs !== false;
    this.#out = new Outbox(
      log,
      options.read ?? ((since, until, limit) => log.storage.read({ since, until, limit, reverse: false })),
    );
    this.#out.pages = options.pages;
  }

  get #nonce(): string {
    return this.#nonceOverride ?? this.#freshNonce;
  }

  /** Whether this side sends nodes to the peer (once the peer's HELLO says it takes them). */
  get #sends(): boolean {
    return this.#mode !== "pull" && this.#peer !== undefined && this.#peer.mode !== "push";
  }

  /** Whether the peer sends nodes to this side. */
  get #receives(): boolean {
    return this.#mode !== "push" && this.#peer !== undefined && this.#peer.mode !== "pull";
  }

  /** The initial exchange is complete: each side has every node the other had when the session began. */
  get synced(): boolean {
    return this.#synced;
  }

  /** The session is over (cleanly, or failed). */
  get finished(): boolean {
    return this.#finished || this.#failed !== undefined;
  }

  /** Whether the session is live. */
  get live(): boolean {
    return this.#live;
  }

  /** The largest message this side takes. */
  get maxFrame(): number {
    return this.#maxFrame;
  }

  /** The largest message the peer takes (once its HELLO came). */
  get peerMaxFrame(): number {
    return this.#peer?.maxFrame ?? this.#maxFrame;
  }

  /** Bytes of node messages this side lets the peer have in flight. */
  get window(): number {
    return this.#window;
  }

  /** The peer's HELLO, once it came. */
  get peer(): Readonly<Hello> | undefined {
    return this.#peer;
  }

  /**
   * What the session waits for from the peer, for a deadline's error message, or `undefined` when it waits for
   * nothing (a live session in sync, or one that is over).
   */
  get waitingFor(): string | undefined {
    if (this.finished) return undefined;
    if (this.#peer === undefined) return "its HELLO";
    if (this.#planner.checking) return "its CHECK";
    if (this.#planner.reconciling) return "its reconciliation reply";
    if (this.#out.plan !== undefined && this.#sends && this.#out.windowShut(this.#peer.window)) {
      return "CREDIT for the nodes sent";
    }
    if (this.#out.sentSynced && !this.#gotAck) return "its ACK";
    if (this.#receives && !this.#gotSynced && this.#out.plan !== undefined) return "its nodes and SYNCED";
    return undefined;
  }

  /** Runs `work` after the session's earlier work (receive and produce never interleave). */
  #serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#busy.then(work);
    this.#busy = run.catch(() => {});
    return run;
  }

  #poke(): void {
    this.#wakeup.poke();
  }

  /**
   * The state to resume from (see {@link SessionState}), or `undefined` when the session is in a phase that cannot
   * resume (before the HELLOs, during reconciliation, sending a reconciled set, or over).
   */
  get state(): SessionState | undefined {
    if (this.finished || this.#hello === undefined || this.#peer === undefined || this.#planner.checking) {
      return undefined;
    }
    return captureState({
      hello: this.#hello,
      peer: this.#peer,
      flags: [this.#out.sentSynced, this.#gotSynced, this.#gotAck, this.#synced],
      owedCredit: this.#in.owedCredit,
      fromPeer: this.#in.fromPeer,
      stats: this.stats,
    }, this.#out);
  }

  /**
   * A session that carries on from `state` (see {@link Session.state}) on a new transport of the same peer: a relay
   * woken from hibernation. Its driver must not start it again.
   *
   * @example
   * ```ts
   * import { Hyperlog } from "../mod.ts";
   * import { Session } from "./session.ts";
   * const a = new Hyperlog(), b = new Hyperlog();
   * const sa = new Session(a, { live: true }), sb = new Session(b, { live: true });
   * const [ha, hb] = [await sa.start(), await sb.start()];
   * await sa.receive(hb);
   * await sb.receive(ha);
   * const again = Session.resume(a, { live: true }, sa.state!);
   * console.assert(again.peer?.id === b.id);
   * ```
   */
  static resume(log: LogHandle, options: SessionOptions, state: SessionState): Session {
    if (state?.v !== 1) throw new TypeError("Not a session state this version can resume");
    const session = new Session(log, options);
    session.#restore(state);
    return session;
  }

  #restore(state: SessionState): void {
    const parts = restoreState(state, this.#out);
    this.#hello = parts.hello;
    this.#peer = this.#capped(parts.peer);
    this.#nonceOverride = this.#hello.nonce;
    [this.#out.sentSynced, this.#gotSynced, this.#gotAck, this.#synced] = parts.flags;
    this.#in.owedCredit = parts.owedCredit;
    this.#in.fromPeer = parts.fromPeer;
    Object.assign(this.stats, parts.stats);
  }

  /** Whether this session was resumed from a state (its HELLO is already sent). */
  get resumed(): boolean {
    return this.#nonceOverride !== undefined;
  }

  /** The messages that open the session: this side's HELLO. */
  start(): Promise<Uint8Array[]> {
    return this.#serial(async () => {
      const { hello, index } = await ownHello(this.#log, {
        mode: this.#mode,
        live: this.#live,
        nonce: this.#nonce,
        maxFrame: this.#maxFrame,
        window: this.#window,
        ...(this.#linkRefs ? { refs: true } : {}),
      });
      this.#index = index;
      this.#out.liveCursor = hello.length;
      this.#hello = hello;
      return [encodeMessage({ type: "hello", hello })];
    });
  }

  /**
   * Handles messages from the peer, in order; returns the messages to send back. Throws the error that ends the
   * session (send {@link Session.errorMessage} of it to the peer).
   */
  receive(bodies: readonly Uint8Array[]): Promise<Uint8Array[]> {
    return this.#serial(async () => {
      const out: Uint8Array[] = [];
      try {
        for (const body of bodies) {
          if (this.finished) break;
          if (this.#peer === undefined && body[0] !== HELLO && body[0] !== ERROR && body.length > 0) {
            throw new ProtocolError(`The peer sent message type ${body[0]} before its HELLO`);
          }
          const refsMessage = body[0] === NODES_REFS || body[0] === NODES_LIVE;
          const message = refsMessage ? await this.#decodeRefs(body) : decodeMessage(body);
          if (message.type === "nodes") {
            if (!refsMessage) this.#out.refs?.received(message.nodes);
            this.#checkNodes(message);
            await this.#in.add(message.nodes, message.bytes);
            continue;
          }
          await this.#in.flush();
          await this.#handle(message, out);
        }
        await this.#in.flush();
      } finally {
        // Credit goes back in quarters of the window (and with ACK): one small message per many nodes; all of it, first,
        // with any reply (the peer then knows what was stored before it acts on the reply: see `Outbox.early`).
        if (!this.finished && out.length > 0) out.unshift(...this.#in.credit());
        else if (!this.finished) out.push(...this.#in.credit(this.#window / 4));
        this.#poke();
      }
      return out;
    });
  }

  /** A NODES_REFS or NODES_LIVE message, its references resolved (see link-refs.ts, live-decode.ts). */
  async #decodeRefs(body: Uint8Array): Promise<Message> {
    const offered = this.#peer !== undefined && this.#hello?.refs === true;
    const nodes = await this.#in.decodeRefs(this.#out.refs, body, this.#maxFrame, offered, !!this.#out.pages);
    return { type: "nodes", nodes, bytes: body.length };
  }

  #checkNodes(message: Extract<Message, { type: "nodes" }>): void {
    // The peer's HELLO came: `receive` refuses any other message before it.
    this.#admit?.(message.nodes.map(nodeBodySize), this.#gotSynced);
    checkNodesInTurn(this.#mode, this.#peer!.mode, this.#out.plan !== undefined || this.#planner.reconStarted);
  }

  async #handle(message: Exclude<Message, { type: "nodes" }>, out: Uint8Array[]): Promise<void> {
    if (this.#peer === undefined && message.type !== "hello" && message.type !== "error") {
      throw new ProtocolError(`The peer sent message type ${message.type.toUpperCase()} before its HELLO`);
    }
    switch (message.type) {
      case "hello":
        if (this.#peer !== undefined) throw new ProtocolError("The peer sent HELLO twice");
        if (this.#hello === undefined) throw new ProtocolError("The peer's HELLO came before this side started");
        await this.#decide(message.hello, out);
        return;
      case "check":
        return this.#setPlan(await this.#planner.check(message.checkpoint, out));
      case "recon": {
        const at = out.length;
        this.#setPlan(this.#planner.recon(message, out));
        // Nodes found missing so far go now, before this side's turn (not a turn later, once the plan is known).
        const found = message.end && this.#sends && this.#out.plan === undefined ? this.#planner.found : undefined;
        if (found !== undefined) {
          out.splice(at, 0, ...await this.#out.early(found, this.#hello!.length, this.#peer!, this.stats));
        }
        return;
      }
      case "synced":
        if (!this.#receives || this.#out.plan === undefined) {
          throw new ProtocolError("The peer sent SYNCED out of turn");
        }
        if (this.#gotSynced) throw new ProtocolError("The peer sent SYNCED twice");
        this.#gotSynced = true;
        out.push(...this.#in.synced(message.credited === true));
        await this.#maybeSynced();
        return;
      case "ack":
        if (!this.#out.sentSynced || this.#gotAck) {
          throw new ProtocolError("The peer acknowledged nodes that were not sent");
        }
        this.#gotAck = true;
        this.#out.credited = Math.max(this.#out.credited, this.#out.syncedAt);
        await this.#maybeSynced();
        return;
      case "credit":
        this.#out.credit(message.bytes);
        return;
      case "error":
        throw remoteError(message.name, message.message);
    }
  }

  /** The peer's HELLO with its window capped by `options.peerWindow`. */
  #capped(peer: Hello): Hello {
    return peer.window > this.#peerWindow ? { ...peer, window: this.#peerWindow } : peer;
  }

  /** Both HELLOs are known: both sides take the same path from them. */
  async #decide(peer: Hello, out: Uint8Array[]): Promise<void> {
    const log = this.#log;
    if (peer.id === log.id) {
      throw new ProtocolError(`Both sides are the same log (id ${log.id}); a log cannot replicate with itself`);
    }
    this.#peer = this.#capped(peer);
    // Link references (link-refs.ts): kept when either side takes them; not in a resumed session (memory only).
    if (!this.resumed && (this.#hello!.refs === true || peer.refs === true)) {
      this.#out.refs = new LinkRefs(peer.refs === true);
    }
    if (!this.#sends && !this.#receives) {
      throw new ProtocolError(
        `Incompatible replication modes: ${this.#mode} on this side with ${peer.mode} on the other, so no node can flow`,
      );
    }
    // An empty side about to take everything: its index is kept only if it stays small (see KeyIndex.coming).
    if (this.#index !== undefined && this.#hello!.count === 0 && this.#receives) this.#index.coming = peer.length;
    this.#index = undefined; // The log keeps it (or drops it); a session never holds it longer than this.
    this.#setPlan(await this.#planner.hello(this.#hello!, peer, out));
  }

  #setPlan(plan: Plan | undefined): void {
    if (plan === undefined) return;
    this.#out.plan = this.#sends ? plan : { kind: "none" };
    this.#poke();
  }

  /** Marks the initial exchange done when both ways are; stores the checkpoint of a two-way session. */
  async #maybeSynced(): Promise<void> {
    if (this.#synced || this.#out.plan === undefined) return;
    if (this.#out.syncedCredited) this.#gotAck = true;
    const sendDone = !this.#sends || this.#gotAck;
    const receiveDone = !this.#receives || this.#gotSynced;
    if (!(sendDone && receiveDone)) return;
    this.#synced = true;
    this.#out.acked = this.#hello!.length;
    await this.#saveCheckpoint();
    if (!this.#live) this.#finished = true;
  }

  async #saveCheckpoint(): Promise<void> {
    if (!this.#synced || this.#mode !== "sync" || this.#peer?.mode !== "sync") return;
    await storeCheckpoint(this.#log, this.#peer, this.#nonce, this.#out.acked, this.#in.fromPeer);
  }

  /**
   * The next messages to send when the transport has room for about `maxBytes`: nodes the peer lacks, then SYNCED,
   * then (live) new nodes. Empty when there is nothing to send now: wait for {@link Session.changed}.
   */
  produce(maxBytes: number): Promise<Uint8Array[]> {
    return this.#serial(async () => {
      if (this.finished || this.#out.plan === undefined || !this.#sends) return [];
      const live = this.#live && this.#synced ? this.#in.fromPeer : undefined;
      const out = await this.#out.produce(maxBytes, this.#peer!, this.#hello!.length, live, this.stats);
      await this.#maybeSynced(); // A SYNCED with every byte credited wants no ACK: this side has it already.
      return out;
    });
  }

  /**
   * Resolves when {@link Session.produce} may have something new: a message came, or (live) the log grew. Aborting
   * `signal` resolves it too.
   */
  changed(signal: AbortSignal): Promise<void> {
    const grows = this.#live && this.#synced && this.#sends && this.#out.buffer.length === 0;
    return this.#wakeup.wait(signal, grows ? () => this.#log.waitForLength(this.#out.liveCursor) : undefined);
  }

  /** Bytes of the peer's node messages stored and not yet credited back. */
  get owedCredit(): number {
    return this.finished ? 0 : this.#in.owedCredit;
  }

  /**
   * The CREDIT for what was stored and not yet credited (a driver sends it when the peer pauses, so that a live
   * peer's checkpoint keeps up with what this side holds), or nothing.
   */
  flushCredit(): Uint8Array[] {
    return this.finished ? [] : this.#in.credit();
  }

  /** Whether the log closed under a live session (which then ends cleanly). */
  get logClosed(): boolean {
    return this.#log.closed;
  }

  /**
   * Ends the session from this side (a live one cleanly, once in sync), storing the checkpoint it got to. Returns
   * the error if it ended before it was in sync.
   */
  async end(): Promise<Error | undefined> {
    await this.#busy;
    if (this.#failed !== undefined) return this.#failed;
    if (this.#finished) return undefined;
    if (this.#live && this.#synced) {
      this.#finished = true;
      await this.#saveCheckpoint();
      return undefined;
    }
    return this.fail(new ProtocolError("The connection closed before the replication session finished"));
  }

  /** Marks the session failed with `error` (the first one counts) and returns it. */
  fail(error: unknown): Error {
    if (this.#failed === undefined && !this.#finished) {
      this.#failed = error instanceof Error ? error : new ProtocolError(String(error));
      this.#poke();
      if (this.#synced && this.#live) void this.#saveCheckpoint();
    }
    return this.#failed ?? (error as Error);
  }

  /** The error that ended the session, if one did. */
  get error(): Error | undefined {
    return this.#failed;
  }

  /** The ERROR message telling the peer why the session ends, or `undefined` when the peer should not be told. */
  errorMessage(error: Error): Uint8Array | undefined {
    if ((error as { fromPeer?: boolean }).fromPeer === true) return undefined;
    if (error instanceof ClosedError && this.#log.closed) return undefined;
    return encodeMessage({ type: "error", name: error.name, message: error.message });
  }
}
