/**
 * The Worker's list of its logs, for the admin dashboard. Durable Objects cannot be listed, so each log's Object
 * reports to one more Object of the same class, the registry (named {@link REGISTRY_OBJECT}, which no log can be
 * named): its size and last write once it holds nodes, and the sockets it refused. Reports are throttled (at most
 * one every {@link REPORT_INTERVAL_MS} per log, the first at once), so a busy log costs the registry a request every
 * few seconds, not one per write. The registry keeps a row per log and per-minute refusal counts for the last hour.
 *
 * @module
 */
import type { LogRegistry, RegisteredLog } from "./admin.ts";
import { refusalRows } from "./metrics.ts";
import { LOG_NAME } from "./settings.ts";

/** The registry Object's name in the `RELAY` namespace: not a valid log name, so no log can be it. */
export const REGISTRY_OBJECT = "hyperlog:registry";

/** The header that marks a request to the registry Object (the app never forwards it from a client). */
export const REGISTRY_HEADER = "x-hyperlog-registry";

/** The least time between two reports of one log, in milliseconds. */
export const REPORT_INTERVAL_MS = 5_000;

/** What a log's Object tells the registry. */
export interface RegistryReport {
  /** The log's name. */
  name: string;
  /** Bytes of its storage, when it holds nodes; `null` when it holds none yet. */
  bytes: number | null;
  /** When it last changed, in milliseconds since the epoch. */
  modified: number;
  /** Sockets refused since the last report, by close code. */
  refusals: Record<string, number>;
}

/**
 * Collects what a log's Object has to tell the registry and sends it, at once the first time and then at most once
 * every `intervalMs`.
 *
 * @example
 * ```ts
 * import { RegistryReporter, type RegistryReport } from "./registry.ts";
 * const sent: RegistryReport[] = [];
 * const timers: (() => void)[] = [];
 * const reporter = new RegistryReporter("chat", async (report) => {
 *   sent.push(report);
 * }, (fn) => timers.push(fn));
 * reporter.changed(4096);
 * reporter.refused(4029);
 * reporter.refused(4029);
 * await Promise.resolve();
 * console.assert(sent.length === 1 && sent[0]!.bytes === 4096); // the first report goes at once
 * timers.shift()!(); // the interval is over: the rest goes in one report
 * await Promise.resolve();
 * console.assert(sent.length === 2 && sent[1]!.refusals["4029"] === 2);
 * ```
 */
export class RegistryReporter {
  readonly #name: string;
  readonly #send: (report: RegistryReport) => Promise<void>;
  readonly #later: (fn: () => void, ms: number) => void;
  readonly #intervalMs: number;
  #bytes: number | null = null;
  #modified = 0;
  #refusals: Record<string, number> = {};
  #dirty = false;
  #waiting = false;

  /**
   * `send` delivers a report (its failures are ignored: the next report carries the figures again); `later` runs a
   * function after a delay (`setTimeout` in an Object).
   */
  constructor(
    name: string,
    send: (report: RegistryReport) => Promise<void>,
    later: (fn: () => void, ms: number) => void = (fn, ms) => setTimeout(fn, ms),
    intervalMs: number = REPORT_INTERVAL_MS,
  ) {
    this.#name = name;
    this.#send = send;
    this.#later = later;
    this.#intervalMs = intervalMs;
  }

  /** The log holds `bytes` of storage after a write. */
  changed(bytes: number, now: number = Date.now()): void {
    this.#bytes = bytes;
    this.#modified = now;
    this.#mark();
  }

  /** The log's Object refused a socket with `code`. */
  refused(code: number): void {
    this.#refusals[code] = (this.#refusals[code] ?? 0) + 1;
    this.#mark();
  }

  #mark(): void {
    this.#dirty = true;
    if (!this.#waiting) this.#flush();
  }

  #flush(): void {
    if (!this.#dirty) {
      this.#waiting = false;
      return;
    }
    const report: RegistryReport = {
      name: this.#name,
      bytes: this.#bytes,
      modified: this.#modified,
      refusals: this.#refusals,
    };
    this.#refusals = {};
    this.#dirty = false;
    this.#waiting = true;
    this.#send(report).catch(() => {});
    this.#later(() => this.#flush(), this.#intervalMs);
  }
}

/** The SQL API of the registry Object's storage. */
export interface RegistrySql {
  /** Runs one statement; returns a cursor over its rows. */
  exec(query: string, ...bindings: unknown[]): { raw(): Iterable<unknown[]> };
}

/** Minutes of refusal counts the registry keeps. */
const MINUTES = 60;

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** A report read from JSON, or a message saying what is wrong with it. */
function readReport(body: unknown): RegistryReport | string {
  if (body === null || typeof body !== "object") return "A report is a JSON object";
  const { name, bytes, modified, refusals } = body as Record<string, unknown>;
  if (typeof name !== "string" || !LOG_NAME.test(name)) return "A report names a valid log";
  if (bytes !== null && !isCount(bytes)) return "A report's bytes is a count or null";
  if (!isCount(modified)) return "A report's modified is a time in milliseconds";
  if (refusals === null || typeof refusals !== "object") return "A report's refusals is an object";
  const entries = Object.entries(refusals as Record<string, unknown>);
  if (entries.length > 100 || entries.some(([code, n]) => !/^[1-9]\d{3}$/.test(code) || !isCount(n))) {
    return "A report's refusals map close codes to counts";
  }
  return { name, bytes, modified, refusals: refusals as Record<string, number> };
}

/**
 * Answers a request to the registry Object: `POST /report` with a {@link RegistryReport} stores it; `GET /list`
 * answers `{ logs: RegisteredLog[], refusals: { CODE: count } }` (refusals of the last hour).
 *
 * @example
 * ```ts ignore
 * // In the Object's fetch, before anything else:
 * if (request.headers.get(REGISTRY_HEADER) === "1") return registryResponse(ctx.storage.sql, request);
 * ```
 */
export async function registryResponse(sql: RegistrySql, request: Request, now: number = Date.now()): Promise<Response> {
  sql.exec(
    "CREATE TABLE IF NOT EXISTS hyperlog_registry (name TEXT PRIMARY KEY, bytes INTEGER, modified INTEGER NOT NULL)",
  );
  sql.exec(
    "CREATE TABLE IF NOT EXISTS hyperlog_refusals (minute INTEGER NOT NULL, code INTEGER NOT NULL, " +
      "count INTEGER NOT NULL, PRIMARY KEY (minute, code))",
  );
  const minute = Math.floor(now / 60_000);
  const path = new URL(request.url).pathname;
  if (path === "/report" && request.method === "POST") {
    let body: unknown;
    try {
      body = await request.json();
    } catch {
      return Response.json({ error: "A report is a JSON object" }, { status: 400 });
    }
    const report = readReport(body);
    if (typeof report === "string") return Response.json({ error: report }, { status: 400 });
    if (report.bytes !== null) {
      sql.exec(
        "INSERT INTO hyperlog_registry (name, bytes, modified) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE " +
          "SET bytes = excluded.bytes, modified = MAX(modified, excluded.modified)",
        report.name,
        report.bytes,
        report.modified,
      );
    }
    for (const [code, n] of Object.entries(report.refusals)) {
      sql.exec(
        "INSERT INTO hyperlog_refusals (minute, code, count) VALUES (?, ?, ?) ON CONFLICT (minute, code) DO UPDATE " +
          "SET count = count + excluded.count",
        minute,
        Number(code),
        n,
      );
    }
    sql.exec("DELETE FROM hyperlog_refusals WHERE minute <= ?", minute - MINUTES);
    return Response.json({ stored: true });
  }
  if (path === "/list" && request.method === "GET") {
    const logs: RegisteredLog[] = [];
    for (const [name, bytes, modified] of sql.exec("SELECT name, bytes, modified FROM hyperlog_registry").raw()) {
      logs.push({ name: String(name), bytes: Number(bytes), modified: Number(modified) });
    }
    const refusals: Record<string, number> = {};
    for (
      const [code, n] of sql.exec(
        "SELECT code, SUM(count) FROM hyperlog_refusals WHERE minute > ? GROUP BY code ORDER BY code",
        minute - MINUTES,
      ).raw()
    ) refusals[String(code)] = Number(n);
    return Response.json({ logs, refusals });
  }
  return Response.json({ error: "The registry answers POST /report and GET /list" }, { status: 404 });
}

/** The `RELAY` namespace as the registry needs it. */
export interface RegistryNamespace {
  /** The id of the Object named `name`. */
  idFromName(name: string): unknown;
  /** The Object with that id. */
  get(id: unknown): { fetch(request: Request): Promise<Response> };
}

/** A request to the registry Object. */
function toRegistry(relay: RegistryNamespace, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set(REGISTRY_HEADER, "1");
  return relay.get(relay.idFromName(REGISTRY_OBJECT)).fetch(
    new Request(`https://registry${path}`, { ...init, headers }),
  );
}

/**
 * Sends one {@link RegistryReport} to the registry Object (what a log's Object gives its {@link RegistryReporter}).
 *
 * @example
 * ```ts ignore
 * const reporter = new RegistryReporter(name, (report) => sendReport(env.RELAY, report));
 * ```
 */
export async function sendReport(relay: RegistryNamespace, report: RegistryReport): Promise<void> {
  const response = await toRegistry(relay, "/report", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(report),
  });
  await response.body?.cancel();
}

/**
 * The Worker's {@link LogRegistry}: the logs and the last hour's refusals the registry Object has been told of.
 *
 * @example
 * ```ts ignore
 * const registry = objectRegistry(env.RELAY);
 * const logs = await registry.logs();
 * ```
 */
export function objectRegistry(relay: RegistryNamespace): LogRegistry {
  let listed: Promise<{ logs: RegisteredLog[]; refusals: Record<string, number> }> | undefined;
  const list = () =>
    listed ??= toRegistry(relay, "/list").then(async (response) => {
      if (!response.ok) throw new Error(`The registry answered ${response.status}`);
      return await response.json() as { logs: RegisteredLog[]; refusals: Record<string, number> };
    });
  return {
    logs: async () => (await list()).logs,
    metrics: async () => {
      const counts = new Map<number, number>();
      for (const [code, n] of Object.entries((await list()).refusals)) counts.set(Number(code), n);
      return refusalRows(counts);
    },
  };
}
