/**
 * Bundles the demo page's module (`worker/demo/page.ts`) for browsers with esbuild: one minified ES module,
 * `demo.js`, which the relay serves as a Workers static asset (`wrangler.jsonc` "assets"; `/` is the worker's HTML,
 * `worker/demo/html.ts`, which loads `/demo.js`). Beside it, `sw.js` (`worker/demo/sw.ts`), the service worker that
 * keeps a copy of the page for reloads while the relay is unreachable. wrangler runs this before `npm start` and `wrangler deploy`
 * (`build.command`); `tests/fixtures/relay-miniflare.ts` calls {@link buildDemo} to serve the same page.
 *
 * Run: `node scripts/build-demo.ts [OUTDIR]` (default `worker/public`); prints the sizes.
 *
 * @module
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

/** The page's module: the entry of the bundle. */
export const DEMO_ENTRY: string = fileURLToPath(new URL("../worker/demo/page.ts", import.meta.url));

/** The page's service worker. */
export const DEMO_SERVICE_WORKER: string = fileURLToPath(new URL("../worker/demo/sw.ts", import.meta.url));

/** Where `npm start` and `wrangler deploy` serve static assets from (`wrangler.jsonc` "assets.directory"). */
export const DEMO_ASSETS: string = fileURLToPath(new URL("../worker/public", import.meta.url));

/** What {@link buildDemo} wrote. */
export interface DemoBuild {
  /** The path of `demo.js`. */
  path: string;
  /** Its size in bytes (minified). */
  bytes: number;
  /** Its size gzipped (level 9), in bytes. */
  gzipped: number;
}

/**
 * How the browser code is bundled (the demo page, and the client whose size `npm run bench` reports): one minified
 * ES2022 module for browsers, kept in memory.
 *
 * @example
 * ```ts ignore
 * import { BROWSER_BUILD } from "./build-demo.ts";
 * const { build } = await import("esbuild");
 * await build({ ...BROWSER_BUILD, entryPoints: ["page.ts"] });
 * ```
 */
export const BROWSER_BUILD = {
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  write: false,
  logLevel: "silent",
} as const;

/**
 * Bundles the demo page's module into `outdir/demo.js` and its service worker into `outdir/sw.js` (creating
 * `outdir`); returns the sizes of `demo.js`.
 *
 * @example
 * ```ts ignore
 * import { buildDemo } from "./build-demo.ts";
 * const { gzipped } = await buildDemo("/tmp/assets");
 * ```
 */
export async function buildDemo(outdir: string = DEMO_ASSETS): Promise<DemoBuild> {
  const { build } = await import("esbuild");
  const result = await build({ ...BROWSER_BUILD, entryPoints: [DEMO_ENTRY] });
  const worker = await build({
    entryPoints: [DEMO_SERVICE_WORKER],
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "es2022",
    minify: true,
    write: false,
    logLevel: "silent",
  });
  const code = result.outputFiles[0]!.contents;
  mkdirSync(outdir, { recursive: true });
  const path = join(outdir, "demo.js");
  writeFileSync(path, code);
  writeFileSync(join(outdir, "sw.js"), worker.outputFiles[0]!.contents);
  return { path, bytes: code.length, gzipped: gzipSync(code, { level: 9 }).length };
}

if (import.meta.main) {
  const { path, bytes, gzipped } = await buildDemo(process.argv[2]);
  console.log(`${path}: ${(bytes / 1024).toFixed(1)} KB minified, ${(gzipped / 1024).toFixed(1)} KB gzipped`);
}
