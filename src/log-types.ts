/**
 * The shapes a log is given and gives back: its options, batch documents, read-stream options, the detail of a
 * `reject` event, and the options of a session in hyperlog 4's protocol.
 *
 * @module
 */
import type { ValueEncoding } from "./encoding.ts";
import type { Identity } from "./identity.ts";

/**
 * Options for {@link Hyperlog}.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "./log.ts";
 * import type { HyperlogOptions } from "./log-types.ts";
 * const options: HyperlogOptions<string> = { valueEncoding: "utf-8" };
 * const log = new Hyperlog(options);
 * const node = await log.append("héllo");
 * const stored = await log.storage.get(node.key);
 * console.assert(node.value === "héllo" && stored?.value.length === 6); // kept as UTF-8 bytes, not JSON
 * ```
 */
export interface HyperlogOptions<T = unknown> {
  /** How values become bytes: "json" (the default), "utf-8", "binary" or an `{ encode, decode }` codec. */
  valueEncoding?: ValueEncoding<T>;
  /** Sign every node this log adds with this identity. */
  identity?: Identity;
  /** Refuse unsigned nodes (local adds need an `identity`). */
  requireSignatures?: boolean;
  /** Accept only nodes signed by these public keys (hex); implies `requireSignatures`. */
  writers?: Iterable<string>;
}

/**
 * Options of a hyperlog 4 replication (hyperlog 4's own: `mode`, `live`, `metadata`), plus the biggest message
 * accepted.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { type Hyperlog4ReplicateOptions, replicateHyperlog4 } from "./hyperlog4/replicate.ts";
 * const a = new Hyperlog({ valueEncoding: "utf-8" });
 * const b = new Hyperlog({ valueEncoding: "utf-8" });
 * await a.append("from a");
 * await b.append("from b");
 * const pull: Hyperlog4ReplicateOptions = { mode: "pull", maxMessage: 1 << 20 };
 * const ra = replicateHyperlog4(a, pull);
 * const rb = replicateHyperlog4(b, { mode: "push" });
 * ra.readable.pipeTo(rb.writable);
 * rb.readable.pipeTo(ra.writable);
 * await Promise.all([ra.done, rb.done]);
 * console.assert(a.length === 2 && b.length === 1, "a pulled, b only pushed");
 * ```
 */
export interface Hyperlog4ReplicateOptions {
  /** "sync" (both ways, the default), "push" or "pull". */
  mode?: "sync" | "push" | "pull" | undefined;
  /** Stay open after the sync and send new nodes both ways (either side may ask). */
  live?: boolean | undefined;
  /** Opaque bytes for the peer (its `metadata` event). */
  metadata?: Uint8Array | undefined;
  /** The most received nodes that may wait for earlier nodes of their log (default 100 000). */
  maxPending?: number | undefined;
  /** Milliseconds the initial exchange may go without a message from the peer (default 120 000; 0 for none). */
  idleTimeout?: number | undefined;
  /** The biggest message accepted, in bytes (default 64 MiB). */
  maxMessage?: number | undefined;
}

/**
 * Options of `log.replicate({ protocol: "hyperlog4" })`: a session in hyperlog 4.12.1's protocol, with a peer that
 * still runs hyperlog 4 (see `src/hyperlog4/replicate.ts`).
 *
 * @example
 * ```ts
 * import { Hyperlog } from "./log.ts";
 * import type { Hyperlog4Replicate } from "./log-types.ts";
 * import "./hyperlog4/replicate.ts"; // registers the protocol (the compat entry and the CLI load it)
 * const [a, b] = [new Hyperlog(), new Hyperlog()];
 * await a.append("hello");
 * const options: Hyperlog4Replicate = { protocol: "hyperlog4" };
 * const [ra, rb] = [a.replicate(options), b.replicate(options)];
 * await Promise.all([ra.readable.pipeTo(rb.writable), rb.readable.pipeTo(ra.writable), ra.done, rb.done]);
 * console.assert(b.length === 1);
 * ```
 */
export interface Hyperlog4Replicate extends Hyperlog4ReplicateOptions {
  /** Speak hyperlog 4.12.1's replication protocol. */
  protocol: "hyperlog4";
}

/**
 * One document of {@link Hyperlog.batch}. A link is a node key, or the index of an earlier document of the same
 * batch.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "./log.ts";
 * import type { BatchDoc } from "./log-types.ts";
 * const docs: BatchDoc<string>[] = [{ value: "a" }, { links: [0], value: "b" }]; // b links to the first document
 * const [a, b] = await new Hyperlog<string>().batch(docs);
 * console.assert(b!.links.length === 1 && b!.links[0] === a!.key);
 * ```
 */
export interface BatchDoc<T = unknown> {
  /** Keys (or batch indexes) of the nodes this one links to; none when omitted. */
  links?: readonly (string | number)[] | null;
  /** The value to store. */
  value: T;
}

/**
 * Options for {@link Hyperlog.createReadStream}.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "./log.ts";
 * import type { ReadStreamOptions } from "./log-types.ts";
 * const log = new Hyperlog<number>();
 * for (let i = 1; i <= 12; i++) await log.append(i);
 * const lastTen: ReadStreamOptions = { reverse: true, limit: 10 };
 * const values = (await Array.fromAsync(log.createReadStream(lastTen))).map((node) => node.value);
 * console.assert(values.length === 10 && values[0] === 12 && values[9] === 3);
 * ```
 */
export interface ReadStreamOptions {
  /** Only nodes with a change number greater than this (default 0). */
  since?: number;
  /** Only nodes with a change number up to this, inclusive (default: no bound). */
  until?: number;
  /** At most this many nodes. */
  limit?: number;
  /** Newest first. Cannot be combined with `live`. */
  reverse?: boolean;
  /** Keep the stream open and deliver nodes as they are added, until cancelled or the log closes. */
  live?: boolean;
}

/**
 * The `detail` of a `reject` event: a node (or document) that was refused, and why.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "./log.ts";
 * import type { RejectDetail } from "./log-types.ts";
 * const log = new Hyperlog();
 * let detail: RejectDetail | undefined;
 * log.addEventListener("reject", (e) => detail = (e as CustomEvent<RejectDetail>).detail);
 * await log.add(["ff".repeat(32)], "orphan").catch(() => {}); // links to a node the log does not have
 * console.assert(detail?.error.name === "MissingLinksError");
 * ```
 */
export interface RejectDetail {
  /** Why it was refused. */
  error: Error;
  /** The key of the refused node, when it had one. */
  key?: string;
}
