/**
 * {@link RelayServer}: the relay of `hyperlog serve`, whatever runtime serves it: the Hono app, one `RelayCore` per
 * open log in its SQLite file, the caps (open logs, idle logs, sockets, the HELLO deadline) and the counters.
 *
 * @module
 */
import { join } from "node:path";
import process from "node:process";
import { existsSync, mkdirSync, readdirSync, renameSync, statSync } from "node:fs";
import { openSqlite } from "../storage/sqlite-open.ts";
import type { SharedBytes, Storage } from "../mod.ts";
import type { AdminEnv } from "./admin.ts";
import { directoryRegistry } from "./admin-serve.ts";
import { createApp } from "./app.ts";
import { budgetOf, fileNameOf, LogGuard, nameOfFile, refuseSocket } from "./caps.ts";
import { describeError, logEvent } from "./events.ts";
import { HostedSocket, type Upgrade } from "./hosted-socket.ts";
import { LazyStorage } from "./lazy-storage.ts";
import { CLOSE, type RelayLimits, type Role } from "./limits.ts";
import { RelayMetrics } from "./metrics.ts";
import type { RelayEnv } from "./relay.ts";
import { RelayCore, type RelaySocket } from "./relay-core.ts";
import { LOG_NAME, readSettings, type RelaySettings, writersFor } from "./settings.ts";
import { type PresenceSettings, readPresence } from "./presence-settings.ts";
import type { ServeSettings } from "./serve-settings.ts";

export type { ServeSettings };

/** One open log: its relay, its storage, its sockets. */
interface Served {
  core: RelayCore;
  storage: LazyStorage;
  sockets: Set<HostedSocket>;
  states: Map<RelaySocket, unknown>;
  /** Requests (and response bodies) under way. */
  busy: number;
  /** When it was last used (ms). */
  used: number;
}

/** The answer to a read of a log that has never been written. */
function noSuchLog(name: string): Response {
  return Response.json(
    { error: `No log ${JSON.stringify(name)} on this relay: a log comes into being with its first write` },
    { status: 404 },
  );
}

/** Stops a timer from keeping the process alive (Node and Bun timers have `unref`; Deno has `Deno.unrefTimer`). */
function unref(timer: unknown): void {
  if (typeof timer === "object" && timer !== null && "unref" in timer) (timer as { unref(): void }).unref();
  else if (typeof timer === "number") {
    (globalThis as { Deno?: { unrefTimer(id: number): void } }).Deno?.unrefTimer(timer);
  }
}

/**
 * The self-hosted relay, whatever serves it: `fetch(request, upgrade)` answers one request through the Hono app,
 * with an `upgrade` from the runtime's server for WebSocket requests. {@link serve} starts one on a port.
 *
 * Logs cost nothing until written: a read of a log with no file is a 404 and opens nothing; a socket to a new log
 * creates its file only with the first node it stores. Open logs with no socket and no request are closed after
 * `IDLE_LOG_MS`, and beyond `MAX_OPEN_LOGS` the least recently used idle ones are closed at once.
 *
 * @example
 * ```ts ignore
 * const relay = new RelayServer("./relay-data", { WRITE_TOKEN: "secret" });
 * const response = await relay.fetch(new Request("http://localhost/logs/chat"));
 * console.log(response.status); // 404 until a client writes to chat
 * await relay.close();
 * ```
 */
export class RelayServer {
  readonly #dir: string;
  readonly #presence: PresenceSettings;
  /** Opens a log's storage where the relay does not keep SQLite files (`serve-kv.ts`: Deno KV). */
  readonly #openLog: ((name: string) => Promise<Storage>) | undefined;
  readonly #settings: { [K in keyof ServeSettings]?: string };
  readonly #config: RelaySettings;
  /** What the logs' late-joiner caches hold, together (`PAGES_CACHE_BYTES`). */
  readonly #pagesShared: SharedBytes;
  /** Open logs, least recently used first. */
  readonly #served = new Map<string, Served>();
  readonly #opening = new Map<string, Promise<Served>>();
  readonly #closing = new Map<string, Promise<void>>();
  readonly #app = createApp();
  readonly #sweeper: ReturnType<typeof setInterval>;
  #logCount = 0;
  #sockets = 0;
  /** The largest {@link HostedSocket.receivingPeak} of the sockets gone. */
  #receivingPeak = 0;
  #closed = false;
  /** The relay's counters, served at `/metrics` when `METRICS_TOKEN` is set. */
  readonly metrics: RelayMetrics = new RelayMetrics();

  /**
   * Keeps the logs in `dir` (created if needed), or where `openLog` says (`serve-kv.ts`: Deno KV); checks the settings
   * (a bad one throws a `ConfigError` here). Files of an earlier version named after a log with upper-case letters
   * are renamed (see `fileNameOf`).
   */
  constructor(dir: string, settings: ServeSettings = {}, openLog?: (name: string) => Promise<Storage>) {
    this.#dir = dir;
    this.#openLog = openLog;
    // Unset and empty settings are left out, as an unset Worker variable is.
    this.#settings = Object.fromEntries(
      Object.entries(settings).filter(([, value]) => typeof value === "string" && value !== ""),
    );
    this.#config = readSettings(this.#settings);
    this.#pagesShared = { max: this.#config.caps.pagesCacheBytes, used: 0 };
    this.#presence = readPresence(this.#settings);
    mkdirSync(dir, { recursive: true });
    this.#logCount = openLog === undefined ? this.#scan() : 0;
    this.metrics.gauge("open_logs", "Logs open now", () => this.#served.size);
    this.metrics.gauge("logs", "Logs on this relay", () => this.#logCount);
    this.metrics.gauge("sockets", "WebSockets open now", () => this.#sockets);
    this.metrics.gauge("sockets_waiting", "WebSockets whose client reads slower than the relay sends", () => {
      let n = 0;
      for (const served of this.#served.values()) n += served.core.waiting;
      return n;
    });
    this.metrics.gauge("buffered_bytes", "Bytes sent on WebSockets and not yet handed to the network", () => {
      let n = 0;
      for (const served of this.#served.values()) n += served.core.buffered;
      return n;
    });
    const sockets = () => [...this.#served.values()].flatMap((served) => [...served.sockets]);
    this.metrics.gauge("receiving_bytes", "Bytes received on WebSockets and not yet handled", () => {
      return sockets().reduce((n, socket) => n + socket.receiving, 0);
    });
    this.metrics.gauge("receiving_bytes_peak", "The most bytes one WebSocket had sent and not yet handled", () => {
      return sockets().reduce((n, socket) => Math.max(n, socket.receivingPeak), this.#receivingPeak);
    });
    this.metrics.gauge("sockets_paused", "WebSockets not read now: what they sent is not yet handled", () => {
      return sockets().filter((socket) => socket.paused).length;
    });
    this.metrics.gauge("pages_cache_bytes", "Bytes of framed nodes the logs keep for late joiners", () => {
      return this.#pagesShared.used;
    });
    this.metrics.gauge("resident_memory_bytes", "The relay process's resident set size", () => process.memoryUsage.rss());
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(this.#config.caps.idleLogMs, 5000));
    unref(this.#sweeper);
  }

  /** Counts the logs in the directory, renaming files named the way earlier versions did. */
  #scan(): number {
    let count = 0;
    for (const file of readdirSync(this.#dir)) {
      const match = /^(.+)\.db(-wal|-shm|-journal)?$/.exec(file);
      if (match === null) continue;
      const [, base, suffix = ""] = match as unknown as [string, string, string | undefined];
      if (nameOfFile(base) === undefined && LOG_NAME.test(base)) {
        const target = join(this.#dir, `${fileNameOf(base)}.db${suffix}`);
        if (!existsSync(target)) {
          renameSync(join(this.#dir, file), target);
          logEvent("renamed", { from: file, to: `${fileNameOf(base)}.db${suffix}` });
        }
        if (suffix === "") count++;
      } else if (suffix === "" && nameOfFile(base) !== undefined) count++;
    }
    return count;
  }

  /** The limits in force. */
  get limits(): RelayLimits {
    return this.#config.limits;
  }

  /** Every setting, checked. */
  get settings(): RelaySettings {
    return this.#config;
  }

  /** Logs open now. */
  get openLogs(): number {
    return this.#served.size;
  }

  /** Sockets open now. */
  get sockets(): number {
    return this.#sockets;
  }

  /** The file of log `name`. */
  fileOf(name: string): string {
    return join(this.#dir, `${fileNameOf(name)}.db`);
  }

  /**
   * The relay of log `name`, opened on first use (the file is created by its first write only), counted as busy
   * (so that no eviction closes it before the caller is done: the caller decrements `busy`).
   */
  async #open(name: string): Promise<Served> {
    const open = this.#served.get(name);
    if (open !== undefined) {
      // Most recently used last.
      this.#served.delete(name);
      this.#served.set(name, open);
      open.used = Date.now();
      open.busy++;
      return open;
    }
    const opening = this.#opening.get(name);
    if (opening !== undefined) {
      // The maker holds the first count; every other waiter takes its own as soon as the log is open.
      return await opening.then((served) => (served.busy++, served));
    }
    const made = this.#make(name).finally(() => this.#opening.delete(name));
    this.#opening.set(name, made);
    return await made;
  }

  async #make(name: string): Promise<Served> {
    await this.#closing.get(name);
    const file = this.fileOf(name);
    const caps = this.#config.caps;
    const canCreate = () => caps.logs === undefined || this.#logCount < caps.logs;
    const openLog = this.#openLog;
    // With openLog (Deno KV) the relay cannot tell a log that exists without opening it: it opens it.
    const storage = new LazyStorage({
      exists: () => openLog !== undefined || existsSync(file),
      create: () => openLog?.(name) ?? openSqlite(file),
      beforeCreate: () => {
        if (!canCreate()) throw new RangeError("This relay holds as many logs as it may (MAX_LOGS)");
        this.#logCount++;
      },
    });
    let startBytes = 0;
    for (const suffix of ["", "-wal"]) {
      try {
        startBytes += statSync(file + suffix).size;
      } catch {
        // No such file yet.
      }
    }
    const guard = new LogGuard(budgetOf(this.#config), {
      logBytes: caps.logBytes,
      startBytes,
      created: () => storage.created,
      canCreate,
      counted: () => this.metrics.add("nodes_in_total"),
    });
    const sockets = new Set<HostedSocket>();
    const states = new Map<RelaySocket, unknown>();
    const core = new RelayCore({
      sockets: () => [...sockets],
      save: (ws, state) => void states.set(ws, state),
      load: (ws) => states.get(ws),
      waitUntil: (promise) => void promise.catch(() => {}),
    }, {
      name,
      storage,
      limits: this.#config.limits,
      idleMs: this.#config.caps.idleMs,
      writers: writersFor(this.#config.writers, name),
      admit: (ws, bytes) => guard.admit(ws, bytes),
      refused: (_ws, code, reason) => this.#refusal(name, code, reason),
      presence: { settings: this.#presence, timers: true },
      // Sessions live as long as the process: no state to keep for a resume, and links may travel as references.
      resumes: false,
      pagesShared: this.#pagesShared,
    });
    try {
      await core.ready();
    } catch (error) {
      await core.close().catch(() => {});
      throw error;
    }
    const served: Served = { core, storage, sockets, states, busy: 1, used: Date.now() };
    this.#served.set(name, served);
    this.#evict();
    return served;
  }

  /** A socket closed by the relay: counted and logged. */
  #refusal(log: string, code: number, reason: string): void {
    this.metrics.refused(code);
    logEvent("refused", { log, code, reason });
  }

  /** Closes idle logs, least recently used first, while more than `MAX_OPEN_LOGS` are open. */
  #evict(): void {
    let over = this.#served.size - this.#config.caps.openLogs;
    if (over <= 0) return;
    for (const [name, served] of this.#served) {
      if (over <= 0) break;
      if (served.sockets.size === 0 && served.busy === 0) {
        this.#closeLog(name, served);
        over--;
      }
    }
  }

  /** Closes logs idle for longer than `IDLE_LOG_MS`. */
  #sweep(): void {
    const before = Date.now() - this.#config.caps.idleLogMs;
    for (const [name, served] of this.#served) {
      if (served.sockets.size === 0 && served.busy === 0 && served.used <= before) this.#closeLog(name, served);
    }
  }

  #closeLog(name: string, served: Served): void {
    this.#served.delete(name);
    const closing = served.core.close().catch(() => {}).finally(() => {
      if (this.#closing.get(name) === closing) this.#closing.delete(name);
    });
    this.#closing.set(name, closing);
  }

  /**
   * Answers one request. `upgrade` is the runtime's way to accept a WebSocket for this request (needed for
   * `/logs/NAME/ws`; without it such a request is a 426).
   */
  async fetch(request: Request, upgrade?: Upgrade): Promise<Response> {
    if (this.#closed) return Response.json({ error: "The relay is shutting down" }, { status: 503 });
    const env: RelayEnv & AdminEnv = {
      ...(this.#settings as Omit<RelayEnv, "RELAY">),
      LOG_REGISTRY: { ...directoryRegistry(this.#dir), metrics: () => this.metrics.refusalsLastHour() },
      RELAY: {
        idFromName: (name: string) => name,
        get: (id: unknown) => ({ fetch: (forwarded: Request) => this.#forwarded(id as string, forwarded, upgrade) }),
      },
      METRICS: this.metrics,
    };
    return await this.#app.fetch(request, env);
  }

  /** Counts a request on `served` until its response body is read (or dropped). */
  #track(response: Response, served: Served): Response {
    const body = response.body;
    const done = () => {
      served.busy--;
      served.used = Date.now();
    };
    if (body === null) {
      done();
      return response;
    }
    const reader = body.getReader();
    let finished = false;
    const finish = () => {
      if (!finished) {
        finished = true;
        done();
      }
    };
    const tracked = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { done: end, value } = await reader.read();
          if (end) {
            finish();
            controller.close();
          } else controller.enqueue(value);
        } catch (error) {
          finish();
          controller.error(error);
        }
      },
      cancel(reason) {
        finish();
        return reader.cancel(reason);
      },
    });
    return new Response(tracked, { status: response.status, headers: response.headers });
  }

  /** Accepts the socket only to close it at once with `code`: a cap refused it. */
  #refuseSocket(log: string, request: Request, upgrade: Upgrade, code: number, reason: string): Response {
    const socket = new HostedSocket({ message() {}, closed() {} });
    const response = upgrade(request.headers.get("x-hyperlog-protocol") ?? undefined, socket);
    refuseSocket(socket, { code, reason });
    this.#refusal(log, code, reason);
    return response;
  }

  /** What the Durable Object's `fetch` does, in process. */
  async #forwarded(name: string, request: Request, upgrade: Upgrade | undefined): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname !== "/ws") {
      if (
        this.#openLog === undefined && !this.#served.has(name) && !this.#opening.has(name) &&
        !existsSync(this.fileOf(name))
      ) {
        return noSuchLog(name);
      }
      const served = await this.#open(name);
      if (!served.storage.created) {
        served.busy--;
        return noSuchLog(name);
      }
      let response: Response;
      try {
        response = await served.core.read(url);
      } catch (error) {
        served.busy--;
        throw error;
      }
      return this.#track(response, served);
    }
    if (upgrade === undefined) {
      return Response.json({ error: "This server cannot accept WebSockets here" }, { status: 426 });
    }
    const caps = this.#config.caps;
    if (caps.sockets !== undefined && this.#sockets >= caps.sockets) {
      return this.#refuseSocket(name, request, upgrade, CLOSE.TOO_MANY_SOCKETS, "The relay is full; retry later");
    }
    const served = await this.#open(name);
    try {
      return await this.#accept(name, served, request, upgrade);
    } finally {
      served.busy--;
      served.used = Date.now();
    }
  }

  /** Accepts a WebSocket on an open log (counted busy by the caller). */
  async #accept(name: string, served: Served, request: Request, upgrade: Upgrade): Promise<Response> {
    const caps = this.#config.caps;
    if (caps.socketsPerLog !== undefined && served.sockets.size >= caps.socketsPerLog) {
      return this.#refuseSocket(name, request, upgrade, CLOSE.TOO_MANY_SOCKETS, "This log is full; retry later");
    }
    const { core, sockets, states } = served;
    const role: Role = request.headers.get("x-hyperlog-role") === "write" ? "write" : "read";
    const socket = new HostedSocket(core);
    socket.metrics = this.metrics;
    socket.receiveLimit = caps.receiveBytes;
    const response = upgrade(request.headers.get("x-hyperlog-protocol") ?? undefined, socket);
    if (socket.readyState !== 1) return response;
    sockets.add(socket);
    this.#sockets++;
    const deadline = setTimeout(() => {
      if (socket.heard || socket.readyState !== 1) return;
      const reason = `No HELLO within ${caps.helloMs} ms`;
      refuseSocket(socket, { code: CLOSE.HELLO_TIMEOUT, reason });
      core.closed(socket, CLOSE.HELLO_TIMEOUT);
      this.#refusal(name, CLOSE.HELLO_TIMEOUT, reason);
    }, caps.helloMs);
    unref(deadline);
    socket.onGone = () => {
      clearTimeout(deadline);
      sockets.delete(socket);
      states.delete(socket);
      this.#sockets--;
      this.#receivingPeak = Math.max(this.#receivingPeak, socket.receivingPeak);
      served.used = Date.now();
    };
    await core.accept(socket, role);
    return response;
  }

  /** Logs a failure that reached the runtime's server (its answer is a bare 500, or a closed connection). */
  failed(error: unknown): void {
    logEvent("error", { error: describeError(error) });
  }

  /** Closes every socket (1001) and every log. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    const opening = [...this.#opening.values()];
    await Promise.all(opening.map((p) => p.catch(() => {})));
    const served = [...this.#served.values()];
    this.#served.clear();
    await Promise.all(served.map((s) => s.core.close().catch(() => {})));
    await Promise.all([...this.#closing.values()]);
  }
}
