/**
 * The storm benchmark's servers and wire meter: `hyperlog serve` and the y-websocket server each in its own process
 * (started as their own command lines start them), their CPU time and peak RSS read from /proc (Linux), and a TCP
 * proxy in front of each that counts the bytes on every client connection.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect as tcpConnect, createServer, type Server, type Socket } from "node:net";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const NODE = process.execPath;
/** Clock ticks per second of /proc/PID/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS = 100;

/** Which server: this library's relay, or Yjs's. */
export type Kind = "hyperlog" | "yjs";

/** A server process. */
export interface ServerProcess {
  /** The WebSocket base URL of the proxy in front of it. */
  url: string;
  /** Seconds of CPU (user + system) the process has used so far. */
  cpu(): number;
  /** The process's peak resident set size so far, in bytes. */
  peakRss(): number;
  /** The byte meter of the connections through the proxy. */
  meter: Meter;
  /** Stops the process (SIGTERM) and the proxy, and waits for both. */
  stop(): Promise<void>;
}

/** Byte counts of the connections through a proxy. */
export interface Meter {
  /** Bytes both ways on every connection so far. */
  total(): number;
  /** A mark: the bytes to clients and from clients on the connections opened after it. */
  mark(): () => { down: number; up: number };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

function startProxy(target: number): Promise<{ server: Server; port: number; meter: Meter }> {
  const connections: { down: number; up: number }[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const counts = { down: 0, up: 0 };
    connections.push(counts);
    const upstream = tcpConnect(target, "127.0.0.1");
    sockets.add(client).add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.on("data", (chunk: Buffer) => {
      counts.up += chunk.length;
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once("drain", () => client.resume());
      }
    });
    upstream.on("data", (chunk: Buffer) => {
      counts.down += chunk.length;
      if (!client.write(chunk)) {
        upstream.pause();
        client.once("drain", () => upstream.resume());
      }
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on("close", end);
      s.on("error", end);
    }
  });
  const meter: Meter = {
    total: () => connections.reduce((sum, c) => sum + c.down + c.up, 0),
    mark: () => {
      const from = connections.length;
      return () => {
        let down = 0;
        let up = 0;
        for (const c of connections.slice(from)) {
          down += c.down;
          up += c.up;
        }
        return { down, up };
      };
    },
  };
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      const close = server.close.bind(server);
      server.close = (cb) => {
        for (const s of sockets) s.destroy();
        return close(cb);
      };
      resolve({ server, port, meter });
    });
  });
}

function procStat(pid: number): { cpu: number; hwm: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpu = (Number(fields[11]) + Number(fields[12])) / TICKS;
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  return { cpu, hwm };
}

function waitForLine(child: ChildProcess, pattern: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = "";
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (pattern.test(out)) {
        child.stdout!.off("data", onData);
        resolve();
      }
    };
    child.stdout!.on("data", onData);
    child.once("exit", (code) => reject(new Error(`${what} exited (${code}) before it listened: ${out}`)));
  });
}

/**
 * Starts a server of `kind` on a fresh port with its data in `dir` (the same `dir` again is a restart), and a
 * counting proxy in front of it.
 */
export async function startServer(kind: Kind, dir: string): Promise<ServerProcess> {
  const port = await freePort();
  // STORM_CPU_PROF=DIR: each server writes a CPU profile there when it stops (node --cpu-prof).
  const prof = process.env.STORM_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.STORM_CPU_PROF}`] : [];
  const child = kind === "hyperlog"
    ? spawn(NODE, [...prof, `${ROOT}bin/hyperlog.mjs`, "-d", dir, "serve", "--port", String(port)], {
      stdio: ["ignore", "pipe", "inherit"],
    })
    : spawn(NODE, [...prof, `${ROOT}node_modules/@y/websocket-server/src/server.js`], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, HOST: "127.0.0.1", PORT: String(port), YPERSISTENCE: dir },
    });
  await waitForLine(child, kind === "hyperlog" ? /hyperlog relay on/ : /running at/, kind);
  const proxy = await startProxy(port);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    url: `ws://127.0.0.1:${proxy.port}`,
    cpu: () => procStat(child.pid!).cpu,
    peakRss: () => procStat(child.pid!).hwm,
    meter: proxy.meter,
    stop: async () => {
      await new Promise<void>((resolve) => proxy.server.close(() => resolve()));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
