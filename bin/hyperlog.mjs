#!/usr/bin/env node
// The `hyperlog` command. The CLI is TypeScript (src/cli.ts); runtimes that run TypeScript directly (Node >= 22.18
// or 23.6, Deno, Bun) load it in-process. An older Node hands over to the Node this package pins for development
// (the `node` devDependency), if it is installed, or says what to do.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, "..", "src", "cli.ts");
const runsTypeScript = typeof globalThis.Deno !== "undefined" || typeof globalThis.Bun !== "undefined" ||
  Boolean(process.features?.typescript);

if (runsTypeScript) {
  const { main } = await import(pathToFileURL(cli).href);
  // Exit explicitly: an open stdin (sync, dupsh) would otherwise keep some runtimes alive. Output to pipes and
  // files is written synchronously, and sync waits for its output to drain before main returns.
  process.exit(await main(process.argv.slice(2)));
} else {
  const pinned = join(here, "..", "node_modules", "node", "bin", "node");
  if (!existsSync(pinned)) {
    process.stderr.write(`hyperlog needs a runtime that runs TypeScript: Node >= 22.18, Deno 2 or Bun (this is Node ${process.version})\n`);
    process.exit(1);
  }
  const result = spawnSync(pinned, [join(here, "hyperlog.mjs"), ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(result.status ?? 1);
}
