/**
 * hyperlog 4's API on the new log, for code written against hyperlog 4.12.1: `hyperlog(db, opts)` with callbacks,
 * Node streams and EventEmitter events, in hyperlog 4's order and with its defaults (values are `binary` unless
 * `valueEncoding` says otherwise; `preadd` fires synchronously inside `add` with `key: null`, then `add` once
 * stored; a missing node or link is an error with `err.notFound`). Nodes carry `log` and `seq` (their writer's log
 * and position), and `replicate()` speaks hyperlog 4's replication protocol, so old peers and new ones converge.
 *
 * `db` may be a LevelDB-style database (abstract-level such as classic-level, or levelup such as `level()` from
 * level 5 and memdb): the log then lives in that database ({@link LevelStorage}) and is there on the next run. It may
 * also be a path (a SQLite file, as the CLI uses), a {@link Storage}, or nothing (memory).
 *
 * Not carried (each fails with a clear error): the `hash` and `asyncHash` options (keys must be the SHA-256 every
 * peer checks; a custom hash would make a log that no other new peer can verify). `sign`/`verify` are carried for
 * hyperlog 4's opaque signatures: `sign` is called for each local node and its bytes travel with the node to
 * hyperlog 4 peers and compat peers, whose `verify` decides; the new log itself sees such nodes as unsigned (its
 * own signatures are Ed25519, see `Identity`).
 *
 * @example The seed's first snippet, with only the require changed
 * ```ts
 * import { hyperlog } from "./mod.ts";
 * const log = hyperlog(); // or hyperlog(level("/tmp/log.db")), hyperlog(new ClassicLevel(path))
 * await new Promise<void>((resolve) => {
 *   log.add(null, "hello", (err, node) => {
 *     console.assert(!err && node.key.startsWith("8c7efb22") && node.value.toString() === "hello");
 *     log.add([node.key], "world", (err, node2) => {
 *       console.assert(!err && node2.links[0] === node.key && node2.seq === 2);
 *       resolve();
 *     });
 *   });
 * });
 * ```
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import { type Duplex, Readable } from "node:stream";
import { Hyperlog } from "../src/log.ts";
import { type H4Draft, H4Log, H4NotFoundError } from "../src/hyperlog4/h4-log.ts";
import type { H4Node } from "../src/hyperlog4/messages.ts";
import { type LevelDatabase, LevelStorage } from "../storage/level.ts";
import { adoptHyperlog4, type CompatEncoding, decode, encode, openStorage } from "./open.ts";
import { h4ReplicationStream, type H4StreamOptions } from "./replicate-stream.ts";
// Registers hyperlog 4's protocol for log.replicate({ protocol: "hyperlog4" }) on any log (see src/log.ts).
import "../src/hyperlog4/replicate.ts";

export { H4NotFoundError };
export type { CompatEncoding };
export { LevelStorage };
export type { H4StreamOptions, LevelDatabase };

/**
 * A node as hyperlog 4 returns it.
 *
 * @example
 * ```ts
 * import { type CompatNode, hyperlog } from "./mod.ts";
 * const log = hyperlog(null, { valueEncoding: "utf-8" });
 * const node = await new Promise<CompatNode>((resolve, reject) =>
 *   log.add(null, "hello", (err, node) => err ? reject(err) : resolve(node!))
 * );
 * console.assert(node.seq === 1 && node.change === 1 && node.log.length > 0 && node.identity === null);
 * ```
 */
export interface CompatNode {
  /** This log's change number. */
  change: number;
  /** The node's key. */
  key: string;
  /** The writer's log id. */
  log: string;
  /** The position in the writer's log. */
  seq: number;
  /** hyperlog 4's opaque identity, or null. */
  identity: Buffer | null;
  /** hyperlog 4's opaque signature, or null. */
  signature: Buffer | null;
  /** The decoded value (a Buffer for binary). */
  value: unknown;
  /** The keys it links to. */
  links: string[];
}

/**
 * Options of {@link hyperlog}, as hyperlog 4 takes them.
 *
 * @example
 * ```ts
 * import { type CompatNode, type CompatOptions, hyperlog } from "./mod.ts";
 * const options: CompatOptions = { valueEncoding: "json" };
 * const log = hyperlog(null, options);
 * const node = await new Promise<CompatNode>((resolve, reject) =>
 *   log.add(null, { n: 1 }, (err, node) => err ? reject(err) : resolve(node!))
 * );
 * console.assert((node.value as { n: number }).n === 1);
 * ```
 */
export interface CompatOptions {
  /** How values become bytes (default "binary"). */
  valueEncoding?: CompatEncoding;
  /** Same as valueEncoding. */
  encoding?: CompatEncoding;
  /** The local log id (the new log's id by default). */
  id?: string;
  /** hyperlog 4's opaque identity bytes, attached to local nodes that `sign` signs. */
  identity?: Uint8Array;
  /** Signs a local node: `cb(err, signatureBytes)`. */
  sign?: (node: CompatNode, cb: (err: Error | null, signature?: Uint8Array) => void) => void;
  /** Checks a remote node: `cb(err, valid)`. */
  verify?: (node: CompatNode, cb: (err: Error | null, valid?: boolean) => void) => void;
  /** Not carried: keys are always SHA-256 (see the module doc). */
  hash?: unknown;
  /** Not carried: keys are always SHA-256 (see the module doc). */
  asyncHash?: unknown;
}

/**
 * A node-style callback.
 *
 * @example
 * ```ts
 * import { type Callback, type CompatNode, hyperlog } from "./mod.ts";
 * const log = hyperlog();
 * const seen: number[] = [];
 * const cb: Callback<CompatNode> = (err, node) => void (err ? seen.push(-1) : seen.push(node!.seq));
 * await new Promise<void>((resolve) => log.add(null, "a", (err, node) => (cb(err, node), resolve())));
 * console.assert(seen.join() === "1");
 * ```
 */
export type Callback<R> = (err: Error | null, result?: R) => void;

/**
 * Per-call options as hyperlog 4 takes them (`valueEncoding`, `since`, `live`, ...).
 *
 * @example
 * ```ts
 * import { type AnyOptions, type CompatNode, hyperlog } from "./mod.ts";
 * const log = hyperlog();
 * const options: AnyOptions = { valueEncoding: "json" }; // per add, as hyperlog 4 took them
 * const node = await new Promise<CompatNode>((resolve, reject) =>
 *   log.add(null, [1, 2], options, (err, node) => err ? reject(err) : resolve(node!))
 * );
 * console.assert(node.key.length === 64);
 * ```
 */
export type AnyOptions = Record<string, unknown>;

/** Marks an internal write as an append (its links are the heads under the lock). */
const HEADS: unique symbol = Symbol("append");

function notFound(key: unknown): H4NotFoundError {
  return new H4NotFoundError(`Key not found in database [${String(key)}]`);
}

/**
 * A hyperlog 4 log on the new log (see the module doc). Make one with {@link hyperlog}.
 *
 * @example
 * ```ts
 * import { CompatHyperlog } from "./mod.ts";
 * const log = new CompatHyperlog(null, { valueEncoding: "utf-8" });
 * log.append("x", (err, node) => console.assert(!err && node.value === "x"));
 * ```
 */
export class CompatHyperlog extends EventEmitter {
  /** The new log underneath (values stored as bytes). */
  readonly core: Promise<Hyperlog<Uint8Array>>;
  /** The hyperlog 4 layer (log ids, seqs, hyperlog 4 signatures). */
  readonly #ready: Promise<H4Log>;
  /** The default value encoding. */
  readonly valueEncoding: CompatEncoding;
  /** hyperlog 4's opaque identity bytes for local nodes. */
  readonly identity: Buffer | null;
  #h4: H4Log | undefined;

  /** Opens the log in `db` (see the module doc). */
  constructor(db?: unknown, opts: CompatOptions = {}) {
    super();
    this.setMaxListeners(0);
    if (opts.hash !== undefined || opts.asyncHash !== undefined) {
      throw new TypeError(
        "The hash and asyncHash options are not supported: node keys are SHA-256 of the links and value so that " +
          "every peer can check them; drop the option (keys are then hyperlog 4's default keys)",
      );
    }
    this.valueEncoding = opts.valueEncoding ?? opts.encoding ?? "binary";
    this.identity = opts.identity === undefined ? null : Buffer.from(opts.identity);
    const sign = opts.sign;
    const verify = opts.verify;
    let oldId: string | undefined;
    this.core = Promise.resolve(openStorage(db)).then(async (storage) => {
      const core = new Hyperlog<Uint8Array>(storage, { valueEncoding: "binary" });
      if (storage instanceof LevelStorage) oldId = await adoptHyperlog4(core, storage.db);
      return core;
    });
    this.#ready = this.core.then(async (core) => {
      const h4 = new H4Log(core, {
        id: opts.id ?? oldId,
        hooks: {
          ...(sign === undefined ? {} : {
            sign: (node: H4Node) =>
              new Promise<Uint8Array>((resolve, reject) => {
                if (node.identity === undefined && this.identity !== null) node.identity = this.identity;
                sign(this.#toNode(node, "binary"), (err, sig) => (err ? reject(err) : resolve(new Uint8Array(sig!))));
              }),
          }),
          ...(verify === undefined ? {} : {
            verify: (node: H4Node) =>
              new Promise<boolean>((resolve, reject) => {
                verify(this.#toNode(node, "binary"), (err, valid) => (err ? reject(err) : resolve(valid === true)));
              }),
          }),
          reject: (node: H4Node) => this.emit("reject", this.#toNode(node, "binary")),
          preadd: (draft: H4Draft) => this.emit("preadd", { ...draft, value: Buffer.from(draft.value) }),
          add: (node: H4Node) => {
            let out: CompatNode;
            try {
              out = this.#toNode(node, this.valueEncoding);
            } catch {
              out = this.#toNode(node, "binary"); // a value the log's encoding cannot decode: listeners get bytes
            }
            this.emit("add", out);
          },
        },
      });
      await h4.ready();
      this.#h4 = h4;
      return h4;
    });
    this.#ready.catch((err) => this.emit("error", err));
  }

  /** This log's id (null until ready). */
  get id(): string | null {
    return this.#h4?.idOrNull ?? null;
  }

  /** The highest change number (0 until ready). */
  get changes(): number {
    return this.#h4?.changes ?? 0;
  }

  #toNode(node: H4Node, enc: CompatEncoding): CompatNode {
    return {
      change: node.change,
      key: node.key,
      log: node.log,
      seq: node.seq,
      identity: node.identity === undefined ? null : Buffer.from(node.identity),
      signature: node.signature === undefined ? null : Buffer.from(node.signature),
      value: decode(node.value, enc),
      links: [...node.links],
    };
  }

  /** Calls `cb` once the log is open. */
  ready(cb: () => void): void {
    this.#ready.then(() => cb(), () => cb());
  }

  /** Adds a node linking to `links` (keys or nodes, one or an array, or null). */
  add(links: unknown, value: unknown, opts?: AnyOptions | Callback<CompatNode>, cb?: Callback<CompatNode>): void {
    if (typeof opts === "function") [cb, opts] = [opts, {}];
    this.batch([{ links, value }], opts ?? {}, (err, nodes) => {
      if (err) cb?.(err);
      else cb?.(null, nodes![0]);
    });
  }

  /** Adds a node linking to every current head. */
  append(value: unknown, opts?: AnyOptions | Callback<CompatNode>, cb?: Callback<CompatNode>): void {
    if (typeof opts === "function") [cb, opts] = [opts, {}];
    // The heads are read under the write lock, so appends made at once form a chain (as hyperlog 4's lock does).
    this.#write([{ value }], { ...(opts ?? {}), [HEADS]: true }, (err, nodes) => {
      if (err) cb?.(err);
      else cb?.(null, nodes![0]);
    });
  }

  /** Adds documents `{ links, value, identity }`; as hyperlog 4, a bad document of several is dropped. */
  batch(
    docs: Array<{ links?: unknown; value: unknown; identity?: Uint8Array }>,
    opts?: AnyOptions | Callback<CompatNode[]>,
    cb?: Callback<CompatNode[]>,
  ): void {
    if (typeof opts === "function") [cb, opts] = [opts, {}];
    this.#write(docs, (opts ?? {}) as AnyOptions, cb);
  }

  #write(
    docs: Array<{ links?: unknown; value: unknown; identity?: Uint8Array }>,
    options: AnyOptions & { [HEADS]?: boolean },
    cb: Callback<CompatNode[]> | undefined,
  ): void {
    const done = cb ?? (() => {});
    if (docs.length === 0) {
      queueMicrotask(() => done(null, []));
      return;
    }
    const enc = (options.valueEncoding as CompatEncoding | undefined) ?? this.valueEncoding;
    const drafts: H4Draft[] = [];
    try {
      for (const doc of docs) {
        let links = doc.links ?? [];
        if (!Array.isArray(links)) links = [links];
        const keys = (links as unknown[]).map((link) =>
          typeof link === "string" ? link : String((link as { key?: unknown } | null)?.key)
        );
        const identity = doc.identity ?? (options.identity as Uint8Array | undefined) ?? null;
        drafts.push({
          log: (options.log as string | undefined) ?? this.id ?? "",
          key: null,
          value: Buffer.from(encode(doc.value, enc)),
          links: keys,
          identity: identity === null ? null : Buffer.from(identity),
          signature: (options.signature as Uint8Array | undefined) ?? null,
        });
      }
    } catch (err) {
      queueMicrotask(() => done(err as Error));
      return;
    }
    for (const draft of drafts) this.emit("preadd", draft);
    this.#ready.then(async (h4) => {
      for (const draft of drafts) {
        if (!draft.log) draft.log = h4.id;
        draft.value = new Uint8Array(draft.value);
        if (draft.identity !== null) draft.identity = new Uint8Array(draft.identity);
      }
      return await h4.write(drafts, { bubble: drafts.length === 1, heads: options[HEADS] === true });
    }).then((written) => {
      const nodes = written.map((node) => this.#toNode(node, enc));
      for (const node of nodes) this.emit("add", node);
      done(null, nodes);
    }, (err) => done(err as Error));
  }

  /** The node with this key; an error with `notFound` if there is none. */
  get(key: string, opts?: AnyOptions | Callback<CompatNode>, cb?: Callback<CompatNode>): void {
    if (typeof opts === "function") [cb, opts] = [opts, {}];
    const enc = ((opts as AnyOptions | undefined)?.valueEncoding as CompatEncoding | undefined) ?? this.valueEncoding;
    const done = cb ?? (() => {});
    this.#ready.then((h4) => (typeof key === "string" ? h4.node(key) : undefined)).then((node) => {
      if (node === undefined) return done(notFound(key));
      let out: CompatNode;
      try {
        out = this.#toNode(node, enc);
      } catch (err) {
        return done(err as Error);
      }
      done(null, out);
    }, (err) => done(err as Error));
  }

  /** The heads (nodes nothing links to), in key order; also as a stream. */
  heads(opts?: AnyOptions | Callback<CompatNode[]>, cb?: Callback<CompatNode[]>): Readable {
    if (typeof opts === "function") [cb, opts] = [opts, {}];
    const enc = ((opts as AnyOptions | undefined)?.valueEncoding as CompatEncoding | undefined) ?? this.valueEncoding;
    const nodes = this.#ready.then(async (h4) => {
      const out: CompatNode[] = [];
      for (const key of (await h4.log.storage.heads()).sort()) {
        const node = await h4.node(key);
        if (node !== undefined) out.push(this.#toNode(node, enc));
      }
      return out;
    });
    nodes.then((list) => cb?.(null, list), (err) => cb?.(err as Error));
    const stream = Readable.from(
      (async function* () {
        yield* await nodes;
      })(),
      { objectMode: true },
    );
    if (cb !== undefined) stream.on("error", () => {});
    return stream;
  }

  /**
   * Nodes in change order: `since` (exclusive), `until` (exclusive, as hyperlog 4), `limit`, `reverse`,
   * `tail` (only what comes next) and `live` (stay open), `valueEncoding`.
   */
  createReadStream(opts: AnyOptions = {}): Readable {
    const enc = (opts.valueEncoding as CompatEncoding | undefined) ?? this.valueEncoding;
    const since = Math.max(0, Number(opts.tail ? this.changes : (opts.since ?? 0)) || 0);
    const until = Number(opts.until ?? 0) || Infinity;
    let limit = opts.limit === undefined || opts.limit === null || Number(opts.limit) < 0
      ? Infinity
      : Number(opts.limit);
    const live = opts.live === true;
    const reverse = opts.reverse === true && !live;
    let cursor = reverse ? until : since;
    const abort = new AbortController();
    let busy = false;
    let again = false;
    const ready = this.#ready;
    const toNode = (node: H4Node): CompatNode => this.#toNode(node, enc);
    const stream = new Readable({
      objectMode: true,
      highWaterMark: 16,
      read() {
        if (busy) {
          again = true;
          return;
        }
        busy = true;
        again = false;
        ready.then(async (h4) => {
          for (;;) {
            if (limit <= 0 || abort.signal.aborted) return stream.push(null);
            const page = reverse
              ? await h4.read(since, cursor, Math.min(limit, 64), true)
              : await h4.read(cursor, until, Math.min(limit, 64), false);
            if (page.length > 0) {
              cursor = reverse ? page[page.length - 1]!.change : page[page.length - 1]!.change;
              limit -= page.length;
              let more = true;
              for (const node of page) more = stream.push(toNode(node));
              if (!more) return;
              continue;
            }
            if (!live || (until !== Infinity && cursor >= until - 1)) return stream.push(null);
            await h4.waitForChange(cursor, abort.signal);
          }
        }).catch((err) => stream.destroy(err as Error)).finally(() => {
          busy = false;
          if (again && !stream.destroyed) stream._read(0);
        });
      },
      destroy(err, callback) {
        abort.abort();
        callback(err);
      },
    });
    return stream;
  }

  /** A hyperlog 4 replication stream (`mode`, `live`, `metadata`, `process`). */
  replicate(opts: Omit<H4StreamOptions, "metadata"> & { metadata?: Uint8Array | string | undefined } = {}): Duplex {
    const metadata = typeof opts.metadata === "string" ? Buffer.from(opts.metadata) : opts.metadata;
    return h4ReplicationStream(this.#ready, { ...opts, metadata });
  }

  /** The same as {@link CompatHyperlog.replicate}. */
  createReplicationStream(
    opts: Omit<H4StreamOptions, "metadata"> & { metadata?: Uint8Array | string | undefined } = {},
  ): Duplex {
    return this.replicate(opts);
  }

  /** Closes the new log (the level database given stays open, as hyperlog 4 left it). */
  close(cb?: (err?: Error | null) => void): void {
    this.#ready.then((h4) => h4.close()).then(() => cb?.(null), (err) => cb?.(err as Error));
  }
}

/**
 * Opens a hyperlog 4 log on the new log: `hyperlog(level('/tmp/log.db'))`, `hyperlog(memdb(), { valueEncoding:
 * 'json' })`, `hyperlog('/tmp/log.sqlite')`, `hyperlog()` (memory). See the module doc.
 *
 * @example
 * ```ts
 * import { hyperlog } from "./mod.ts";
 * const log = hyperlog(null, { valueEncoding: "json" });
 * log.add(null, { hello: "world" }, (err, node) => console.assert(!err && node.value.hello === "world"));
 * ```
 */
export function hyperlog(db?: unknown, opts?: CompatOptions): CompatHyperlog {
  return new CompatHyperlog(db, opts);
}

export default hyperlog;

/**
 * What `require("@hyperlog/hyperlog/compat")` returns on Node (require of an ES module): the `hyperlog` function
 * itself, as `require("hyperlog")` did, so hyperlog 4 code changes only the name it requires.
 */
export { hyperlog as "module.exports" };
