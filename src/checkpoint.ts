/**
 * Per-peer checkpoints, so that a resync costs the difference: after a two-way sync each side keeps, under the peer's
 * id, the session id both derived, a change number up to which the peer holds every node of this side, and the
 * change numbers above it of nodes that came from the peer. Both HELLOs name the session id they keep; only when
 * both name the same one does each side send just what it added since its own snapshot. Each side decides from the
 * two HELLOs, so both always take the same path.
 *
 * @module
 */
import type { LogHandle } from "./log-handle.ts";
import { sha256Hex } from "./sha256.ts";

/** Past this many ranges a checkpoint is not worth keeping; the next session reconciles instead. */
export const MAX_CHECKPOINT_RANGES = 256;

/**
 * What a side remembers about a peer.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { type Checkpoint, loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * const log = new Hyperlog();
 * const checkpoint: Checkpoint = { sid: "a".repeat(32), snapshot: 10, ranges: [[12, 14]] };
 * await saveCheckpoint(log, "f".repeat(32), checkpoint);
 * const back = await loadCheckpoint(log, "f".repeat(32));
 * console.assert(back!.snapshot === 10 && back!.ranges[0]![1] === 14);
 * ```
 */
export interface Checkpoint {
  /** The session id both sides derived. */
  sid: string;
  /** The peer holds every node of this side up to this change number. */
  snapshot: number;
  /** Change numbers (this side's) above the snapshot of nodes that came from the peer. */
  ranges: [number, number][];
}

function keyOf(peerId: string): string {
  return `replication:${peerId}`;
}

/**
 * The session id of two nonces (the same on both sides).
 *
 * @example
 * ```ts
 * import { sessionId } from "./checkpoint.ts";
 * console.assert(sessionId("a".repeat(32), "b".repeat(32)) === sessionId("b".repeat(32), "a".repeat(32)));
 * ```
 */
export function sessionId(mine: string, theirs: string): string {
  return sha256Hex(new TextEncoder().encode([mine, theirs].sort().join(""))).slice(0, 32);
}

/**
 * The checkpoint `log` keeps for `peerId`, or `undefined` (a damaged one counts as none).
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { loadCheckpoint } from "./checkpoint.ts";
 * console.assert(await loadCheckpoint(new Hyperlog(), "f".repeat(32)) === undefined);
 * ```
 */
export async function loadCheckpoint(log: LogHandle, peerId: string): Promise<Checkpoint | undefined> {
  const text = await log.storage.getMeta(keyOf(peerId));
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Checkpoint;
    if (
      typeof value.sid === "string" && /^[0-9a-f]{32}$/.test(value.sid) && Number.isInteger(value.snapshot) &&
      Array.isArray(value.ranges)
    ) return value;
  } catch {
    // A damaged checkpoint is as good as none: the session reconciles instead.
  }
  return undefined;
}

/**
 * Stores a checkpoint for `peerId` (dropped when it has too many ranges to be worth it).
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * const log = new Hyperlog();
 * await saveCheckpoint(log, "f".repeat(32), { sid: "a".repeat(32), snapshot: 0, ranges: [] });
 * console.assert((await loadCheckpoint(log, "f".repeat(32)))?.sid === "a".repeat(32));
 * ```
 */
export async function saveCheckpoint(log: LogHandle, peerId: string, checkpoint: Checkpoint): Promise<void> {
  if (checkpoint.ranges.length > MAX_CHECKPOINT_RANGES) return;
  await log.storage.setMeta(keyOf(peerId), JSON.stringify(checkpoint));
}

/**
 * Change-number ranges in increasing order (nodes that came from the peer), so that they are never sent back.
 *
 * @example
 * ```ts
 * import { Ranges } from "./checkpoint.ts";
 * const ranges = new Ranges();
 * ranges.add(3, 4);
 * ranges.add(5, 5);
 * console.assert(ranges.has(5) && !ranges.has(6) && ranges.list().length === 1);
 * ```
 */
export class Ranges {
  #ranges: [number, number][];

  /** Starts from `ranges` (copied). */
  constructor(ranges: readonly (readonly [number, number])[] = []) {
    this.#ranges = ranges.map(([from, to]) => [from, to]);
  }

  /** A copy of the ranges. */
  list(): [number, number][] {
    return this.#ranges.map(([from, to]) => [from, to]);
  }

  /** How many ranges. */
  get count(): number {
    return this.#ranges.length;
  }

  /** Adds `from..to`, after every range so far. */
  add(from: number, to: number): void {
    const last = this.#ranges[this.#ranges.length - 1];
    if (last !== undefined && last[1] + 1 >= from) last[1] = Math.max(last[1], to);
    else this.#ranges.push([from, to]);
  }

  /** Whether `change` is in a range (a binary search: a live writer's own changes make a range each). */
  has(change: number): boolean {
    const ranges = this.#ranges;
    let lo = 0;
    let hi = ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const range = ranges[mid]!;
      if (change < range[0]) hi = mid - 1;
      else if (change > range[1]) lo = mid + 1;
      else return true;
    }
    return false;
  }

  /** Forgets ranges wholly at or below `change`. */
  dropBelow(change: number): void {
    while (this.#ranges.length > 0 && this.#ranges[0]![1] <= change) this.#ranges.shift();
  }
}
