/**
 * `hyperlog serve` for one `describe` block: a relay on a free port over a temporary directory, started before the
 * block's tests and closed (its directory removed) after them, with a reader of its Prometheus metrics.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { type RunningServer, serve } from "../worker/serve.ts";

/** The relay of a `describe` block, once its `before` hook has run. */
export interface ServedRelay {
  /** The running server (throws before the block's tests start). */
  readonly server: RunningServer;
  /** The directory it keeps its logs in (removed after the block). */
  readonly dir: string;
  /** Its base URL, `http://127.0.0.1:PORT`. */
  url(): string;
  /** The value of metric `hyperlog_NAME` (no labels), or `missing` when the relay does not report it. */
  metric(name: string, missing?: number): number;
}

/**
 * Registers `before`/`after` hooks in the calling `describe` block that run `hyperlog serve` with `settings` in a
 * new directory named after `prefix`, and returns the handle the tests use.
 */
export function servedRelay(prefix: string, settings: Record<string, string> = {}): ServedRelay {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let running: RunningServer | undefined;
  before(async () => {
    running = await serve({ dir, port: 0, settings });
  });
  after(async () => {
    await running?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const served: ServedRelay = {
    dir,
    get server(): RunningServer {
      if (running === undefined) throw new Error("The relay is not running: use it inside a test of its block");
      return running;
    },
    url: () => served.server.url,
    metric(name, missing = NaN) {
      const line = served.server.relay.metrics.render().split("\n").find((l) => l.startsWith(`hyperlog_${name} `));
      return line === undefined ? missing : Number(line.split(" ")[1]);
    },
  };
  return served;
}
