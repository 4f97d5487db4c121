/**
 * Write-storm benchmark (issue 21): C clients in one room each append 200 small entries as fast as they can, against
 * `hyperlog serve` and, in the same run, a y-websocket server (`@y/websocket-server`, y-leveldb persistence) with Yjs
 * clients (a Y.Array push per entry, one transaction each). Each server runs in its own process; the clients run in
 * this one; bytes are counted on the TCP connections by a proxy in front of each server. The two stacks alternate,
 * repetition by repetition, and each figure is the median.
 *
 * Per repetition and stack: C = small and C = large (each on a fresh server: time until every client holds all
 * entries, server CPU and peak RSS for the large one, bytes on the wire per delivered entry); then a late joiner
 * (time until it holds everything, bytes it received), one entry written offline by it and its resync (bytes both
 * ways on the new connection), and a relay restart after which a new client loads everything.
 *
 * `--quick` (in `npm run bench -- --only storm --quick`) runs C = 5 and 10 with 50 entries each, as a smoke test.
 *
 * @module
 */
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Client, client, entry, until } from "./_storm-clients.ts";
import { type Kind, type ServerProcess, startServer } from "./_storm-servers.ts";
import { type BenchContext, type BenchModule, type Figure, median, ratio } from "./_util.ts";

/** What one repetition of one stack measured. */
interface Run {
  small: number;
  large: number;
  cpu: number;
  rss: number;
  perDelivered: number;
  lateMs: number;
  lateBytes: number;
  resyncBytes: number;
  restartMs: number;
  links: number;
}

/** C clients, each appending `per` entries; seconds until all hold C x per. Leaves them connected. */
async function storm(kind: Kind, server: ServerProcess, count: number, per: number): Promise<{
  seconds: number;
  clients: Client[];
}> {
  const clients = Array.from({ length: count }, () => client(kind, server.url));
  await Promise.all(clients.map((c) => c.ready()));
  const start = performance.now();
  await Promise.all(clients.map(async (c, n) => {
    for (let i = 0; i < per; i++) {
      await c.append(n, i);
      // Back to the event loop between writes, as an app writing on events does: what arrived meanwhile is taken
      // in (without it, each client's writes would be one chain made before anything arrives, and nothing merges).
      await new Promise((resolve) => setImmediate(resolve));
    }
  }));
  await until(() => clients.every((c) => c.held() === count * per), `${count} ${kind} clients to hold all`);
  return { seconds: (performance.now() - start) / 1000, clients };
}

/** A late joiner in a child process (bench/_storm-joiner.ts), driven by messages. */
function joiner(kind: Kind, url: string, total: number, writer: number) {
  const child = fork(fileURLToPath(new URL("./_storm-joiner.ts", import.meta.url)), [
    kind,
    url,
    String(total),
    String(writer),
  ]);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    ask: (message: string, answer: string) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const on = (reply: Record<string, unknown>) => {
          if (reply.type !== answer) return;
          child.off("message", on);
          resolve(reply);
        };
        child.on("message", on);
        child.once("exit", (code) => reject(new Error(`The ${kind} joiner exited (${code})`)));
        child.send(message);
      }),
    close: async () => {
      child.send("close");
      await exited;
    },
  };
}

async function once(kind: Kind, small: number, large: number, per: number, progress: (m: string) => void) {
  const dirs: string[] = [];
  const fresh = () => {
    const dir = mkdtempSync(join(tmpdir(), `storm-${kind}-`));
    dirs.push(dir);
    return dir;
  };
  try {
    let server = await startServer(kind, fresh());
    const first = await storm(kind, server, small, per);
    await Promise.all(first.clients.map((c) => c.close()));
    await server.stop();

    const dir = fresh();
    server = await startServer(kind, dir);
    const cpu0 = server.cpu();
    const bytes0 = server.meter.total();
    const big = await storm(kind, server, large, per);
    const cpu = server.cpu() - cpu0;
    const rss = server.peakRss();
    const perDelivered = (server.meter.total() - bytes0) / (large * (large - 1) * per);
    progress(`  storm ${kind}: C=${small} ${first.seconds.toFixed(2)} s, C=${large} ${big.seconds.toFixed(2)} s`);

    // The late joiner (a process of its own), beside one writer that stays (the others leave).
    const [observer, ...rest] = big.clients;
    await Promise.all(rest.map((c) => c.close()));
    rest.length = 0;
    const total = large * per;
    let mark = server.meter.mark();
    const late = joiner(kind, server.url, total, large);
    const joined = await late.ask("join", "joined");
    const lateBytes = mark().down;

    // One entry written offline, then the resync.
    await late.ask("offline", "left");
    mark = server.meter.mark();
    await late.ask("rejoin", "rejoined");
    await until(() => observer!.held() === total + 1, "the offline entry at the other client");
    const resync = mark();
    await Promise.all([late.close(), observer!.close()]);
    // Give the store a moment to write what it holds before the process is stopped.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await server.stop();

    // A restart, and a new client (a process of its own) loads everything.
    server = await startServer(kind, dir);
    const loader = joiner(kind, server.url, total + 1, large);
    const loaded = await loader.ask("join", "joined");
    await loader.close();
    await server.stop();
    const lateMs = joined.ms as number;
    const restartMs = loaded.ms as number;
    const links = joined.links as number;
    return {
      small: first.seconds,
      large: big.seconds,
      cpu,
      rss,
      perDelivered,
      lateMs,
      lateBytes,
      resyncBytes: resync.down + resync.up,
      restartMs,
      links,
    } satisfies Run;
  } finally {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

async function run(context: BenchContext): Promise<Figure[]> {
  const quick = context.quick === true;
  const [small, large, per] = quick ? [5, 10, 50] : [10, 50, 200];
  const runs: Record<Kind, Run[]> = { hyperlog: [], yjs: [] };
  for (let rep = 0; rep < context.reps; rep++) {
    for (const kind of ["hyperlog", "yjs"] as const) {
      context.progress(`storm: repetition ${rep + 1}, ${kind}`);
      runs[kind].push(await once(kind, small, large, per, context.progress));
    }
  }
  const m = (kind: Kind, pick: (r: Run) => number) => median(runs[kind].map(pick));
  const valueBytes = new TextEncoder().encode(JSON.stringify(entry(large - 1, per - 1))).length;
  const figure = (
    name: string,
    n: number,
    unit: string,
    pick: (r: Run) => number,
    target?: { text: string; met: (ours: number, theirs: number) => boolean },
  ): Figure => {
    const ours = m("hyperlog", pick);
    const theirs = m("yjs", pick);
    return {
      bench: "storm",
      case: name,
      n,
      unit,
      ours,
      hyperlog: theirs,
      ratio: ratio(ours, theirs),
      ...(target === undefined ? {} : { target: target.text, met: target.met(ours, theirs) }),
    };
  };
  const all = large * per;
  return [
    figure(`C=${small}: all hold ${small * per}`, small * per, "s", (r) => r.small),
    figure(`C=${large}: all hold ${all}`, all, "s", (r) => r.large, {
      text: "faster than y-websocket",
      met: (a, b) => a < b,
    }),
    figure(`C=${large}: server CPU`, all, "s", (r) => r.cpu),
    figure(
      `C=${large}: server CPU per delivered entry`,
      large * (large - 1) * per,
      "us",
      (r) => (r.cpu * 1e6) / (large * (large - 1) * per),
    ),
    figure(`C=${large}: server peak RSS`, all, "MB", (r) => r.rss / 1e6),
    figure(`C=${large}: bytes on the wire per delivered entry`, large * (large - 1) * per, "B", (r) => r.perDelivered, {
      text: `<= 3x the value (${3 * valueBytes} B)`,
      met: (a) => a <= 3 * valueBytes,
    }),
    figure(`late joiner after C=${large}: time to hold all`, all, "ms", (r) => r.lateMs, {
      text: "<= 2x Yjs",
      met: (a, b) => a <= 2 * b,
    }),
    figure("late joiner: bytes received", all, "KB", (r) => r.lateBytes / 1000, {
      text: "<= 2x Yjs",
      met: (a, b) => a <= 2 * b,
    }),
    {
      bench: "storm",
      case: `C=${large}: links per entry (mean)`,
      n: all,
      unit: "links",
      ours: m("hyperlog", (r) => r.links),
      hyperlog: null,
      ratio: null,
    },
    figure(`after a restart, a new client loads all ${all + 1}`, all + 1, "ms", (r) => r.restartMs),
    figure("resync after 1 entry written offline", 1, "KB", (r) => r.resyncBytes / 1000, {
      text: "< 8 KB",
      met: (a) => a < 8,
    }),
  ];
}

/** The storm benchmark module. */
export const benchmark: BenchModule = {
  name: "storm",
  title: "Write storm: hyperlog serve beside a y-websocket server with Yjs clients (issue 21)",
  against: "y-websocket",
  notes: [
    "Each server in its own process, the clients in this one; bytes counted on the TCP connections by a proxy",
    "A delivered entry: one entry arriving at one other writer (C x (C - 1) x entries per client)",
    "Server CPU and peak RSS from /proc (Linux); the value of one entry is its JSON",
  ],
  run,
};
