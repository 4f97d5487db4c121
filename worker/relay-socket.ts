/**
 * The seam between `RelayCore` and what hosts it: the socket as the relay uses it, what the relay keeps with each
 * (small enough for a Durable Object's attachment), the host that lists and keeps them, the core's options (storage,
 * limits, the host's hooks), and how an error that ends a socket's session becomes its close code and reason.
 *
 * @module
 */
import {
  InvalidNodeError,
  MissingLinksError,
  ProtocolError,
  type SessionState,
  SignatureError,
  type StoredNode,
  TimeoutError,
} from "../mod.ts";
import type { Driver, SharedBytes, Storage } from "../mod.ts";
import type { Refusal } from "./caps.ts";
import { CLOSE, type RelayLimits, type Role } from "./limits.ts";
import type { PresenceHubOptions } from "./presence-hub.ts";

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/**
 * A server-side WebSocket as the relay uses it (a Workers socket accepted with the hibernation API fits, and so
 * does the wrapper `serve.ts` puts around a Node, Deno or Bun socket).
 *
 * @example
 * ```ts
 * import { MemoryStorage } from "../mod.ts";
 * import { HELLO } from "../src/wire.ts";
 * import { DEFAULT_LIMITS } from "./limits.ts";
 * import { RelayCore, type RelaySocket } from "./relay-core.ts";
 * const sent: (Uint8Array | string)[] = [];
 * const ws: RelaySocket = { readyState: 1, send: (data) => void sent.push(data), close() {} };
 * const host = { sockets: () => [ws], save() {}, load: () => undefined, waitUntil() {} };
 * const core = new RelayCore(host, { name: "chat", storage: new MemoryStorage(), limits: DEFAULT_LIMITS });
 * await core.accept(ws, "write");
 * for (let i = 0; i < 200 && sent.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
 * console.assert((sent[0] as Uint8Array)[0] === HELLO); // the relay speaks first
 * core.closed(ws, 1000);
 * await core.close();
 * ```
 */
export interface RelaySocket {
  /** 1 while open. */
  readonly readyState: number;
  /** Sends one message: binary (replication) or text (presence). */
  send(data: Uint8Array | string): void;
  /** Closes the socket. */
  close(code?: number, reason?: string): void;
}

/**
 * What the relay keeps with each socket, through {@link RelayHost.save}: small and structured-cloneable, so that a
 * Durable Object can keep it in the socket's attachment across hibernation.
 *
 * @example
 * ```ts
 * import { MemoryStorage } from "../mod.ts";
 * import { DEFAULT_LIMITS } from "./limits.ts";
 * import { RelayCore, type RelaySocketState } from "./relay-core.ts";
 * let kept: RelaySocketState | undefined;
 * const ws = { readyState: 1, send() {}, close() {} };
 * const save = (_ws: unknown, state: RelaySocketState) => void (kept = state);
 * const host = { sockets: () => [ws], save, load: () => kept, waitUntil() {} };
 * const core = new RelayCore(host, { name: "chat", storage: new MemoryStorage(), limits: DEFAULT_LIMITS });
 * await core.accept(ws, "read");
 * console.assert(kept?.name === "chat" && kept.role === "read" && kept.phase === "handshake");
 * core.closed(ws, 1000);
 * await core.close();
 * ```
 */
export interface RelaySocketState {
  /** The log's name (a Durable Object learns it from requests; a woken one learns it here). */
  name: string;
  /** What the client may do. */
  role: Role;
  /** `handshake` during the initial exchange, then `live`. */
  phase: "handshake" | "live";
  /** The session's state to resume from, or null when its phase cannot resume. */
  session: SessionState | null;
  /** The socket's presence peer id (`presence-hub.ts`). */
  peer?: string;
}

/**
 * The seam between the relay and what hosts it: the Durable Object fills it with its hibernation API
 * (`ctx.getWebSockets()`, `ws.serializeAttachment`), `hyperlog serve` with a set and a map.
 *
 * @example
 * ```ts
 * import { MemoryStorage } from "../mod.ts";
 * import { DEFAULT_LIMITS } from "./limits.ts";
 * import { type RelayHost, RelayCore, type RelaySocket, type RelaySocketState } from "./relay-core.ts";
 * const states = new Map<RelaySocket, RelaySocketState>();
 * const host: RelayHost = {
 *   sockets: () => states.keys(),
 *   save: (ws, state) => void states.set(ws, state),
 *   load: (ws) => states.get(ws),
 *   waitUntil: () => {},
 * };
 * const core = new RelayCore(host, { name: "chat", storage: new MemoryStorage(), limits: DEFAULT_LIMITS });
 * const ws = { readyState: 1, send() {}, close() {} };
 * await core.accept(ws, "write");
 * console.assert(states.get(ws)?.role === "write"); // kept through the host
 * core.closed(ws, 1000);
 * await core.close();
 * ```
 */
export interface RelayHost {
  /** Every socket of this log accepted and still open (after a wake-up too). */
  sockets(): Iterable<RelaySocket>;
  /** Keeps `state` with the socket. */
  save(ws: RelaySocket, state: RelaySocketState): void;
  /** The state last saved with the socket (`undefined` or `null` if none). */
  load(ws: RelaySocket): unknown;
  /** Keeps the host alive until `promise` settles (background work such as the KV mirror). */
  waitUntil(promise: Promise<unknown>): void;
}

/**
 * Options of a {@link RelayCore}.
 *
 * @example
 * ```ts
 * import { MemoryStorage } from "../mod.ts";
 * import { DEFAULT_LIMITS } from "./limits.ts";
 * import type { RelayCoreOptions } from "./relay-core.ts";
 * const options: RelayCoreOptions = { name: "chat", storage: new MemoryStorage(), limits: DEFAULT_LIMITS };
 * console.assert(options.name === "chat");
 * ```
 */
export interface RelayCoreOptions {
  /** The log's name. */
  name: string;
  /** Where the log is kept. */
  storage: Storage;
  /** Size and rate limits. */
  limits: RelayLimits;
  /**
   * Milliseconds an initial exchange may wait for a reply it needs before the socket is closed with 4408 (default
   * 30 000). The host keeps the HELLO deadline itself.
   */
  idleMs?: number | undefined;
  /** The writer allowlist (hex public keys); nodes must be signed by one of them. */
  writers?: string[] | undefined;
  /**
   * Copies stored nodes elsewhere (the KV mirror). Called with batches in change order, one call at a time, in the
   * background (through {@link RelayHost.waitUntil}): ingest never waits for it. A failure is dropped: the copy is
   * a cache, and readers fall back to the log.
   */
  mirror?: ((nodes: readonly StoredNode[]) => Promise<void>) | undefined;
  /**
   * Called for every node a socket sends, in every phase, once its role and size are checked (the write budget, the
   * log's size cap): a {@link Refusal} closes the socket with its code.
   */
  admit?: ((ws: RelaySocket, bytes: number) => Refusal | undefined) | undefined;
  /** Called when the relay closes a socket for a reason of its own (a refusal), with the code and reason. */
  refused?: ((ws: RelaySocket, code: number, reason: string) => void) | undefined;
  /** Presence: its bounds, and where a host that loses its memory keeps the peers (default: the defaults, in memory). */
  presence?: PresenceHubOptions | undefined;
  /**
   * Whether the host may resume sessions from the state saved with their sockets (default true: a hibernating
   * Durable Object). A host that never does (`hyperlog serve`) passes false: the core then saves no session state
   * (computing it on every message cost a quarter of the relay's CPU in a write storm), and sessions take links as
   * references from clients (`SessionOptions.linkRefs`: references live in memory, which a resumed session lost).
   */
  resumes?: boolean | undefined;
  /**
   * The bytes the late-joiner caches of several cores count together (`hyperlog serve`'s `PAGES_CACHE_BYTES`): each
   * log's cache stops framing while they hold its `max`. Unset, only the log's own bound (32 MiB) applies.
   */
  pagesShared?: SharedBytes | undefined;
}

/**
 * A refusal of the relay's own (a limit or a role), with its close code.
 *
 * @example
 * ```ts
 * import { codeOf, Refused } from "./relay-socket.ts";
 * const refused = new Refused("ProtocolError", "This client may only read", 4003);
 * console.assert(codeOf(refused)[0] === 4003 && refused.name === "ProtocolError");
 * ```
 */
export class Refused extends Error {
  /** The WebSocket close code. */
  readonly closeCode: number;
  /** An error named `name` (the class the client's session rejects with), closing the socket with `closeCode`. */
  constructor(name: string, message: string, closeCode: number) {
    super(message);
    this.name = name;
    this.closeCode = closeCode;
  }
}

/**
 * The close code and reason for an error that ended a session (`undefined`: it ended well).
 *
 * @example
 * ```ts
 * import { ProtocolError } from "../mod.ts";
 * import { codeOf } from "./relay-socket.ts";
 * console.assert(codeOf(undefined)[0] === 1000 && codeOf(new ProtocolError("Bad frame"))[0] === 4000);
 * ```
 */
export function codeOf(error: Error | undefined): [number, string] {
  if (error === undefined) return [1000, "Done"];
  if ((error as { fromPeer?: boolean }).fromPeer === true) return [1000, "Peer stopped the session"];
  if (error instanceof Refused) return [error.closeCode, error.message];
  if (error instanceof InvalidNodeError || error instanceof SignatureError || error instanceof MissingLinksError) {
    return [CLOSE.INVALID_NODE, error.message];
  }
  if (error.name === "MissingLinksError") return [CLOSE.INVALID_NODE, error.message];
  if (error instanceof TimeoutError) return [CLOSE.HELLO_TIMEOUT, error.message];
  if (error instanceof ProtocolError) return [CLOSE.PROTOCOL, error.message];
  return [CLOSE.INTERNAL, error.message];
}

/**
 * A close reason cut to at most 123 bytes (what a WebSocket close frame holds), on a character boundary.
 *
 * @example
 * ```ts
 * import { reasonOf } from "./relay-socket.ts";
 * console.assert(new TextEncoder().encode(reasonOf("é".repeat(100))).length <= 123);
 * ```
 */
export function reasonOf(message: string): string {
  const bytes = textEncoder.encode(message);
  return bytes.length <= 123 ? message : textDecoder.decode(bytes.subarray(0, 120)).replace(/\uFFFD$/, "") + "...";
}

/**
 * Raw bytes with the exact length (a view of part of a buffer would send the whole buffer).
 *
 * @example
 * ```ts
 * import { exact } from "./relay-socket.ts";
 * const part = new Uint8Array(8).subarray(2, 4);
 * console.assert(exact(part).buffer.byteLength === 2);
 * ```
 */
export function exact(body: Uint8Array): Uint8Array {
  return body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : body.slice();
}

/**
 * What the relay core keeps in memory for each socket while it lives (its session's driver, the save marks and
 * timers, whether it waits for room); the state that survives the core is {@link RelaySocketState}.
 *
 * @example
 * ```ts
 * import type { Conn } from "./relay-socket.ts";
 * import { Refused } from "./relay-socket.ts";
 * const refused = new Refused("RateLimitError", "Too many writes", 4029);
 * const closing: Conn["closing"] = [refused.closeCode, refused.message];
 * console.assert(closing![0] === 4029 && closing![1] === "Too many writes");
 * ```
 */
export interface Conn {
  ws: RelaySocket;
  att: RelaySocketState;
  driver: Driver;
  /** The close code and reason for the relay's own refusals. */
  closing?: [number, string] | undefined;
  closed: boolean;
  /** When the state was last saved, and the timer of the next save. */
  saved: number;
  /** The phase and flags of the state last saved. */
  mark?: string | undefined;
  saveTimer?: ReturnType<typeof setTimeout> | undefined;
  /** The session waits for the socket to have room (the client reads slower than the relay sends). */
  waiting: boolean;
  drainTimer?: ReturnType<typeof setTimeout> | undefined;
}

/**
 * The check a socket's session runs on the nodes of each message it receives (`SessionOptions.admit`), in every
 * phase: a socket with `role` "read" may send none (4003), a node over `limits.maxNode` is refused (4013), then the
 * host's own checks (`admit`: the write budget, the log's size cap) node by node. A refusal throws {@link Refused}.
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS } from "./limits.ts";
 * import { admitNodes, codeOf, type RelaySocket } from "./relay-socket.ts";
 * const ws: RelaySocket = { readyState: 1, send() {}, close() {} };
 * let refused: Error | undefined;
 * try {
 *   admitNodes("read", DEFAULT_LIMITS, undefined, () => ws)([100], false);
 * } catch (error) {
 *   refused = error as Error;
 * }
 * console.assert(refused !== undefined && codeOf(refused)[0] === 4003);
 * admitNodes("write", DEFAULT_LIMITS, undefined, () => ws)([100], false); // taken
 * ```
 */
export function admitNodes(
  role: Role,
  limits: RelayLimits,
  admit: RelayCoreOptions["admit"],
  socket: () => RelaySocket,
): (sizes: readonly number[], live: boolean) => void {
  return (sizes) => {
    if (role !== "write") {
      throw new Refused("ProtocolError", "This client may only read; its nodes are refused", CLOSE.READ_ONLY);
    }
    for (const size of sizes) {
      if (size > limits.maxNode) {
        throw new Refused(
          "InvalidNodeError",
          `Node of ${size} bytes is over the limit of ${limits.maxNode} bytes`,
          CLOSE.NODE_TOO_LARGE,
        );
      }
    }
    // The host's own checks (the write budget, the log's size cap), node by node, in every phase.
    for (const size of sizes) {
      const refusal = admit?.(socket(), size);
      if (refusal !== undefined) throw new Refused("ProtocolError", refusal.reason, refusal.code);
    }
  };
}
