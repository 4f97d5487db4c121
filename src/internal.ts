/**
 * Tokens shared between the core's modules and not exported from `mod.ts`.
 *
 * @module
 */

/**
 * Passed to `Hyperlog.ingest` by the wire decoder: the nodes' keys, links, identities and signatures were made by
 * `decodeNodes`, so they are lower-case hex of the right length and need no shape check (their content still is
 * checked: key against content, links present, signatures).
 *
 * @example
 * ```ts
 * import { WIRE_NODES } from "./internal.ts";
 * console.assert(typeof WIRE_NODES === "symbol");
 * ```
 */
export const WIRE_NODES: unique symbol = Symbol("hyperlog.wireNodes");

/**
 * Passed to `Hyperlog.ingest` instead of {@link WIRE_NODES} for nodes whose key the wire decoder computed from their
 * content (a `NODES_REFS` message carries no key): as {@link WIRE_NODES}, and the key is not hashed a second time.
 *
 * @example
 * ```ts
 * import { KEYED_NODES, WIRE_NODES } from "./internal.ts";
 * console.assert(typeof KEYED_NODES === "symbol" && KEYED_NODES !== WIRE_NODES);
 * ```
 */
export const KEYED_NODES: unique symbol = Symbol("hyperlog.keyedNodes");

/**
 * A method of `Hyperlog` for views: reads up to `limit` nodes after change `since`, decoded, in change order.
 *
 * @example
 * ```ts
 * import { READ_NODES } from "./internal.ts";
 * console.assert(typeof READ_NODES === "symbol");
 * ```
 */
export const READ_NODES: unique symbol = Symbol("hyperlog.readNodes");

/**
 * A getter of `Hyperlog` for the key/value store: the codec the log encodes values with.
 *
 * @example
 * ```ts
 * import { LOG_CODEC } from "./internal.ts";
 * console.assert(typeof LOG_CODEC === "symbol");
 * ```
 */
export const LOG_CODEC: unique symbol = Symbol("hyperlog.logCodec");

/**
 * A method of `Hyperlog` for replication: the log's key index (`key-index.ts`), built on first use (or, given
 * `false`, only if built already) and kept up to date on every commit, so that a session's first contact does not
 * read the log; dropped when it grows past `EAGER_KEYS` unless a reconciliation used it.
 *
 * @example
 * ```ts
 * import { KEY_INDEX } from "./internal.ts";
 * console.assert(typeof KEY_INDEX === "symbol");
 * ```
 */
export const KEY_INDEX: unique symbol = Symbol("hyperlog.keyIndex");
