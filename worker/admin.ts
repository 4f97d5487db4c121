/**
 * The operator's dashboard, `GET /admin`, behind `ADMIN_TOKEN` (or `METRICS_TOKEN`): every log the relay holds
 * with its size, nodes, heads, last write and connected sockets, each linking to its page and graph; and the
 * relay's counters when something provides them. JSON by default, HTML for a browser (Accept: text/html), with a
 * Content-Security-Policy that allows no script.
 *
 * A relay lists its logs through a {@link LogRegistry} in its environment (`LOG_REGISTRY`): `hyperlog serve` has
 * one (the `.db` files of its directory, {@link directoryRegistry} in `admin-serve.ts`). The Worker has none yet:
 * Durable Objects cannot be listed, so it would need a registry of its own (a KV namespace or a directory Durable
 * Object written when a log is first opened); until then its dashboard says so and lists no log.
 *
 * @module
 */
import { escapeXml } from "./graph-svg.ts";
import type { LogSummary } from "./log-page.ts";

/** Logs shown on one dashboard, at most (each one is opened to read its summary). */
export const ADMIN_MAX_LOGS = 500;

/**
 * A log as a {@link LogRegistry} knows it.
 *
 * @example
 * ```ts
 * import { adminResponse, type RegisteredLog } from "./admin.ts";
 * const log: RegisteredLog = { name: "chat", bytes: 4096, modified: Date.UTC(2026, 0, 1) };
 * const summary = (name: string) => Promise.resolve({ name, length: 2, heads: [], sockets: 0, lastWrite: null });
 * const asAdmin = new Request("https://relay/admin", { headers: { authorization: "Bearer secret" } });
 * const env = { ADMIN_TOKEN: "secret", LOG_REGISTRY: { logs: () => Promise.resolve([log]) } };
 * const row = (await (await adminResponse(asAdmin, env, summary)).json()).logs[0];
 * console.assert(row.bytes === 4096 && row.lastWrite === "2026-01-01T00:00:00.000Z");
 * ```
 */
export interface RegisteredLog {
  /** The log's name. */
  name: string;
  /** Its size in storage, in bytes, when known. */
  bytes?: number;
  /** When its storage last changed (milliseconds since the epoch), when known. */
  modified?: number;
}

/**
 * Where the dashboard learns which logs a relay holds, and the relay's counters. `metrics` is the hook for the
 * relay's metrics (refusals by close code in the last hour, ...): each entry shows as a row, name and count.
 *
 * @example
 * ```ts
 * import { adminResponse, type LogRegistry } from "./admin.ts";
 * const registry: LogRegistry = { logs: () => Promise.resolve([{ name: "b" }, { name: "a" }]) };
 * const summary = (name: string) => Promise.resolve({ name, length: 2, heads: [], sockets: 0, lastWrite: null });
 * const asAdmin = new Request("https://relay/admin", { headers: { authorization: "Bearer secret" } });
 * const body = await (await adminResponse(asAdmin, { ADMIN_TOKEN: "secret", LOG_REGISTRY: registry }, summary)).json();
 * console.assert(body.logs.map((l: { name: string }) => l.name).join() === "a,b");
 * ```
 */
export interface LogRegistry {
  /** The logs, in any order. */
  logs(): Promise<RegisteredLog[]>;
  /** Counters to show, by name. */
  metrics?(): Record<string, number> | Promise<Record<string, number>>;
}

/**
 * The settings and bindings the dashboard reads from the relay's environment.
 *
 * @example
 * ```ts
 * import { type AdminEnv, adminResponse } from "./admin.ts";
 * const summary = (name: string) => Promise.resolve({ name, length: 2, heads: [], sockets: 0, lastWrite: null });
 * const asAdmin = new Request("https://relay/admin", { headers: { authorization: "Bearer secret" } });
 * const off: AdminEnv = {};
 * console.assert((await adminResponse(asAdmin, off, summary)).status === 404);
 * const on: AdminEnv = { ADMIN_TOKEN: "secret" };
 * console.assert((await adminResponse(asAdmin, on, summary)).status === 200);
 * ```
 */
export interface AdminEnv {
  /** The dashboard needs this token; without it (and without `METRICS_TOKEN`) the dashboard is off. */
  ADMIN_TOKEN?: string | undefined;
  /** Accepted too when set (the metrics token). */
  METRICS_TOKEN?: string | undefined;
  /** The relay's list of logs (`hyperlog serve` sets one; the Worker has none). */
  LOG_REGISTRY?: LogRegistry | undefined;
}

/**
 * A row of the dashboard: a log's summary and its size.
 *
 * @example
 * ```ts
 * import { type AdminLog, adminResponse } from "./admin.ts";
 * const summary = (name: string) => Promise.resolve({ name, length: 2, heads: [], sockets: 0, lastWrite: null });
 * const asAdmin = new Request("https://relay/admin", { headers: { authorization: "Bearer secret" } });
 * const env = { ADMIN_TOKEN: "secret", LOG_REGISTRY: { logs: () => Promise.resolve([{ name: "a" }]) } };
 * const [row]: AdminLog[] = (await (await adminResponse(asAdmin, env, summary)).json()).logs;
 * console.assert(row!.name === "a" && row!.length === 2 && row!.bytes === null);
 * ```
 */
export interface AdminLog extends LogSummary {
  /** Its size in storage, in bytes, or null when unknown. */
  bytes: number | null;
  /** Why its summary could not be read, when it could not. */
  error?: string;
}

/** Compares without an early exit, so the time taken does not tell how much of a token was right. */
function sameToken(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  return diff === 0;
}

function tokenOf(request: Request): string | undefined {
  const auth = request.headers.get("authorization");
  if (auth !== null && /^Bearer /i.test(auth)) return auth.slice(7).trim();
  return new URL(request.url).searchParams.get("token") ?? undefined;
}

const SAFE_HEADERS = {
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
};

function error(message: string, status: number): Response {
  return Response.json({ error: message }, { status, headers: SAFE_HEADERS });
}

function size(bytes: number | null): string {
  if (bytes === null) return "?";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function page(
  logs: readonly AdminLog[],
  metrics: Record<string, number> | undefined,
  registry: boolean,
  query: string,
): string {
  const rows = logs.map((log) => {
    const base = `/logs/${encodeURIComponent(log.name)}`;
    const heads = log.heads.slice(0, 3).map((key) => `<code>${escapeXml(key.slice(0, 8))}</code>`).join(" ") +
      (log.heads.length > 3 ? " …" : "");
    return `<tr data-log="${escapeXml(log.name)}"><td><a href="${base}${query}">${escapeXml(log.name)}</a></td>` +
      `<td class="n">${log.length}</td><td class="n">${size(log.bytes)}</td>` +
      `<td>${log.error === undefined ? `${log.heads.length} ${heads}` : `error: ${escapeXml(log.error)}`}</td><td>${
        log.lastWrite ?? "-"
      }</td><td class="n">${log.sockets}</td>` +
      `<td><a href="${base}/graph${query}">graph</a></td></tr>`;
  }).join("\n");
  const counters = metrics === undefined
    ? "<p>No counters yet: the relay's metrics (refusals by close code in the last hour) plug in through " +
      "<code>LOG_REGISTRY.metrics</code>.</p>"
    : Object.keys(metrics).length === 0
    ? "<p>No socket refused in the last hour.</p>"
    : `<table id="metrics"><tr><th>counter</th><th>count</th></tr>${
      Object.entries(metrics).map(([name, count]) => `<tr><td>${escapeXml(name)}</td><td class="n">${count}</td></tr>`)
        .join("")
    }</table>`;
  const none = registry
    ? "<p>No logs yet.</p>"
    : "<p>This relay keeps no list of its logs. The Worker's logs are Durable Objects, which cannot be listed: it " +
      "needs a registry (a KV namespace or a directory Durable Object) to show them here.</p>";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hyperlog relay: admin</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; }
th, td { text-align: left; padding: .3rem .8rem .3rem 0; border-bottom: 1px solid #eee; }
th { color: #666; font-weight: normal; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
</style>
</head>
<body>
<h1>hyperlog relay</h1>
<h2>Logs (${logs.length})</h2>
${
    logs.length === 0 ? none : `<table id="logs">
<tr><th>log</th><th>nodes</th><th>size</th><th>heads</th><th>last write</th><th>sockets</th><th></th></tr>
${rows}
</table>`
  }
<h2>Counters</h2>
${counters}
</body>
</html>
`;
}

/**
 * Answers `GET /admin`. `summary(name)` is the log's `/summary` (the relay core's, through its Durable Object or
 * in process).
 *
 * @example
 * ```ts
 * import { adminResponse } from "./admin.ts";
 * const env = { ADMIN_TOKEN: "secret", LOG_REGISTRY: { logs: () => Promise.resolve([{ name: "chat", bytes: 8 }]) } };
 * const summary = (name: string) =>
 *   Promise.resolve({ name, length: 3, heads: ["ab".repeat(32)], sockets: 1, lastWrite: null });
 * const denied = await adminResponse(new Request("https://relay/admin"), env, summary);
 * console.assert(denied.status === 401);
 * const ok = await adminResponse(
 *   new Request("https://relay/admin", { headers: { authorization: "Bearer secret" } }),
 *   env,
 *   summary,
 * );
 * const body = await ok.json();
 * console.assert(body.logs[0].length === 3 && body.logs[0].bytes === 8);
 * ```
 */
export async function adminResponse(
  request: Request,
  env: AdminEnv,
  summary: (name: string) => Promise<LogSummary>,
): Promise<Response> {
  const secrets = [env.ADMIN_TOKEN, env.METRICS_TOKEN].filter((t): t is string => typeof t === "string" && t !== "");
  if (secrets.length === 0) {
    return error("The admin dashboard is off: set ADMIN_TOKEN (or METRICS_TOKEN) on the relay to turn it on", 404);
  }
  const token = tokenOf(request);
  if (token === undefined || !secrets.some((secret) => sameToken(token, secret))) {
    return error("The admin dashboard needs the admin token: send Authorization: Bearer TOKEN (or ?token=)", 401);
  }
  const registry = env.LOG_REGISTRY;
  const listed = registry === undefined ? [] : await registry.logs();
  listed.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const logs: AdminLog[] = [];
  for (const entry of listed.slice(0, ADMIN_MAX_LOGS)) {
    let row: LogSummary & { error?: string };
    try {
      row = await summary(entry.name);
    } catch (cause) {
      const message = cause instanceof Error ? cause.message : String(cause);
      row = { name: entry.name, length: 0, heads: [], sockets: 0, lastWrite: null, error: message };
    }
    const modified = entry.modified === undefined ? null : new Date(entry.modified).toISOString();
    const lastWrite = row.lastWrite === null
      ? modified
      : modified === null || row.lastWrite > modified
      ? row.lastWrite
      : modified;
    logs.push({ ...row, lastWrite, bytes: entry.bytes ?? null });
  }
  const metrics = await registry?.metrics?.();
  if (/\btext\/html\b/i.test(request.headers.get("accept") ?? "")) {
    // Opened with ?token=, the links carry it (the admin token reads every log): a browser sends no header on a click.
    const linked = new URL(request.url).searchParams.get("token");
    const query = linked === null ? "" : escapeXml(`?token=${encodeURIComponent(linked)}`);
    return new Response(page(logs, metrics, registry !== undefined, query), {
      headers: { ...SAFE_HEADERS, "content-type": "text/html; charset=utf-8" },
    });
  }
  return Response.json({
    registry: registry !== undefined,
    logs,
    total: listed.length,
    ...(metrics === undefined ? {} : { metrics }),
  }, { headers: SAFE_HEADERS });
}
