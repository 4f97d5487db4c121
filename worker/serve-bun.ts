/**
 * `hyperlog serve` on Bun: `Bun.serve` with its `websocket` handlers. Loaded by `serve.ts` on Bun only.
 *
 * @module
 */
import { type HostedSocket, INTERNAL, type RelayServer, SERVER_TIMEOUTS, socketReadLimit } from "./serve.ts";

/** The part of Bun's server WebSocket the adapter uses. */
interface BunSocket {
  data: HostedSocket;
  send(data: Uint8Array | string): number;
  /** Bytes queued by `send` and not yet handed to the network. */
  getBufferedAmount(): number;
  close(code?: number, reason?: string): void;
}

/** The part of Bun's server the adapter uses (structural: the project type-checks with Node's types). */
interface BunServer {
  readonly port: number;
  upgrade(request: Request, options: { data: HostedSocket; headers?: Record<string, string> }): boolean;
  stop(closeActiveConnections?: boolean): Promise<void> | void;
}

interface BunLike {
  serve(options: {
    port: number;
    hostname: string;
    idleTimeout: number;
    error(error: unknown): Response;
    fetch(request: Request, server: BunServer): Promise<Response | undefined>;
    websocket: {
      maxPayloadLength: number;
      perMessageDeflate: boolean;
      open(ws: BunSocket): void;
      message(ws: BunSocket, message: string | Uint8Array): void;
      close(ws: BunSocket, code: number): void;
    };
  }): BunServer;
}

/**
 * Listens on `hostname:port` with `Bun.serve`.
 *
 * @example
 * ```ts ignore
 * const { port, close } = await listen(new RelayServer("./relay-data"), 0, "127.0.0.1");
 * ```
 */
// deno-lint-ignore require-await
export async function listen(
  relay: RelayServer,
  port: number,
  hostname: string,
): Promise<{ port: number; close(): Promise<void> }> {
  const bun = (globalThis as unknown as { Bun: BunLike }).Bun;
  const server = bun.serve({
    port,
    hostname,
    idleTimeout: SERVER_TIMEOUTS.idleS,
    error(error) {
      relay.failed(error);
      return new Response(INTERNAL, { status: 500, headers: { "content-type": "application/json" } });
    },
    async fetch(request, server) {
      let upgraded = false;
      const response = await relay.fetch(request, (protocol, hosted) => {
        // Without a protocol header Bun answers with the first one offered (a `bearer.TOKEN` would come back): an
        // empty one makes it answer none.
        const headers: Record<string, string> = { "sec-websocket-protocol": protocol ?? "" };
        upgraded = server.upgrade(request, { data: hosted, headers });
        if (upgraded) return new Response(null, { status: 204 });
        hosted.close(1002, "The WebSocket handshake failed");
        return Response.json({ error: "The WebSocket handshake failed: send a valid upgrade request" }, {
          status: 400,
        });
      });
      // After an upgrade Bun wants no response.
      return upgraded ? undefined : response;
    },
    websocket: {
      maxPayloadLength: socketReadLimit(relay.limits),
      perMessageDeflate: false,
      open: (ws) =>
        ws.data.attach({
          send: (data) => void ws.send(data),
          close: (code, reason) => ws.close(code, reason),
          buffered: () => ws.getBufferedAmount(),
        }),
      message: (ws, message) => ws.data.received(typeof message === "string" ? message : new Uint8Array(message)),
      close: (ws, code) => ws.data.ended(code),
    },
  });
  return {
    port: server.port,
    close: async () => {
      await server.stop(true);
    },
  };
}
