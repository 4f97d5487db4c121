/**
 * The relay's presence settings and close codes (see `presence-hub.ts`), read from the same environment as the
 * other settings: `PRESENCE_MAX_BYTES`, `PRESENCE_PER_SECOND`, `PRESENCE_PEERS`, `PRESENCE_TIMEOUT_MS`,
 * `PRESENCE_READERS`, `PRESENCE_FANOUT_BYTES`.
 *
 * @module
 */
import { ConfigError } from "./settings.ts";

/**
 * Codes of the presence refusals. The first three close the socket; the others answer with an error message and
 * leave the socket (and its replication) open.
 *
 * @example
 * ```ts
 * import { PRESENCE_CODE } from "./presence-settings.ts";
 * console.assert(PRESENCE_CODE.TOO_LARGE === 4015);
 * ```
 */
export const PRESENCE_CODE: {
  readonly TOO_LARGE: 4015;
  readonly RATE_LIMITED: 4030;
  readonly TIMEOUT: 4016;
  readonly READ_ONLY: 4003;
  readonly TOO_MANY_PEERS: 4504;
  readonly NO_SUCH_PEER: 4404;
  readonly PEER_BUSY: 4429;
} = {
  /** A presence state or signal over `PRESENCE_MAX_BYTES`, or a text message that is not a presence message: closed. */
  TOO_LARGE: 4015,
  /** More presence messages per second than `PRESENCE_PER_SECOND` (twice that at once): closed. */
  RATE_LIMITED: 4030,
  /** No message (not even a heartbeat) for `PRESENCE_TIMEOUT_MS`: the peer leaves and the socket is closed. */
  TIMEOUT: 4016,
  /** A reader published a state or a signal and `PRESENCE_READERS` is not "1": refused, the socket stays. */
  READ_ONLY: 4003,
  /** The log already has `PRESENCE_PEERS` peers with a state: refused, the socket stays (it may watch). */
  TOO_MANY_PEERS: 4504,
  /** A signal to a peer that is not (or no longer) on the log: refused, the socket stays. */
  NO_SUCH_PEER: 4404,
  /** A signal to a peer that is not reading (its buffer is full): dropped, the sender is told, the socket stays. */
  PEER_BUSY: 4429,
};

/**
 * What presence may cost on one relay.
 *
 * @example
 * ```ts
 * import { DEFAULT_PRESENCE } from "./presence-settings.ts";
 * console.assert(DEFAULT_PRESENCE.maxBytes === 4096 && !DEFAULT_PRESENCE.readers);
 * ```
 */
export interface PresenceSettings {
  /** The largest state (or signal payload), in bytes of JSON. */
  maxBytes: number;
  /** Presence messages per second one socket may send (heartbeats included); bursts of twice that pass. */
  perSecond: number;
  /** Peers with a state on one log, at most. */
  peers: number;
  /** Milliseconds without any message after which a peer leaves (and its socket is closed). */
  timeout: number;
  /** Whether clients that may only read may publish presence (they may always watch). */
  readers: boolean;
  /**
   * Bytes of presence the relay sends per second on one log, all sockets together (a second's worth at once);
   * past it, states are coalesced: each peer's latest goes out as the budget refills.
   */
  fanout: number;
}

/**
 * The defaults: 4 KiB states, 20 messages per second, 100 peers per log, 30 s timeout, readers only watch, 2 MiB
 * of presence per second per log (20 peers each moving a 100-byte cursor 20 times a second take 0.8 MB/s).
 */
export const DEFAULT_PRESENCE: PresenceSettings = {
  maxBytes: 4096,
  perSecond: 20,
  peers: 100,
  timeout: 30_000,
  readers: false,
  fanout: 2 * 1024 * 1024,
};

function count(env: Record<string, unknown>, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (typeof raw !== "string" || !Number.isSafeInteger(value) || value < min) {
    throw new ConfigError(`Setting ${name} must be a whole number >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/**
 * Reads the presence settings from the environment; a value that does not parse throws a `ConfigError`.
 *
 * @example
 * ```ts
 * import { readPresence } from "./presence-settings.ts";
 * const settings = readPresence({ PRESENCE_PEERS: "3", PRESENCE_READERS: "1" });
 * console.assert(settings.peers === 3 && settings.readers);
 * ```
 */
export function readPresence(env: Record<string, unknown>): PresenceSettings {
  const readers = env.PRESENCE_READERS;
  if (readers !== undefined && readers !== "" && readers !== "0" && readers !== "1") {
    throw new ConfigError(`Setting PRESENCE_READERS must be "1" or "0", got ${JSON.stringify(readers)}`);
  }
  return {
    maxBytes: count(env, "PRESENCE_MAX_BYTES", DEFAULT_PRESENCE.maxBytes, 2),
    perSecond: count(env, "PRESENCE_PER_SECOND", DEFAULT_PRESENCE.perSecond, 1),
    peers: count(env, "PRESENCE_PEERS", DEFAULT_PRESENCE.peers, 0),
    timeout: count(env, "PRESENCE_TIMEOUT_MS", DEFAULT_PRESENCE.timeout, 100),
    readers: readers === "1",
    fanout: count(env, "PRESENCE_FANOUT_BYTES", DEFAULT_PRESENCE.fanout, 1024),
  };
}
