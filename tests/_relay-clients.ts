/**
 * Helpers shared by the relay tests (the Worker in Miniflare, and `hyperlog serve`): clients on real WebSockets,
 * polling, and hand-made NODE messages.
 *
 * @module
 */
import { Hyperlog, replicateWebSocket, type Replication } from "../mod.ts";
import { encodeNodeBody } from "../src/wire.ts";

export { waitFor } from "./_wait.ts";

/** A client: a log in memory, connected (live by default) to a relay. */
export interface Client {
  /** The client's log. */
  log: Hyperlog<unknown>;
  /** Its WebSocket. */
  socket: WebSocket;
  /** Its replication session. */
  session: Replication;
  /** Resolves with the close code and reason when the socket closes. */
  closed: Promise<{ code: number; reason: string }>;
}

/**
 * Connects a client to the relay at `base` (http or ws URL) for the log `name`.
 *
 * @example
 * ```ts ignore
 * const client = connect("http://127.0.0.1:8787", "demo", { token: "secret" });
 * ```
 */
export function connect(
  base: string,
  name: string,
  options: { log?: Hyperlog<unknown>; live?: boolean; token?: string; protocols?: string[] } = {},
): Client {
  const log = options.log ?? new Hyperlog();
  const query = options.token === undefined ? "" : `?token=${encodeURIComponent(options.token)}`;
  const socket = new WebSocket(`${base.replace(/^http/, "ws")}/logs/${name}/ws${query}`, options.protocols ?? []);
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason }))
  );
  const session = replicateWebSocket(log, socket, { live: options.live ?? true });
  session.done.catch(() => {});
  return { log, socket, session, closed };
}

/**
 * The NODE message of a node of `log`, as a peer sends it.
 *
 * @example
 * ```ts ignore
 * client.socket.send(await nodeMessage(client.log, node.key));
 * ```
 */
export async function nodeMessage(log: Hyperlog<unknown>, key: string): Promise<Uint8Array<ArrayBuffer>> {
  const stored = await log.storage.get(key);
  if (stored === undefined) throw new Error(`No node ${key}`);
  return encodeNodeBody(4, stored) as Uint8Array<ArrayBuffer>;
}

/**
 * The JSON body of a response, as a record.
 *
 * @example
 * ```ts ignore
 * const info = await json(await fetch(`${base}/logs/demo`));
 * ```
 */
export async function json(response: Response): Promise<Record<string, unknown>> {
  return await response.json() as Record<string, unknown>;
}
