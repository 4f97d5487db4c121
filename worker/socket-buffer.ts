/**
 * What a relay socket holds unsent, and the mark past which the relay stops sending to it: the replication sessions
 * (`relay-core.ts`) wait for room below it and presence (`presence-hub.ts`) sends nothing above it, so a client that
 * stops reading holds at most about this much of the relay's memory; and the wait for room below it (sockets tell no
 * event when their buffer drains).
 *
 * @module
 */
import type { Conn, RelaySocket } from "./relay-socket.ts";

/**
 * Bytes buffered on a socket before the relay waits (where the socket tells: `bufferedAmount`). A session sends at
 * most the room left, and presence frames skip a socket above it.
 *
 * @example
 * ```ts
 * import { roomOf, SEND_HIGH_WATER } from "./socket-buffer.ts";
 * console.assert(roomOf({ readyState: 1, send() {}, close() {} }) === SEND_HIGH_WATER);
 * ```
 */
export const SEND_HIGH_WATER: number = 512 * 1024;

/**
 * What `ws` buffers (0 where the socket does not tell).
 *
 * @example
 * ```ts
 * import { bufferedOf } from "./socket-buffer.ts";
 * const socket = { readyState: 1, send() {}, close() {} };
 * console.assert(bufferedOf(socket) === 0 && bufferedOf({ ...socket, bufferedAmount: 7 }) === 7);
 * ```
 */
export function bufferedOf(ws: RelaySocket): number {
  return (ws as { bufferedAmount?: number }).bufferedAmount ?? 0;
}

/**
 * How many more bytes the relay sends on `ws` before it waits (negative past the mark).
 *
 * @example
 * ```ts
 * import { roomOf, SEND_HIGH_WATER } from "./socket-buffer.ts";
 * const socket = { readyState: 1, send() {}, close() {}, bufferedAmount: SEND_HIGH_WATER + 1 };
 * console.assert(roomOf(socket) === -1);
 * ```
 */
export function roomOf(ws: RelaySocket): number {
  return SEND_HIGH_WATER - bufferedOf(ws);
}

/**
 * Resolves when the socket of `conn` has room again (or it closed), marking the connection as waiting meanwhile.
 * Sockets tell no event when their buffer drains: it looks again every few milliseconds.
 *
 * @example
 * ```ts
 * import { drained } from "./socket-buffer.ts";
 * const ws = { readyState: 1, send() {}, close() {}, bufferedAmount: 1 << 30 };
 * const conn = { ws, closed: false, waiting: false } as Parameters<typeof drained>[0];
 * const done = drained(conn);
 * console.assert(conn.waiting);
 * ws.bufferedAmount = 0;
 * await done;
 * console.assert(!conn.waiting);
 * ```
 */
export function drained(conn: Conn): Promise<void> {
  return new Promise<void>((resolve) => {
    conn.waiting = true;
    const look = () => {
      if (conn.closed || roomOf(conn.ws) > 0) {
        conn.waiting = false;
        conn.drainTimer = undefined;
        resolve();
      } else conn.drainTimer = setTimeout(look, 5);
    };
    conn.drainTimer = setTimeout(look, 5);
  });
}
