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
import { type RelayServer, socketReadLimit } from "./serve.ts";

/** A web Request from a Node request (the relay reads only method, URL and headers, and no body). */
function toRequest(req: IncomingMessage): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  const method = req.method ?? "GET";
  const url = `http://${req.headers.host ?? "localhost"}${req.url ?? "/"}`;
  return new Request(url, {
    method,
    headers,
    ...(method === "GET" || method === "HEAD" ? {} : { body: Readable.toWeb(req) as ReadableStream, duplex: "half" }),
  } as RequestInit);
}

async function writeResponse(res: ServerResponse, response: Response): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => (headers[name] = value));
  res.writeHead(response.status, headers);
  if (response.body === null) return void res.end();
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    if (!res.write(chunk)) await new Promise((resolve) => res.once("drain", resolve));
  }
  res.end();
}

/** An HTTP response written by hand on a socket whose upgrade was refused. */
async function refuseUpgrade(socket: Duplex, response: Response): Promise<void> {
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
  const server = createServer((req, res) => {
    relay.fetch(toRequest(req))
      .then((response) => writeResponse(res, response))
      .catch((error) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: `The relay failed: ${(error as Error).message}` }));
      });
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    let upgraded = false;
    relay.fetch(toRequest(req), (protocol, hosted) => {
      upgraded = true;
      if (protocol !== undefined) protocols.set(req, protocol);
      // A handshake that `ws` refuses never opens: the relay forgets the socket when the connection goes.
      socket.once("close", () => hosted.ended(1006));
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.binaryType = "nodebuffer";
        ws.on("message", (data: Buffer, isBinary: boolean) => {
          hosted.received(isBinary ? new Uint8Array(data) : data.toString("utf8"));
        });
        ws.on("close", (code: number) => hosted.ended(code));
        ws.on("error", () => hosted.ended(1006));
        hosted.attach({ send: (data) => ws.send(data), close: (code, reason) => ws.close(code, reason) });
      });
      // Not sent: `ws` answers the handshake itself.
      return new Response(null, { status: 204 });
    }).then(async (response) => {
      if (!upgraded) await refuseUpgrade(socket, response);
    }).catch(() => socket.destroy());
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
