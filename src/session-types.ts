/**
 * The types a session shares with its parts and its drivers: options, the resumable state, the sending plan, and
 * the errors a peer's ERROR message becomes.
 *
 * @module
 */
import {
  ClosedError,
  EncodingError,
  type HyperlogError,
  InvalidNodeError,
  ProtocolError,
  SignatureError,
  TimeoutError,
} from "./errors.ts";
import type { Ranges } from "./checkpoint.ts";
import type { StoredNode } from "./node.ts";
import type { EncodedPages } from "./encoded-pages.ts";
import type { ReplicateOptions, ReplicationStats } from "./replicate-types.ts";

/** Bytes of node messages a side takes before it grants more (default of `window`). */
export const DEFAULT_WINDOW = 512 * 1024;

const ERRORS: Record<string, new (message: string) => HyperlogError> = {
  InvalidNodeError,
  SignatureError,
  ProtocolError,
  EncodingError,
  ClosedError,
  TimeoutError,
};

export function remoteError(name: string, message: string): HyperlogError {
  const text = `Peer stopped the session: ${message}`;
  const Known = ERRORS[name];
  const err = Known !== undefined ? new Known(text) : new ProtocolError(text);
  if (name === "MissingLinksError") err.name = name;
  err.message = text;
  return Object.assign(err, { fromPeer: true });
}

/**
 * Options of a {@link Session}: those of `Hyperlog.replicate`, and a hook for a relay.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { Session, type SessionOptions } from "./session.ts";
 * const options: SessionOptions = { mode: "push", admit: (sizes) => void sizes };
 * const session = new Session(new Hyperlog(), options);
 * let refused: unknown;
 * try {
 *   new Session(new Hyperlog(), { mode: "both" as SessionOptions["mode"] });
 * } catch (error) {
 *   refused = error;
 * }
 * console.assert(session.state === undefined && refused instanceof TypeError);
 * ```
 */
export interface SessionOptions extends ReplicateOptions {
  /**
   * Called with the NODE body size of each node of a message from the peer before anything else is done with it,
   * and whether the initial exchange is over (`live`); throw to refuse them (the error ends the session).
   */
  admit?: ((sizes: readonly number[], live: boolean) => void) | undefined;
  /**
   * Reads nodes in change order, as `storage.read` does (default: the log's storage). A relay with many sockets
   * passes a read that serves recent nodes from memory, so that a node stored once is read once for all of them.
   */
  read?: ((since: number, until: number, limit: number) => Promise<StoredNode[]>) | undefined;
  /**
   * The log framed as a fresh session sends it (`encoded-pages.ts`), shared by the sessions of a relay: a session
   * that sends the log from its start copies its initial messages from it instead of framing each node again.
   */
  pages?: EncodedPages | undefined;
  /**
   * Whether this side takes links as references from the peer (the HELLO capability `refs`, default true). A host
   * that may resume sessions from their state (a hibernating Durable Object) passes false: its references are in
   * memory only.
   */
  linkRefs?: boolean | undefined;
  /**
   * The most bytes of nodes this side sends ahead of the peer's CREDIT, whatever window the peer's HELLO names
   * (default: the peer's). A relay sets it, so that a client that asks for a huge window and stops reading costs it
   * at most this much on a transport that does not tell how much it buffers.
   */
  peerWindow?: number | undefined;
}

/**
 * A session's state between messages, small and structured-cloneable (a relay keeps it in a socket's attachment),
 * for the phases that can resume: after the HELLOs, with no reconciliation under way.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { Session, type SessionState } from "./session.ts";
 * const a = new Hyperlog();
 * const sa = new Session(a, { live: true }), sb = new Session(new Hyperlog(), { live: true });
 * const [ha, hb] = [await sa.start(), await sb.start()];
 * console.assert(sa.state === undefined); // before the HELLOs: nothing to resume
 * await sa.receive(hb);
 * await sb.receive(ha);
 * const kept: SessionState = structuredClone(sa.state!); // as a relay keeps it in an attachment
 * console.assert(kept.v === 1 && Session.resume(a, { live: true }, kept).peer !== undefined);
 * ```
 */
export interface SessionState {
  /** The version of this layout. */
  v: 1;
  /** This side's HELLO, and the peer's (fingerprints in hex). */
  hello: Record<string, unknown>;
  /** The peer's HELLO. */
  peer: Record<string, unknown>;
  /** `[since, skip ranges]` of the initial nodes still to send, or null when none are left. */
  plan: [number, [number, number][]] | null;
  /** Flags: sentSynced, gotSynced, gotAck, synced. */
  flags: [boolean, boolean, boolean, boolean];
  /** The live cursor, acked change, bytes sent, credited, sent at SYNCED, and credit owed. */
  counts: [number, number, number, number, number, number];
  /** Live sends not yet credited. */
  unacked: [number, number][];
  /** Ranges of nodes from the peer. */
  fromPeer: [number, number][];
  /** The stats so far. */
  stats: ReplicationStats;
}

/** What the sending side works through: the nodes the peer lacks, in change order. */
export type Plan =
  | { kind: "none" }
  | { kind: "range"; since: number; skip: Ranges; filter?: Set<string> }
  | { kind: "keys"; keys: string[] };
