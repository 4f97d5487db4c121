/**
 * `hyperlog serve` on Node: `node:http` for requests, the `ws` package for WebSockets (Node has a WebSocket client
 * but no server). Loaded by `serve.ts` on Node only.
 *
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { Readable } from "node:stream";
import { WebSocketServer } from "ws";
import { INTERNAL, type RelayServer, SERVER_TIMEOUTS, socketReadLimit } from "./serve.ts";

/** Deadlines against slow clients (slowloris): see {@link SERVER_TIMEOUTS}. */
const TIMEOUTS = {
  headersTimeout: SERVER_TIMEOUTS.headersMs,
  requestTimeout: SERVER_TIMEOUTS.requestMs,
  keepAliveTimeout: SERVER_TIMEOUTS.keepAliveMs,
  // How often Node checks the two above (default 30 s).
  connectionsCheckingInterval: 1000,
};

/**
 * The origin of every request's URL. A Node request's URL is never built from its Host header (a client controls it:
 * `Host: [` made `new Request` throw, and the throw killed the process); the app checks the Host header itself.
 */
const ORIGIN = "http://relay.invalid";

/**
 * A web Request from a Node request (the relay reads only method, URL and headers, and no body), or `undefined` when
 * the request target is not a path (`*`, an authority, a URL that does not parse).
 */
function toRequest(req: IncomingMessage): Request | undefined {
  const target = req.url ?? "/";
  if (!target.startsWith("/") || target.startsWith("//")) return undefined;
  try {
    const url = new URL(target, ORIGIN);
    if (url.origin !== ORIGIN) return undefined;
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
    }
    const method = req.method ?? "GET";
    return new Request(url, {
      method,
      headers,
      ...(method === "GET" || method === "HEAD" ? {} : { body: Readable.toWeb(req) as ReadableStream, duplex: "half" }),
    } as RequestInit);
  } catch {
    return undefined;
  }
}

/** The answer to a request the relay cannot take as a web Request. */
const BAD_TARGET = JSON.stringify({ error: "The request target is not valid: send a path such as /logs/NAME" });

async function writeResponse(res: ServerResponse, response: Response): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => (headers[name] = value));
  res.writeHead(response.status, headers);
  if (response.body === null) return void res.end();
  const reader = response.body.getReader();
  // A client that goes away mid-body cancels the body (which lets its log close), rather than waiting for a drain.
  const gone = new Promise<void>((resolve) => res.once("close", resolve));
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await Promise.race([new Promise((resolve) => res.once("drain", resolve)), gone]);
      if (res.destroyed) return void await reader.cancel().catch(() => {});
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  }
  res.end();
}

/** An HTTP response written by hand on a socket whose upgrade was refused. */
async function refuseUpgrade(socket: Duplex, response: Response): Promise<void> {
  if (!socket.writable) return void socket.destroy();
  const body = new Uint8Array(await response.arrayBuffer());
  let head = `HTTP/1.1 ${response.status} ${response.statusText || "Refused"}\r\n`;
  response.headers.forEach((value, name) => (head += `${name}: ${value}\r\n`));
  head += `content-length: ${body.length}\r\nconnection: close\r\n\r\n`;
  socket.end(Buffer.concat([Buffer.from(head, "latin1"), body]));
}

/**
 * Listens on `hostname:port` with `node:http`, WebSockets through `ws`.
 *
 * @example
 * ```ts ignore
 * const { port, close } = await listen(new RelayServer("./relay-data"), 0, "127.0.0.1");
 * ```
 */
export async function listen(
  relay: RelayServer,
  port: number,
  hostname: string,
): Promise<{ port: number; close(): Promise<void> }> {
  const protocols = new WeakMap<IncomingMessage, string>();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: socketReadLimit(relay.limits),
    perMessageDeflate: false,
    handleProtocols: (_offered, req) => protocols.get(req) ?? false,
  });
  const server = createServer(TIMEOUTS, (req, res) => {
    const request = toRequest(req);
    if (request === undefined) {
      res.writeHead(400, { "content-type": "application/json", connection: "close" });
      res.end(BAD_TARGET);
      return;
    }
    relay.fetch(request)
      .then((response) => writeResponse(res, response))
      .catch((error) => {
        relay.failed(error);
        // Headers sent: the body is cut short (an error inside a 200 body would read as data).
        if (res.headersSent) return void res.destroy();
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: INTERNAL }));
      });
  });
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Duplex) => {
    // Node's parser refused the request (or it timed out): answer 400 (408) if the socket can still take it.
    if (socket.writable && !(socket as { _httpMessage?: unknown })._httpMessage) {
      const timeout = error.code === "ERR_HTTP_REQUEST_TIMEOUT";
      const body = JSON.stringify({ error: timeout ? "The request took too long" : "The request is not valid HTTP" });
      socket.end(
        `HTTP/1.1 ${timeout ? "408 Request Timeout" : "400 Bad Request"}\r\ncontent-type: application/json\r\n` +
          `content-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      );
    } else socket.destroy();
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    const request = toRequest(req);
    if (request === undefined) {
      void refuseUpgrade(socket, new Response(BAD_TARGET, { status: 400 }));
      return;
    }
    let upgraded = false;
    relay.fetch(request, (protocol, hosted) => {
      upgraded = true;
      if (protocol !== undefined) protocols.set(req, protocol);
      // A handshake that `ws` refuses never opens: the relay forgets the socket when the connection goes.
      socket.once("close", () => hosted.ended(1006));
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.binaryType = "nodebuffer";
        ws.on("message", (data: Buffer, isBinary: boolean) => {
          // A view of ws's buffer, not a copy.
          hosted.received(
            isBinary ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : data.toString("utf8"),
          );
        });
        ws.on("close", (code: number) => hosted.ended(code));
        ws.on("error", () => hosted.ended(1006));
        hosted.attach({
          send: (data) => ws.send(data),
          close: (code, reason) => ws.close(code, reason),
          buffered: () => ws.bufferedAmount,
          pause: () => ws.pause(),
          resume: () => ws.resume(),
        });
      });
      // Not sent: `ws` answers the handshake itself.
      return new Response(null, { status: 204 });
    }).then(async (response) => {
      if (!upgraded) await refuseUpgrade(socket, response);
    }).catch((error) => {
      relay.failed(error);
      socket.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  return {
    port: typeof address === "object" && address !== null ? address.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
