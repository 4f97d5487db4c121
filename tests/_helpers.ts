/**
 * Helpers shared by the tests.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

/**
 * A seeded pseudo-random generator (mulberry32): the same seed gives the same sequence, so a failing property test
 * can be replayed from the seed it prints.
 *
 * @example
 * ```ts
 * import { seeded } from "./_helpers.ts";
 * console.assert(seeded(1)() === seeded(1)());
 * ```
 */
export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The runtime running the tests.
 *
 * @example
 * ```ts
 * import { runtime } from "./_helpers.ts";
 * console.assert(["node", "deno", "bun"].includes(runtime));
 * ```
 */
export const runtime: "node" | "deno" | "bun" = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";

/**
 * Registers a suite that only Node can host (it drives child processes, npm or Miniflare from Node). On Deno and Bun
 * it registers one skipped test that says why, and prints the reason, so a skip is never silent.
 *
 * @example
 * ```ts ignore
 * import { nodeOnly } from "./_helpers.ts";
 * nodeOnly("the crash test", "it kills child processes of the project's Node", () => {
 *   it("survives", () => {});
 * });
 * ```
 */
export function nodeOnly(title: string, why: string, suite: () => void): void {
  if (runtime === "node") {
    describe(title, suite);
    return;
  }
  const reason = `${why}; it runs under Node only (skipped on ${runtime})`;
  console.log(`Skipping: ${reason}`);
  describe(title, () => {
    it("runs under Node only", { skip: reason }, () => {});
  });
}

/**
 * Registers a suite that only Deno can host (Deno KV: `Deno.openKv`, with `--unstable-kv`). On Node and Bun it
 * registers one skipped test that says why, and prints the reason, so a skip is never silent.
 *
 * @example
 * ```ts ignore
 * import { denoOnly } from "./_helpers.ts";
 * denoOnly("DenoKvStorage", "it needs Deno.openKv", () => {
 *   it("opens", () => {});
 * });
 * ```
 */
export function denoOnly(title: string, why: string, suite: () => void): void {
  if (runtime === "deno") {
    describe(title, suite);
    return;
  }
  const reason = `${why}; it runs under Deno only (skipped on ${runtime})`;
  console.log(`Skipping: ${reason}`);
  describe(title, () => {
    it("runs under Deno only", { skip: reason }, () => {});
  });
}

/**
 * Starts a Deno server fixture (it prints `PORT <n>` once listening), whichever runtime runs the test; resolves with
 * its port and process. Deno serves the WebSocket fixtures because it has a standard server-side WebSocket.
 *
 * @example
 * ```ts ignore
 * import { startDenoFixture } from "./_helpers.ts";
 * const { port, child } = await startDenoFixture(new URL("./fixtures/ws-bridge.ts", import.meta.url));
 * child.kill();
 * ```
 */
export async function startDenoFixture(fixture: URL): Promise<{ port: number; child: ChildProcess }> {
  const deno = fileURLToPath(new URL("../node_modules/.bin/deno", import.meta.url));
  const child = spawn(deno, ["run", "-A", fileURLToPath(fixture)], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Uint8Array) => {
      out += new TextDecoder().decode(d);
      const match = /PORT (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.on("exit", (code) => reject(new Error(`The fixture ${fixture.pathname} exited with ${code}`)));
  });
  return { port, child };
}
