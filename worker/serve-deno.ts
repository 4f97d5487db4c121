/**
 * `hyperlog serve` on Deno: `Deno.serve` for requests, `Deno.upgradeWebSocket` for WebSockets. Loaded by
 * `serve.ts` on Deno only.
 *
 * @module
 */
import { INTERNAL, type RelayServer } from "./serve.ts";

/** The part of Deno's WebSocket the adapter uses. */
export interface DenoSocket {
  binaryType: string;
  /** Bytes queued by `send` and not yet handed to the network. */
  readonly bufferedAmount: number;
  send(data: Uint8Array | string): void;
  close(code?: number, reason?: string): void;
  onopen: (() => void) | null;
  onmessage: ((event: { data: ArrayBuffer | string }) => void) | null;
  onclose: ((event: { code: number }) => void) | null;
  onerror: (() => void) | null;
}

/** The part of the `Deno` namespace the adapter uses (structural: the project type-checks with Node's types). */
interface DenoLike {
  serve(
    options: {
      port: number;
      hostname: string;
      onListen(address: { port: number }): void;
      onError(error: unknown): Response;
    },
    handler: (request: Request) => Promise<Response>,
  ): { shutdown(): Promise<void> };
  upgradeWebSocket(request: Request, options: { protocol?: string }): { socket: DenoSocket; response: Response };
}

/**
 * Listens on `hostname:port` with `Deno.serve`.
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
  const deno = (globalThis as unknown as { Deno: DenoLike }).Deno;
  let bound!: (port: number) => void;
  const listening = new Promise<number>((resolve) => (bound = resolve));
  const internal = (error: unknown) => {
    relay.failed(error);
    return new Response(INTERNAL, { status: 500, headers: { "content-type": "application/json" } });
  };
  const handler = denoHandler(relay, (request, options) => deno.upgradeWebSocket(request, options));
  const server = deno.serve(
    { port, hostname, onListen: (address) => bound(address.port), onError: internal },
    (request) => handler(request).catch(internal),
  );
  return { port: await listening, close: () => server.shutdown() };
}

/**
 * A request handler for `relay` on Deno: the app's routes, and WebSocket upgrades through `upgradeWebSocket`
 * (`Deno.upgradeWebSocket`). Used by `listen` and by the Deno Deploy entry.
 *
 * @example
 * ```ts ignore
 * const handler = denoHandler(relay, (request, options) => Deno.upgradeWebSocket(request, options));
 * Deno.serve(handler);
 * ```
 */
export function denoHandler(
  relay: RelayServer,
  upgradeWebSocket: (request: Request, options: { protocol?: string }) => { socket: DenoSocket; response: Response },
): (request: Request) => Promise<Response> {
  return (request) =>
    relay.fetch(request, (protocol, hosted) => {
      const { socket, response } = upgradeWebSocket(request, protocol === undefined ? {} : { protocol });
      socket.binaryType = "arraybuffer";
      socket.onopen = () =>
        hosted.attach({
          send: (data) => socket.send(data),
          close: (c, r) => socket.close(c, r),
          buffered: () => socket.bufferedAmount,
        });
      socket.onmessage = (event) => hosted.received(event.data);
      socket.onclose = (event) => hosted.ended(event.code);
      socket.onerror = () => hosted.ended(1006);
      return response;
    });
}
