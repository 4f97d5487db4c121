/**
 * Peak RSS of a large replication between two processes, each with a SqliteStorage file log, connected by their
 * stdin and stdout the way `hyperlog dupsh` connects two `hyperlog sync`s: A's stdout into B's stdin and B's stdout
 * into A's stdin. The sender's log is built once per run by its own child and reused; every repetition syncs it
 * into a new, empty file.
 *
 * Run just this part (no in-memory cases, no hyperlog 4): `node bench/_replicate-rss.ts [--n 1000000] [--reps 3]`;
 * it prints each repetition and the medians. Each side runs with the V8 flags of `hyperlog sync` on Node (8 MB
 * semi-spaces, see bin/hyperlog.mjs); `HYPERLOG_BENCH_V8_DEFAULTS=1` runs them with V8's defaults.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Hyperlog } from "../mod.ts";
import type { BatchDoc } from "../src/log.ts";
import { openSqlite } from "../storage/sqlite-open.ts";
import type { BenchValue } from "./_impls.ts";
import { BATCH, CHAIN, chainValue } from "./_replicate-workload.ts";
import { median, peakRssMb, runChild, secondsSince } from "./_util.ts";

/** What one side of the sync reports. */
export interface SideResult {
  /** From `replicate()` until `done`. */
  seconds: number;
  /** `process.resourceUsage().maxRSS` at the end, in MB. */
  rss: number;
  /** CPU seconds (user + system) of the process from `replicate()` until `done` (wall time depends on the load). */
  cpu: number;
  /** Of `cpu`, the seconds in the kernel (writing the files, the pipes). */
  system: number;
  nodesSent: number;
  nodesReceived: number;
  /** The largest V8 heap in use and array-buffer bytes seen (sampled every 100 ms), in MB: where a peak comes from. */
  heap?: number;
  buffers?: number;
}

/** One repetition: both sides, and the parent's wall time from spawning them until both exited. */
export interface RssSample {
  sender: SideResult;
  receiver: SideResult;
  wallSeconds: number;
}

/** Child: builds `n` nodes (chains of {@link CHAIN}) into a new SQLite file with `batch` in chunks of 1000. */
export async function buildSqlite(file: string, n: number): Promise<{ seconds: number; rss: number }> {
  const log = new Hyperlog<BenchValue>(await openSqlite(file), { valueEncoding: "json" });
  await log.ready();
  const start = performance.now();
  for (let i = 0; i < n; i += BATCH) {
    const docs: BatchDoc<BenchValue>[] = [];
    for (let j = i; j < Math.min(i + BATCH, n); j++) {
      docs.push({
        value: chainValue(Math.floor(j / CHAIN), j % CHAIN),
        links: j % CHAIN === 0 ? null : [docs.length - 1],
      });
    }
    await log.batch(docs);
  }
  const seconds = secondsSince(start);
  await log.close();
  return { seconds, rss: peakRssMb() };
}

/** Child: replicates the log in `file` over stdin/stdout, then writes its {@link SideResult} to `result`. */
export async function syncSide(file: string, result: string): Promise<void> {
  const log = new Hyperlog(await openSqlite(file), { valueEncoding: "json" });
  await log.ready();
  const start = performance.now();
  const cpu = process.cpuUsage();
  let heap = 0;
  let buffers = 0;
  const sample = setInterval(() => {
    const usage = process.memoryUsage();
    heap = Math.max(heap, usage.heapUsed / 1048576);
    buffers = Math.max(buffers, usage.arrayBuffers / 1048576);
  }, 100);
  const session = log.replicate();
  const input = Readable.toWeb(process.stdin) as ReadableStream<Uint8Array>;
  const output = Writable.toWeb(process.stdout) as WritableStream<Uint8Array>;
  const pipes = Promise.allSettled([input.pipeTo(session.writable), session.readable.pipeTo(output)]);
  const stats = await session.done;
  const seconds = secondsSince(start);
  const used = process.cpuUsage(cpu);
  clearInterval(sample);
  await log.close();
  const side: SideResult = {
    seconds,
    rss: peakRssMb(),
    cpu: (used.user + used.system) / 1e6,
    system: used.system / 1e6,
    nodesSent: stats.nodesSent,
    nodesReceived: stats.nodesReceived,
    heap: Math.round(heap),
    buffers: Math.round(buffers),
  };
  writeFileSync(result, JSON.stringify(side));
  await Promise.race([pipes, new Promise((resolve) => setTimeout(resolve, 1000))]);
  process.exit(0);
}

/**
 * The V8 flags of each side: those `hyperlog sync` runs with on Node (bin/hyperlog.mjs: 8 MB semi-spaces), unless
 * NODE_OPTIONS names a semi-space size or HYPERLOG_BENCH_V8_DEFAULTS=1 asks for V8's own (16 MB).
 */
const SIDE_FLAGS = process.env.HYPERLOG_BENCH_V8_DEFAULTS === "1" ||
    (process.env.NODE_OPTIONS ?? "").includes("--max-semi-space-size")
  ? []
  : ["--max-semi-space-size=8"];

/**
 * Spawns `replicate.ts --child rss-side` for `file`; resolves when it exits cleanly. With `profile`, the child
 * writes a V8 CPU profile into that directory. `peer`, the other side already spawned, gives this one its pipes:
 * this side reads the peer's stdout and writes the peer's stdin, as `hyperlog dupsh` wires its two commands, so
 * the bytes go from one child to the other without passing through this process.
 */
function spawnSide(
  self: URL,
  file: string,
  result: string,
  profile?: string,
  peer?: ChildProcess,
) {
  const child = spawn(process.execPath, [
    ...SIDE_FLAGS,
    ...(profile === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", profile]),
    fileURLToPath(self),
    "--child",
    "rss-side",
    "--file",
    file,
    "--result",
    result,
  ], {
    stdio: peer === undefined ? ["pipe", "pipe", "inherit"] : [peer.stdout!, peer.stdin!, "inherit"],
  });
  if (peer !== undefined) {
    // The children hold the pipes' ends now.
    peer.stdout!.destroy();
    peer.stdin!.destroy();
  }
  const exited = new Promise<void>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`The sync child for ${file} failed (${signal ?? `exit code ${code}`})`));
    });
  });
  return { child, exited };
}

/** Options of {@link measureRss}. */
export interface RssOptions {
  /** A sender file to reuse if it exists (and to build and keep if not), instead of one built per run. */
  sender?: string | undefined;
  /** A directory for a V8 CPU profile of each receiver (`--cpu-prof`). */
  profile?: string | undefined;
  /** A directory for a V8 CPU profile of each sender (`--cpu-prof`). */
  profileSender?: string | undefined;
}

/**
 * Builds an `n`-node sender log in a temporary directory (one child), then `reps` times syncs it into a new file
 * with two wired children, and removes the directory.
 *
 * @example
 * ```ts ignore
 * import { measureRss } from "./_replicate-rss.ts";
 * const { build, samples } = await measureRss(new URL("./replicate.ts", import.meta.url), 100_000, 1, console.error);
 * ```
 */
export async function measureRss(
  self: URL,
  n: number,
  reps: number,
  progress: (message: string) => void,
  options: RssOptions = {},
): Promise<{ build: { seconds: number; rss: number }; samples: RssSample[] }> {
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-bench-replicate-"));
  try {
    const source = options.sender ?? join(dir, "sender.db");
    let build = { seconds: 0, rss: 0 };
    if (options.sender !== undefined && existsSync(source)) progress(`replicate [ours] reusing the sender ${source}`);
    else {
      progress(`replicate [ours] building the sender's SQLite log of ${n} nodes (a child process)...`);
      build = await runChild(self, ["--child", "rss-build", "--n", String(n), "--file", source]) as {
        seconds: number;
        rss: number;
      };
      progress(`replicate [ours] built ${n} nodes in ${build.seconds.toFixed(1)} s`);
    }
    const samples: RssSample[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const target = join(dir, `receiver-${rep}.db`);
      const results = [join(dir, `sender-${rep}.json`), join(dir, `receiver-${rep}.json`)] as const;
      const start = performance.now();
      const b = spawnSide(self, target, results[1], options.profile);
      const a = spawnSide(self, source, results[0], options.profileSender, b.child);
      await Promise.all([a.exited, b.exited]);
      const wallSeconds = secondsSince(start);
      const [sender, receiver] = results.map((file) => JSON.parse(readFileSync(file, "utf8")) as SideResult) as [
        SideResult,
        SideResult,
      ];
      if (receiver.nodesReceived !== n) {
        throw new Error(`The receiver got ${receiver.nodesReceived} nodes, expected ${n}`);
      }
      samples.push({ sender, receiver, wallSeconds });
      progress(
        `replicate [ours] SQLite sync of ${n} nodes between two processes [${rep + 1}/${reps}]: ${
          receiver.seconds.toFixed(1)
        } s, ` +
          `peak RSS ${sender.rss.toFixed(0)} MB / ${receiver.rss.toFixed(0)} MB`,
      );
      for (const file of [target, `${target}-wal`, `${target}-shm`]) rmSync(file, { force: true });
    }
    return { build, samples };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      n: { type: "string" },
      reps: { type: "string" },
      sender: { type: "string" },
      profile: { type: "string" },
      "profile-sender": { type: "string" },
    },
  });
  const n = Number(values.n ?? 1_000_000);
  const reps = Number(values.reps ?? 3);
  if (!(n > 0) || !(reps > 0)) {
    console.error(
      "Usage: node bench/_replicate-rss.ts [--n NODES] [--reps N] [--sender FILE] [--profile DIR] [--profile-sender DIR]\n" +
        "  --sender FILE  reuse this sender log (built there first if missing)\n" +
        "  --profile DIR  write a V8 CPU profile of each receiver into DIR\n" +
        "  --profile-sender DIR  write a V8 CPU profile of each sender into DIR\n" +
        "(or: node bench/run.ts --only replicate)",
    );
    process.exit(2);
  }
  const { samples } = await measureRss(new URL("./replicate.ts", import.meta.url), n, reps, console.error, {
    sender: values.sender,
    profile: values.profile,
    profileSender: values["profile-sender"],
  });
  const of = (pick: (sample: RssSample) => number): string => median(samples.map(pick)).toFixed(1);
  for (const s of samples) {
    console.log(
      `  ${s.receiver.seconds.toFixed(2)} s, CPU ${s.sender.cpu.toFixed(2)} / ${s.receiver.cpu.toFixed(2)} s (kernel ${
        s.sender.system.toFixed(2)
      } / ${s.receiver.system.toFixed(2)}), ` +
        `peak RSS ${s.sender.rss.toFixed(0)} / ${s.receiver.rss.toFixed(0)} MB ` +
        `(heap ${s.sender.heap} / ${s.receiver.heap} MB, array buffers ${s.sender.buffers} / ${s.receiver.buffers} MB)`,
    );
  }
  console.log(
    `SQLite sync of ${n} nodes, medians of ${reps}: ${of((s) => n / s.receiver.seconds)} nodes/s, ` +
      `peak RSS ${of((s) => s.sender.rss)} / ${of((s) => s.receiver.rss)} MB (sender / receiver), ` +
      `CPU ${of((s) => s.sender.cpu)} / ${of((s) => s.receiver.cpu)} s`,
  );
}
