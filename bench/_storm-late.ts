/**
 * The storm benchmark's late joiner alone, for profiling (not part of `npm run bench`): builds the C=50 storm log
 * once in DIR (50 writers x 200 entries against `hyperlog serve`, kept for the next runs), then starts the relay on
 * it, connects one client that stays, and runs N late joiners, each in a process of its own as the benchmark runs them, one after the other, and
 * prints each one's milliseconds and the bytes it received.
 *
 * Usage: node bench/_storm-late.ts DIR [N] [hyperlog|yjs]
 * `STORM_CPU_PROF=DIR2` writes CPU profiles of the relay and of each joiner there.
 *
 * @module
 */
import { fork } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { client, until } from "./_storm-clients.ts";
import { type Kind, startServer } from "./_storm-servers.ts";

const [dir, count = "5", kind = "hyperlog"] = process.argv.slice(2) as [string, string?, Kind?];
if (dir === undefined) throw new Error("Usage: node bench/_storm-late.ts DIR [N] [hyperlog|yjs]");
const WRITERS = 50;
const PER = 200;
const TOTAL = WRITERS * PER;

if (!existsSync(`${dir}/.built`)) {
  mkdirSync(dir, { recursive: true });
  const server = await startServer(kind, dir);
  const clients = Array.from({ length: WRITERS }, () => client(kind, server.url));
  await Promise.all(clients.map((c) => c.ready()));
  const start = performance.now();
  await Promise.all(clients.map(async (c, n) => {
    for (let i = 0; i < PER; i++) {
      await c.append(n, i);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }));
  await until(() => clients.every((c) => c.held() === TOTAL), "the writers");
  console.log(
    `storm built in ${((performance.now() - start) / 1000).toFixed(1)} s, server CPU ${server.cpu().toFixed(2)} s, ` +
      `peak RSS ${(server.peakRss() / 1e6).toFixed(0)} MB, ${server.meter.total()} bytes on the wire`,
  );
  await Promise.all(clients.map((c) => c.close()));
  await new Promise((resolve) => setTimeout(resolve, 500));
  await server.stop();
  mkdirSync(`${dir}/.built`);
}

const server = await startServer(kind, dir);
// One client that stays, as the benchmark's observer does (a relay keeps what it framed while its log has sockets).
const observer = client(kind, server.url);
await until(() => observer.held() >= TOTAL, "the observer");
const joinerPath = fileURLToPath(new URL("./_storm-joiner.ts", import.meta.url));
const prof = process.env.STORM_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.STORM_CPU_PROF}`] : [];
for (let n = 0; n < Number(count); n++) {
  const mark = server.meter.mark();
  const child = fork(joinerPath, [kind, server.url, String(TOTAL), String(WRITERS)], { execArgv: prof });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const joined = await new Promise<Record<string, unknown>>((resolve) => {
    child.on("message", (m: Record<string, unknown>) => m.type === "joined" && resolve(m));
    child.send("join");
  });
  // STORM_LATE_COLD=1: the cold join only (for a profile of it).
  const warm = process.env.STORM_LATE_COLD ? { ms: NaN } : await new Promise<Record<string, unknown>>((resolve) => {
    child.on("message", (m: Record<string, unknown>) => m.type === "joined-warm" && resolve(m));
    child.send("join-warm");
  });
  child.send("close");
  await exited;
  console.log(
    `joiner ${n + 1}: ${(joined.ms as number).toFixed(0)} ms cold, ${
      (warm.ms as number).toFixed(0)
    } ms warm, ${mark().down} bytes down (both), relay CPU so far ${server.cpu().toFixed(2)} s`,
  );
}
await observer.close();
await server.stop();
