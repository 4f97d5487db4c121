/**
 * Browser-to-browser replication over WebRTC: the relay's presence channel carries the signaling (offers, answers
 * and ICE candidates, each addressed to one peer), and each pair of peers that take direct connections opens one
 * `RTCDataChannel` that runs the ordinary replication session, live (the message-channel driver, `channel.ts`).
 * Nodes then flow browser to browser; the relay stays a peer (it still gets and stores everything) and a fallback.
 * A data channel that is up keeps syncing when the relay goes away.
 *
 * Each peer is known by the id it announced (`direct` in its presence), stable across its reconnects to the relay;
 * of two peers, the one with the lower id makes the offer. `connect(log, url, { direct: true })` uses this.
 *
 * @module
 */
import { replicateChannel } from "./channel.ts";
import { toHex } from "./hex.ts";
import type { Hyperlog } from "./log.ts";
import type { Presence, PresenceEvent } from "./presence.ts";
import type { Replication } from "./replicate-types.ts";

/**
 * Where a direct connection to a peer stands: `connecting` (signaling, ICE), `direct` (the data channel is open
 * and replicating), `closed` (it failed or ended; a new one starts when the peer shows up again).
 *
 * @example
 * ```ts
 * import { Hyperlog } from "./log.ts";
 * import { Presence } from "./presence.ts";
 * import { DirectPeers, type PeerState } from "./webrtc.ts";
 * const socket = Object.assign(new EventTarget(), { readyState: 1, binaryType: "", send() {}, close() {} });
 * const presence = new Presence();
 * presence.attach(socket);
 * class PendingPC { // its offer never comes: the connection stays "connecting"
 *   createDataChannel = () => ({ close() {}, addEventListener() {} });
 *   createOffer = () => new Promise(() => {});
 *   close() {}
 * }
 * const direct = new DirectPeers(new Hyperlog(), presence, { id: "a", RTCPeerConnection: PendingPC as never });
 * const join = '{"t":"join","peer":"r2","state":{},"direct":"b"}'; // a peer with a higher id: this one offers
 * socket.dispatchEvent(new MessageEvent("message", { data: join }));
 * const before: PeerState | undefined = direct.peers.get("b");
 * direct.close();
 * console.assert(before === "connecting" && direct.peers.get("b") === "closed");
 * ```
 */
export type PeerState = "connecting" | "direct" | "closed";

/**
 * The `detail` of a `peer` event.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "./log.ts";
 * import { Presence } from "./presence.ts";
 * import { DirectPeers, type PeerEvent } from "./webrtc.ts";
 * const socket = Object.assign(new EventTarget(), { readyState: 1, binaryType: "", send() {}, close() {} });
 * const presence = new Presence();
 * presence.attach(socket);
 * class FailingPC {
 *   createDataChannel = () => ({ close() {}, addEventListener() {} });
 *   createOffer = () => Promise.reject(new Error("no ICE"));
 *   close() {}
 * }
 * const direct = new DirectPeers(new Hyperlog(), presence, { id: "a", RTCPeerConnection: FailingPC as never });
 * const events: PeerEvent[] = [];
 * direct.addEventListener("peer", (e) => events.push((e as CustomEvent<PeerEvent>).detail));
 * socket.dispatchEvent(new MessageEvent("message", { data: '{"t":"join","peer":"r2","state":{},"direct":"b"}' }));
 * await new Promise((resolve) => setTimeout(resolve, 0));
 * console.assert(events.map((e) => e.state).join() === "connecting,closed");
 * console.assert(events[1]!.peer === "b" && events[1]!.error?.message === "no ICE");
 * ```
 */
export interface PeerEvent {
  /** The peer's direct id (see the module doc). */
  peer: string;
  /** Its new state. */
  state: PeerState;
  /** For `closed`: why, when it was an error. */
  error?: Error;
}

/**
 * An ICE server (STUN or TURN), as `RTCPeerConnection` takes it.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "./log.ts";
 * import { Presence } from "./presence.ts";
 * import { DirectPeers, type IceServer } from "./webrtc.ts";
 * const socket = Object.assign(new EventTarget(), { readyState: 1, binaryType: "", send() {}, close() {} });
 * const presence = new Presence();
 * presence.attach(socket);
 * const stun: IceServer = { urls: "stun:stun.example.org:3478" };
 * const configs: unknown[] = [];
 * class PendingPC {
 *   constructor(config: unknown) { configs.push(config); }
 *   createDataChannel = () => ({ close() {}, addEventListener() {} });
 *   createOffer = () => new Promise(() => {});
 *   close() {}
 * }
 * const options = { id: "a", iceServers: [stun], RTCPeerConnection: PendingPC as never };
 * const direct = new DirectPeers(new Hyperlog(), presence, options);
 * socket.dispatchEvent(new MessageEvent("message", { data: '{"t":"join","peer":"r2","state":{},"direct":"b"}' }));
 * direct.close();
 * console.assert(JSON.stringify(configs) === JSON.stringify([{ iceServers: [stun] }]));
 * ```
 */
export interface IceServer {
  /** One URL or several. */
  urls: string | string[];
  /** For TURN. */
  username?: string;
  /** For TURN. */
  credential?: string;
}

/**
 * An `RTCPeerConnection` class (the browser's, or one given for other runtimes).
 *
 * @example
 * ```ts ignore
 * const ctor: PeerConnectionConstructor = RTCPeerConnection;
 * ```
 */
export type PeerConnectionConstructor = new (config: { iceServers?: IceServer[] }) => RTCPeerConnection;

/**
 * Options of {@link DirectPeers}.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "./log.ts";
 * import { Presence } from "./presence.ts";
 * import { DirectPeers, type DirectOptions } from "./webrtc.ts";
 * const sent: string[] = [];
 * const send = (text: unknown) => void sent.push(String(text));
 * const socket = Object.assign(new EventTarget(), { readyState: 1, binaryType: "", send, close() {} });
 * const presence = new Presence();
 * presence.attach(socket);
 * const options: DirectOptions = { id: "ada-laptop", connectTimeout: 10_000, RTCPeerConnection: class {} as never };
 * const direct = new DirectPeers(new Hyperlog(), presence, options); // announces itself in presence
 * console.assert(direct.id === "ada-laptop" && sent.at(-1) === '{"t":"set","state":{},"direct":"ada-laptop"}');
 * direct.close();
 * ```
 */
export interface DirectOptions {
  /** STUN and TURN servers (default none: peers on one machine or one network find each other without). */
  iceServers?: IceServer[];
  /** The `RTCPeerConnection` class (default: the global one). */
  RTCPeerConnection?: PeerConnectionConstructor;
  /** Milliseconds a connection may take to open its data channel before it is given up (default 15 000). */
  connectTimeout?: number;
  /** This peer's direct id (default: a random one). */
  id?: string;
}

/** What is signaled: an offer or answer (its SDP), or an ICE candidate. */
interface Signal {
  id: string;
  kind: "offer" | "answer" | "candidate";
  sdp?: string;
  candidate?: RTCIceCandidateInit;
}

interface Link {
  peer: string;
  state: PeerState;
  pc: RTCPeerConnection;
  channel: RTCDataChannel;
  session?: Replication | undefined;
  pending: RTCIceCandidateInit[];
  described: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Milliseconds a connection may stay "disconnected" before it is given up. */
const LOST_AFTER = 3000;

function randomId(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(8)));
}

/**
 * Direct connections to the other peers of a log that take them: one `RTCPeerConnection` and data channel per
 * peer, each running a live replication session. Listen to `peer` events ({@link PeerEvent}); `peers` holds each
 * peer's state now.
 *
 * @example In a page
 * ```ts ignore
 * import { connect, Hyperlog, IndexedDBStorage } from "@hyperlog/hyperlog";
 * const sync = connect(new Hyperlog(new IndexedDBStorage("chat")), "wss://relay.example/logs/chat/ws", { direct: true });
 * sync.direct!.addEventListener("peer", (e) => console.log((e as CustomEvent).detail)); // { peer, state: "direct" }
 * ```
 */
export class DirectPeers extends EventTarget {
  /** This peer's direct id. */
  readonly id: string;
  readonly #log: Hyperlog<unknown>;
  readonly #presence: Presence;
  readonly #iceServers: IceServer[];
  readonly #PC: PeerConnectionConstructor;
  readonly #timeout: number;
  readonly #links = new Map<string, Link>();
  #closed = false;
  readonly #onPresence = (event: Event) => this.#presenceChanged((event as CustomEvent<PresenceEvent>).detail);
  readonly #onSignal = (event: Event) => {
    const { from, data } = (event as CustomEvent<{ from: string; data: unknown }>).detail;
    void this.#signal(from, data as Signal).catch((error) => this.#failSignal(data as Signal, error));
  };

  /** Announces this peer in `presence` as taking direct connections, and connects to the peers that do. */
  constructor(log: Hyperlog<unknown>, presence: Presence, options: DirectOptions = {}) {
    super();
    const PC = options.RTCPeerConnection ??
      (globalThis as { RTCPeerConnection?: PeerConnectionConstructor }).RTCPeerConnection;
    if (typeof PC !== "function") {
      throw new TypeError("This runtime has no RTCPeerConnection: pass one as the RTCPeerConnection option");
    }
    this.#PC = PC;
    this.#log = log;
    this.#presence = presence;
    this.#iceServers = options.iceServers ?? [];
    this.#timeout = options.connectTimeout ?? 15_000;
    this.id = options.id ?? randomId();
    presence.addEventListener("presence", this.#onPresence);
    presence.addEventListener("signal", this.#onSignal);
    presence.setDirect(this.id);
    for (const [relayPeer, id] of presence.directPeers) this.#consider(relayPeer, id);
  }

  /** Each peer's state, by its direct id. */
  get peers(): ReadonlyMap<string, PeerState> {
    return new Map([...this.#links].map(([id, link]) => [id, link.state]));
  }

  /** The replication sessions over open data channels, by peer (their stats say what went direct). */
  get sessions(): ReadonlyMap<string, Replication> {
    const open = new Map<string, Replication>();
    for (const [id, link] of this.#links) {
      if (link.session !== undefined && link.state === "direct") open.set(id, link.session);
    }
    return open;
  }

  /** Closes every direct connection and stops taking new ones. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#presence.removeEventListener("presence", this.#onPresence);
    this.#presence.removeEventListener("signal", this.#onSignal);
    for (const link of [...this.#links.values()]) this.#end(link);
  }

  #emit(link: Link, state: PeerState, error?: Error): void {
    if (link.state === state && state !== "connecting") return;
    link.state = state;
    const detail: PeerEvent = error === undefined ? { peer: link.peer, state } : { peer: link.peer, state, error };
    this.dispatchEvent(new CustomEvent("peer", { detail }));
  }

  #presenceChanged(event: PresenceEvent): void {
    if (this.#closed || event.type === "leave") return;
    const id = this.#presence.directPeers.get(event.peer);
    if (id !== undefined) this.#consider(event.peer, id);
  }

  /** The relay's current id for the peer with direct id `id`. */
  #relayPeer(id: string): string | undefined {
    for (const [relayPeer, direct] of this.#presence.directPeers) if (direct === id) return relayPeer;
    return undefined;
  }

  #send(link: Link, signal: Omit<Signal, "id">): void {
    const to = this.#relayPeer(link.peer);
    if (to !== undefined) this.#presence.signal(to, { id: this.id, ...signal });
  }

  /** A peer that takes direct connections is there: the lower id offers. */
  #consider(_relayPeer: string, id: string): void {
    if (this.#closed || id === this.id || !(this.id < id)) return;
    const known = this.#links.get(id);
    if (known !== undefined && known.state !== "closed") return;
    const link = this.#open(id);
    this.#describe(link, "offer").catch((error) => this.#end(link, error));
  }

  /** Makes this side's offer or answer, sets it as the local description and sends it to the peer. */
  async #describe(link: Link, kind: "offer" | "answer"): Promise<void> {
    const description = await (kind === "offer" ? link.pc.createOffer() : link.pc.createAnswer());
    await link.pc.setLocalDescription(description);
    this.#send(link, { kind, sdp: description.sdp ?? "" });
  }

  /** Sets the peer's offer or answer, then adds the ICE candidates that came before it. */
  async #remote(link: Link, type: "offer" | "answer", sdp: string): Promise<void> {
    await link.pc.setRemoteDescription({ type, sdp });
    link.described = true;
    for (const candidate of link.pending.splice(0)) await link.pc.addIceCandidate(candidate);
  }

  #open(id: string): Link {
    const pc = new this.#PC({ iceServers: this.#iceServers });
    // Negotiated: both sides make the same channel (id 0), so neither waits for the other's "datachannel" event.
    const channel = pc.createDataChannel("hyperlog", { negotiated: true, id: 0, ordered: true });
    channel.binaryType = "arraybuffer";
    const link: Link = { peer: id, state: "connecting", pc, channel, pending: [], described: false, timer: undefined };
    this.#links.set(id, link);
    this.#emit(link, "connecting");
    link.timer = setTimeout(() => {
      if (link.state === "connecting") {
        this.#end(link, new Error(`No direct connection to ${id} within ${this.#timeout} ms`));
      }
    }, this.#timeout);
    pc.onicecandidate = (event) => {
      if (event.candidate !== null) this.#send(link, { kind: "candidate", candidate: event.candidate.toJSON() });
    };
    let lost: ReturnType<typeof setTimeout> | undefined;
    pc.onconnectionstatechange = () => {
      clearTimeout(lost);
      const state = pc.connectionState;
      if (state === "failed" || state === "closed") this.#end(link);
      // "disconnected" may pass (a network change); still so after a while, the peer is gone.
      else if (state === "disconnected") {
        lost = setTimeout(() => this.#end(link, new Error("The peer went away")), LOST_AFTER);
      }
    };
    channel.onopen = () => {
      if (this.#links.get(id) !== link || this.#closed) return;
      clearTimeout(link.timer);
      link.session = replicateChannel(this.#log, channel, { live: true });
      link.session.done.then(() => this.#end(link), (error) => this.#end(link, error));
      this.#emit(link, "direct");
    };
    channel.addEventListener("close", () => this.#end(link));
    return link;
  }

  #end(link: Link, error?: unknown): void {
    if (link.state === "closed") return;
    clearTimeout(link.timer);
    link.session?.close().catch(() => {});
    try {
      link.channel.close();
      link.pc.close();
    } catch {
      // Already closed.
    }
    this.#emit(
      link,
      "closed",
      error === undefined ? undefined : error instanceof Error ? error : new Error(String(error)),
    );
  }

  #failSignal(signal: Signal, error: unknown): void {
    const link = typeof signal?.id === "string" ? this.#links.get(signal.id) : undefined;
    if (link !== undefined) this.#end(link, error);
  }

  async #signal(_from: string, signal: Signal): Promise<void> {
    if (this.#closed || typeof signal !== "object" || signal === null || typeof signal.id !== "string") return;
    let link = this.#links.get(signal.id);
    if (signal.kind === "offer") {
      if (typeof signal.sdp !== "string") return;
      // A new offer from a peer replaces whatever was left of an earlier connection to it.
      if (link !== undefined) this.#end(link);
      link = this.#open(signal.id);
      await this.#remote(link, "offer", signal.sdp);
      return this.#describe(link, "answer");
    }
    if (link === undefined || link.state === "closed") return;
    if (signal.kind === "answer" && typeof signal.sdp === "string" && !link.described) {
      await this.#remote(link, "answer", signal.sdp);
    } else if (signal.kind === "candidate" && typeof signal.candidate === "object" && signal.candidate !== null) {
      if (link.described) await link.pc.addIceCandidate(signal.candidate);
      else if (link.pending.length < 64) link.pending.push(signal.candidate);
    }
  }
}

/**
 * Starts direct connections for `log` over `presence` (see {@link DirectPeers}).
 *
 * @example
 * ```ts ignore
 * import { attachPresence, directPeers, Hyperlog } from "@hyperlog/hyperlog";
 * const log = new Hyperlog();
 * const presence = attachPresence(new WebSocket("wss://relay.example/logs/chat/ws"));
 * const direct = directPeers(log, presence);
 * ```
 */
export function directPeers<T>(log: Hyperlog<T>, presence: Presence, options: DirectOptions = {}): DirectPeers {
  return new DirectPeers(log as Hyperlog<unknown>, presence, options);
}
