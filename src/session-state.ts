/**
 * A session's resumable state (see {@link SessionState}): what a relay keeps in a socket's attachment so that a
 * session woken from hibernation carries on where it was.
 *
 * @module
 */
import { Ranges } from "./checkpoint.ts";
import { fromHex, toHex } from "./hex.ts";
import type { ReplicationStats } from "./replicate-types.ts";
import type { Outbox } from "./session-send.ts";
import type { SessionState } from "./session-types.ts";
import type { Hello } from "./wire.ts";

/**
 * The parts of a session its state holds: the two HELLOs, the sending half, the flags (SYNCED sent, SYNCED
 * received, ACK received, in sync), the credit owed, the changes that came from the peer, and the stats.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { Session } from "./session.ts";
 * import { restoreState, type StateParts } from "./session-state.ts";
 * import { Outbox } from "./session-send.ts";
 * const a = new Hyperlog(), b = new Hyperlog();
 * const sa = new Session(a, { live: true }), sb = new Session(b, { live: true });
 * const [ha, hb] = [await sa.start(), await sb.start()];
 * await sa.receive(hb);
 * await sb.receive(ha);
 * const out = new Outbox(a, (since, until, limit) => a.storage.read({ since, until, limit, reverse: false }));
 * const parts: StateParts = restoreState(sa.state!, out);
 * console.assert(parts.hello.id === a.id && parts.peer.id === b.id && parts.flags.length === 4);
 * ```
 */
export interface StateParts {
  /** This side's HELLO. */
  hello: Hello;
  /** The peer's HELLO. */
  peer: Hello;
  /** SYNCED sent, SYNCED received, ACK received, in sync. */
  flags: [boolean, boolean, boolean, boolean];
  /** Bytes of the peer's nodes stored and not yet credited. */
  owedCredit: number;
  /** Changes of this log that came from the peer. */
  fromPeer: Ranges;
  /** The stats so far. */
  stats: ReplicationStats;
}

function helloJson(hello: Hello): Record<string, unknown> {
  return { ...hello, xor: toHex(hello.xor) };
}

function helloOf(json: Record<string, unknown>): Hello {
  return { ...(json as unknown as Hello), xor: fromHex(json.xor as string) };
}

/**
 * The state of a session made of `parts` and `out`, or `undefined` when its sending half is in a phase that cannot
 * resume (before the plan, or sending a reconciled set).
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { captureState } from "./session-state.ts";
 * import { Outbox } from "./session-send.ts";
 * const log = new Hyperlog();
 * const out = new Outbox(log, (since, until, limit) => log.storage.read({ since, until, limit, reverse: false }));
 * console.assert(captureState({} as never, out) === undefined);
 * ```
 */
export function captureState(parts: StateParts, out: Outbox): SessionState | undefined {
  const plan = out.plan;
  if (plan === undefined || plan.kind === "keys" || (plan.kind === "range" && plan.filter !== undefined)) {
    return undefined;
  }
  const [sentSynced] = parts.flags;
  const first = out.buffer[0]?.change;
  let since = plan.kind === "range" ? plan.since : 0;
  let liveCursor = out.liveCursor;
  if (first !== undefined) {
    if (sentSynced) liveCursor = first - 1;
    else since = first - 1;
  }
  return {
    v: 1,
    hello: helloJson(parts.hello),
    peer: helloJson(parts.peer),
    plan: plan.kind === "range" && !sentSynced ? [since, plan.skip.list()] : null,
    flags: [...parts.flags],
    counts: [liveCursor, out.acked, out.sentBytes, out.credited, out.syncedAt, parts.owedCredit],
    unacked: out.unacked.map(([a, b]) => [a, b]),
    fromPeer: parts.fromPeer.list(),
    stats: { ...parts.stats },
  };
}

/**
 * The parts of a session in `state` (see {@link captureState}); the sending half's go into `out`.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { Session } from "./session.ts";
 * import { captureState, restoreState } from "./session-state.ts";
 * import { Outbox } from "./session-send.ts";
 * const a = new Hyperlog(), b = new Hyperlog();
 * const sa = new Session(a, { live: true }), sb = new Session(b, { live: true });
 * const [ha, hb] = [await sa.start(), await sb.start()];
 * await sa.receive(hb);
 * await sb.receive(ha);
 * const out = new Outbox(a, (since, until, limit) => a.storage.read({ since, until, limit, reverse: false }));
 * console.assert(restoreState(sa.state!, out).peer.id === b.id && out.plan !== undefined);
 * ```
 */
export function restoreState(state: SessionState, out: Outbox): StateParts {
  out.plan = state.plan === null
    ? { kind: "none" }
    : { kind: "range", since: state.plan[0], skip: new Ranges(state.plan[1]) };
  const [liveCursor, acked, sentBytes, credited, syncedAt, owedCredit] = state.counts;
  Object.assign(out, { liveCursor, acked, sentBytes, credited, syncedAt });
  out.unacked = state.unacked.map(([a, b]) => [a, b]);
  return {
    hello: helloOf(state.hello),
    peer: helloOf(state.peer),
    flags: [...state.flags],
    owedCredit,
    fromPeer: new Ranges(state.fromPeer),
    stats: { ...state.stats },
  };
}
