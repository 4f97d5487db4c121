#!/usr/bin/env node
// The `hyperlog` command. In this repository the CLI is TypeScript (cli/cli.ts), which runtimes that run TypeScript
// directly (Node >= 22.18 or 23.6, Deno, Bun) load in-process; an older Node hands over to the Node the repository
// pins for development (the `node` devDependency). An installed package ships the CLI built to JavaScript
// (dist/cli/cli.js), which any Node >= 22.5, Deno or Bun loads.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import module from "node:module";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, "..", "cli", "cli.ts");
const built = join(here, "..", "dist", "cli", "cli.js");
const pinned = join(here, "..", "node_modules", "node", "bin", "node");
const runsTypeScript = typeof globalThis.Deno !== "undefined" || typeof globalThis.Bun !== "undefined" ||
  Boolean(process.features?.typescript);

/**
 * Resolves once what was written to `stream` has left the process (or the stream has failed or closed): writes to
 * a pipe are asynchronous on Node and Bun, and exiting before they are done cuts the output short.
 */
function drained(stream) {
  return new Promise((resolve) => {
    // A stream that has failed (EPIPE, ENOSPC) has nothing more to deliver, and on Deno it never calls back.
    if (failed.has(stream) || stream.destroyed || stream.writableFinished) return resolve();
    const events = stream.writableEnded ? ["finish"] : [];
    const done = () => {
      for (const event of [...events, "error", "close"]) stream.off(event, done);
      resolve();
    };
    for (const event of [...events, "error", "close"]) stream.on(event, done);
    // A write's callback runs once it and every write before it are done.
    if (events.length === 0) {
      try {
        stream.write("", done);
      } catch {
        done();
      }
    }
  });
}

/** The output streams that have failed. */
const failed = new Set();

async function run(file) {
  // Node keeps the compiled (and type-stripped) modules in its cache directory, which halves the start-up of a short
  // command such as get; Deno and Bun have their own caches.
  if (typeof globalThis.Deno === "undefined" && typeof globalThis.Bun === "undefined") module.enableCompileCache?.();
  for (const stream of [process.stdout, process.stderr]) stream.on("error", () => failed.add(stream));
  const { main } = await import(pathToFileURL(file).href);
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  // Exit explicitly once the output is out: an open stdin (sync, dupsh) would otherwise keep some runtimes alive.
  process.exit(code);
}

// `hyperlog serve` and `hyperlog sync` (`kv sync` too) on Node run with a young generation of 8 MB semi-spaces: under
// a steady stream of received nodes V8 grows its default (16 MB each, and 48 MB more resident memory), which was most
// of the relay's RSS growth under a node flood (measured: 58-60 MB per 256 MB flood, 28-31 MB with 8 MB, as fast) and
// ~55 MB of a receiving `sync`'s peak (1 M nodes into SQLite: 216-223 MB instead of 268-287, as fast). A
// --max-semi-space-size given in NODE_OPTIONS or on the command line wins. The process is replaced (same pid).
const receives = process.argv.slice(2).some((arg) => arg === "serve" || arg === "sync");
if (
  typeof globalThis.Deno === "undefined" && typeof globalThis.Bun === "undefined" &&
  receives && typeof process.execve === "function" &&
  ![...process.execArgv, process.env.NODE_OPTIONS ?? ""].some((arg) => arg.includes("--max-semi-space-size"))
) {
  const args = [process.execPath, "--max-semi-space-size=8", ...process.execArgv, ...process.argv.slice(1)];
  process.execve(process.execPath, args, process.env);
}

if (existsSync(source) && runsTypeScript) {
  await run(source);
} else if (existsSync(source) && existsSync(pinned)) {
  const result = spawnSync(pinned, [join(here, "hyperlog.mjs"), ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(result.status ?? 1);
} else if (existsSync(built)) {
  await run(built);
} else {
  process.stderr.write(
    `hyperlog needs a runtime that runs TypeScript (Node >= 22.18, Deno 2 or Bun; this is Node ${process.version}), ` +
      "or the built package: run npm run build\n",
  );
  process.exit(1);
}
