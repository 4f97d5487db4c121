/**
 * The presence messages: small JSON objects carried as WebSocket *text* messages beside the binary replication
 * messages, on the same socket. A client opts in by sending its first text message; a relay sends no text to a
 * socket that never did, so clients without presence see nothing new.
 *
 * Client to relay: `{"t":"watch"}` (see the others, publish nothing), `{"t":"set","state":S,"direct":bool}`,
 * `{"t":"clear"}`, `{"t":"ping"}` (heartbeat), `{"t":"signal","to":PEER,"data":D}` (to one peer: WebRTC signaling).
 * Relay to client: `{"t":"welcome","peer":ID,"peers":[...],"maxBytes":N,"timeout":MS}`, `{"t":"join"|"update",
 * "peer":ID,"state":S,"direct":bool}`, `{"t":"leave","peer":ID}`, `{"t":"signal","from":ID,"data":D}`,
 * `{"t":"error","code":N,"message":TEXT}`.
 *
 * @module
 */

/**
 * One presence message, either way (see the module's doc for which goes where).
 *
 * @example
 * ```ts
 * import type { PresenceMessage } from "./presence-wire.ts";
 * import { Presence } from "./presence.ts";
 * const sent: PresenceMessage[] = [];
 * const send = (text: unknown) => void sent.push(JSON.parse(String(text)));
 * const socket = Object.assign(new EventTarget(), { readyState: 1, binaryType: "", send, close() {} });
 * new Presence({ state: { name: "ada" } }).attach(socket); // an open socket: it publishes at once
 * console.assert(JSON.stringify(sent) === '[{"t":"set","state":{"name":"ada"}}]');
 * ```
 */
export type PresenceMessage =
  | { t: "watch" }
  | { t: "set"; state: unknown; direct?: string }
  | { t: "clear" }
  | { t: "ping" }
  | { t: "signal"; to: string; data: unknown }
  | { t: "welcome"; peer: string; peers: PresencePeer[]; maxBytes: number; timeout: number }
  | { t: "join" | "update"; peer: string; state: unknown; direct?: string | false }
  | { t: "leave"; peer: string }
  | { t: "signal"; from: string; data: unknown }
  | { t: "error"; code: number; message: string };

/**
 * A peer as the relay lists it: its id (given by the relay for the life of its socket), its state, and, when it
 * takes direct (WebRTC) connections, the id it chose for them (the same across its reconnects).
 *
 * @example
 * ```ts
 * import type { PresencePeer } from "./presence-wire.ts";
 * import { Presence } from "./presence.ts";
 * const socket = Object.assign(new EventTarget(), { readyState: 1, binaryType: "", send() {}, close() {} });
 * const presence = new Presence();
 * presence.attach(socket);
 * const peer: PresencePeer = { peer: "a1b2c3d4e5f60718", state: { name: "ada" }, direct: "0f1e2d3c4b5a6978" };
 * const welcome = { t: "welcome", peer: "ffff000011112222", peers: [peer], maxBytes: 4096, timeout: 30_000 };
 * socket.dispatchEvent(new MessageEvent("message", { data: JSON.stringify(welcome) }));
 * console.assert(presence.directPeers.get(peer.peer) === peer.direct && presence.peers.size === 1);
 * presence.close();
 * ```
 */
export interface PresencePeer {
  /** The peer's id. */
  peer: string;
  /** Its latest state. */
  state: unknown;
  /** The id it takes direct connections under, or false. */
  direct?: string | false;
}

/** Sockets whose text messages belong to presence (the WebSocket replication driver leaves them alone). */
const owned = new WeakSet<object>();

/**
 * Marks `socket` as carrying presence: its text messages are presence's, not a protocol error.
 *
 * @example
 * ```ts
 * import { ownsText, takeText } from "./presence-wire.ts";
 * const socket = {};
 * takeText(socket);
 * console.assert(ownsText(socket));
 * ```
 */
export function takeText(socket: object): void {
  owned.add(socket);
}

/**
 * Whether presence carries the text messages of `socket`.
 *
 * @example
 * ```ts
 * import { ownsText } from "./presence-wire.ts";
 * console.assert(!ownsText({}));
 * ```
 */
export function ownsText(socket: object): boolean {
  return owned.has(socket);
}

/**
 * Bytes of `text` in UTF-8, without encoding it.
 *
 * @example
 * ```ts
 * import { utf8Length } from "./presence-wire.ts";
 * console.assert(utf8Length("aé€😀") === new TextEncoder().encode("aé€😀").length);
 * ```
 */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // 2 bytes up to U+07FF, 3 beyond, 4 for a surrogate pair (2 for each half).
    if (c >= 0x800 && (c < 0xd800 || c > 0xdfff)) bytes += 2;
    else if (c >= 0x80) bytes += 1;
  }
  return bytes;
}
