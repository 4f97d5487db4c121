/**
 * The core's trusted path into a log: what replication, views and the key/value store may do with a `Hyperlog`
 * beyond its public API, kept off the class. Each log registers its {@link LogInternals} here when it is made, in a
 * module-private `WeakMap`; {@link internalsOf} hands them out. `mod.ts` does not re-export this module, so a
 * program holding a log cannot reach them (nor forge them for an object of its own).
 *
 * @module
 */
import type { Codec } from "./encoding.ts";
import type { KeyIndex } from "./key-index.ts";
import type { Node, RawNode, StoredNode } from "./node.ts";

/**
 * What the core's own modules may do with a log.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "./log.ts";
 * import { internalsOf, type LogInternals } from "./internal.ts";
 * const log = new Hyperlog<string>({ valueEncoding: "utf-8" });
 * await log.append("a");
 * const internals: LogInternals<string> = internalsOf(log);
 * console.assert((await internals.readNodes(0, 10))[0]!.value === "a");
 * console.assert(internals.codec.decode(internals.codec.encode("b")) === "b");
 * ```
 */
export interface LogInternals<T> {
  /**
   * Replication's ingest: nodes that `decodeNodes` made, so their keys, links, identities and signatures are
   * lower-case hex of the right length and need no shape check (their content still is checked: key against
   * content, links present, signatures). Otherwise as `Hyperlog.ingest`.
   */
  ingestWire(nodes: readonly RawNode[]): Promise<StoredNode[]>;
  /** For views: up to `limit` nodes after change `since`, decoded, in change order. */
  readNodes(since: number, limit: number): Promise<Node<T>[]>;
  /** For the key/value store: the codec the log encodes values with. */
  readonly codec: Codec<T>;
  /**
   * For replication: the log's key index (`key-index.ts`), built on first use (or, given `false`, only if built
   * already) and kept up to date on every commit, so that a session's first contact does not read the log;
   * dropped when it grows past `EAGER_KEYS` unless a reconciliation used it.
   */
  keyIndex(build: boolean): Promise<KeyIndex | undefined>;
}

const REGISTRY = new WeakMap<object, LogInternals<unknown>>();

/**
 * Registers the internals of `log` (its constructor does, once).
 *
 * @example
 * ```ts
 * import { internalsOf, registerInternals } from "./internal.ts";
 * import { Hyperlog } from "./log.ts";
 * const log = new Hyperlog();
 * let refused = false;
 * try {
 *   registerInternals(log, internalsOf(log));
 * } catch {
 *   refused = true;
 * }
 * console.assert(refused, "a log's internals are registered once");
 * ```
 */
export function registerInternals<T>(log: object, internals: LogInternals<T>): void {
  if (REGISTRY.has(log)) throw new TypeError("This log's internals are registered already");
  REGISTRY.set(log, internals as LogInternals<unknown>);
}

/**
 * The internals of `log`; throws a `TypeError` for anything that is not a `Hyperlog`.
 *
 * @example
 * ```ts
 * import { internalsOf } from "./internal.ts";
 * let refused: unknown;
 * try {
 *   internalsOf({});
 * } catch (error) {
 *   refused = error;
 * }
 * console.assert(refused instanceof TypeError);
 * ```
 */
export function internalsOf<T>(log: object): LogInternals<T> {
  const internals = REGISTRY.get(log);
  if (internals === undefined) throw new TypeError("Expected a Hyperlog (made by this copy of the library)");
  return internals as LogInternals<T>;
}
