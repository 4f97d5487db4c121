/**
 * The relay against a hostile peer, at the issue's sizes, over real WebSockets: `hyperlog serve` runs in a process of
 * its own (Node), so that its memory (`hyperlog_resident_memory_bytes` from `/metrics`) and CPU (`/proc`, Linux) are
 * its alone; so does the relay worker's workerd under Miniflare (RSS and CPU from `/proc`). The attacker is the
 * bare-TCP WebSocket client of the tests (`tests/_hostile.ts`). Figures:
 *
 * - amplification: the largest reply to a message of <= 2 KB from a reader on a 50 000-node log (target 256 KiB),
 *   and reply bytes per request byte over the deepest reconciliation an attacker can drive;
 * - the relay's RSS growth under a 256 MB node flood (on serve under Node, Deno and Bun and on the Worker, each run
 *   against a relay process of its own, the median of `HOSTILE_FLOOD_RUNS`), a 256 MB RECON flood, and with 30
 *   paused readers on a 10 000 x 2 KB log (targets: 50 MB, 50 MB, 30 MB);
 * - the relay's CPU for 40 concurrent first contacts on a 50 000 x 1 KB log (target < 1 s);
 * - a 40 000-node client against a 1-node relay, in both id orders (it must converge).
 *
 * Smaller versions of each run as tests (`tests/hostile-relay.test.ts`).
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { decodeMessage, encodeMessage, Hyperlog, type ReconEntry, replicateWebSocket } from "../mod.ts";
import { encodeNodesBodies } from "../src/wire.ts";
import { flood, HIGH_ID, hostileHello, type RawSocket, rawSocket, splitAll, turnReply } from "../tests/_hostile.ts";
import { earlyNodeAttacks } from "./_hostile-early.ts";
import { type BenchContext, type BenchModule, type Figure, median, type Runtime } from "./_util.ts";

const TOKEN = "bench-metrics-token";
const MB = 1 << 20;
/** Bytes of each flood. */
const FLOOD = Number(process.env.HOSTILE_FLOOD_MB ?? 256) * MB;
/** Node floods per host, each against a relay process of its own (the figure is their median). */
const FLOOD_RUNS = Number(process.env.HOSTILE_FLOOD_RUNS ?? 3);

/** A relay in a process of its own: `hyperlog serve`, or workerd under Miniflare. */
export interface Relay {
  /** "serve" or "worker". */
  host: string;
  url: string;
  /** The relay process's RSS in bytes. */
  rss(): Promise<number>;
  /** A gauge or counter of `/metrics` (serve only). */
  metric?: (name: string) => Promise<number>;
  /** User + system CPU seconds of the relay process (Linux `/proc`), or NaN elsewhere. */
  cpu(): number;
  stop(): Promise<void>;
}

/** User + system CPU seconds of process `pid` (Linux `/proc`), or NaN. */
function cpuOf(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** The RSS of process `pid` in bytes (Linux `/proc`), or NaN. */
function rssOf(pid: number | undefined): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
    return Number(/(\d+)/.exec(line ?? "")?.[1]) * 1024;
  } catch {
    return NaN;
  }
}

/** The write budget no attack here should reach (the floods are about queues, not rates). */
const OPEN_BUDGET: Record<string, string> = {
  MAX_NODES_PER_SECOND: "10000000",
  MAX_NODES_BURST: "10000000",
  MAX_BYTES_PER_SECOND: "10000000000",
  MAX_BYTES_BURST: "10000000000",
};

/** The relay worker in Miniflare: its workerd process is measured from `/proc`. */
export async function startWorker(): Promise<Relay> {
  const { startRelay } = await import("../tests/fixtures/relay-miniflare.ts");
  const relay = await startRelay({ kv: false, vars: OPEN_BUDGET });
  let pid: number | undefined;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (comm === "workerd" && ppid === process.pid) pid = Number(entry);
    } catch {
      // Gone meanwhile.
    }
  }
  return {
    host: "worker",
    url: relay.url,
    rss: () => Promise.resolve(rssOf(pid)),
    cpu: () => cpuOf(pid),
    stop: () => relay.stop(),
  };
}

/** `hyperlog serve` on `runtime`, in a process of its own (the presence bench uses it too), with `/metrics` behind a token. */
export async function startRelay(dir: string, runtime: Runtime = "node"): Promise<Relay> {
  const bin = fileURLToPath(new URL("../bin/hyperlog.mjs", import.meta.url));
  const local = (name: string) => fileURLToPath(new URL(`../node_modules/.bin/${name}`, import.meta.url));
  const [command, ...flags] = runtime === "deno"
    ? [local("deno"), "run", "-A"]
    : runtime === "bun"
    ? [local("bun")]
    : [process.execPath];
  const child = spawn(command!, [...flags, bin, "-d", dir, "serve", "--port", "0"], {
    stdio: ["ignore", "pipe", "ignore"],
    env: { ...process.env, METRICS_TOKEN: TOKEN, ...OPEN_BUDGET },
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = /hyperlog relay on (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.once("exit", (code) => reject(new Error(`hyperlog serve exited with ${code}`)));
  });
  const metric = async (name: string) => {
    const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    const line = text.split("\n").find((l) => l.startsWith(`hyperlog_${name} `));
    return line === undefined ? NaN : Number(line.split(" ")[1]);
  };
  return {
    host: runtime === "node" ? "serve" : `serve (${runtime})`,
    url,
    metric,
    rss: () => metric("resident_memory_bytes"),
    cpu: () => cpuOf(child.pid),
    async stop() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

async function filled(count: number, size: number, tag: string): Promise<Hyperlog<unknown>> {
  const log = new Hyperlog(undefined, { valueEncoding: "utf-8" });
  const pad = "x".repeat(Math.max(0, size - 16));
  for (let i = 0; i < count; i += 2000) {
    await log.batch(Array.from({ length: Math.min(2000, count - i) }, (_, j) => ({ value: `${tag} ${i + j} ${pad}` })));
  }
  return log as Hyperlog<unknown>;
}

async function push(relay: Relay, name: string, log: Hyperlog<unknown>): Promise<void> {
  const socket = new WebSocket(`${relay.url.replace(/^http/, "ws")}/logs/${name}/ws`);
  try {
    await replicateWebSocket(log, socket).done;
  } finally {
    socket.close();
  }
}

/** The peak of the relay's RSS above `base` while `work` runs (sampled every 50 ms), in MB. */
export async function rssGrowth(relay: Relay, work: () => Promise<unknown>): Promise<number> {
  const base = await relay.rss();
  let peak = base;
  let running = true;
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, await relay.rss());
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  try {
    await work();
    peak = Math.max(peak, await relay.rss());
  } finally {
    running = false;
    await sampler;
  }
  return (peak - base) / MB;
}

async function attackerInReconciliation(relay: Relay, name: string, count: number, id?: string): Promise<RawSocket> {
  const ws = await rawSocket(`${relay.url}/logs/${name}/ws`);
  await ws.send(hostileHello({ count: count + 1, ...(id === undefined ? {} : { id }) }));
  await ws.next();
  await ws.send(encodeMessage({ type: "check", checkpoint: null }));
  await ws.next();
  return ws;
}

/** The deepest reconciliation, cut in messages of <= 2 KB: the largest reply per message and the worst ratio. */
async function amplification(relay: Relay, name: string, count: number) {
  const ws = await attackerInReconciliation(relay, name, count);
  let open = [""];
  let worstRatio = 0;
  let worstReply = 0;
  let sent = 0;
  let back = 0;
  for (let turn = 0; open.length > 0 && turn < 70; turn++) {
    const entries = splitAll(open, turn);
    open = [];
    let turnSent = 0;
    let messages = 0;
    for (let i = 0; i < entries.length; i += 60) {
      const request = encodeMessage({
        type: "recon",
        end: i + 60 >= entries.length,
        entries: entries.slice(i, i + 60),
      });
      turnSent += request.length;
      messages++;
      await ws.send(request);
    }
    const reply = await turnReply(() => ws.next());
    for (const e of reply.entries) if (e.kind === "fp") open.push(e.prefix);
    worstRatio = Math.max(worstRatio, reply.bytes / turnSent);
    worstReply = Math.max(worstReply, reply.bytes / messages);
    sent += turnSent;
    back += reply.bytes;
  }
  ws.destroy();
  return { worstRatio, worstReply, sent, back };
}

/** One node flood against a relay just started: its RSS growth (MB), the bytes sent, whether it refused. */
async function nodeFlood(relay: Relay): Promise<{ growth: number; sent: number; refused: boolean; paused: number }> {
  await push(relay, "flood", await filled(10, 16, "flood"));
  const other = await filled(200, 1000, "other");
  const bodies = encodeNodesBodies(await other.storage.read({ since: 0, until: 200, limit: 200, reverse: false }), 1 << 16);
  const pausesBefore = await relay.metric?.("receive_pauses_total") ?? 0;
  let sent = 0;
  const growth = await rssGrowth(relay, async () => {
    const ws = await rawSocket(`${relay.url}/logs/flood/ws`);
    await ws.send(hostileHello({ count: 0, length: 0, xor: new Uint8Array(16), id: HIGH_ID }));
    sent = await flood(ws, (i) => bodies[i % bodies.length]!, FLOOD);
    ws.destroy();
  });
  const paused = (await relay.metric?.("receive_pauses_total") ?? 0) - pausesBefore;
  return { growth, sent, refused: sent < FLOOD, paused };
}

/**
 * The node flood on every host, {@link FLOOD_RUNS} times each, each against a relay process of its own (so that no
 * run inherits the heap an earlier one grew): the median RSS growth, and every run's, with what the relay did.
 */
async function nodeFloods(context: BenchContext, figures: Figure[], dir: string): Promise<void> {
  const hosts: [string, () => Promise<Relay>][] = [
    ["serve", () => startRelay(mkdtempSync(join(dir, "node-")), "node")],
    ["serve (deno)", () => startRelay(mkdtempSync(join(dir, "deno-")), "deno")],
    ["serve (bun)", () => startRelay(mkdtempSync(join(dir, "bun-")), "bun")],
    ["worker", () => startWorker()],
  ];
  for (const [host, start] of hosts) {
    const runs: Awaited<ReturnType<typeof nodeFlood>>[] = [];
    for (let i = 0; i < FLOOD_RUNS; i++) {
      context.progress(`hostile (${host}): node flood (${FLOOD / MB} MB) [${i + 1}/${FLOOD_RUNS}]`);
      const relay = await start();
      try {
        runs.push(await nodeFlood(relay));
      } finally {
        await relay.stop();
      }
    }
    const growth = median(runs.map((r) => r.growth));
    const what = runs.map((r) =>
      `${r.growth.toFixed(0)} MB${
        r.refused ? ` (refused after ${Math.round(r.sent / MB)} MB)` : r.paused > 0 ? ` (read paused ${r.paused}x)` : ""
      }`
    ).join(", ");
    figures.push({
      bench: "node flood",
      case: `${host}: relay RSS growth, median of ${FLOOD_RUNS} (${what})`,
      n: FLOOD / MB,
      unit: "MB",
      ours: growth,
      hyperlog: null,
      ratio: null,
      target: "<= 50 MB",
      met: growth <= 50,
    });
  }
}

async function run(context: BenchContext): Promise<Figure[]> {
  const figures: Figure[] = [];
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-bench-hostile-"));
  try {
    await nodeFloods(context, figures, dir);
    if (process.env.HOSTILE_ONLY_FLOOD === "1") return figures;
    const serve = await startRelay(dir);
    try {
      await attacks(serve, context, figures, 50_000);
    } finally {
      await serve.stop();
    }
    // The Worker: a Durable Object holds 128 MB; its log is filled through one socket, so 20 000 nodes (the size
    // the issue measured it at) keep the run short.
    const worker = await startWorker();
    try {
      await attacks(worker, context, figures, 20_000);
    } finally {
      await worker.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return figures;
}

/** Every attack against `relay`, with logs of `big` nodes where the issue says 50 000. */
async function attacks(relay: Relay, context: BenchContext, figures: Figure[], big: number): Promise<void> {
  const figure = (f: Omit<Figure, "hyperlog" | "ratio">) =>
    figures.push({ hyperlog: null, ratio: null, ...f, case: `${relay.host}: ${f.case}` });
  {
    context.progress(`hostile (${relay.host}): a ${big}-node log on the relay`);
    await push(relay, "amp", await filled(big, 16, "amp"));
    context.progress(`hostile (${relay.host}): amplification`);
    const amp = await amplification(relay, "amp", big);
    figure({
      bench: "amplification",
      case: `largest reply to a <= 2 KB message (deepest split, ${big} nodes)`,
      n: big,
      unit: "KiB",
      ours: amp.worstReply / 1024,
      target: "<= 256 KiB",
      met: amp.worstReply <= 256 * 1024,
    });
    figure({
      bench: "amplification",
      case: "reply bytes per request byte (worst turn)",
      n: big,
      unit: "x",
      ours: amp.worstRatio,
      target: "<= 128",
      met: amp.worstRatio <= 128,
    });

    context.progress(`hostile (${relay.host}): RECON flood (${FLOOD / MB} MB)`);
    let reconSent = 0;
    const reconGrowth = await rssGrowth(relay, async () => {
      const ws = await attackerInReconciliation(relay, "amp", big);
      reconSent = await flood(ws, (i) =>
        encodeMessage({
          type: "recon",
          end: false,
          entries: Array.from({ length: 60 }, (_, j) => ({
            kind: "fp" as const,
            prefix: ((i * 60 + j) % 65536).toString(16).padStart(4, "0"),
            fp: { count: 5, xor: new Uint8Array(16).fill(i & 255) },
          })),
        }), FLOOD);
      ws.destroy();
    });
    figure({
      bench: "RECON flood",
      case: `relay RSS growth (${Math.round(reconSent / 1024)} KiB sent before the relay refused)`,
      n: FLOOD / MB,
      unit: "MB",
      ours: reconGrowth,
      target: "<= 50 MB",
      met: reconGrowth <= 50,
    });

    context.progress(`hostile (${relay.host}): early nodes, 200 refused attackers and a ${FLOOD / MB} MB flood`);
    figure(await earlyNodeAttacks(relay, "amp", big, 200, FLOOD, (work) => rssGrowth(relay, work)));

    context.progress(`hostile (${relay.host}): 30 paused readers on a 10 000 x 2 KB log`);
    await push(relay, "paused", await filled(10_000, 2048, "paused"));
    const readers: RawSocket[] = [];
    let buffered = 0;
    let sentOut = 0;
    const outBefore = await relay.metric?.("bytes_out_total") ?? 0;
    const pausedGrowth = await rssGrowth(relay, async () => {
      for (let i = 0; i < 30; i++) {
        const ws = await rawSocket(`${relay.url}/logs/paused/ws`);
        await ws.send(
          hostileHello({ count: 0, length: 0, xor: new Uint8Array(16), id: HIGH_ID, window: 1 << 30, live: true }),
        );
        ws.pause();
        readers.push(ws);
      }
      if (relay.metric !== undefined) {
        const end = Date.now() + 30_000;
        while ((await relay.metric("sockets_waiting")) < 30 && Date.now() < end) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        buffered = await relay.metric("buffered_bytes");
        sentOut = (await relay.metric("bytes_out_total")) - outBefore;
      } else {
        // The Worker tells nothing of its sockets: give its sessions a few seconds to send what they will.
        await new Promise((resolve) => setTimeout(resolve, 5000));
      }
    });
    for (const ws of readers) ws.destroy();
    figure({
      bench: "paused readers",
      case: relay.metric === undefined
        ? "relay RSS growth, 30 readers (5 s after they stopped reading)"
        : `relay RSS growth, 30 readers (${(sentOut / MB).toFixed(1)} MB sent to them, ${
          (buffered / MB).toFixed(1)
        } MB buffered in the relay)`,
      n: 30,
      unit: "MB",
      ours: pausedGrowth,
      target: "<= 30 MB",
      met: pausedGrowth <= 30,
    });

    context.progress(`hostile (${relay.host}): 40 concurrent first contacts on a ${big} x 1 KB log`);
    await push(relay, "contacts", await filled(big, 1024, "contacts"));
    const cpuBefore = relay.cpu();
    await Promise.all(Array.from({ length: 40 }, async (_, i) => {
      const id = `0${i.toString(16).padStart(2, "0")}${"1".repeat(29)}`;
      const ws = await attackerInReconciliation(relay, "contacts", big, id);
      // The first turn of a reconciliation: what a new client's first contact costs the relay.
      await ws.send(encodeMessage({
        type: "recon",
        end: true,
        entries: [..."0123456789abcdef"].map((d) => ({
          kind: "fp" as const,
          prefix: d,
          fp: { count: 3000, xor: new Uint8Array(16).fill(i + 1) },
        })),
      }));
      await turnReply(() => ws.next());
      ws.destroy();
    }));
    const cpu = relay.cpu() - cpuBefore;
    figure({
      bench: "first contacts",
      case: "relay CPU for 40 concurrent first contacts (HELLO, CHECK, a reconciliation turn)",
      n: big,
      unit: "s",
      ours: cpu,
      target: "< 1 s",
      met: cpu < 1,
    });

    for (const order of ["client first", "relay first"] as const) {
      context.progress(`hostile (${relay.host}): a 40 000-node client against a 1-node relay (${order} in id order)`);
      const name = `one-${order.split(" ")[0]}`;
      await push(relay, name, await filled(1, 16, name));
      const probe = await rawSocket(`${relay.url}/logs/${name}/ws`);
      const hello = decodeMessage(await probe.next());
      probe.destroy();
      const relayId = hello.type === "hello" ? hello.hello.id : "";
      let client: Hyperlog<unknown>;
      do {
        client = new Hyperlog();
        await client.ready();
      } while ((client.id < relayId) !== (order === "client first"));
      for (let i = 0; i < 40_000; i += 2000) {
        await client.batch(Array.from({ length: 2000 }, (_, j) => ({ value: `c ${i + j}` })));
      }
      const start = performance.now();
      let ok = 1;
      try {
        await push(relay, name, client);
      } catch {
        ok = 0;
      }
      figure({
        bench: "40 000 vs 1",
        case: `sync time, ${order} in id order${ok ? "" : " (FAILED)"}`,
        n: 40_001,
        unit: "ms",
        ours: performance.now() - start,
        target: "converges",
        met: ok === 1 && client.length === 40_001,
      });
    }
  }
}

/** The benchmark module for `bench/run.ts`. */
export const benchmark: BenchModule = {
  name: "hostile",
  title:
    "The relay against a hostile peer over WebSockets: hyperlog serve (its own Node process), the Worker (workerd)",
  notes: [
    "RSS growth: the peak of hyperlog_resident_memory_bytes (sampled every 50 ms) above its value before the attack",
    "CPU: user + system seconds of the relay process from /proc/PID/stat (Linux); workerd's RSS from /proc/PID/status",
    "the Worker's logs hold 20 000 nodes where serve's hold 50 000 (each is filled through one socket)",
    "node flood: the same 200 nodes again and again in 64 KiB NODES messages, never waiting for CREDIT (n: MB it " +
    "would send), against a relay process of its own each run (HOSTILE_FLOOD_RUNS, default 3; HOSTILE_ONLY_FLOOD=1 " +
    "runs only these); serve on Node stops reading the socket while RECEIVE_BUFFER_BYTES are not yet handled, Deno " +
    "and Bun cannot pause a server socket and end the session past the driver's bound (window + 2 frames); the log " +
    "itself grows by the 200 nodes (0.2 MB)",
    "RECON flood: distinct RECON messages out of turn",
    "early nodes: 200 attackers one after another lead a reconciliation and send 50 nodes whose links the relay " +
    "lacks with their turn (each refused, 4008), then one floods 200 valid 1 KB nodes again and again in its " +
    "reconciliation, never waiting for CREDIT (bench/_hostile-early.ts)",
    "the amplification attacker leads the reconciliation and splits every range the relay names, 60 entries a message",
  ],
  run,
};
