/**
 * The one driver every transport shares: it moves messages between a {@link Session} and a
 * {@link MessageTransport} (a byte stream, a WebSocket, a message channel, a relay's socket), asks the session for
 * nodes only when the transport has room, bounds what waits to be handled, and keeps the deadlines: no HELLO within
 * the handshake deadline, or an initial exchange that waits longer than the idle deadline for a reply it needs, ends
 * the session with an error naming what it waited for.
 *
 * @module
 */
import { HyperlogError, ProtocolError, TimeoutError } from "./errors.ts";
import type { Replication, ReplicationStats } from "./replicate-types.ts";
import type { Session } from "./session.ts";

/**
 * What the driver needs of a transport. Messages are whole bodies (a byte stream frames them).
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { Driver, type MessageTransport } from "./driver.ts";
 * import { Session } from "./session.ts";
 * import { HELLO } from "./wire.ts";
 * const sent: Uint8Array[] = [];
 * const transport: MessageTransport = {
 *   send: (body) => void sent.push(body),
 *   room: () => 1 << 20,
 *   drained: () => Promise.resolve(),
 *   close: () => {},
 * };
 * const driver = new Driver(new Session(new Hyperlog()), transport);
 * await new Promise((resolve) => setTimeout(resolve, 0));
 * console.assert(sent.length === 1 && sent[0]![0] === HELLO); // the peer never answers it
 * driver.fail(new Error("no peer")); // ends the session (and the transport)
 * ```
 */
export interface MessageTransport {
  /** Sends one message; returns the bytes it took on the transport (default: the body's length). */
  send(body: Uint8Array): number | void;
  /** Bytes the transport takes now without buffering more than it should (0 or less: full). */
  room(): number;
  /** Resolves when the transport may have room again. */
  drained(): Promise<void>;
  /** Ends the transport; with an error when the session failed. */
  close(error?: Error): void;
}

/**
 * Deadlines and bounds of a driver.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { Driver, type DriverOptions } from "./driver.ts";
 * import { TimeoutError } from "./errors.ts";
 * import { Session } from "./session.ts";
 * const options: DriverOptions = { handshakeTimeout: 20, idleTimeout: 30_000 };
 * const silent = { send() {}, room: () => 1 << 20, drained: () => Promise.resolve(), close() {} };
 * const error = await new Driver(new Session(new Hyperlog()), silent, options).done.catch((e) => e);
 * console.assert(error instanceof TimeoutError); // the peer said no HELLO within 20 ms
 * ```
 */
export interface DriverOptions {
  /** Milliseconds to wait for the peer's HELLO (default 10 000). */
  handshakeTimeout?: number | undefined;
  /** Milliseconds an exchange may wait for a reply it needs (default 30 000). */
  idleTimeout?: number | undefined;
  /** Bytes of received messages waiting to be handled, at most (default: the window plus two frames). */
  maxInbox?: number | undefined;
  /**
   * Wait a turn of the event loop before handling what arrived, so that messages delivered as separate events (a
   * Durable Object's sockets) are handled, and their nodes stored, together.
   */
  coalesce?: boolean | undefined;
  /** Whether the owner calls {@link Driver.kick} when the log grows, instead of the driver waiting for it. */
  kicked?: boolean | undefined;
  /** Called after each batch of messages handled and each batch sent (a relay saves the session's state then). */
  onChange?: (() => void) | undefined;
}

/**
 * Milliseconds without a new batch after which a CREDIT for less than a quarter of the window goes, in the initial
 * exchange (a session grants each quarter at once, with its reply, and what is owed also goes first with the next
 * message this side sends): a stream of nodes is credited in quarters of the window instead of once a batch. Every
 * CREDIT is a write that wakes the peer; with a second load on the machine each one cost the receiver of a 1 M-node
 * sync about a millisecond. The peer's window stays open meanwhile (it stalls only once it has sent all it may and
 * this side has stored all of it, for these 2 ms at the end).
 */
const CREDIT_WAIT = 2;

/** Bytes of room the transport must have before the driver asks for nodes (at most a quarter of its capacity). */
const MIN_ROOM = 32 * 1024;

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

/**
 * A running session over a transport: feed it the peer's messages with {@link Driver.deliver} and tell it when the
 * transport ends with {@link Driver.ended}; it is a {@link Replication} without the streams.
 *
 * @example Two logs over an in-process pair of transports
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { Driver, type MessageTransport } from "./driver.ts";
 * import { Session } from "./session.ts";
 * const a = new Hyperlog(), b = new Hyperlog();
 * await a.append("x");
 * let da!: Driver, db!: Driver;
 * const to = (peer: () => Driver): MessageTransport => ({
 *   send: (body) => void queueMicrotask(() => peer().deliver(body)),
 *   room: () => 1 << 20,
 *   drained: () => Promise.resolve(),
 *   close: () => queueMicrotask(() => peer().ended()),
 * });
 * da = new Driver(new Session(a), to(() => db));
 * db = new Driver(new Session(b), to(() => da));
 * await Promise.all([da.done, db.done]);
 * console.assert(b.length === 1);
 * ```
 */
export class Driver {
  readonly #session: Session;
  readonly #transport: MessageTransport;
  readonly #done = deferred<ReplicationStats>();
  readonly #synced = deferred<void>();
  readonly #stop = new AbortController();
  readonly #handshakeTimeout: number;
  readonly #idleTimeout: number;
  readonly #maxInbox: number;
  readonly #onChange: (() => void) | undefined;
  readonly #kicked: boolean;
  readonly #coalesce: boolean;
  #pumping = true;
  /** The most room the transport ever had (about its buffer's size). */
  #capacity = 0;
  #again = false;
  #inbox: Uint8Array[] = [];
  #inboxBytes = 0;
  /** Messages delivered to the inbox, and handled, so far; who waits for which count (`handledSoFar`). */
  #delivered = 0;
  #taken = 0;
  #waiters: [number, () => void][] = [];
  #handling = false;
  #handled: Promise<void> = Promise.resolve();
  #over = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #creditTimer: ReturnType<typeof setTimeout> | undefined;
  #lastProgress = Date.now();
  #started: Promise<void>;

  /** Starts the session: sends its HELLO, then nodes as the transport takes them. */
  constructor(session: Session, transport: MessageTransport, options: DriverOptions = {}) {
    this.#session = session;
    this.#transport = transport;
    this.#handshakeTimeout = options.handshakeTimeout ?? 10_000;
    this.#idleTimeout = options.idleTimeout ?? 30_000;
    this.#maxInbox = options.maxInbox ?? session.window + 2 * session.maxFrame;
    this.#onChange = options.onChange;
    this.#kicked = options.kicked === true;
    this.#coalesce = options.coalesce === true;
    this.#arm();
    this.#started = session.resumed ? Promise.resolve() : session.start().then((out) => this.#send(out));
    this.#started.then(() => this.#pump()).catch((error) => this.#fail(error));
  }

  /** The session this driver runs. */
  get session(): Session {
    return this.#session;
  }

  /** Resolves with the stats when the session ends cleanly; rejects with the reason when it fails. */
  get done(): Promise<ReplicationStats> {
    return this.#done.promise;
  }

  /** Resolves when the initial exchange is complete. */
  get synced(): Promise<void> {
    return this.#synced.promise;
  }

  /** The stats so far (a copy). */
  get stats(): ReplicationStats {
    return { ...this.#session.stats };
  }

  /** Whether the session is over. */
  get over(): boolean {
    return this.#over;
  }

  /** The deadline now: the handshake one until the peer's HELLO, then the idle one (0: none). */
  #limit(): number {
    if (this.#session.peer !== undefined) return this.#idleTimeout;
    if (this.#idleTimeout === 0) return this.#handshakeTimeout;
    return this.#handshakeTimeout === 0 ? this.#idleTimeout : Math.min(this.#handshakeTimeout, this.#idleTimeout);
  }

  #arm(): void {
    clearTimeout(this.#timer);
    const limit = this.#limit();
    if (this.#over || limit === 0) return;
    this.#timer = setTimeout(() => {
      const what = this.#session.waitingFor;
      if (what !== undefined && Date.now() - this.#lastProgress >= limit - 5) {
        this.#fail(
          new TimeoutError(
            `Waited ${limit} ms for the peer's ${
              what.replace(/^its /, "")
            } and nothing arrived; is the peer still there?`,
          ),
        );
      } else this.#arm();
    }, Math.max(10, limit - (Date.now() - this.#lastProgress)));
  }

  #progress(): void {
    this.#lastProgress = Date.now();
  }

  #send(bodies: readonly Uint8Array[]): void {
    if (bodies.length === 0) return;
    for (const body of bodies) {
      const bytes = this.#transport.send(body);
      this.#session.stats.bytesSent += typeof bytes === "number" ? bytes : body.length;
    }
    this.#progress();
  }

  /**
   * Sends nodes (and SYNCED) while the transport has room. Then, unless the driver is kicked from outside, waits for
   * the session to have more (a message came, or the log grew).
   */
  async #pump(): Promise<void> {
    const session = this.#session;
    while (!this.#over) {
      const room = this.#transport.room();
      this.#capacity = Math.max(this.#capacity, room);
      // Wait for a good part of the transport's room: filling every few bytes it frees makes a message per node.
      if (room <= 0 || room < Math.min(MIN_ROOM, this.#capacity / 4)) {
        await Promise.race([this.#transport.drained(), this.#donePromise()]);
        continue;
      }
      const changed = this.#kicked ? undefined : session.changed(this.#stop.signal);
      this.#again = false;
      const out = await session.produce(room);
      if (this.#over) return;
      if (out.length > 0) {
        // What was stored and not yet credited goes first, in the same write (and before a SYNCED).
        const credit = session.flushCredit();
        this.#send(credit.length > 0 ? [...credit, ...out] : out);
        this.#onChange?.();
        // A SYNCED that wants no ACK may complete the initial exchange, or be the session's last message.
        if (session.synced) this.#synced.resolve();
        if (session.finished) return void this.#finish();
        continue;
      }
      if (session.synced && session.live && session.logClosed) return void this.#finish();
      if (changed === undefined) {
        if (this.#again) continue;
        this.#pumping = false;
        return;
      }
      await changed;
    }
  }

  /**
   * Asks the session for nodes again (a driver made with `kicked: true` waits for nothing by itself: a relay kicks
   * its sockets' drivers when the log grows, so no promise outlives the event that made it).
   */
  kick(): void {
    if (this.#over || !this.#kicked) return;
    this.#again = true;
    if (this.#pumping) return;
    this.#pumping = true;
    this.#pump().catch((error) => this.#fail(error));
  }

  #donePromise(): Promise<unknown> {
    return this.#done.promise.catch(() => {});
  }

  /**
   * A message from the peer (`wireBytes`: what it took on the transport, for the stats). Past the inbox bound the
   * session fails instead of queueing more.
   */
  deliver(body: Uint8Array, wireBytes: number = body.length): void {
    if (this.#over) return;
    this.#session.stats.bytesReceived += wireBytes;
    this.#inboxBytes += body.length;
    if (this.#inboxBytes > this.#maxInbox) {
      this.#fail(
        new ProtocolError(
          `The peer sent more than ${this.#maxInbox} bytes that were not yet handled (its window is ` +
            `${this.#session.window} bytes); it must wait for CREDIT`,
        ),
      );
      return;
    }
    this.#inbox.push(body);
    this.#delivered++;
    this.#progress();
    if (!this.#handling) {
      this.#handling = true;
      this.#handled = this.#handle();
    }
  }

  /**
   * Resolves once the handling loop has nothing left: every message delivered so far handled, and any delivered
   * meanwhile (or the session is over).
   */
  get handled(): Promise<void> {
    return this.#handled;
  }

  /**
   * Resolves once the messages delivered so far are handled, whatever came after them (or once the session is over):
   * unlike {@link Driver.handled}, which waits until the handling loop has nothing left, a steady stream of messages
   * does not keep it waiting. A relay host counts a message as held until then.
   */
  handledSoFar(): Promise<void> {
    if (!this.#handling) return Promise.resolve();
    const target = this.#delivered;
    return new Promise((resolve) => this.#waiters.push([target, resolve]));
  }

  /** Resolves the {@link Driver.handledSoFar} promises of messages up to `count` handled (all with `Infinity`). */
  #release(count: number): void {
    let i = 0;
    while (i < this.#waiters.length && this.#waiters[i]![0] <= count) this.#waiters[i++]![1]();
    if (i > 0) this.#waiters.splice(0, i);
  }

  async #handle(): Promise<void> {
    try {
      await this.#started;
      while (this.#inbox.length > 0 && !this.#over) {
        if (this.#coalesce) await new Promise((resolve) => setTimeout(resolve, 0));
        const batch = this.#inbox;
        this.#inbox = [];
        const out = await this.#session.receive(batch);
        this.#inboxBytes -= batch.reduce((n, b) => n + b.length, 0);
        this.#release(this.#taken += batch.length);
        this.#send(out);
        this.#onChange?.();
        this.kick();
        this.#arm();
        if (this.#session.owedCredit > 0) this.#credit();
        if (this.#session.synced) this.#synced.resolve();
        if (this.#session.finished) this.#finish();
      }
    } catch (error) {
      this.#fail(error);
    } finally {
      this.#handling = false;
      this.#release(Infinity);
    }
  }

  /**
   * Credits what was stored: in the initial exchange once no batch came for {@link CREDIT_WAIT} ms (or sooner with
   * the next message this side sends), once in sync at once (a live peer's checkpoint then never lags what this side
   * holds).
   */
  #credit(): void {
    if (this.#session.synced) {
      this.#send(this.#session.flushCredit());
      return;
    }
    // Pushed back by each batch: while the peer's nodes keep coming, the quarters the session grants are the CREDITs.
    clearTimeout(this.#creditTimer);
    this.#creditTimer = setTimeout(() => {
      this.#creditTimer = undefined;
      if (!this.#over) this.#send(this.#session.flushCredit());
    }, CREDIT_WAIT);
  }

  /** The transport ended from the peer's side; `error` when it failed. */
  ended(error?: Error): void {
    if (this.#over) return;
    void this.#handled.then(async () => {
      if (this.#over) return;
      if (error !== undefined) {
        this.#fail(new ProtocolError(`The connection to the peer failed: ${error.message}`), false);
        return;
      }
      if (this.#session.synced && this.#session.live) {
        await this.#session.end();
        this.#finish();
      } else this.#fail(new ProtocolError("The peer closed the connection before the replication session finished"));
    });
  }

  /** Ends the session from this side: cleanly once a live session is in sync, else with an error. */
  async close(): Promise<ReplicationStats> {
    await this.#handled;
    if (!this.#over) {
      if (this.#session.live && this.#session.synced) {
        await this.#session.end();
        this.#finish();
      } else this.#fail(new ProtocolError("The replication session was closed before it finished"));
    }
    return await this.#done.promise;
  }

  #finish(): void {
    if (this.#over) return;
    this.#over = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#creditTimer);
    this.#stop.abort();
    this.#synced.resolve();
    this.#transport.close();
    this.#done.resolve({ ...this.#session.stats });
  }

  #fail(error: unknown, tell = true): void {
    if (this.#over) return;
    const err = this.#session.fail(
      error instanceof Error ? error : new HyperlogError(String(error)),
    );
    this.#over = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#creditTimer);
    this.#stop.abort();
    const message = tell ? this.#session.errorMessage(err) : undefined;
    if (message !== undefined) {
      try {
        this.#send([message]);
      } catch {
        // The transport is gone: nothing reaches the peer.
      }
    }
    this.#transport.close(err);
    this.#synced.reject(err);
    this.#done.reject(err);
  }

  /** Fails the session with `error` (a transport-level refusal, such as a message over the frame limit). */
  fail(error: Error): void {
    this.#fail(error);
  }

  /** This driver as a {@link Replication} with the given streams. */
  replication(readable: ReadableStream<Uint8Array>, writable: WritableStream<Uint8Array>): Replication {
    const stats = (): ReplicationStats => this.stats;
    return {
      readable,
      writable,
      done: this.done,
      synced: this.synced,
      get stats(): ReplicationStats {
        return stats();
      },
      close: () => this.close(),
    };
  }
}
