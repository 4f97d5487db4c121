/**
 * Replication protocols other than hyperlog's own, plugged in by name: how hyperlog 4's protocol
 * (src/hyperlog4/replicate.ts) reaches `log.replicate({ protocol: "hyperlog4" })` only when it is loaded, so that
 * the core does not carry it in every bundle.
 *
 * @module
 */
import type { Replication } from "./replicate-types.ts";

/** A session of another protocol on a log: what `log.replicate({ protocol })` returns for it. */
type ProtocolSession = (log: object, options: object) => Replication;

/** Replication protocols other than hyperlog's own, by name, as {@link registerProtocol} adds them. */
const OTHER_PROTOCOLS = new Map<string, ProtocolSession>();

/**
 * Makes `log.replicate({ protocol: name })` run `session`: how hyperlog 4's protocol (src/hyperlog4/replicate.ts)
 * plugs in when it is loaded, so that the core does not carry it in every bundle. Not part of the public entry.
 *
 * @example
 * ```ts
 * import { Hyperlog, registerProtocol } from "./log.ts";
 * const log = new Hyperlog();
 * registerProtocol("echo", (_log, _options) => log.replicate());
 * const session = log.replicate({ protocol: "echo" } as never);
 * console.assert(session.readable instanceof ReadableStream);
 * await session.readable.cancel();
 * ```
 */
export function registerProtocol<L extends object>(
  name: string,
  session: (log: L, options: object) => Replication,
): void {
  // The log is a Hyperlog: `L` names it without this file importing log.ts (see `otherProtocol`).
  OTHER_PROTOCOLS.set(name, session as ProtocolSession);
}

/** The session of the protocol named `protocol`; throws a `TypeError` saying what to do if none is registered. */
export function otherProtocol(protocol: unknown): ProtocolSession {
  // hyperlog 4.12.1's protocol, for peers that still run it: src/hyperlog4/replicate.ts registers it when
  // loaded (the compat entry and the CLI load it), so that a browser bundle does not carry it.
  const other = typeof protocol === "string" ? OTHER_PROTOCOLS.get(protocol) : undefined;
  if (other === undefined) {
    throw new TypeError(
      protocol === "hyperlog4"
        ? 'The hyperlog 4 protocol is not loaded: import "@hyperlog/hyperlog/compat" once before ' +
          'log.replicate({ protocol: "hyperlog4" })'
        : `Unknown replication protocol ${JSON.stringify(protocol)}: leave it out for hyperlog's own, or ` +
          'give "hyperlog4"',
    );
  }
  return other;
}
