/**
 * Measures `hyperlog serve`'s bounds on this runtime (the issue 13 targets), against 127.0.0.1 only, and prints
 * the figures: descriptors after 5 000 reads of unknown logs; the most descriptors and open logs while 2 000 logs
 * are written with `MAX_OPEN_LOGS` 100; 3 000 idle sockets closed by the HELLO deadline, with 500 more refused by
 * `MAX_SOCKETS`; how long a slowloris connection (a request head that never ends) is held.
 *
 * Usage: node scripts/relay-limits.ts [--logs 2000 (0: skip)] [--sockets 3000]   (or deno run -A / bun)
 *
 * @module
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { Hyperlog, replicateWebSocket } from "../mod.ts";
import { setEventSink } from "../worker/events.ts";
import { serve, type ServeSettings } from "../worker/serve.ts";
import { sendRaw } from "../tests/_http-fuzz.ts";

const { values } = parseArgs({
  options: { logs: { type: "string", default: "2000" }, sockets: { type: "string", default: "3000" } },
});
const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const fds = () => readdirSync("/proc/self/fd").length;
const restore = setEventSink(() => {});

async function withRelay<T>(settings: ServeSettings, run: (url: string, port: number) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-limits-"));
  const server = await serve({ dir, port: 0, settings });
  try {
    return await run(server.url, server.port);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function unknownReads(): Promise<void> {
  await withRelay({}, async (_url, port) => {
    const get = (path: string) => sendRaw(port, `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    await get("/health");
    const start = fds();
    let notFound = 0;
    for (let i = 0; i < 5000; i += 100) {
      const statuses = await Promise.all(Array.from({ length: 100 }, (_, j) => get(`/logs/unknown-${i + j}`)));
      notFound += statuses.filter((s) => s === "404").length;
    }
    const end = Date.now() + 10_000;
    while (fds() > start && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 50));
    console.log(`${runtime}: 5 000 reads of unknown logs: ${notFound} 404s; descriptors ${start} -> ${fds()}`);
  });
}

async function writtenLogs(count: number): Promise<void> {
  await withRelay({ MAX_OPEN_LOGS: "100" }, async (url) => {
    const start = fds();
    let most = start;
    const started = performance.now();
    for (let i = 0; i < count; i += 20) {
      await Promise.all(Array.from({ length: Math.min(20, count - i) }, async (_, j) => {
        const log = new Hyperlog();
        await log.append(`log ${i + j}`);
        const socket = new WebSocket(`${url.replace(/^http/, "ws")}/logs/written-${i + j}/ws`, ["hyperlog"]);
        const closed = new Promise((resolve) => socket.addEventListener("close", resolve));
        await replicateWebSocket(log, socket, { live: false }).done;
        await closed;
      }));
      most = Math.max(most, fds());
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `${runtime}: ${count} logs written with MAX_OPEN_LOGS 100 in ${seconds.toFixed(1)} s: ` +
        `descriptors ${start} at start, at most ${most} (${most - start} more)`,
    );
  });
}

async function idleSockets(count: number): Promise<void> {
  const refused = 500;
  await withRelay(
    { HELLO_TIMEOUT_MS: "30000", MAX_SOCKETS: String(count), MAX_SOCKETS_PER_LOG: "0" },
    async (url) => {
      const codes = new Map<number, number>();
      const started = performance.now();
      const sockets: Promise<void>[] = [];
      for (let i = 0; i < count + refused; i++) {
        const socket = new WebSocket(`${url.replace(/^http/, "ws")}/logs/idle-${i % 50}/ws`, ["hyperlog"]);
        sockets.push(
          new Promise((resolve) =>
            socket.addEventListener("close", (event) => {
              codes.set(event.code, (codes.get(event.code) ?? 0) + 1);
              resolve();
            })
          ),
        );
        if (i % 200 === 199) await new Promise((resolve) => setTimeout(resolve, 0));
      }
      await Promise.all(sockets);
      const seconds = (performance.now() - started) / 1000;
      const line = [...codes].sort().map(([code, n]) => `${code}: ${n}`).join(", ");
      console.log(
        `${runtime}: ${count + refused} idle sockets (MAX_SOCKETS ${count}, HELLO_TIMEOUT_MS 30000): all closed in ` +
          `${seconds.toFixed(1)} s; close codes ${line}`,
      );
    },
  );
}

async function slowloris(): Promise<void> {
  await withRelay({}, async (_url, port) => {
    const started = performance.now();
    await new Promise<void>((resolve) => {
      const socket = tcpConnect({ port, host: "127.0.0.1" }, () => socket.write("GET /health HTTP/1.1\r\nHost: x\r\n"));
      const timer = setInterval(() => socket.write("X-A: b\r\n"), 1000);
      socket.on("data", () => {});
      socket.on("error", () => {});
      socket.on("close", () => {
        clearInterval(timer);
        resolve();
      });
      setTimeout(() => socket.destroy(), 120_000);
    });
    console.log(
      `${runtime}: a request head sent one header a second is cut after ${
        ((performance.now() - started) / 1000).toFixed(1)
      } s`,
    );
  });
}

await unknownReads();
if (Number(values.logs) > 0) await writtenLogs(Number(values.logs));
await idleSockets(Number(values.sockets));
await slowloris();
restore();
process.exit(0);
