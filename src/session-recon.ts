/**
 * The reconciliation phase of a replication session (see `session.ts`): whose turn it is, a turn split into RECON
 * messages that fit the peer's frame limit, and when it is over. The set logic itself is `reconcile.ts`.
 *
 * @module
 */
import { ProtocolError } from "./errors.ts";
import type { Fingerprint, KeyIndex } from "./key-index.ts";
import { Reconciler } from "./reconcile.ts";
import { encodeMessage, type ReconEntry, reconSize } from "./wire.ts";

/** The largest RECON message this side sends. */
const RECON_MESSAGE_BYTES = 64 * 1024;

/** Whether a reconciliation entry is answered with nodes only, never with entries. */
function finalEntry(entry: ReconEntry): boolean {
  return entry.kind === "all" || entry.kind === "need";
}

/**
 * The turns of one reconciliation. The side with the smaller id leads ({@link ReconTurns.lead}), the other follows
 * ({@link ReconTurns.follow}); each RECON message of the peer goes to {@link ReconTurns.take}. When it is over,
 * `lead` or `take` return the keys of this side that the peer lacks.
 *
 * A turn with no entry ends the reconciliation; so does a turn of only ALL and NEED entries (final: the peer
 * answers those with nodes, never with entries), on both sides, with no empty turn back.
 *
 * @example Two key sets that differ by one key
 * ```ts
 * import { KeyIndex } from "./key-index.ts";
 * import { ReconTurns } from "./session-recon.ts";
 * import { decodeMessage } from "./wire.ts";
 * const shared = Array.from({ length: 100 }, (_, i) => i.toString(16).padStart(64, "0"));
 * const a = new KeyIndex([...shared, "f".repeat(64)]), b = new KeyIndex(shared);
 * const ta = new ReconTurns(a), tb = new ReconTurns(b);
 * tb.follow(b.fingerprint(""), a.size);
 * let messages: Uint8Array[] = [];
 * ta.lead(b.fingerprint(""), 1 << 20, messages);
 * // Each side answers the other's turn until one sends nothing (a final turn, or the end).
 * for (let side = tb; messages.length > 0; side = side === tb ? ta : tb) {
 *   const out: Uint8Array[] = [];
 *   for (const body of messages) {
 *     const message = decodeMessage(body);
 *     if (message.type === "recon") side.take(message, 1 << 20, out);
 *   }
 *   messages = out;
 * }
 * console.assert(ta.toSend.has("f".repeat(64)) && tb.toSend.size === 0);
 * ```
 */
export class ReconTurns {
  readonly #recon: Reconciler;
  #turn: "mine" | "theirs" | "over" = "over";
  #entries = 0;
  #final = true;
  /** Peer turns taken (one round trip each). */
  turns = 0;

  /** Reconciles the keys of `index`. */
  constructor(index: KeyIndex) {
    this.#recon = new Reconciler(index);
  }

  /** Whether the peer's turn is awaited. */
  get waiting(): boolean {
    return this.#turn === "theirs";
  }

  /** Keys of this side the peer lacks, found so far. */
  get toSend(): Set<string> {
    return this.#recon.toSend;
  }

  /** Whether `key` of this side lies in a range the reconciliation has not settled yet (see `Reconciler`). */
  unsettled(key: string): boolean {
    return this.#recon.unsettled(key);
  }

  /**
   * This side leads: its first turn answers the peer's fingerprint of everything (from its HELLO), into `out`.
   * Returns the keys to send if that ends it.
   */
  lead(peer: Fingerprint, peerMaxFrame: number, out: Uint8Array[]): Set<string> | undefined {
    return this.#send(this.#recon.first(peer), peerMaxFrame, out);
  }

  /** The peer, holding `peerCount` keys, leads: it answers `mine`, this side's fingerprint of everything. */
  follow(mine: Fingerprint, peerCount: number): void {
    this.#recon.opened(mine, peerCount);
    this.#turn = "theirs";
  }

  /**
   * One RECON message of the peer; this side's turn goes into `out` when the peer's ends. Returns the keys to send
   * once the reconciliation is over. Throws a `ProtocolError` for a message out of turn or an entry that answers
   * nothing of ours.
   */
  take(
    message: { end: boolean; entries: readonly ReconEntry[] },
    peerMaxFrame: number,
    out: Uint8Array[],
  ): Set<string> | undefined {
    if (this.#turn !== "theirs") throw new ProtocolError("The peer sent a reconciliation message out of turn");
    this.#entries += message.entries.length;
    for (const entry of message.entries) if (!finalEntry(entry)) this.#final = false;
    this.#recon.take(message.entries);
    if (!message.end) return undefined;
    this.turns++;
    const [entries, final] = [this.#entries, this.#final];
    this.#entries = 0;
    this.#final = true;
    if (entries === 0) return this.#over();
    const reply = this.#recon.endTurn();
    // A final turn gets no reply: both sides know the reconciliation is over.
    if (reply.length === 0 && final) return this.#over();
    return this.#send(reply, peerMaxFrame, out);
  }

  #over(): Set<string> {
    this.#turn = "over";
    return this.#recon.toSend;
  }

  /** Sends this side's turn in messages that fit the peer's frame limit; an empty or final turn ends it. */
  #send(entries: ReconEntry[], peerMaxFrame: number, out: Uint8Array[]): Set<string> | undefined {
    const limit = Math.min(RECON_MESSAGE_BYTES, Math.floor(peerMaxFrame / 2)) - 2;
    let start = 0;
    do {
      let size = 0;
      let end = start;
      while (end < entries.length && (end === start || size + reconSize(entries[end]!) <= limit)) {
        size += reconSize(entries[end]!);
        end++;
      }
      out.push(encodeMessage({ type: "recon", end: end === entries.length, entries: entries.slice(start, end) }));
      start = end;
    } while (start < entries.length);
    if (entries.length === 0 || entries.every(finalEntry)) return this.#over();
    this.#turn = "theirs";
    return undefined;
  }
}
