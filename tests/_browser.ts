/**
 * Shared helper for tests that run code in a real Chromium: decides whether browser tests run here, bundles a test
 * module for the browser with esbuild, serves it from a local HTTP server (node:http) and drives Chromium through
 * playwright-core.
 *
 * - Browser tests run from Node only; on Deno and Bun they are skipped with a printed reason.
 * - The browser is `/usr/bin/chromium` (`apt-get install -y chromium`); nothing ever downloads one. When it is
 *   missing the tests are skipped with a printed reason, or fail when `HYPERLOG_REQUIRE_BROWSER=1` (as `.ci/run`
 *   sets), so that CI cannot pass without having run them.
 * - Bundles alias `node:assert/strict` to `tests/fixtures/browser-assert.ts`, so that the storage conformance suite
 *   runs unchanged in a page.
 */
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import type { Browser, BrowserContext, Page } from "playwright-core";

/** Where the system Chromium lives. */
export const CHROMIUM = "/usr/bin/chromium";

/** Flags for a quiet headless Chromium that never phones home. */
export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
];

const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";

/** Whether browser tests run here: `run`, or `skip` / `fail` with the reason. */
export type BrowserGate = { state: "run" } | { state: "skip" | "fail"; reason: string };

/** Decides whether browser tests run on this runtime and machine. */
export function browserGate(): BrowserGate {
  if (runtime !== "node") {
    return {
      state: "skip",
      reason: `browser tests run from Node only (playwright-core drives Chromium); skipped on ${runtime}`,
    };
  }
  if (!existsSync(CHROMIUM)) {
    const required = process.env["HYPERLOG_REQUIRE_BROWSER"] === "1";
    return required
      ? {
        state: "fail",
        reason: `${CHROMIUM} is missing and HYPERLOG_REQUIRE_BROWSER=1 requires the browser tests: ` +
          "install it with `apt-get install -y chromium` (as .ci/run does)",
      }
      : {
        state: "skip",
        reason: `${CHROMIUM} is missing (install it with \`apt-get install -y chromium\`; ` +
          "set HYPERLOG_REQUIRE_BROWSER=1 to make this a failure)",
      };
  }
  return { state: "run" };
}

/**
 * `describe(title, body)` when browser tests run here; otherwise one test that is skipped (with the reason printed)
 * or fails with the reason. `body` must register its tests synchronously (Deno drops tests registered later).
 */
export function describeInBrowser(title: string, body: () => void): void {
  const gate = browserGate();
  if (gate.state === "run") {
    describe(title, body);
    return;
  }
  const { reason } = gate;
  if (gate.state === "skip") {
    console.log(`Skipping: ${reason}`);
    describe(title, () => it("runs in Chromium", { skip: reason }, () => {}));
  } else {
    describe(title, () =>
      it("runs in Chromium", () => {
        throw new Error(reason);
      }));
  }
}

/** Bundles `entry` (a path relative to this directory, or absolute) into one ES module for the browser. */
export async function bundleForBrowser(
  entry: string,
  options: { minify?: boolean; alias?: boolean } = {},
): Promise<string> {
  const { build } = await import("esbuild");
  const assertShim = fileURLToPath(new URL("./fixtures/browser-assert.ts", import.meta.url));
  const result = await build({
    entryPoints: [entry.startsWith("/") ? entry : fileURLToPath(new URL(entry, import.meta.url))],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: options.minify ?? false,
    write: false,
    logLevel: "silent",
    plugins: options.alias === false ? [] : [{
      name: "node-assert-for-browsers",
      setup(b) {
        b.onResolve({ filter: /^node:assert(\/strict)?$/ }, () => ({ path: assertShim }));
      },
    }],
  });
  return result.outputFiles[0]!.text;
}

/** A running Chromium and the local server its pages load from. */
export interface BrowserHarness {
  /** The browser. */
  readonly browser: Browser;
  /** The server's origin, such as `http://127.0.0.1:41234`. */
  readonly origin: string;
  /** Opens `path` (default `/`) in a new page of `context` (default: a new context) and waits until it is ready. */
  open(path?: string, context?: BrowserContext): Promise<Page>;
  /** Closes the browser and the server. */
  close(): Promise<void>;
}

/**
 * Starts Chromium and a local server for `files` (path to JavaScript source). `/` serves a page that imports
 * `/main.js`; a page is ready once its module set `globalThis.hyperlogReady = true`. Errors thrown in a page are
 * printed to stderr. `args` are Chromium's flags (default {@link CHROMIUM_ARGS}).
 */
export async function startBrowser(
  files: Record<string, string>,
  args: readonly string[] = CHROMIUM_ARGS,
): Promise<BrowserHarness> {
  const { chromium } = await import("playwright-core");
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (path === "/") {
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      response.end(
        '<!doctype html><meta charset="utf-8"><title>hyperlog test</title><script type="module" src="/main.js"></script>',
      );
      return;
    }
    const body = files[path];
    if (body === undefined) {
      response.writeHead(404).end("Not found");
      return;
    }
    response.writeHead(200, { "content-type": "text/javascript; charset=utf-8" });
    response.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...args], timeout: 60_000 });
  } catch (err) {
    server.close();
    throw err;
  }
  return {
    browser,
    origin,
    async open(path = "/", context?: BrowserContext) {
      const page = await (context ?? await browser.newContext()).newPage();
      page.on("pageerror", (err) => console.error(`[page error] ${err.message}`));
      await page.goto(`${origin}${path}`);
      await page.waitForFunction("globalThis.hyperlogReady === true", undefined, { timeout: 60_000 });
      return page;
    },
    async close() {
      await browser.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
