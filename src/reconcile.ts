/**
 * Set reconciliation over node keys, so that two logs that never met learn what the other lacks at a cost that
 * follows their difference, not their size.
 *
 * Keys are SHA-256 digests, so they spread evenly over the key space; a range of it is named by a hex prefix. The
 * fingerprint of a prefix is the number of keys under it and the XOR of their first 16 bytes. Both HELLOs carry the
 * fingerprint of the empty prefix; the side with the smaller id answers the other's, and from then on the sides take
 * turns, each answering every entry of the other's last turn:
 * - `FP(P)` matching ours: nothing; the peer holds nothing under P: we send every node under P; we hold nothing
 *   under P: `ALL(P)`; the peer's is ours without one key (see `loneKey`): we send that node; we hold at most
 *   {@link LIST_THRESHOLD} keys under P: `KEYS(P)` lists them; else the 16 children of P as `FP` entries.
 * - `KEYS(P)`: we send the nodes under P the list lacks and answer `NEED(P)` with the listed keys we lack.
 * - `ALL(P)`: we send every node under P. `NEED(P)`: we send those nodes.
 * A turn with no entry ends the reconciliation. Peers that share n keys and differ by d settle in about
 * log16(n / 32) turns with O(d log n) bytes.
 *
 * Bounded against any peer: an entry must answer one that this side sent in its last turn (an `FP` about a child
 * of one of our `FP`s, `KEYS` or `ALL` about one of our `FP`s, `NEED` about one of our `KEYS`), each at most once,
 * so no range is answered twice and each turn goes one level deeper (the first turn of a large reconciliation
 * two levels, once); a key list holds at most {@link LIST_THRESHOLD} keys. A reply is never more than 16 entries
 * per entry received (256 for the first turn, which answers the HELLO), and the whole
 * reconciliation never lists a key of ours twice.
 *
 * @module
 */
import { ProtocolError } from "./errors.ts";
import { HEX_BYTES } from "./hex.ts";
import { type Fingerprint, KeyIndex } from "./key-index.ts";
import type { ReconEntry } from "./wire.ts";

export { type Fingerprint, KeyIndex };
export type { ReconEntry };

/** Ranges holding at most this many keys are settled by listing keys. */
export const LIST_THRESHOLD = 32;

const HEX_DIGITS = "0123456789abcdef";
/** Both sides hold at least this many keys: the first turn splits two digits deep (see `Reconciler.first`). */
export const DEEP_FIRST_SPLIT = 4096;

function sameFingerprint(a: Fingerprint, b: Fingerprint): boolean {
  if (a.count !== b.count) return false;
  for (let j = 0; j < 16; j++) if (a.xor[j] !== b.xor[j]) return false;
  return true;
}

/**
 * The one key of ours under `prefix` that the peer's fingerprint lacks, when its fingerprint is ours without that
 * key: one key fewer, and the XOR of the two is the key's first 16 bytes. As sure as equal fingerprints are of
 * equal sets (the peer's set equals ours without that key down to a 128-bit XOR), and it settles the range in this
 * turn, at any size, instead of splitting it or listing its keys.
 */
function loneKey(index: KeyIndex, prefix: string, mine: Fingerprint, theirs: Fingerprint): string | undefined {
  // A HELLO of a large log names no fingerprint of everything (an XOR of zeros): nothing to take from it.
  if (prefix === "" && theirs.xor.every((b) => b === 0)) return undefined;
  let hex = "";
  for (let j = 0; j < 16; j++) hex += HEX_BYTES[mine.xor[j]! ^ theirs.xor[j]!]!;
  if (!hex.startsWith(prefix)) return undefined;
  const found = index.keys(hex);
  return found.length === 1 ? found[0] : undefined;
}

/**
 * Answers one `FP` entry against the local index: the reply entries, and keys the peer lacks into `toSend`.
 *
 * @example
 * ```ts
 * import { answerFingerprint, KeyIndex } from "./reconcile.ts";
 * const index = new KeyIndex(["ab".repeat(32)]);
 * const toSend = new Set<string>();
 * const reply = answerFingerprint(index, "", { count: 0, xor: new Uint8Array(16) }, toSend);
 * console.assert(reply.length === 0 && toSend.size === 1);
 * ```
 */
export function answerFingerprint(
  index: KeyIndex,
  prefix: string,
  theirs: Fingerprint,
  toSend: Set<string>,
): ReconEntry[] {
  const mine = index.fingerprint(prefix);
  if (sameFingerprint(mine, theirs)) return [];
  if (theirs.count === 0) {
    for (const key of index.keys(prefix)) toSend.add(key);
    return [];
  }
  if (mine.count === 0) return [{ kind: "all", prefix }];
  if (mine.count === theirs.count + 1) {
    const lone = loneKey(index, prefix, mine, theirs);
    if (lone !== undefined) {
      toSend.add(lone);
      return [];
    }
  }
  if (mine.count <= LIST_THRESHOLD || prefix.length >= 63) return [{ kind: "keys", prefix, keys: index.keys(prefix) }];
  const reply: ReconEntry[] = [];
  for (const digit of HEX_DIGITS) {
    reply.push({ kind: "fp", prefix: prefix + digit, fp: index.fingerprint(prefix + digit) });
  }
  return reply;
}

/**
 * One side's reconciliation: answers the peer's turns and checks that each entry answers one of ours, once.
 *
 * @example Two sets that differ by one key settle in a few turns
 * ```ts
 * import { KeyIndex, Reconciler } from "./reconcile.ts";
 * const shared = Array.from({ length: 100 }, (_, i) => i.toString(16).padStart(64, "0"));
 * const a = new Reconciler(new KeyIndex([...shared, "f".repeat(64)]));
 * const b = new Reconciler(new KeyIndex(shared));
 * // a leads: it answers b's fingerprint of everything, which b sent in its HELLO.
 * b.opened(b.index.fingerprint(""));
 * let turn = a.first(b.index.fingerprint(""));
 * for (let i = 0; turn.length > 0; i++) {
 *   const side = i % 2 === 0 ? b : a;
 *   side.take(turn);
 *   turn = side.endTurn();
 * }
 * console.assert(a.toSend.has("f".repeat(64)) && b.toSend.size === 0);
 * ```
 */
export class Reconciler {
  /** The keys of this side. */
  readonly index: KeyIndex;
  /** Keys of this side the peer lacks, found so far. */
  readonly toSend: Set<string> = new Set();
  /** Prefixes of our last turn's entries, by kind, and whether the peer answered them. */
  #fps = new Map<string, "open" | "split" | "done">();
  #lists = new Set<string>();
  /** Prefixes the peer's current turn split, with the children it sent so far. */
  #children = new Set<string>();
  /** Our reply to the peer's current turn, so far. */
  #reply: ReconEntry[] = [];
  #entriesTaken = 0;
  /** How deep the peer's answers to our fingerprint of everything split it (0: not yet). */
  #rootDepth = 0;
  /** Whether the peer may answer our fingerprint of everything two digits deep. */
  #deepRoot = false;
  /** The longest prefix of our last turn's entries (see {@link Reconciler.unsettled}). */
  #depth = 0;

  /** Works on `index` (the log's key index, or any other). */
  constructor(index: KeyIndex) {
    this.index = index;
  }

  /**
   * This side sent its fingerprint of everything (in its HELLO): the peer, holding `peerCount` keys, answers it in
   * its first turn (two digits deep when both sides hold {@link DEEP_FIRST_SPLIT} keys or more).
   */
  opened(fp: Fingerprint, peerCount = 0): void {
    this.#fps.set("", fp.count === 0 ? "done" : "open");
    this.#deepRoot = fp.count >= DEEP_FIRST_SPLIT && peerCount >= DEEP_FIRST_SPLIT;
  }

  /**
   * This side leads: its first turn answers the peer's fingerprint of everything (from the peer's HELLO). When both
   * sides hold many keys, it splits the key space two digits deep at once (256 fingerprints): nearly every one of
   * the 16 first-digit ranges would differ anyway, and it saves a round trip.
   */
  first(theirs: Fingerprint): ReconEntry[] {
    const reply = answerFingerprint(this.index, "", theirs, this.toSend);
    if (theirs.count >= DEEP_FIRST_SPLIT && this.index.size >= DEEP_FIRST_SPLIT && reply.length === 16) {
      this.#reply = [];
      for (const entry of reply) {
        for (const digit of HEX_DIGITS) {
          const prefix = entry.prefix + digit;
          this.#reply.push({ kind: "fp", prefix, fp: this.index.fingerprint(prefix) });
        }
      }
    } else this.#reply = reply;
    return this.endTurn();
  }

  /** Entries of the peer's turn received so far. */
  get entriesTaken(): number {
    return this.#entriesTaken;
  }

  /** Takes one message of the peer's turn; throws a `ProtocolError` for an entry that answers nothing of ours. */
  take(entries: readonly ReconEntry[]): void {
    for (const entry of entries) {
      this.#entriesTaken++;
      const { prefix } = entry;
      switch (entry.kind) {
        case "fp": {
          let parent = prefix.slice(0, -1);
          if (prefix.length === 2 && this.#deepRoot && this.#fps.has("")) {
            // An answer to our fingerprint of everything two digits deep (see `first`): all of them, or none.
            if (this.#rootDepth === 1) this.#outOfTurn(entry);
            this.#rootDepth = 2;
            parent = "";
          } else if (prefix.length === 1) {
            if (this.#rootDepth === 2) this.#outOfTurn(entry);
            this.#rootDepth = 1;
          }
          const state = prefix.length === 0 ? undefined : this.#fps.get(parent);
          if (state !== "open" && state !== "split") this.#outOfTurn(entry);
          if (this.#children.has(prefix)) this.#twice(entry);
          this.#fps.set(parent, "split");
          this.#children.add(prefix);
          for (const reply of answerFingerprint(this.index, prefix, entry.fp, this.toSend)) this.#reply.push(reply);
          break;
        }
        case "keys": {
          if (this.#fps.get(prefix) !== "open") this.#outOfTurn(entry);
          this.#fps.set(prefix, "done");
          if (entry.keys.length > LIST_THRESHOLD) {
            throw new ProtocolError(
              `The peer listed ${entry.keys.length} keys under one prefix; at most ${LIST_THRESHOLD} are listed`,
            );
          }
          const theirs = new Set(entry.keys);
          if (theirs.size !== entry.keys.length) this.#twice(entry);
          for (const key of this.index.keys(prefix)) if (!theirs.has(key)) this.toSend.add(key);
          const need = entry.keys.filter((key) => !this.index.has(key));
          if (need.length > 0) this.#reply.push({ kind: "need", prefix, keys: need });
          break;
        }
        case "all":
          if (this.#fps.get(prefix) !== "open") this.#outOfTurn(entry);
          this.#fps.set(prefix, "done");
          for (const key of this.index.keys(prefix)) this.toSend.add(key);
          break;
        case "need": {
          if (!this.#lists.delete(prefix)) this.#outOfTurn(entry);
          if (new Set(entry.keys).size !== entry.keys.length) this.#twice(entry);
          for (const key of entry.keys) {
            if (!this.index.has(key)) {
              throw new ProtocolError(`The peer asked for node ${key}, which this side never offered`);
            }
            this.toSend.add(key);
          }
          break;
        }
      }
    }
  }

  #outOfTurn(entry: ReconEntry): never {
    throw new ProtocolError(
      `The peer sent a reconciliation entry (${entry.kind.toUpperCase()} of prefix "${entry.prefix}") ` +
        "that answers nothing this side asked",
    );
  }

  #twice(entry: ReconEntry): never {
    throw new ProtocolError(
      `The peer repeated a reconciliation entry (${entry.kind.toUpperCase()} of prefix "${entry.prefix}")`,
    );
  }

  /**
   * Whether `key` lies in a range this side's last turn left open (an `FP` the peer has yet to answer, or a `KEYS`
   * list it may answer with `NEED`): whether the peer holds it is not known yet. A key of ours in no open range and
   * not in {@link Reconciler.toSend} is one the peer holds (as sure as equal fingerprints are of equal sets).
   *
   * @example
   * ```ts
   * import { KeyIndex, Reconciler } from "./reconcile.ts";
   * const r = new Reconciler(new KeyIndex(["ab".repeat(32)]));
   * r.opened(r.index.fingerprint(""));
   * console.assert(r.unsettled("ab".repeat(32))); // our fingerprint of everything is not answered yet
   * ```
   */
  unsettled(key: string): boolean {
    for (let n = 0; n <= this.#depth; n++) {
      const prefix = key.slice(0, n);
      if (this.#fps.get(prefix) === "open" || this.#lists.has(prefix)) return true;
    }
    return false;
  }

  /** The peer's turn ended: returns this side's turn (empty when the reconciliation is over). */
  endTurn(): ReconEntry[] {
    const reply = this.#reply;
    this.#reply = [];
    this.#children.clear();
    this.#rootDepth = 0;
    this.#fps.clear();
    this.#lists.clear();
    this.#depth = 0;
    for (const entry of reply) {
      if (entry.kind === "fp") this.#fps.set(entry.prefix, entry.fp.count === 0 ? "done" : "open");
      else if (entry.kind === "keys") this.#lists.add(entry.prefix);
      this.#depth = Math.max(this.#depth, entry.prefix.length);
    }
    return reply;
  }
}
