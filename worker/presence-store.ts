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
 * import type { StoredPresence } from "./presence-store.ts";
 * const row: StoredPresence = { peer: "a1b2c3d4e5f60718", state: '{"name":"ada"}', direct: null };
 * console.assert(JSON.parse(row.state!).name === "ada");
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
 * import type { PresenceStore, StoredPresence } from "./presence-store.ts";
 * const rows = new Map<string, StoredPresence>();
 * const store: PresenceStore = {
 *   load: () => rows.values(),
 *   put: (row) => void rows.set(row.peer, row),
 *   delete: (peer) => void rows.delete(peer),
 * };
 * store.put({ peer: "p", state: null, direct: null });
 * console.assert([...store.load()].length === 1);
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
