/**
 * The receiving half of a replication session (see `session.ts`): the peer's nodes stored in batches, the credit
 * owed for them, and which changes of this log came from the peer (never sent back to it, and kept in the
 * checkpoint).
 *
 * @module
 */
import { Ranges } from "./checkpoint.ts";
import { ProtocolError } from "./errors.ts";
import { internalsOf } from "./internal.ts";
import type { LinkRefs } from "./link-refs.ts";
import { decodeLive, NODES_LIVE } from "./live-decode.ts";
import type { LogHandle } from "./log-handle.ts";
import type { ReplicationStats } from "./replicate-types.ts";
import { encodeMessage, type ReplicationMode, type WireNode } from "./wire.ts";

/** Nodes of the peer stored in one commit, at most (more when one message holds more). */
const INGEST_BATCH = 512;

/**
 * Whether the peer may send nodes now, a `ProtocolError` if not: this side takes nodes (its `mode` is not "push",
 * the peer's not "pull") and a plan is decided or a reconciliation began (`planned`; nodes found missing go with a
 * turn).
 *
 * @example
 * ```ts
 * import { checkNodesInTurn } from "./session-receive.ts";
 * checkNodesInTurn("sync", "sync", true);
 * let refused: unknown;
 * try {
 *   checkNodesInTurn("sync", "sync", false);
 * } catch (error) {
 *   refused = error;
 * }
 * console.assert(/before the plan was decided/.test(String(refused)));
 * ```
 */
export function checkNodesInTurn(mode: ReplicationMode, peerMode: ReplicationMode, planned: boolean): void {
  if (mode === "push") throw new ProtocolError("The peer sent a node, but this side only pushes");
  if (peerMode === "pull") throw new ProtocolError("The peer sent a node, but its mode says it only pulls");
  if (!planned) throw new ProtocolError("The peer sent nodes before the plan was decided");
}

/**
 * The receiving half of a session: {@link Intake.add} the nodes of each NODES message, {@link Intake.flush} before
 * anything else is handled; the credit owed grows as they are stored.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { Intake } from "./session-receive.ts";
 * const a = new Hyperlog(), b = new Hyperlog();
 * await a.append("x");
 * const page = await a.storage.read({ since: 0, until: 1, limit: 1, reverse: false });
 * const intake = new Intake(b, { nodesSent: 0, nodesReceived: 0, bytesSent: 0, bytesReceived: 0, roundTrips: 0 });
 * await intake.add(page, 40);
 * await intake.flush();
 * console.assert(b.length === 1 && intake.owedCredit === 40 && intake.fromPeer.has(1));
 * ```
 */
export class Intake {
  /** Bytes of the peer's node messages stored and not yet credited back. */
  owedCredit = 0;
  /** Changes of this log that came from the peer. */
  fromPeer: Ranges = new Ranges();
  readonly #log: LogHandle;
  readonly #stats: ReplicationStats;
  #nodes: WireNode[] = [];
  #bytes = 0;

  /** Stores into `log`, counting in `stats`. */
  constructor(log: LogHandle, stats: ReplicationStats) {
    this.#log = log;
    this.#stats = stats;
  }

  /**
   * Takes the nodes of one NODES message of `bytes` bytes; stores what waits once enough do. Nodes the
   * link-reference decoder keyed from their content are not hashed again (`keyed-nodes.ts`).
   */
  async add(nodes: readonly WireNode[], bytes: number): Promise<void> {
    for (const node of nodes) this.#nodes.push(node);
    this.#bytes += bytes;
    if (this.#nodes.length >= INGEST_BATCH) await this.flush();
  }

  /**
   * The nodes of a NODES_REFS or NODES_LIVE message, decoded by the session's `refs` (a reference to an own node older
   * than its ring is read back from the log), expanding to at most `maxFrame` bytes. A `ProtocolError` when this side
   * did not offer references (`offered`: its HELLO said `refs` and the peer's came), or for NODES_LIVE at a `relay`.
   */
  decodeRefs(
    refs: LinkRefs | undefined,
    body: Uint8Array,
    maxFrame: number,
    offered: boolean,
    relay: boolean,
  ): Promise<WireNode[]> {
    if (!offered || refs === undefined) {
      throw new ProtocolError(`The peer sent link references (message type ${body[0]}), which this side did not offer`);
    }
    // Only a relay (a session that frames its live nodes for every session, `pages`) sends NODES_LIVE: a relay that
    // read one from a client would do a read of its log for each of its 3-byte "yours" entries.
    if (body[0] === NODES_LIVE && relay) {
      throw new ProtocolError("The peer sent NODES_LIVE (message type 11), which only a relay sends to its clients");
    }
    const readChange = async (change: number) => {
      const [node] = await this.#log.storage.read({ since: change - 1, until: change, limit: 1, reverse: false });
      if (node?.change !== change) throw new ProtocolError(`Link reference to change ${change}, which is gone`);
      return node.key;
    };
    // NODES_LIVE (live-decode.ts): links by the sender's change numbers.
    if (body[0] === NODES_LIVE) return decodeLive(refs, body, readChange, maxFrame);
    return refs.decode(body, readChange, maxFrame);
  }

  /** Stores the nodes taken so far. */
  async flush(): Promise<void> {
    if (this.#nodes.length === 0) return;
    const nodes = this.#nodes;
    const bytes = this.#bytes;
    this.#nodes = [];
    this.#bytes = 0;
    const fresh = await internalsOf(this.#log).ingestWire(nodes);
    this.owedCredit += bytes;
    if (fresh.length === 0) return;
    this.#stats.nodesReceived += fresh.length;
    this.fromPeer.add(fresh[0]!.change, fresh[fresh.length - 1]!.change);
  }

  /**
   * The peer's SYNCED: the ACK that grants the credit of every node before it, or nothing when the peer says
   * (`credited`) that every byte it sent was credited already; a `ProtocolError` when that is not so.
   */
  synced(credited: boolean): Uint8Array[] {
    if (!credited) {
      this.owedCredit = 0;
      return [encodeMessage({ type: "ack" })];
    }
    if (this.owedCredit !== 0) {
      throw new ProtocolError(
        `The peer's SYNCED says every node it sent was credited, but ${this.owedCredit} bytes were not`,
      );
    }
    return [];
  }

  /** The CREDIT for what was stored (when it is at least `least` bytes), or nothing. */
  credit(least = 1): Uint8Array[] {
    if (this.owedCredit < least || this.owedCredit === 0) return [];
    const bytes = this.owedCredit;
    this.owedCredit = 0;
    return [encodeMessage({ type: "credit", bytes })];
  }
}
