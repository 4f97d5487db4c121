/**
 * `hyperlog sync`: replication over stdin/stdout (hyperlog's protocol, or hyperlog 4's) and with a relay over a
 * WebSocket (`sync ws://HOST/logs/NAME`), with presence.
 *
 * @module
 */
import type { ReplicationStats } from "../src/replicate.ts";
// `sync --hyperlog4` replicates with log.replicate({ protocol: "hyperlog4" }), which this module registers.
import "../src/hyperlog4/replicate.ts";
import { type Parsed, syncMode, UsageError } from "./cli-args.ts";
import { openLog } from "./cli-common.ts";
import type { FullCliIO } from "./io.ts";

/**
 * `sync` over stdin/stdout: replicates with the peer at the other end of the pipe, in the mode of `--push` or
 * `--pull`, `--live`, in hyperlog 4's protocol with `--hyperlog4`.
 */
export async function sync(io: FullCliIO, parsed: Parsed): Promise<number> {
  const mode = syncMode(parsed.flags);
  const live = parsed.flags.has("--live");
  const log = await openLog(io, parsed.dir);
  const hyperlog4 = parsed.flags.has("--hyperlog4");
  const session = hyperlog4 ? log.replicate({ protocol: "hyperlog4", mode, live }) : log.replicate({ mode, live });
  const { input, output } = io.byteStreams();
  input.pipeTo(session.writable).catch(() => {});
  const piped = session.readable.pipeTo(output).catch(() => {});
  const progress = io.tty.stderr
    ? setInterval(() => {
      const s = session.stats;
      void io.stderr(`\rsync: sent ${s.nodesSent} nodes, received ${s.nodesReceived} nodes`);
    }, 250)
    : undefined;
  try {
    const stats = await session.done;
    await piped;
    if (progress !== undefined) await io.stderr("\n");
    await io.stderr(syncSummary(stats));
    return 0;
  } finally {
    if (progress !== undefined) clearInterval(progress);
    await log.close();
  }
}

/** The line a finished sync prints on stderr. */
function syncSummary(stats: ReplicationStats): string {
  const bytes = stats.bytesSent + stats.bytesReceived;
  return `sync: sent ${stats.nodesSent} nodes, received ${stats.nodesReceived} nodes (${bytes} bytes)\n`;
}

/** `sync ws://HOST/logs/NAME`: replicates with a relay over the runtime's global WebSocket. */
export async function syncRelay(io: FullCliIO, parsed: Parsed): Promise<number> {
  const flags = parsed.flags;
  const mode = syncMode(flags);
  let token = io.env.HYPERLOG_TOKEN || undefined;
  for (const flag of flags) if (flag.startsWith("--token=")) token = flag.slice("--token=".length);
  let url: URL;
  try {
    url = new URL(parsed.args[0]!);
  } catch {
    throw new UsageError(`The address ${JSON.stringify(parsed.args[0])} is not a URL; use ws://HOST/logs/NAME`);
  }
  if (!/^\/logs\/[^/]+(\/ws)?\/?$/.test(url.pathname)) {
    throw new UsageError(`The URL ${url.href} is not a relay log URL; use ws://HOST/logs/NAME`);
  }
  if (!url.pathname.endsWith("/ws")) url.pathname = url.pathname.replace(/\/?$/, "/ws");
  const { replicateWebSocket } = await import("../src/websocket.ts");
  const log = await openLog(io, parsed.dir);
  try {
    // A token rides in a subprotocol: every runtime's WebSocket can send one, and it stays out of URLs and logs.
    const socket = new WebSocket(url, token === undefined ? [] : ["hyperlog", `bearer.${token}`]);
    const live = flags.has("--live");
    let presence: string | undefined;
    for (const flag of flags) if (flag.startsWith("--presence=")) presence = flag.slice("--presence=".length);
    if (presence !== undefined) {
      let state: unknown;
      try {
        state = JSON.parse(presence);
      } catch {
        throw new UsageError(`--presence ${presence} is not JSON; give a state such as '{"name":"cli"}'`);
      }
      if (state === null) throw new UsageError("--presence needs a JSON value other than null");
      const { attachPresence } = await import("../src/presence.ts");
      const watcher = attachPresence(socket, { state });
      watcher.addEventListener("presence", (event) => {
        const { type, peer, state } = (event as CustomEvent<{ type: string; peer: string; state: unknown }>).detail;
        void io.stderr(`presence: ${type} ${peer}${type === "leave" ? "" : ` ${JSON.stringify(state)}`}\n`);
      });
      watcher.addEventListener("presenceerror", (event) => {
        const { code, message } = (event as CustomEvent<{ code: number; message: string }>).detail;
        void io.stderr(`presence: refused (${code}): ${message}\n`);
      });
    }
    const session = replicateWebSocket(log, socket, { mode, live });
    // Tests stop a live sync as they stop serve.
    io.signal?.addEventListener("abort", () => void session.close().catch(() => {}), { once: true });
    if (live) {
      await session.synced;
      await io.stderr(`sync: synced with ${url.origin}${url.pathname}; staying live (Ctrl-C to stop)\n`);
    }
    const stats = await session.done;
    await io.stderr(syncSummary(stats));
    return 0;
  } finally {
    await log.close();
  }
}
