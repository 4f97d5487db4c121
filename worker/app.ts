/**
 * The relay's Hono app: checks names, keys and tokens, serves nodes from the KV mirror, and forwards everything else
 * to the log's Durable Object (one per name). WebSocket upgrades are forwarded as they are: the Durable Object
 * accepts the socket itself with the hibernation API (Hono's `upgradeWebSocket` would accept it here, and a socket
 * accepted outside the Object cannot hibernate).
 *
 * @module
 */
import { Hono, type MiddlewareHandler } from "hono";
import { type AdminEnv, adminResponse } from "./admin.ts";
import { DEMO_HTML } from "./demo/html.ts";
import { describeError, logEvent } from "./events.ts";
import { type Role, roleOf, sameText } from "./limits.ts";
import type { LogSummary } from "./log-page.ts";
import { RelayMetrics } from "./metrics.ts";
import { objectRegistry, REGISTRY_HEADER } from "./registry.ts";
import type { RelayEnv } from "./relay.ts";
import { ConfigError, LOG_NAME as NAME, readSettings } from "./settings.ts";
import { readPresence } from "./presence-settings.ts";
import { checkToken, looksSigned } from "./tokens.ts";
import { isKey } from "../mod.ts";

/** What a 500 says: never a path, a stack or an error's own message (the operator's log has those). */
export const INTERNAL_ERROR = "The relay failed (an internal error, logged for its operator): retry later";

/**
 * A Host header the relay takes: a DNS name or IPv4 address, or an IPv6 address in brackets, with an optional port.
 * A request without one (HTTP/1.0) is taken too.
 */
const HOST = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::(\d{1,5}))?$/;

function hostIsValid(host: string | null): boolean {
  if (host === null) return true;
  const match = HOST.exec(host);
  return match !== null && (match[1] === undefined || Number(match[1]) <= 65535);
}

/** A Sec-WebSocket-Key: 16 bytes in base64. */
const WS_KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/;
/** The subprotocol a browser offers to carry a token: `bearer.TOKEN` (browsers cannot set headers). */
const BEARER_PROTOCOL = "bearer.";

/** The counters of this isolate, on a Worker (`hyperlog serve` passes its own in `env.METRICS`). */
const isolateMetrics = new RelayMetrics();

/** The path of a URL, without its query (which may hold a token). */
function safePath(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return "";
  }
}

function bad(message: string, status = 400): Response {
  return Response.json({ error: message }, { status });
}

/** The token of a request: `Authorization: Bearer`, `?token=`, or a `bearer.TOKEN` subprotocol. */
function tokenOf(request: Request, url: URL): string | undefined {
  const auth = request.headers.get("authorization");
  if (auth !== null && /^Bearer /i.test(auth)) return auth.slice(7).trim();
  const query = url.searchParams.get("token");
  if (query !== null) return query;
  for (const offered of offeredProtocols(request)) {
    if (offered.startsWith(BEARER_PROTOCOL)) return offered.slice(BEARER_PROTOCOL.length);
  }
  return undefined;
}

/** A browser asking for a page: its Accept header names text/html. */
function wantsHtml(request: Request): boolean {
  return /\btext\/html\b/i.test(request.headers.get("accept") ?? "");
}

/** The `limit` query of a view route, passed on to the log's Object (which checks it). */
function limitQuery(href: string): string {
  const limit = new URL(href).searchParams.get("limit");
  return limit === null ? "" : `?limit=${encodeURIComponent(limit)}`;
}

function offeredProtocols(request: Request): string[] {
  const header = request.headers.get("sec-websocket-protocol");
  return header === null ? [] : header.split(",").map((p) => p.trim()).filter(Boolean);
}

/**
 * Builds the relay app. Its `fetch` is the Workers entry (`worker/index.ts`).
 *
 * @example
 * ```ts ignore
 * import { createApp } from "./app.ts";
 * export default { fetch: createApp().fetch };
 * ```
 */
export function createApp(): Hono<{ Bindings: RelayEnv; Variables: { role: Role; name: string } }> {
  const app = new Hono<{ Bindings: RelayEnv; Variables: { role: Role; name: string } }>();

  app.use("*", async (c, next) => {
    await next();
    // One count per answer, and one log line per refusal (the path only: a query may hold a token).
    const status = c.res.status === 204 && c.req.header("upgrade") !== undefined ? 101 : c.res.status;
    (c.env?.METRICS ?? isolateMetrics).answered(status);
    if (status >= 400) logEvent("refused", { status, method: c.req.method, path: safePath(c.req.url) });
  });

  app.use("*", async (c, next) => {
    // A runtime may hand over a request whose URL does not parse (Deno takes `GET http://[/health` as it is).
    if (!hostIsValid(c.req.header("host") ?? null) || !URL.canParse(c.req.url)) {
      return bad("The Host header or the request target is not valid: send a host name (or address) and a path");
    }
    try {
      readSettings(c.env ?? {});
      readPresence((c.env ?? {}) as unknown as Record<string, unknown>);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      logEvent("config-error", { message: error.message });
      return bad(`The relay is misconfigured: ${error.message}`, 500);
    }
    await next();
  });

  // The demo page; its script, /demo.js, is a static asset (wrangler.jsonc "assets", scripts/build-demo.ts).
  app.get("/", (c) => c.html(DEMO_HTML));
  app.get("/health", (c) => c.json({ ok: true }));

  // Prometheus text, behind METRICS_TOKEN (a 404 while it is unset).
  app.get("/metrics", (c) => {
    const secret = c.env?.METRICS_TOKEN;
    if (secret === undefined || secret === "") return bad("No such route: see / for the routes", 404);
    const auth = c.req.header("authorization") ?? "";
    if (!/^Bearer /i.test(auth) || !sameText(auth.slice(7).trim(), secret)) {
      return bad("/metrics needs its token: send Authorization: Bearer METRICS_TOKEN", 401);
    }
    return new Response((c.env.METRICS ?? isolateMetrics).render(), {
      headers: { "content-type": "text/plain; version=0.0.4" },
    });
  });

  /** The role of the request on log `name`, or the refusal to answer. */
  const authorize = async (env: RelayEnv | undefined, request: Request, name: string): Promise<Role | Response> => {
    if (!NAME.test(name)) {
      return bad(`Log name ${JSON.stringify(name)} is not valid: use 1 to 128 letters, digits, '.', '_' or '-'`);
    }
    const token = tokenOf(request, new URL(request.url));
    const secret = env?.TOKEN_SECRET || undefined;
    if (secret !== undefined && token !== undefined && looksSigned(token)) {
      // Checked here, before the log's Durable Object wakes.
      const granted = await checkToken(secret, token, name);
      if (granted === "invalid") return bad("The token is not valid or has expired: ask for a new one", 401);
      if (granted === "other-log") return bad(`The token does not open log ${JSON.stringify(name)}`, 403);
      return granted;
    }
    let role = secret !== undefined && !env?.READ_TOKEN && !env?.WRITE_TOKEN ? undefined : roleOf(env ?? {}, token);
    // The operator's admin token reads every log (the dashboard links to each log's page and graph).
    const admin = (env as AdminEnv | undefined)?.ADMIN_TOKEN || undefined;
    if (role === undefined && admin !== undefined && token !== undefined && sameText(token, admin)) role = "read";
    if (role === undefined) {
      return bad("This relay needs a token: send Authorization: Bearer TOKEN (or ?token=TOKEN)", 401);
    }
    return role;
  };

  /** Checks the log name and the token of every log route, and hands the name and role to the route. */
  const logAccess: MiddlewareHandler<{ Bindings: RelayEnv; Variables: { role: Role; name: string } }> = async (
    c,
    next,
  ) => {
    const name = c.req.param("name") ?? "";
    const role = await authorize(c.env, c.req.raw, name);
    if (role instanceof Response) return role;
    c.set("role", role);
    c.set("name", name);
    await next();
  };
  // `/logs/:name/*` does not match `/logs/:name` itself: the one middleware goes on both.
  app.use("/logs/:name", logAccess);
  app.use("/logs/:name/*", logAccess);

  /** Forwards to the log's Durable Object, at `path`. */
  const forward = (env: RelayEnv, name: string, path: string, init: RequestInit = {}): Promise<Response> => {
    const stub = env.RELAY.get(env.RELAY.idFromName(name));
    const headers = new Headers(init.headers);
    headers.set("x-hyperlog-log", name);
    headers.delete(REGISTRY_HEADER);
    return stub.fetch(new Request(`https://relay${path}`, { ...init, headers }));
  };

  // A browser (Accept: text/html) gets the log's page (log-page.ts); API clients get the JSON summary.
  app.get(
    "/logs/:name",
    (c) => forward(c.env, c.get("name"), wantsHtml(c.req.raw) ? `/page${limitQuery(c.req.url)}` : "/info"),
  );
  app.get("/logs/:name/graph", (c) => forward(c.env, c.get("name"), `/graph${limitQuery(c.req.url)}`));

  app.get("/logs/:name/ws", (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return bad("This route is a WebSocket: connect with a WebSocket client (Upgrade: websocket)", 426);
    }
    // Checked here, whatever the runtime's server lets through (Deno's accepts a missing key).
    if (!WS_KEY.test(c.req.header("sec-websocket-key") ?? "") || c.req.header("sec-websocket-version") !== "13") {
      return bad("The WebSocket handshake is not valid: send Sec-WebSocket-Version: 13 and a 16-byte base64 key");
    }
    const headers = new Headers(c.req.raw.headers);
    headers.set("x-hyperlog-role", c.get("role"));
    headers.delete("x-hyperlog-protocol");
    // The answer names `hyperlog` when offered, else no subprotocol: never an offered `bearer.TOKEN` (the token
    // would come back in a response header, where proxies log it).
    if (offeredProtocols(c.req.raw).includes("hyperlog")) headers.set("x-hyperlog-protocol", "hyperlog");
    return forward(c.env, c.get("name"), "/ws", { headers });
  });

  app.get("/logs/:name/nodes/:key", async (c) => {
    const key = c.req.param("key");
    if (!isKey(key)) return bad(`Key ${JSON.stringify(key)} is not a node key: 64 lower-case hex characters`);
    const name = c.get("name");
    const mirrored = await c.env.NODES?.get(`${name}/${key}`);
    if (mirrored !== undefined && mirrored !== null) {
      return new Response(mirrored, { headers: { "content-type": "application/json", "x-hyperlog-from": "kv" } });
    }
    return forward(c.env, name, `/nodes/${key}`);
  });

  app.get("/logs/:name/changes", (c) => {
    const since = c.req.query("since") ?? "0";
    if (!/^\d{1,15}$/.test(since)) {
      return bad(`since=${JSON.stringify(since)} is not valid: give a change number, a non-negative integer`);
    }
    return forward(c.env, c.get("name"), `/changes?since=${Number(since)}`);
  });

  // The operator's dashboard (admin.ts), behind ADMIN_TOKEN or METRICS_TOKEN.
  app.get("/admin", (c) =>
    adminResponse(
      c.req.raw,
      // The Worker lists its logs through the registry Object; `hyperlog serve` passes its own registry.
      { ...c.env, LOG_REGISTRY: (c.env as AdminEnv).LOG_REGISTRY ?? objectRegistry(c.env.RELAY) } as RelayEnv & AdminEnv,
      async (name) => {
        const response = await forward(c.env, name, "/summary");
        if (!response.ok) throw new Error(`The log answered ${response.status}`);
        return await response.json() as LogSummary;
      },
    ));

  app.post(
    "/logs/:name/debug/forget",
    (c) =>
      c.env.RELAY_DEBUG === "1"
        ? forward(c.env, c.get("name"), "/debug/forget", { method: "POST" })
        : bad("No such route: see / for the routes", 404),
  );

  app.notFound(() => bad("No such route: see / for the routes", 404));
  app.onError((error, c) => {
    logEvent("error", { path: c.req.path, error: describeError(error) });
    return bad(INTERNAL_ERROR, 500);
  });
  return app;
}
