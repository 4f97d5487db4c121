/**
 * The Workers entry of the relay: the Hono app's `fetch` and the Durable Object class (see `wrangler.jsonc`).
 *
 * @module
 */
import { createApp } from "./app.ts";
import type { RelayEnv } from "./relay.ts";

export { RelayObject } from "./relay.ts";
export { RelayMetrics } from "./metrics.ts";
export type { HibernatableWebSocket, KvNamespaceLike, RelayEnv } from "./relay.ts";

const app = createApp();

/** The shape of the Workers entry: a `fetch` handler. */
export interface RelayWorker {
  /** Handles one request through the Hono app. */
  fetch(request: Request, env: RelayEnv, ctx: unknown): Response | Promise<Response>;
}

/**
 * The worker: every request goes through the Hono app.
 *
 * @example
 * ```ts ignore
 * // wrangler.jsonc: "main": "worker/index.ts"; or re-export it from your own entry:
 * export { default, RelayObject } from "@hyperlog/hyperlog/worker";
 * ```
 */
const worker: RelayWorker = {
  fetch(request: Request, env: RelayEnv, ctx: unknown): Response | Promise<Response> {
    return app.fetch(request, env, ctx as never);
  },
};
export default worker;
