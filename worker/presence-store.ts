/**
 * Where the relay's presence hub (`presence-hub.ts`) keeps the peers of a log across a loss of memory: a Durable
 * Object's SQLite database (table `hyperlog_presence`, beside the log's tables, never in the log).
 *
 * @module
 */

/**
 * One peer as a {@link PresenceStore} keeps it.
 *
 * @example
 * ```ts
 * import { PresenceHub } from "./presence-hub.ts";
 * import { DEFAULT_PRESENCE } from "./presence-settings.ts";
 * import type { StoredPresence } from "./presence-store.ts";
 * const rows: StoredPresence[] = [];
 * const store = { load: () => [], put: (row: StoredPresence) => void rows.push(row), delete() {} };
 * const ws = { readyState: 1, send() {}, close() {} };
 * const host = { sockets: () => [ws], peerOf: () => "a1b2c3d4e5f60718", roleOf: () => "write" as const, close() {} };
 * new PresenceHub(host, { settings: DEFAULT_PRESENCE, store }).message(ws, '{"t":"set","state":{"name":"ada"}}');
 * const row = rows.at(-1)!;
 * console.assert(row.peer === "a1b2c3d4e5f60718" && row.state === '{"name":"ada"}' && row.direct === null);
 * ```
 */
export interface StoredPresence {
  /** The peer's id. */
  peer: string;
  /** Its state as JSON text, or null while it only watches. */
  state: string | null;
  /** The id it takes direct connections under, or null. */
  direct: string | null;
}

/**
 * Where a hub keeps the peers across a host's loss of memory.
 *
 * @example
 * ```ts
 * import { PresenceHub } from "./presence-hub.ts";
 * import { DEFAULT_PRESENCE } from "./presence-settings.ts";
 * import type { PresenceStore, StoredPresence } from "./presence-store.ts";
 * const rows = new Map<string, StoredPresence>();
 * const store: PresenceStore = {
 *   load: () => [...rows.values()],
 *   put: (row) => void rows.set(row.peer, row),
 *   delete: (peer) => void rows.delete(peer),
 * };
 * const ws = { readyState: 1, send() {}, close() {} };
 * const host = { sockets: () => [ws], peerOf: () => "a1b2c3d4e5f60718", roleOf: () => "write" as const, close() {} };
 * new PresenceHub(host, { settings: DEFAULT_PRESENCE, store }).message(ws, '{"t":"set","state":{"name":"ada"}}');
 * // The host lost its memory (a hibernated Durable Object): a new hub takes the peer back from the store.
 * console.assert(new PresenceHub(host, { settings: DEFAULT_PRESENCE, store }).list()[0]?.peer === "a1b2c3d4e5f60718");
 * ```
 */
export interface PresenceStore {
  /** Every peer kept. */
  load(): Iterable<StoredPresence>;
  /** Keeps (or replaces) one peer. */
  put(row: StoredPresence): void;
  /** Forgets one peer. */
  delete(peer: string): void;
}

/**
 * A {@link PresenceStore} in a Durable Object's SQLite database (table `hyperlog_presence`).
 *
 * @example
 * ```ts ignore
 * const store = sqlPresenceStore(ctx.storage.sql);
 * ```
 */
export function sqlPresenceStore(
  sql: { exec(query: string, ...bindings: unknown[]): { raw(): Iterable<unknown[]> } },
): PresenceStore {
  let made = false;
  const table = () => {
    if (!made) {
      sql.exec(
        "CREATE TABLE IF NOT EXISTS hyperlog_presence (peer TEXT PRIMARY KEY, state TEXT, direct TEXT)",
      );
      made = true;
    }
  };
  return {
    load: () => {
      table();
      return [...sql.exec("SELECT peer, state, direct FROM hyperlog_presence").raw()].map(([peer, state, direct]) => ({
        peer: String(peer),
        state: state === null ? null : String(state),
        direct: typeof direct === "string" ? direct : null,
      }));
    },
    put: (row) => {
      table();
      sql.exec(
        "INSERT OR REPLACE INTO hyperlog_presence (peer, state, direct) VALUES (?, ?, ?)",
        row.peer,
        row.state,
        row.direct,
      );
    },
    delete: (peer) => {
      table();
      sql.exec("DELETE FROM hyperlog_presence WHERE peer = ?", peer);
    },
  };
}
