/**
 * The relay's Hono app: checks names, keys and tokens, serves nodes from the KV mirror, and forwards everything else
 * to the log's Durable Object (one per name). WebSocket upgrades are forwarded as they are: the Durable Object
 * accepts the socket itself with the hibernation API (Hono's `upgradeWebSocket` would accept it here, and a socket
 * accepted outside the Object cannot hibernate).
 *
 * @module
 */
import { Hono } from "hono";
import { type AdminEnv, adminResponse } from "./admin.ts";
import { DEMO_HTML } from "./demo/html.ts";
import type { LogSummary } from "./log-page.ts";
import { type Role, roleOf } from "./limits.ts";
import type { RelayEnv } from "./relay.ts";

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const KEY = /^[0-9a-f]{64}$/;
/** The subprotocol a browser offers to carry a token: `bearer.TOKEN` (browsers cannot set headers). */
const BEARER_PROTOCOL = "bearer.";

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

  // The demo page; its script, /demo.js, is a static asset (wrangler.jsonc "assets", scripts/build-demo.ts).
  app.get("/", (c) => c.html(DEMO_HTML));
  app.get("/health", (c) => c.json({ ok: true }));

  app.use("/logs/:name/*", async (c, next) => {
    const name = c.req.param("name");
    if (!NAME.test(name)) {
      return bad(`Log name ${JSON.stringify(name)} is not valid: use 1 to 128 letters, digits, '.', '_' or '-'`);
    }
    const role = roleOf(c.env, tokenOf(c.req.raw, new URL(c.req.url)));
    if (role === undefined) {
      return bad("This relay needs a token: send Authorization: Bearer TOKEN (or ?token=TOKEN)", 401);
    }
    c.set("role", role);
    c.set("name", name);
    await next();
  });
  // `/logs/:name/*` does not match `/logs/:name` itself.
  app.use("/logs/:name", async (c, next) => {
    const name = c.req.param("name");
    if (!NAME.test(name)) {
      return bad(`Log name ${JSON.stringify(name)} is not valid: use 1 to 128 letters, digits, '.', '_' or '-'`);
    }
    if (roleOf(c.env, tokenOf(c.req.raw, new URL(c.req.url))) === undefined) {
      return bad("This relay needs a token: send Authorization: Bearer TOKEN (or ?token=TOKEN)", 401);
    }
    c.set("name", name);
    await next();
  });

  /** Forwards to the log's Durable Object, at `path`. */
  const forward = (env: RelayEnv, name: string, path: string, init: RequestInit = {}): Promise<Response> => {
    const stub = env.RELAY.get(env.RELAY.idFromName(name));
    const headers = new Headers(init.headers);
    headers.set("x-hyperlog-log", name);
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
    const headers = new Headers(c.req.raw.headers);
    headers.set("x-hyperlog-role", c.get("role"));
    headers.delete("x-hyperlog-protocol");
    const offered = offeredProtocols(c.req.raw);
    if (offered.length > 0) {
      // A browser fails the connection unless the server picks one of the offered subprotocols.
      headers.set("x-hyperlog-protocol", offered.includes("hyperlog") ? "hyperlog" : offered[0]!);
    }
    return forward(c.env, c.get("name"), "/ws", { headers });
  });

  app.get("/logs/:name/nodes/:key", async (c) => {
    const key = c.req.param("key");
    if (!KEY.test(key)) return bad(`Key ${JSON.stringify(key)} is not a node key: 64 lower-case hex characters`);
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
      c.env as RelayEnv & AdminEnv,
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
  app.onError((error) => bad(`The relay failed: ${error.message}`, 500));
  return app;
}
