/**
 * The V8 flags `bin/hyperlog.mjs` gives Node for the commands that receive streams of nodes (`sync`, `kv sync`,
 * `serve`): 8 MB semi-spaces, unless NODE_OPTIONS or the command line names a size. Read from the running process's
 * command line (Linux's /proc), once the command has sent its HELLO (the flag is set by replacing the process first).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../bin/hyperlog.mjs", import.meta.url));
/** The Node the repository pins (the flag is Node's; Deno and Bun run the CLI without it). */
const NODE = fileURLToPath(new URL("../node_modules/node/bin/node", import.meta.url));
const linux = existsSync("/proc/self/cmdline");

/** The command line of `hyperlog ARGS` once it has written its first bytes (its HELLO), then the process ended. */
async function commandLineOf(args: string[], env: Record<string, string> = {}): Promise<string[]> {
  const child = spawn(NODE, [BIN, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, NODE_OPTIONS: "", ...env },
  });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once("data", () => resolve());
      child.once("exit", (code) => reject(new Error(`hyperlog ${args.join(" ")} exited with ${code} first`)));
    });
    return readFileSync(`/proc/${child.pid}/cmdline`, "utf8").split("\0").filter((arg) => arg !== "");
  } finally {
    const gone = new Promise((resolve) => child.once("close", resolve));
    child.kill();
    await gone;
  }
}

describe("the V8 flags of the CLI's receiving commands (Node)", { skip: !linux && "needs /proc" }, () => {
  it("sync and kv sync run with 8 MB semi-spaces; NODE_OPTIONS' own size wins", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hyperlog-v8-flags-"));
    try {
      const sync = await commandLineOf(["sync", "-d", join(dir, "a")]);
      assert.ok(sync.includes("--max-semi-space-size=8"), sync.join(" "));
      assert.ok(sync.includes(BIN), "the same command, with the flag first");
      const kv = await commandLineOf(["-d", join(dir, "b"), "kv", "sync"]);
      assert.ok(kv.includes("--max-semi-space-size=8"), kv.join(" "));
      const own = await commandLineOf(["sync", "-d", join(dir, "c")], { NODE_OPTIONS: "--max-semi-space-size=4" });
      assert.ok(!own.some((arg) => arg.startsWith("--max-semi-space-size")), own.join(" "));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
