/**
 * The HTTP reads of one relayed log: `/info`, `/nodes/KEY`, `/changes?since=N` and the log's views (`log-page.ts`).
 *
 * @module
 */
import type { Hyperlog } from "../mod.ts";
import { LOG_VIEW_PATHS, logView } from "./log-page.ts";
import { nodeText } from "./node-json.ts";

const textEncoder = new TextEncoder();

function isKey(value: string): boolean {
  return /^[0-9a-f]{64}$/.test(value);
}

/**
 * Answers a read of log `name`: `/info` (`{ heads, length }`), `/nodes/KEY` (one node as JSON), `/changes?since=N`
 * (NDJSON, read a page at a time as the body is pulled), the log's views (`/graph`, `/summary`, `/page`); anything
 * else is a 404. `sockets` counts the log's open sockets (for the views).
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { readLog } from "./relay-reads.ts";
 * const log = new Hyperlog<Uint8Array>(undefined, { valueEncoding: "binary" });
 * await log.append(new Uint8Array([1]));
 * const info = await readLog(log, "chat", new URL("https://relay/info"), () => 0);
 * console.assert((await info.json()).length === 1);
 * ```
 */
export async function readLog(
  log: Hyperlog<Uint8Array>,
  name: string,
  url: URL,
  sockets: () => number,
): Promise<Response> {
  const path = url.pathname;
  // The log's views (log-page.ts): /graph, /summary, /page.
  if (LOG_VIEW_PATHS.has(path)) return await logView(log, name, url, sockets);
  if (path === "/info") {
    return Response.json({ heads: await log.storage.heads(), length: log.length });
  }
  if (path.startsWith("/nodes/")) {
    const key = path.slice("/nodes/".length);
    const node = isKey(key) ? await log.storage.get(key) : undefined;
    if (node === undefined) return Response.json({ error: `No node ${key} in log ${name}` }, { status: 404 });
    return new Response(nodeText(node), { headers: { "content-type": "application/json" } });
  }
  if (path === "/changes") {
    const since = Number(url.searchParams.get("since") ?? "0");
    let cursor = since;
    const until = log.length;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const page = cursor < until
          ? await log.storage.read({ since: cursor, until, limit: 512, reverse: false })
          : [];
        if (page.length === 0) return controller.close();
        cursor = page[page.length - 1]!.change;
        controller.enqueue(textEncoder.encode(page.map((n) => nodeText(n) + "\n").join("")));
      },
    });
    return new Response(body, { headers: { "content-type": "application/x-ndjson" } });
  }
  return new Response("Not found", { status: 404 });
}
