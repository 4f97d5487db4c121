/**
 * What bounds a relay beyond one message: the write budget of a socket (nodes and bytes per second, in every phase,
 * the initial exchange included), and the file names of logs (one log per name on every file system).
 *
 * @module
 */
import { encodeMessage } from "../mod.ts";
import { CLOSE } from "./limits.ts";

/**
 * A refusal: the close code and the reason sent with it.
 *
 * @example
 * ```ts
 * import { type Refusal, WriteBudget } from "./caps.ts";
 * const budget = new WriteBudget({ nodesPerSecond: 1, bytesPerSecond: 1000, burstNodes: 1, burstBytes: 1000 }, 0);
 * budget.take(10, 0);
 * const refusal: Refusal | undefined = budget.take(10, 0); // a second node in the same instant: over the burst
 * console.assert(refusal?.code === 4029 && refusal.reason.length > 0);
 * ```
 */
export interface Refusal {
  /** The WebSocket close code (see `CLOSE`). */
  code: number;
  /** Why, for the client (at most 123 bytes once encoded). */
  reason: string;
}

/**
 * The write budget of one socket: two token buckets, nodes and bytes, refilled every second by `nodesPerSecond` and
 * `bytesPerSecond` and holding at most `burstNodes` and `burstBytes`. Every node a socket sends is counted, in the
 * initial exchange as in the live phase: a client that reconnects to push cannot go past it.
 *
 * @example
 * ```ts
 * import { WriteBudget } from "./caps.ts";
 * const budget = new WriteBudget({ nodesPerSecond: 2, bytesPerSecond: 1000, burstNodes: 2, burstBytes: 1000 }, 0);
 * console.assert(budget.take(10, 0) === undefined && budget.take(10, 0) === undefined);
 * console.assert(budget.take(10, 0)?.code === 4029);
 * console.assert(budget.take(10, 1000) === undefined);
 * ```
 */
export class WriteBudget {
  readonly #rate: { nodesPerSecond: number; bytesPerSecond: number; burstNodes: number; burstBytes: number };
  #nodes: number;
  #bytes: number;
  #at: number;

  /** Starts full, at time `now` (milliseconds). */
  constructor(
    rate: { nodesPerSecond: number; bytesPerSecond: number; burstNodes: number; burstBytes: number },
    now: number = Date.now(),
  ) {
    this.#rate = rate;
    this.#nodes = rate.burstNodes;
    this.#bytes = rate.burstBytes;
    this.#at = now;
  }

  /** Takes one node of `bytes` bytes at time `now`; a {@link Refusal} when over the budget. */
  take(bytes: number, now: number = Date.now()): Refusal | undefined {
    const r = this.#rate;
    const seconds = Math.max(0, now - this.#at) / 1000;
    this.#at = now;
    this.#nodes = Math.min(r.burstNodes, this.#nodes + seconds * r.nodesPerSecond);
    this.#bytes = Math.min(r.burstBytes, this.#bytes + seconds * r.bytesPerSecond);
    if (this.#nodes < 1) {
      return {
        code: CLOSE.RATE_LIMITED,
        reason: `More than ${r.nodesPerSecond} nodes per second from one socket; slow down and reconnect`,
      };
    }
    if (this.#bytes < bytes) {
      return {
        code: CLOSE.RATE_LIMITED,
        reason: `More than ${r.bytesPerSecond} bytes of nodes per second from one socket; slow down and reconnect`,
      };
    }
    this.#nodes -= 1;
    this.#bytes -= bytes;
    return undefined;
  }
}

/** Windows device names, which no file may be called (with any extension). */
const DEVICE = /^(?:con|prn|aux|nul|com[0-9]|lpt[0-9])(?:\.|$)/;

/**
 * The file name (without `.db`) of log `name`, the same on every file system: lower-case letters, digits and `.`,
 * `_`, `-` stand for themselves; an upper-case letter is `+` and the letter in lower case (`Chat` is `+chat`), so
 * that names differing only in case get files that differ on a case-folding file system too; a Windows device name
 * (`con`, `nul`, `com1`...) gets a leading `=`. No two names get one file, even compared without case.
 *
 * @example
 * ```ts
 * import { fileNameOf } from "./caps.ts";
 * console.assert(fileNameOf("chat") === "chat" && fileNameOf("Chat") === "+chat" && fileNameOf("nul") === "=nul");
 * ```
 */
export function fileNameOf(name: string): string {
  const escaped = name.replace(/[A-Z]/g, (c) => `+${c.toLowerCase()}`);
  return DEVICE.test(escaped) ? `=${escaped}` : escaped;
}

/**
 * The log name of a file name made by {@link fileNameOf}, or `undefined` for a file name it does not make.
 *
 * @example
 * ```ts
 * import { nameOfFile } from "./caps.ts";
 * console.assert(nameOfFile("+chat") === "Chat" && nameOfFile("Chat") === undefined);
 * ```
 */
export function nameOfFile(file: string): string | undefined {
  const bare = file.startsWith("=") ? file.slice(1) : file;
  if (!/^(?:[a-z0-9._-]|\+[a-z])+$/.test(bare)) return undefined;
  const name = bare.replace(/\+([a-z])/g, (_, c: string) => c.toUpperCase());
  return fileNameOf(name) === file ? name : undefined;
}

/**
 * What {@link LogGuard} needs to know of its log and relay.
 *
 * @example
 * ```ts
 * import { LogGuard, type LogGuardOptions } from "./caps.ts";
 * const rate = { nodesPerSecond: 100, bytesPerSecond: 1e6, burstNodes: 100, burstBytes: 1e6 };
 * // A new log on a relay that holds as many logs as it may (MAX_LOGS):
 * const options: LogGuardOptions = { logBytes: undefined, created: () => false, canCreate: () => false };
 * console.assert(new LogGuard(rate, options).admit({}, 100) !== undefined);
 * console.assert(new LogGuard(rate, { ...options, canCreate: () => true }).admit({}, 100) === undefined);
 * ```
 */
export interface LogGuardOptions {
  /** The size cap of the log (`MAX_LOG_BYTES`), or `undefined`. */
  logBytes: number | undefined;
  /** The log's size when opened, in bytes (0 for a new log). */
  startBytes?: number | undefined;
  /** Whether the log exists (its first write created it). */
  created(): boolean;
  /** Whether one more log may be created (`MAX_LOGS`). */
  canCreate(): boolean;
  /** Counts a node let in (metrics). */
  counted?: ((bytes: number) => void) | undefined;
}

/**
 * The checks on every node a socket sends to one log, for `RelayCore`'s `admit` hook: the socket's
 * {@link WriteBudget}, the cap on the number of logs (for the write that would create this one), and the log's size
 * cap (its size when opened plus the encoded size of every node let in since: an estimate, a little under the
 * file's size).
 *
 * @example
 * ```ts
 * import { LogGuard } from "./caps.ts";
 * const rate = { nodesPerSecond: 100, bytesPerSecond: 1e6, burstNodes: 100, burstBytes: 1e6 };
 * const guard = new LogGuard(rate, { logBytes: 150, created: () => true, canCreate: () => true });
 * const ws = {};
 * console.assert(guard.admit(ws, 100) === undefined && guard.admit(ws, 100)?.code === 4507);
 * ```
 */
export class LogGuard {
  readonly #rate: ConstructorParameters<typeof WriteBudget>[0];
  readonly #options: LogGuardOptions;
  readonly #budgets = new WeakMap<object, WriteBudget>();
  #bytes: number;

  /** `rate` is each socket's budget; `options` the log's caps. */
  constructor(rate: ConstructorParameters<typeof WriteBudget>[0], options: LogGuardOptions) {
    this.#rate = rate;
    this.#options = options;
    this.#bytes = options.startBytes ?? 0;
  }

  /** The log's estimated size in bytes. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Checks one node of `bytes` bytes from socket `ws`; a {@link Refusal} when it must not go in. */
  admit(ws: object, bytes: number): Refusal | undefined {
    let budget = this.#budgets.get(ws);
    if (budget === undefined) this.#budgets.set(ws, budget = new WriteBudget(this.#rate));
    const refusal = budget.take(bytes);
    if (refusal !== undefined) return refusal;
    if (!this.#options.created() && !this.#options.canCreate()) {
      return { code: CLOSE.TOO_MANY_LOGS, reason: "This relay holds as many logs as it may; no new log is created" };
    }
    const cap = this.#options.logBytes;
    if (cap !== undefined && this.#bytes + bytes > cap) {
      return { code: CLOSE.LOG_FULL, reason: `This log is at its size limit of ${cap} bytes; it takes no more writes` };
    }
    this.#bytes += bytes;
    this.#options.counted?.(bytes);
    return undefined;
  }
}

/**
 * The budget of each socket from the settings: `MAX_NODES_PER_SECOND` and `MAX_BYTES_PER_SECOND`, with buckets of
 * `MAX_NODES_BURST` and `MAX_BYTES_BURST` (each at least one second's worth).
 *
 * @example
 * ```ts
 * import { budgetOf } from "./caps.ts";
 * import { readSettings } from "./settings.ts";
 * console.assert(budgetOf(readSettings({ MAX_NODES_PER_SECOND: "50000" })).burstNodes === 50000);
 * ```
 */
export function budgetOf(
  settings: {
    limits: { nodesPerSecond: number };
    caps: { bytesPerSecond: number; burstNodes: number; burstBytes: number };
  },
): ConstructorParameters<typeof WriteBudget>[0] {
  const { limits, caps } = settings;
  return {
    nodesPerSecond: limits.nodesPerSecond,
    bytesPerSecond: caps.bytesPerSecond,
    burstNodes: Math.max(caps.burstNodes, limits.nodesPerSecond),
    burstBytes: Math.max(caps.burstBytes, caps.bytesPerSecond),
  };
}

/**
 * Tells the client why (an ERROR message, as every refusal sends, so that its session rejects with the reason and
 * closes its side at once), then closes `ws` with the refusal's code. Never throws.
 *
 * @example
 * ```ts
 * import { refuseSocket } from "./caps.ts";
 * const sent: Uint8Array[] = [];
 * let closed = 0;
 * refuseSocket({ send: (d: Uint8Array) => void sent.push(d), close: (code: number) => void (closed = code) }, {
 *   code: 4503,
 *   reason: "Full",
 * });
 * console.assert(sent[0]![0] === 7 && closed === 4503);
 * ```
 */
export function refuseSocket(
  ws: { send(data: Uint8Array): void; close(code: number, reason: string): void },
  refusal: Refusal,
): void {
  const body = encodeMessage({ type: "error", name: "ProtocolError", message: refusal.reason });
  try {
    ws.send(body);
  } catch {
    // Closing anyway.
  }
  try {
    ws.close(refusal.code, refusal.reason);
  } catch {
    // Already closed.
  }
}
