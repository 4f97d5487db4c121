/**
 * The Workers entry of the relay: the Hono app's `fetch` and the Durable Object class (see `wrangler.jsonc`).
 *
 * @module
 */
import { createApp } from "./app.ts";
import type { RelayEnv } from "./relay.ts";

export { RelayObject } from "./relay.ts";

const app = createApp();

/** The worker: every request goes through the Hono app. */
export default {
  fetch(request: Request, env: RelayEnv, ctx: unknown): Response | Promise<Response> {
    return app.fetch(request, env, ctx as never);
  },
};
