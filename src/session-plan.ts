/**
 * How the two sides of a session decide what to send (see `session.ts`), each on its own from the same messages:
 * from the two HELLOs (an empty side gets everything, equal fingerprints mean nothing to send), from the two CHECKs
 * (the same checkpoint on both sides: what each added since), or else by reconciliation; and the checkpoint each
 * side stores for the other at the end. Also the session's settings, checked.
 *
 * @module
 */
import { type Checkpoint, loadCheckpoint, Ranges, saveCheckpoint, sessionId } from "./checkpoint.ts";
import { ProtocolError } from "./errors.ts";
import { internalsOf } from "./internal.ts";
import { EAGER_KEYS, type KeyIndex } from "./key-index.ts";
import type { LogHandle } from "./log-handle.ts";
import type { ReplicationStats } from "./replicate-types.ts";
import { ReconTurns } from "./session-recon.ts";
import { DEFAULT_WINDOW, type Plan, type SessionOptions } from "./session-types.ts";
import { DEFAULT_MAX_FRAME, encodeMessage, type Hello, type ReconEntry, type ReplicationMode } from "./wire.ts";

/**
 * The settings of a session from its options, checked: a `TypeError` or `RangeError` says which is wrong.
 *
 * @example
 * ```ts
 * import { sessionSettings } from "./session-plan.ts";
 * console.assert(sessionSettings({ mode: "pull" }).mode === "pull");
 * ```
 */
export function sessionSettings(
  options: SessionOptions,
): { mode: ReplicationMode; live: boolean; maxFrame: number; window: number } {
  const mode = options.mode ?? "sync";
  if (mode !== "sync" && mode !== "push" && mode !== "pull") {
    throw new TypeError(`Unknown replication mode ${JSON.stringify(mode)}: use "sync", "push" or "pull"`);
  }
  const maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
  if (!Number.isInteger(maxFrame) || maxFrame < 1024) {
    throw new RangeError("maxFrame must be an integer of at least 1024 bytes");
  }
  const window = options.window ?? DEFAULT_WINDOW;
  if (!Number.isInteger(window) || window < 1024) throw new RangeError("window must be an integer of at least 1024");
  return { mode, live: options.live === true, maxFrame, window };
}

/**
 * The plan both HELLOs decide: everything when a side is empty, nothing when both name the same fingerprint (a
 * HELLO with an XOR of zeros names none), or `undefined`: the sets differ, go on to CHECK.
 *
 * @example
 * ```ts
 * import { helloPlan } from "./session-plan.ts";
 * const hello = { mode: "sync", live: false, id: "a", nonce: "n", length: 1, maxFrame: 1 << 20, window: 1 << 19 } as const;
 * const xor = new Uint8Array(16).fill(1);
 * console.assert(helloPlan({ ...hello, count: 1, xor }, { ...hello, count: 1, xor })?.kind === "none");
 * console.assert(helloPlan({ ...hello, count: 1, xor }, { ...hello, count: 0, xor: new Uint8Array(16) })?.kind === "range");
 * ```
 */
export function helloPlan(mine: Hello, peer: Hello): Plan | undefined {
  if (mine.count === 0 || peer.count === 0) return { kind: "range", since: 0, skip: new Ranges() };
  const known = mine.xor.some((b) => b !== 0);
  if (known && mine.count === peer.count && mine.xor.every((b, i) => b === peer.xor[i])) return { kind: "none" };
  return undefined;
}

/**
 * The plan both CHECKs decide: what this side added since the checkpoint both name (`stored`, the one this side
 * keeps for the peer; `theirs`, the name the peer sent), or `undefined`: reconcile.
 *
 * @example
 * ```ts
 * import { checkPlan } from "./session-plan.ts";
 * const stored = { sid: "s", snapshot: 10, ranges: [] };
 * console.assert(checkPlan(stored, "s", 12)?.kind === "range" && checkPlan(stored, null, 12) === undefined);
 * ```
 */
export function checkPlan(stored: Checkpoint | undefined, theirs: string | null, length: number): Plan | undefined {
  if (stored === undefined || theirs !== stored.sid) return undefined;
  return { kind: "range", since: Math.min(stored.snapshot, length), skip: new Ranges(stored.ranges) };
}

/**
 * Stores the checkpoint of a two-way session for the peer: the peer holds every node of this log up to `acked`,
 * and the changes in `fromPeer` came from it. A log closed meanwhile stores nothing (the next session reconciles).
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { loadCheckpoint, Ranges } from "./checkpoint.ts";
 * import { storeCheckpoint } from "./session-plan.ts";
 * const log = new Hyperlog();
 * await storeCheckpoint(log, { id: "peer", nonce: "b" }, "a", 0, new Ranges());
 * console.assert((await loadCheckpoint(log, "peer"))?.snapshot === 0);
 * ```
 */
export async function storeCheckpoint(
  log: LogHandle,
  peer: { id: string; nonce: string },
  nonce: string,
  acked: number,
  fromPeer: Ranges,
): Promise<void> {
  fromPeer.dropBelow(acked);
  try {
    await saveCheckpoint(log, peer.id, { sid: sessionId(nonce, peer.nonce), snapshot: acked, ranges: fromPeer.list() });
  } catch {
    // The log closed meanwhile: the next session reconciles instead.
  }
}

/**
 * The log's key index; with `build` false, only if it is built already.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { keyIndexOf } from "./session-plan.ts";
 * const log = new Hyperlog();
 * await log.append("x");
 * console.assert((await keyIndexOf(log, true))?.size === 1);
 * ```
 */
export function keyIndexOf(log: LogHandle, build: boolean): Promise<KeyIndex | undefined> {
  return internalsOf(log).keyIndex(build);
}

/**
 * This side's HELLO for `log` (`fields`, and what the log says: waits for it to open) and the key index its
 * fingerprint came from: the snapshot
 * (its length) and the fingerprint of every key, taken in one synchronous step (the index moves with the length).
 * The index of a log over `EAGER_KEYS` keys is built only if a reconciliation needs it: its HELLO then names no
 * fingerprint (an XOR of zeros), which differs from every other.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { ownHello } from "./session-plan.ts";
 * const log = new Hyperlog();
 * await log.append("x");
 * const fields = { mode: "sync", live: false, nonce: "n", maxFrame: 1 << 20, window: 1 << 19, refs: true } as const;
 * const { hello, index } = await ownHello(log, fields);
 * console.assert(hello.length === 1 && hello.count === 1 && hello.refs === true && index?.size === 1);
 * ```
 */
export async function ownHello(
  log: LogHandle,
  fields: Pick<Hello, "mode" | "live" | "nonce" | "maxFrame" | "window" | "refs">,
): Promise<{ hello: Hello; index: KeyIndex | undefined }> {
  await log.ready();
  const index = await keyIndexOf(log, log.length <= EAGER_KEYS);
  const length = log.length;
  const fp = index?.fingerprint("") ?? { count: length, xor: new Uint8Array(16) };
  const hello: Hello = { ...fields, id: log.id, length, count: fp.count, xor: fp.xor };
  return { hello, index };
}

/**
 * The deciding half of a session: from the two HELLOs, the two CHECKs, or the reconciliation's turns, the plan of
 * what this side sends (each method returns it once decided). Checks that CHECK and RECON come in turn.
 *
 * @example Two empty logs: everything (nothing) at once
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { Planner } from "./session-plan.ts";
 * const log = new Hyperlog();
 * const stats = { nodesSent: 0, nodesReceived: 0, bytesSent: 0, bytesReceived: 0, roundTrips: 0 };
 * const hello = { mode: "sync", live: false, id: "b", nonce: "n", length: 0, count: 0, xor: new Uint8Array(16), maxFrame: 1 << 20, window: 1 << 19 } as const;
 * const plan = await new Planner(log, stats).hello({ ...hello, id: "a" }, hello, []);
 * console.assert(plan?.kind === "range");
 * ```
 */
export class Planner {
  readonly #log: LogHandle;
  readonly #stats: ReplicationStats;
  #checkpoint: Checkpoint | undefined;
  #checking = false;
  #recon: ReconTurns | undefined;
  /** Whether a reconciliation began (it never begins twice). */
  #reconciled = false;
  #mine: Hello | undefined;
  #peer: Hello | undefined;

  /** Decides for `log`, counting round trips in `stats`. */
  constructor(log: LogHandle, stats: ReplicationStats) {
    this.#log = log;
    this.#stats = stats;
  }

  /** Whether the peer's CHECK is awaited. */
  get checking(): boolean {
    return this.#checking;
  }

  /** Whether the peer's reconciliation turn is awaited. */
  get reconciling(): boolean {
    return this.#recon?.waiting === true;
  }

  /** Whether a reconciliation began (the peer may send the nodes it found this side lacks before it is over). */
  get reconStarted(): boolean {
    return this.#reconciled;
  }

  /**
   * Between two turns of a reconciliation: the keys of this side found so far that the peer lacks, and which keys of
   * this side lie in ranges not settled yet (see `Outbox.early`); otherwise `undefined`.
   */
  get found(): { toSend: Set<string>; unsettled: (key: string) => boolean } | undefined {
    const recon = this.#recon;
    if (recon === undefined || !recon.waiting) return undefined;
    return { toSend: recon.toSend, unsettled: (key) => recon.unsettled(key) };
  }

  /** Both HELLOs are known: the plan they decide, or CHECK (and maybe the first turn) into `out`. */
  async hello(mine: Hello, peer: Hello, out: Uint8Array[]): Promise<Plan | undefined> {
    this.#mine = mine;
    this.#peer = peer;
    this.#stats.roundTrips = 1;
    const plan = helloPlan(mine, peer);
    if (plan !== undefined) return plan;
    // The sets differ: each side names the checkpoint it keeps for the other, and both decide on the two names.
    this.#checkpoint = await loadCheckpoint(this.#log, peer.id);
    this.#checking = true;
    out.push(encodeMessage({ type: "check", checkpoint: this.#checkpoint?.sid ?? null }));
    // Without a checkpoint for the peer, the two names cannot match: the side that leads the reconciliation starts
    // it now, a round trip early (the peer handles our CHECK first).
    if (this.#checkpoint === undefined && this.#log.id < peer.id) return await this.#lead(out);
    return undefined;
  }

  /** The peer's CHECK: the plan the same checkpoint on both sides decides, or reconciliation. */
  async check(theirs: string | null, out: Uint8Array[]): Promise<Plan | undefined> {
    if (!this.#checking) throw new ProtocolError("The peer sent CHECK out of turn");
    this.#checking = false;
    this.#stats.roundTrips++;
    if (this.#reconciled) return undefined; // Started with our CHECK (see `hello`).
    const mine = this.#mine!;
    const peer = this.#peer!;
    const plan = checkPlan(this.#checkpoint, theirs, mine.length);
    if (plan !== undefined) return plan;
    if (this.#log.id < peer.id) return await this.#lead(out);
    (await this.#turns()).follow({ count: mine.count, xor: mine.xor }, peer.count);
    return undefined;
  }

  /** One RECON message of the peer: this side's turn into `out`, or the plan once the reconciliation is over. */
  recon(message: { end: boolean; entries: readonly ReconEntry[] }, out: Uint8Array[]): Plan | undefined {
    const recon = this.#recon;
    if (recon === undefined) throw new ProtocolError("The peer sent a reconciliation message out of turn");
    const turns = recon.turns;
    const keys = recon.take(message, this.#peer!.maxFrame, out);
    this.#stats.roundTrips += recon.turns - turns;
    return this.#over(keys);
  }

  /** The reconciliation's turns, on the log's key index (built now if it was not). */
  async #turns(): Promise<ReconTurns> {
    const index = (await keyIndexOf(this.#log, true))!;
    index.keep = true;
    this.#reconciled = true;
    return this.#recon = new ReconTurns(index);
  }

  /** This side leads the reconciliation: its first turn answers the peer's fingerprint from its HELLO. */
  async #lead(out: Uint8Array[]): Promise<Plan | undefined> {
    const peer = this.#peer!;
    return this.#over((await this.#turns()).lead({ count: peer.count, xor: peer.xor }, peer.maxFrame, out));
  }

  #over(keys: Set<string> | undefined): Plan | undefined {
    if (keys === undefined) return undefined;
    this.#recon = undefined;
    return keys.size === 0 ? { kind: "none" } : { kind: "keys", keys: [...keys] };
  }
}
