/**
 * What the relay's presence hub (`presence-hub.ts`) is made of: its bounds' constants, what it counts, what it needs of
 * the relay, its options, and one member (a watching socket).
 *
 * @module
 */
import type { Role } from "./limits.ts";
import type { PresenceSettings } from "./presence-settings.ts";
import type { PresenceStore } from "./presence-store.ts";
import type { RelaySocket } from "./relay-core.ts";
import { SEND_HIGH_WATER } from "./socket-buffer.ts";

/**
 * The largest signal payload (an SDP offer with its candidates), whatever `maxBytes` says.
 *
 * @example
 * ```ts
 * import { MAX_SIGNAL, PRESENCE_HIGH_WATER } from "./presence-types.ts";
 * console.assert(MAX_SIGNAL === 16_384 && MAX_SIGNAL < PRESENCE_HIGH_WATER);
 * ```
 */
export const MAX_SIGNAL: number = 16_384;

/**
 * Bytes buffered on a socket past which it gets no more presence frames until it reads (the same mark the relay's
 * replication stops at): a paused reader holds at most this plus one frame.
 *
 * @example
 * ```ts
 * import { PRESENCE_HIGH_WATER } from "./presence-types.ts";
 * import { SEND_HIGH_WATER } from "./socket-buffer.ts";
 * console.assert(PRESENCE_HIGH_WATER === SEND_HIGH_WATER);
 * ```
 */
export const PRESENCE_HIGH_WATER: number = SEND_HIGH_WATER;

/**
 * What presence cost on one log, in bytes of text messages (for the bench and the tests).
 *
 * @example
 * ```ts
 * import { PresenceHub, type PresenceStats } from "./presence-hub.ts";
 * import { DEFAULT_PRESENCE } from "./presence-settings.ts";
 * const [a, b] = [{ readyState: 1, send() {}, close() {} }, { readyState: 1, send() {}, close() {} }];
 * const hub = new PresenceHub(
 *   { sockets: () => [a, b], peerOf: (ws) => (ws === a ? "a" : "b"), roleOf: () => "write", close() {} },
 *   { settings: DEFAULT_PRESENCE },
 * );
 * hub.message(b, '{"t":"watch"}');
 * hub.message(a, '{"t":"set","state":{"name":"ada"}}');
 * const stats: PresenceStats = hub.stats; // b's welcome, a's welcome, and a's join to b
 * console.assert(stats.bytesIn === 47 && stats.bytesOut > 47 && stats.coalesced === 0);
 * hub.close();
 * ```
 */
export interface PresenceStats {
  /** Text bytes the log's sockets sent. */
  bytesIn: number;
  /** Text bytes the relay sent to them. */
  bytesOut: number;
  /** States that were replaced by a later one of the same peer before they went out (over the budget). */
  coalesced: number;
  /** Frames not sent to a socket because it was not reading (its peers' latest states follow when it reads). */
  held: number;
}

/**
 * What a {@link PresenceHub} needs of the relay.
 *
 * @example
 * ```ts
 * import { type PresenceHost, PresenceHub } from "./presence-hub.ts";
 * import { DEFAULT_PRESENCE } from "./presence-settings.ts";
 * const ws = { readyState: 1, send() {}, close() {} };
 * const closed: number[] = [];
 * const host: PresenceHost = {
 *   sockets: () => [ws],
 *   peerOf: () => "a1b2c3d4e5f60718",
 *   roleOf: () => "write",
 *   close: (_ws, code) => void closed.push(code),
 * };
 * const hub = new PresenceHub(host, { settings: DEFAULT_PRESENCE });
 * hub.message(ws, "not JSON"); // refused: the hub has the host close the socket
 * console.assert(closed.length === 1 && hub.size === 0);
 * ```
 */
export interface PresenceHost {
  /** The log's open sockets. */
  sockets(): Iterable<RelaySocket>;
  /** The peer id the relay gave a socket. */
  peerOf(ws: RelaySocket): string | undefined;
  /** What a socket may do. */
  roleOf(ws: RelaySocket): Role | undefined;
  /** Closes a socket for a refusal (the relay tells the client why, then closes). */
  close(ws: RelaySocket, code: number, reason: string): void;
}

/**
 * Options of a {@link PresenceHub}.
 *
 * @example
 * ```ts
 * import { DEFAULT_PRESENCE } from "./presence-settings.ts";
 * import type { PresenceHubOptions } from "./presence-hub.ts";
 * const options: PresenceHubOptions = { settings: DEFAULT_PRESENCE, timers: true };
 * console.assert(options.timers);
 * ```
 */
export interface PresenceHubOptions {
  /** The bounds. */
  settings: PresenceSettings;
  /** Where peers are kept across a loss of memory (a Durable Object's database). */
  store?: PresenceStore | undefined;
  /**
   * Whether a timer checks the heartbeats (`hyperlog serve`). Without it (a Durable Object, whose timers would keep
   * it from hibernating) they are checked whenever a socket of the log sends something.
   */
  timers?: boolean | undefined;
}

/**
 * One watching socket of the hub: its peer id, latest state (JSON text), direct-connection flag, heartbeat, rate
 * tokens and what it missed while it did not read.
 *
 * @example
 * ```ts
 * import type { Member } from "./presence-types.ts";
 * import { bufferedOf } from "./socket-buffer.ts";
 * const ws = { readyState: 1, send() {}, close() {}, bufferedAmount: 3 };
 * const member: Member = { ws, peer: "p1", state: null, direct: null, seen: 0, tokens: 1, filled: 0 };
 * console.assert(bufferedOf(member.ws) === 3 && member.behind === undefined);
 * ```
 */
export interface Member {
  ws: RelaySocket;
  peer: string;
  state: string | null;
  direct: string | null;
  seen: number;
  tokens: number;
  filled: number;
  /** Whether the other sockets were told of this peer's state (its join went out). */
  told?: boolean | undefined;
  /** Peers whose latest state (or leave) this socket missed while it did not read. */
  behind?: Set<string> | undefined;
}

/**
 * A new peer id: 16 hex characters.
 *
 * @example
 * ```ts
 * import { newPeerId } from "./presence-hub.ts";
 * console.assert(/^[0-9a-f]{16}$/.test(newPeerId()));
 * ```
 */
export function newPeerId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

