/**
 * The relay's side of presence (the messages are in `src/presence-wire.ts`): it keeps each watching socket's peer
 * id and state, fans every change out to the other watching sockets of the log, forwards signals to one peer, and
 * keeps the bounds (state size, rate, peers per log, readers, heartbeat timeout, the log-wide fan-out budget, and
 * each reader's buffer). Nothing goes into the log.
 *
 * The fan-out budget (`fanout`, bytes per second for the whole log): one state sent by one socket goes to every
 * other socket of the log, so N sockets each at the rate limit make the relay send N^2 times what it takes in. Past
 * the budget, states are coalesced: a peer's join or update waits in a queue of peers (one place per peer, its
 * latest state read when it goes out), and the queue is sent in order as the budget refills. Leaves, signals (to
 * one peer), errors and welcomes are not delayed (each is bounded by what the socket itself sent), but count against
 * the budget. A socket that does not read (its `bufferedAmount` over {@link PRESENCE_HIGH_WATER}) gets no presence
 * frame: the peers it missed are noted (ids only) and their latest state, or their leave, is sent once it reads
 * again, so nothing queues for it but what is already in its buffer.
 *
 * A host that drops its memory (a hibernated Durable Object) gives a `PresenceStore` (`presence-store.ts`): the
 * states are written through to it and read back by the next hub, which drops the peers whose socket is gone
 * (telling the others).
 *
 * @module
 */
import { utf8Length } from "../mod.ts";
import { CLOSE } from "./limits.ts";
import { PRESENCE_CODE, type PresenceSettings } from "./presence-settings.ts";
import type { PresenceStore } from "./presence-store.ts";
import type { RelaySocket } from "./relay-core.ts";
import { bufferedOf } from "./socket-buffer.ts";
import {
  MAX_SIGNAL,
  type Member,
  newPeerId,
  PRESENCE_HIGH_WATER,
  type PresenceHost,
  type PresenceHubOptions,
  type PresenceStats,
} from "./presence-types.ts";

export { type PresenceStore, sqlPresenceStore, type StoredPresence } from "./presence-store.ts";
export {
  newPeerId,
  PRESENCE_HIGH_WATER,
  type PresenceHost,
  type PresenceHubOptions,
  type PresenceStats,
} from "./presence-types.ts";

/**
 * Presence for one log's sockets. The relay hands it every text message ({@link PresenceHub.message}), notes every
 * binary one ({@link PresenceHub.seen}: any message counts as a heartbeat) and every close ({@link PresenceHub.gone}).
 *
 * @example
 * ```ts
 * import { PresenceHub } from "./presence-hub.ts";
 * import { DEFAULT_PRESENCE } from "./presence-settings.ts";
 * const sent: string[] = [];
 * const ws = { readyState: 1, send: (data: Uint8Array | string) => void sent.push(String(data)), close() {} };
 * const hub = new PresenceHub(
 *   { sockets: () => [ws], peerOf: () => "p1", roleOf: () => "write", close() {} },
 *   { settings: DEFAULT_PRESENCE },
 * );
 * hub.message(ws, '{"t":"set","state":{"name":"ada"}}');
 * console.assert(JSON.parse(sent[0]!).t === "welcome" && hub.size === 1);
 * hub.close();
 * ```
 */
export class PresenceHub {
  readonly #host: PresenceHost;
  readonly #settings: PresenceSettings;
  readonly #store: PresenceStore | undefined;
  readonly #timers: boolean;
  readonly #bySocket = new Map<RelaySocket, Member>();
  readonly #byPeer = new Map<string, Member>();
  #joined = 0;
  #loaded = false;
  #lastSweep = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Peers whose latest state waits for the fan-out budget, in the order they will go out. */
  readonly #pending = new Map<string, Member>();
  /** Sockets that missed frames while they did not read. */
  readonly #behind = new Set<Member>();
  #budget: number;
  #budgetAt = 0;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  /** What presence cost on this log so far. */
  readonly stats: PresenceStats = { bytesIn: 0, bytesOut: 0, coalesced: 0, held: 0 };

  /** A hub with no peers yet (or, given a store, the ones kept there, read on first use). */
  constructor(host: PresenceHost, options: PresenceHubOptions) {
    this.#host = host;
    this.#settings = options.settings;
    this.#store = options.store;
    this.#timers = options.timers === true;
    this.#budget = this.#settings.fanout;
  }

  /** Peers with a state. */
  get size(): number {
    this.#load();
    return this.#joined;
  }

  /** The peers with a state, as the relay lists them (for a status page or a test). */
  list(): { peer: string; state: unknown; direct: string | false }[] {
    this.#load();
    return [...this.#byPeer.values()].filter((m) => m.state !== null).map((m) => ({
      peer: m.peer,
      state: JSON.parse(m.state!),
      direct: m.direct ?? false,
    }));
  }

  /** After a wake-up: takes back the kept peers whose socket is still open, and lets the others leave. */
  #load(): void {
    if (this.#loaded) return;
    this.#loaded = true;
    if (this.#store === undefined) return;
    const open = new Map<string, RelaySocket>();
    for (const ws of this.#host.sockets()) {
      const peer = ws.readyState === 1 ? this.#host.peerOf(ws) : undefined;
      if (peer !== undefined) open.set(peer, ws);
    }
    const left: string[] = [];
    const now = Date.now();
    for (const row of this.#store.load()) {
      const ws = open.get(row.peer);
      if (ws === undefined || this.#bySocket.has(ws)) {
        this.#write(() => this.#store!.delete(row.peer));
        if (row.state !== null) left.push(row.peer);
        continue;
      }
      const member: Member = {
        ws,
        peer: row.peer,
        state: row.state,
        direct: row.direct,
        seen: now,
        tokens: 0,
        filled: now,
        told: row.state !== null,
      };
      member.tokens = this.#settings.perSecond * 2;
      this.#add(member);
    }
    for (const peer of left) this.#broadcast(undefined, JSON.stringify({ t: "leave", peer }), peer);
  }

  #add(member: Member): void {
    this.#bySocket.set(member.ws, member);
    this.#byPeer.set(member.peer, member);
    if (member.state !== null) this.#joined++;
    if (this.#timers && this.#timer === undefined) {
      const every = Math.max(25, Math.floor(this.#settings.timeout / 4));
      this.#timer = setInterval(() => this.#sweep(Date.now()), every);
      unref(this.#timer);
    }
  }

  #write(fn: () => void): void {
    try {
      fn();
    } catch {
      // The store failed: presence goes on in memory (a wake-up may then forget these peers).
    }
  }

  #put(member: Member): void {
    if (this.#store !== undefined) {
      this.#write(() => this.#store!.put({ peer: member.peer, state: member.state, direct: member.direct }));
    }
  }

  #send(ws: RelaySocket, text: string): void {
    if (ws.readyState !== 1) return;
    try {
      ws.send(text);
      this.stats.bytesOut += utf8Length(text);
    } catch {
      // Closing: its close reaches gone().
    }
  }

  /**
   * Sends `text`, the news about `about` (a join, an update or a leave), to every socket but `from`'s; a socket that
   * is not reading gets a note instead (see {@link PresenceHub.#catchUp}). The bytes count against the budget.
   */
  #broadcast(from: Member | undefined, text: string, about?: string): void {
    const bytes = utf8Length(text);
    for (const member of this.#bySocket.values()) {
      if (member === from || member.ws.readyState !== 1) continue;
      if (about !== undefined) {
        if (bufferedOf(member.ws) > PRESENCE_HIGH_WATER) {
          (member.behind ??= new Set()).add(about);
          this.#behind.add(member);
          this.stats.held++;
          this.#schedule(100);
          continue;
        }
        member.behind?.delete(about);
        if (member.behind?.size) this.#catchUp(member);
      }
      this.#send(member.ws, text);
      this.#budget -= bytes;
    }
  }

  /** The frame that tells the others about `member`'s state. */
  #news(member: Member, join: boolean): string {
    return `{"t":"${join ? "join" : "update"}","peer":"${member.peer}","state":${member.state},"direct":${
      member.direct === null ? "false" : `"${member.direct}"`
    }}`;
  }

  /** Sends a socket that reads again the latest state (or the leave) of each peer it missed. */
  #catchUp(member: Member): void {
    const missed = member.behind;
    if (missed === undefined || bufferedOf(member.ws) > PRESENCE_HIGH_WATER) return;
    member.behind = undefined;
    this.#behind.delete(member);
    for (const peer of missed) {
      const other = this.#byPeer.get(peer);
      // A peer still in the queue is sent with it; the client takes an update of a peer it does not know as a join.
      if (other !== undefined && other.state !== null && !other.told) continue;
      const text = other === undefined || other.state === null
        ? JSON.stringify({ t: "leave", peer })
        : this.#news(other, false);
      this.#send(member.ws, text);
      this.#budget -= utf8Length(text);
    }
  }

  /** Refills the budget: a second's worth at most. */
  #refill(now: number): void {
    const rate = this.#settings.fanout;
    this.#budget = Math.min(rate, this.#budget + ((now - this.#budgetAt) / 1000) * rate);
    this.#budgetAt = now;
  }

  /**
   * Sends the queued states as far as the budget allows (one bigger than a second's budget goes out when the budget
   * is full), then, if some wait or some sockets are behind, comes back when there should be room.
   */
  #flush(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const now = Date.now();
    this.#refill(now);
    let wait = 0;
    for (const [peer, member] of this.#pending) {
      const text = this.#news(member, !member.told);
      let readers = 0;
      for (const other of this.#bySocket.values()) if (other !== member && other.ws.readyState === 1) readers++;
      const cost = utf8Length(text) * readers;
      if (cost > this.#budget && this.#budget < this.#settings.fanout) {
        wait = Math.ceil(((Math.min(cost, this.#settings.fanout) - this.#budget) / this.#settings.fanout) * 1000);
        break;
      }
      this.#pending.delete(peer);
      member.told = true;
      this.#broadcast(member, text, peer);
    }
    for (const member of [...this.#behind]) this.#catchUp(member);
    if (this.#pending.size > 0) this.#schedule(Math.max(10, wait));
    else if (this.#behind.size > 0) this.#schedule(100);
  }

  #schedule(ms: number): void {
    if (this.#flushTimer !== undefined) return;
    // Not unref'd: it lasts only while states wait or a socket is behind (and `close()` stops it).
    this.#flushTimer = setTimeout(() => this.#flush(), ms);
  }

  /** `member`'s state changed: it goes out now if the budget allows and no other state waits, else with the queue. */
  #publish(member: Member): void {
    if (this.#pending.has(member.peer)) {
      this.stats.coalesced++;
      return;
    }
    this.#pending.set(member.peer, member);
    // Alone in the queue: nothing waits for the budget, so it goes now if the budget allows.
    if (this.#pending.size === 1) this.#flush();
  }

  /** `member` has no state any more: the others hear of it if they were told of its state. */
  #left(member: Member): void {
    this.#pending.delete(member.peer);
    if (member.told) this.#broadcast(member, JSON.stringify({ t: "leave", peer: member.peer }), member.peer);
    member.told = false;
  }

  #refuse(ws: RelaySocket, code: number, reason: string): void {
    this.gone(ws);
    this.#host.close(ws, code, reason);
  }

  #error(member: Member, code: number, message: string): void {
    this.#send(member.ws, JSON.stringify({ t: "error", code, message }));
  }

  /** Lets the peers that sent nothing for the timeout leave, and closes their sockets. */
  #sweep(now: number): void {
    this.#lastSweep = now;
    const limit = this.#settings.timeout;
    for (const member of [...this.#bySocket.values()]) {
      if (now - member.seen > limit) {
        this.#refuse(member.ws, PRESENCE_CODE.TIMEOUT, `No heartbeat for ${limit} ms`);
      }
    }
  }

  #maybeSweep(now: number): void {
    if (now - this.#lastSweep >= this.#settings.timeout / 4) this.#sweep(now);
  }

  /** A binary message from `ws`: it counts as a heartbeat. */
  seen(ws: RelaySocket): void {
    this.#load();
    const now = Date.now();
    const member = this.#bySocket.get(ws);
    if (member !== undefined) member.seen = now;
    if (this.#bySocket.size > 0) this.#maybeSweep(now);
  }

  /** A text message from `ws`. A bad one closes the socket with its code; none throws. */
  message(ws: RelaySocket, text: string): void {
    this.#load();
    const now = Date.now();
    this.#maybeSweep(now);
    if (ws.readyState !== 1) return;
    const settings = this.#settings;
    const bytes = utf8Length(text);
    this.stats.bytesIn += bytes;
    if (bytes > MAX_SIGNAL + 256 + settings.maxBytes) {
      return this.#refuse(
        ws,
        PRESENCE_CODE.TOO_LARGE,
        `A presence message of ${bytes} bytes is over the limit of ${settings.maxBytes} bytes`,
      );
    }
    let message: { t?: unknown; state?: unknown; direct?: unknown; to?: unknown; data?: unknown };
    try {
      message = JSON.parse(text);
    } catch {
      return this.#refuse(ws, CLOSE.PROTOCOL, "A text message must be a presence message (JSON)");
    }
    if (typeof message !== "object" || message === null || typeof message.t !== "string") {
      return this.#refuse(ws, CLOSE.PROTOCOL, 'A presence message is a JSON object with a "t" field');
    }
    let member = this.#bySocket.get(ws);
    if (member === undefined) {
      const peer = this.#host.peerOf(ws) ?? newPeerId();
      member = { ws, peer, state: null, direct: null, seen: now, tokens: settings.perSecond * 2, filled: now };
      this.#add(member);
      this.#put(member);
      this.#send(
        ws,
        JSON.stringify({
          t: "welcome",
          peer,
          peers: this.list().filter((p) => p.peer !== peer),
          maxBytes: settings.maxBytes,
          timeout: settings.timeout,
        }),
      );
    }
    member.seen = now;
    // The rate: a bucket of twice a second's worth, refilled continuously.
    member.tokens = Math.min(
      settings.perSecond * 2,
      member.tokens + ((now - member.filled) / 1000) * settings.perSecond,
    );
    member.filled = now;
    if (member.tokens < 1) {
      return this.#refuse(
        ws,
        PRESENCE_CODE.RATE_LIMITED,
        `More than ${settings.perSecond} presence messages per second; send fewer`,
      );
    }
    member.tokens--;
    switch (message.t) {
      case "watch":
      case "ping":
        return;
      case "set":
        return this.#set(member, message.state, message.direct);
      case "clear":
        if (member.state !== null) {
          member.state = null;
          this.#joined--;
          this.#put(member);
          this.#left(member);
        }
        return;
      case "signal":
        return this.#signal(member, message.to, message.data);
      default:
        return this.#refuse(ws, CLOSE.PROTOCOL, `Unknown presence message ${JSON.stringify(message.t).slice(0, 40)}`);
    }
  }

  #mayPublish(member: Member): boolean {
    if (this.#settings.readers || this.#host.roleOf(member.ws) !== "read") return true;
    this.#error(
      member,
      PRESENCE_CODE.READ_ONLY,
      "This client may only read: the relay does not let readers publish presence (PRESENCE_READERS)",
    );
    return false;
  }

  #set(member: Member, state: unknown, direct: unknown): void {
    if (!this.#mayPublish(member)) return;
    if (direct !== undefined && (typeof direct !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(direct))) {
      return this.#error(member, CLOSE.PROTOCOL, "A direct id is 1 to 64 letters, digits, - or _");
    }
    if (state === undefined || state === null) {
      return this.#error(member, CLOSE.PROTOCOL, "A presence state must be a JSON value, not null");
    }
    const text = JSON.stringify(state);
    const bytes = utf8Length(text);
    if (bytes > this.#settings.maxBytes) {
      return this.#refuse(
        member.ws,
        PRESENCE_CODE.TOO_LARGE,
        `A presence state of ${bytes} bytes is over the limit of ${this.#settings.maxBytes} bytes`,
      );
    }
    const joining = member.state === null;
    if (joining && this.#joined >= this.#settings.peers) {
      return this.#error(
        member,
        PRESENCE_CODE.TOO_MANY_PEERS,
        `This log has ${this.#joined} peers, as many as allowed (PRESENCE_PEERS); watch, or retry later`,
      );
    }
    if (joining) this.#joined++;
    member.state = text;
    member.direct = direct ?? null;
    this.#put(member);
    this.#publish(member);
  }

  #signal(member: Member, to: unknown, data: unknown): void {
    if (!this.#mayPublish(member)) return;
    const text = JSON.stringify(data ?? null);
    if (utf8Length(text) > Math.max(MAX_SIGNAL, this.#settings.maxBytes)) {
      return this.#refuse(member.ws, PRESENCE_CODE.TOO_LARGE, `A signal is over the limit of ${MAX_SIGNAL} bytes`);
    }
    const target = typeof to === "string" ? this.#byPeer.get(to) : undefined;
    if (target === undefined) {
      return this.#error(member, PRESENCE_CODE.NO_SUCH_PEER, `No peer ${JSON.stringify(to)} on this log`);
    }
    if (bufferedOf(target.ws) > PRESENCE_HIGH_WATER) {
      this.stats.held++;
      return this.#error(member, PRESENCE_CODE.PEER_BUSY, `Peer ${target.peer} is not reading; the signal was dropped`);
    }
    const signal = `{"t":"signal","from":"${member.peer}","data":${text}}`;
    this.#send(target.ws, signal);
    this.#budget -= utf8Length(signal);
  }

  /** `ws` closed: its peer leaves. */
  gone(ws: RelaySocket): void {
    this.#load();
    const member = this.#bySocket.get(ws);
    if (member === undefined) return;
    this.#bySocket.delete(ws);
    this.#byPeer.delete(member.peer);
    if (this.#store !== undefined) this.#write(() => this.#store!.delete(member.peer));
    this.#behind.delete(member);
    if (member.state !== null) {
      this.#joined--;
      this.#left(member);
    }
    if (this.#bySocket.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
  }

  /** Stops the heartbeat timer and the fan-out queue's. */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
  }
}

/** Stops a timer from keeping the process alive (Node and Bun have `unref`; Deno has `Deno.unrefTimer`). */
function unref(timer: unknown): void {
  if (typeof timer === "object" && timer !== null && "unref" in timer) (timer as { unref(): void }).unref();
  else if (typeof timer === "number") {
    (globalThis as { Deno?: { unrefTimer?(id: number): void } }).Deno?.unrefTimer?.(timer);
  }
}
