/**
 * The log's views on the relay, answered by the relay core next to `/info` (so the Durable Object and
 * `hyperlog serve` both have them): `/graph?limit=N` (the SVG of the latest N nodes, {@link graphSvg}),
 * `/summary` (JSON: length, heads, live sockets, last write) and `/page` (the HTML page a browser gets at
 * `/logs/NAME`: the summary and the graph). Nothing a value holds reaches the page unescaped, and the page and the
 * SVG are sent with a Content-Security-Policy that allows no script.
 *
 * @module
 */
import type { Hyperlog } from "../mod.ts";
import { escapeXml, type GraphNode, graphSvg, previewBytes } from "./graph-svg.ts";

/** Nodes in the graph when `limit` is not given. */
export const GRAPH_DEFAULT_LIMIT = 100;
/** The most nodes one graph shows. */
export const GRAPH_MAX_LIMIT = 1000;
/** The paths {@link logView} answers. */
export const LOG_VIEW_PATHS: ReadonlySet<string> = new Set(["/graph", "/summary", "/page"]);

/** Headers of the SVG and the page: no script, no fetch, no frame. */
const SAFE = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'";

/** When each log last stored a node (in this process or Object, since it started). */
const lastWrites = new WeakMap<object, number>();

/**
 * Notes the time of every node `log` stores, for {@link LogSummary.lastWrite}. The relay core calls it once.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { logSummary, noteWrites } from "./log-page.ts";
 * const log = new Hyperlog<Uint8Array>({ valueEncoding: "binary" });
 * noteWrites(log);
 * await log.append(new Uint8Array([1]));
 * console.assert((await logSummary(log, "x", 0)).lastWrite !== null);
 * ```
 */
export function noteWrites(log: Hyperlog<Uint8Array>): void {
  log.addEventListener("add", () => lastWrites.set(log, Date.now()));
}

/**
 * What `/summary` answers.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { logSummary } from "./log-page.ts";
 * import type { LogSummary } from "./log-page.ts";
 * const log = new Hyperlog<Uint8Array>({ valueEncoding: "binary" });
 * const node = await log.append(new Uint8Array([1]));
 * const summary: LogSummary = await logSummary(log, "chat", 0);
 * console.assert(summary.length === 1 && summary.heads[0] === node.key && summary.name === "chat");
 * ```
 */
export interface LogSummary {
  /** The log's name. */
  name: string;
  /** Its number of nodes. */
  length: number;
  /** The keys of its heads. */
  heads: string[];
  /** WebSockets connected to it now. */
  sockets: number;
  /** When it last stored a node, as an ISO date, or null if not since the relay (or its Object) started. */
  lastWrite: string | null;
}

/**
 * The summary of a relay's log.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { logSummary } from "./log-page.ts";
 * const log = new Hyperlog<Uint8Array>({ valueEncoding: "binary" });
 * console.assert((await logSummary(log, "x", 2)).sockets === 2);
 * ```
 */
export async function logSummary(log: Hyperlog<Uint8Array>, name: string, sockets: number): Promise<LogSummary> {
  await log.ready();
  const last = lastWrites.get(log);
  return {
    name,
    length: log.length,
    heads: await log.storage.heads(),
    sockets,
    lastWrite: last === undefined ? null : new Date(last).toISOString(),
  };
}

/**
 * The latest `limit` nodes of a log, newest first, as the SVG shows them.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { latestNodes } from "./log-page.ts";
 * const log = new Hyperlog<Uint8Array>({ valueEncoding: "binary" });
 * await log.append(new TextEncoder().encode('"hi"'));
 * console.assert((await latestNodes(log, 10))[0]!.preview === '"hi"');
 * ```
 */
export async function latestNodes(log: Hyperlog<Uint8Array>, limit: number): Promise<GraphNode[]> {
  const nodes: GraphNode[] = [];
  for await (const node of log.createReadStream({ reverse: true, limit })) {
    nodes.push({
      key: node.key,
      links: node.links,
      change: node.change,
      identity: node.identity,
      preview: previewBytes(node.value),
    });
  }
  return nodes;
}

/** The `limit` of a request: a whole number from 1 to {@link GRAPH_MAX_LIMIT}, or the default. */
function limitOf(url: URL): number | string {
  const text = url.searchParams.get("limit");
  if (text === null) return GRAPH_DEFAULT_LIMIT;
  if (!/^\d{1,7}$/.test(text) || Number(text) < 1 || Number(text) > GRAPH_MAX_LIMIT) {
    return `limit=${JSON.stringify(text)} is not valid: give a number of nodes from 1 to ${GRAPH_MAX_LIMIT}`;
  }
  return Number(text);
}

/** The HTML page of a log: its summary and its graph. */
function page(summary: LogSummary, svg: string, shown: number): string {
  const name = escapeXml(summary.name);
  const base = `/logs/${encodeURIComponent(summary.name)}`;
  const heads = summary.heads.map((key) => `<code>${escapeXml(key.slice(0, 12))}</code>`).join(" ");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${name}: hyperlog relay</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; margin-bottom: 1rem; }
th, td { text-align: left; padding: .25rem .75rem .25rem 0; vertical-align: top; }
th { color: #666; font-weight: normal; }
.graph { overflow: auto; border: 1px solid #ddd; }
</style>
</head>
<body>
<h1>Log <code>${name}</code></h1>
<table id="summary">
<tr><th>nodes</th><td id="length">${summary.length}</td></tr>
<tr><th>heads</th><td id="heads">${summary.heads.length} ${heads}</td></tr>
<tr><th>live sockets</th><td id="sockets">${summary.sockets}</td></tr>
<tr><th>last write</th><td id="last-write">${summary.lastWrite ?? "not since the relay started"}</td></tr>
</table>
<p>The latest ${shown} nodes, newest first (heads on top). As JSON: <a href="${base}">${base}</a> (Accept:
application/json), <a href="${base}/changes">${base}/changes</a>; the picture alone:
<a href="${base}/graph?limit=${GRAPH_MAX_LIMIT}">${base}/graph?limit=${GRAPH_MAX_LIMIT}</a>.</p>
<div class="graph">${svg}</div>
</body>
</html>
`;
}

/**
 * Answers `/graph`, `/summary` and `/page` for a relay's log (see the module doc); `sockets` counts its live
 * sockets.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { logView } from "./log-page.ts";
 * const log = new Hyperlog<Uint8Array>({ valueEncoding: "binary" });
 * await log.append(new TextEncoder().encode('"</text><script>"'));
 * const response = await logView(log, "chat", new URL("https://relay/graph?limit=5"), () => 0);
 * const svg = await response.text();
 * console.assert(response.headers.get("content-type") === "image/svg+xml" && !svg.includes("<script"));
 * ```
 */
export async function logView(
  log: Hyperlog<Uint8Array>,
  name: string,
  url: URL,
  sockets: () => number,
): Promise<Response> {
  await log.ready();
  const path = url.pathname;
  if (path === "/summary") return Response.json(await logSummary(log, name, sockets()));
  const limit = limitOf(url);
  if (typeof limit === "string") return Response.json({ error: limit }, { status: 400 });
  const nodes = await latestNodes(log, limit);
  const href = (key: string) => `/logs/${encodeURIComponent(name)}/nodes/${key}`;
  const headers = { "content-security-policy": SAFE, "x-content-type-options": "nosniff" };
  if (path === "/graph") {
    const svg = graphSvg(nodes, { href, title: `${name}: the latest ${nodes.length} of ${log.length} nodes` });
    return new Response(svg, { headers: { ...headers, "content-type": "image/svg+xml" } });
  }
  const svg = graphSvg(nodes, { href });
  const body = page(await logSummary(log, name, sockets()), svg, nodes.length);
  return new Response(body, { headers: { ...headers, "content-type": "text/html; charset=utf-8" } });
}
