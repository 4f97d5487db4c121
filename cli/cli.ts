/**
 * The `hyperlog` command line: the seed's slides, made real. Its commands reach the outside world only through a
 * {@link CliIO} (io.ts); the real process's side of that seam is process-io.ts, the one runtime-bound file here.
 *
 * @module
 */
import { LOG_HELP, logCommand, parseLogArgs } from "./cli-log.ts";
import { HyperKV } from "../src/kv.ts";
import { Hyperlog } from "../src/log.ts";
import type { ReplicationMode, ReplicationStats } from "../src/replicate.ts";
import type { Storage } from "../src/storage.ts";
import type { LevelDatabase } from "../storage/level.ts";
import { importHyperlog4 } from "../compat/import.ts";
// `sync --hyperlog4` replicates with log.replicate({ protocol: "hyperlog4" }), which this module registers.
import "../src/hyperlog4/replicate.ts";
import { isKey } from "../src/keys.ts";
import type { CliIO, FullCliIO } from "./io.ts";
import { processIO, withProcessIO } from "./process-io.ts";

export type { CliIO } from "./io.ts";

/** An error that should print the usage (of `command` when known) and exit with status 2. */
class UsageError extends Error {
  /** The command whose usage to print; without it, the whole usage. */
  command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
}

/** True for the error of a write to a pipe whose reader has gone (`hyperlog ls | head -1`). */
function isBrokenPipe(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "EPIPE";
}

/** How much output goes out in one write: lines are gathered up to this many characters. */
const CHUNK_CHARS = 64 * 1024;

/**
 * Writes one line per item on stdout, gathered into chunks of about 64 KiB, waiting for each write (so a slow
 * reader holds the command back instead of the output piling up in memory).
 */
async function writeLines<T>(
  io: FullCliIO,
  items: Iterable<T> | AsyncIterable<T>,
  line: (item: T) => string,
): Promise<void> {
  let chunk = "";
  for await (const item of items) {
    chunk += line(item) + "\n";
    if (chunk.length >= CHUNK_CHARS) {
      await io.stdout(chunk);
      chunk = "";
    }
  }
  if (chunk !== "") await io.stdout(chunk);
}

const USAGE = `Usage: hyperlog [-d DIR] <command> [arguments]

A Merkle-DAG log for peer-to-peer replication. The log lives in DIR (default ./.hyperlog).

Commands:
  add VALUE [PREV ...]     add a node with VALUE (stored as a JSON string) linking to the PREV keys; prints its key
  ls                       print every node as a JSON line, in change order
  heads                    print the keys of the nodes nothing links to
  get KEY                  print one node as JSON
  log [URL] [--graph] [--limit N] [--since CHANGE] [--dot]
                           the DAG newest first, like git log --graph --oneline (or Graphviz DOT)
  sync [--live] [--push|--pull]
                           replicate over stdin/stdout with another 'hyperlog sync'
  kv put KEY VALUE | kv get KEY | kv del KEY | kv ls | kv history KEY | kv sync [same as sync]
                           a multi-value key/value store (HyperKV) in the same log
  sync ws://HOST/logs/NAME [--live] [--push|--pull] [--token=TOKEN]
                           replicate with a relay over a WebSocket (ws:// or wss://)
  serve [--port 8787] [--host 127.0.0.1]
                           run a relay (the relay worker's app) with one SQLite file per log in DIR
  token create --log NAME|'PREFIX*' --role read|write --ttl 1h
                           print a signed token for a relay (its TOKEN_SECRET from the environment)
  dupsh 'CMD A' 'CMD B'    run two commands with A's stdout piped into B's stdin and B's stdout into A's stdin
  sync --hyperlog4 [--live] [--push|--pull]
                           replicate over stdin/stdout with a peer running hyperlog 4.12.1 (its protocol)
  import --from-hyperlog4 DIR
                           copy every node of a LevelDB written by hyperlog 4.12.1 into the log (needs classic-level)

Options:
  -d, --dir DIR            where the log is stored (default ./.hyperlog)
  -h, --help               show help (also: hyperlog <command> --help)

Example:
  hyperlog -d /tmp/a add hello
  hyperlog dupsh 'hyperlog sync -d /tmp/a' 'hyperlog sync -d /tmp/b'
`;

const HELP: Record<string, string> = {
  add: `Usage: hyperlog [-d DIR] add VALUE [PREV ...]

Adds a node whose value is the JSON string VALUE, linking to each PREV key (64 hex characters), and prints its key.
Use --json to store VALUE parsed as JSON instead (hyperlog add --json '{"a":1}').
`,
  ls: `Usage: hyperlog [-d DIR] ls

Prints every node as a JSON line ({ key, links, value, change, ... }), in change order.
`,
  heads: `Usage: hyperlog [-d DIR] heads

Prints the key of every head (a node that no other node links to), one per line.
`,
  get: `Usage: hyperlog [-d DIR] get KEY

Prints the node with this key as JSON; exits 1 if the log does not have it.
`,
  sync: `Usage: hyperlog [-d DIR] sync [--live] [--push|--pull]

Speaks the replication protocol over stdin and stdout and exits 0 when the logs have exchanged what they lacked.
  --live    stay connected and forward new nodes both ways until the other side hangs up
  --push    only send nodes
  --pull    only receive nodes
  --hyperlog4  speak hyperlog 4.12.1's protocol, with a peer that still runs hyperlog 4 (unsigned nodes only)
Connect two with dupsh, netcat or ssh:
  hyperlog dupsh 'hyperlog sync -d /tmp/a' 'hyperlog sync -d /tmp/b'

With a URL, syncs with a relay over a WebSocket instead (see the README, "Relay worker"):
  hyperlog sync ws://127.0.0.1:8787/logs/NAME [--token=TOKEN] [--live --presence JSON]
  --token   the relay's read or write token (also from HYPERLOG_TOKEN), sent as a 'bearer.TOKEN' subprotocol
  --presence JSON  publish this presence state (such as '{"name":"cli"}') and print the others' presence on stderr
`,
  kv: `Usage: hyperlog [-d DIR] kv <put|get|del|ls|history|sync> [arguments]

A multi-value key/value store (HyperKV) kept in the same log, so it replicates with it.
  kv put KEY VALUE [--json]  set KEY to the JSON string VALUE (--json: VALUE parsed as JSON); prints the node key
  kv get KEY                 print every current value of KEY as JSON: { "<node key>": value, ... } ({} if none)
  kv del KEY                 delete KEY; prints the node key
  kv ls                      print every key that has values as a JSON line: { "key": ..., "values": { ... } }
  kv history KEY             print every write of KEY (puts and deletes) as a JSON line, in causal order
  kv sync [ws://HOST/logs/NAME] [--live] [--push|--pull] [--token=TOKEN]
                             the same as 'hyperlog sync'
Concurrent puts on two peers both show in 'kv get' after a sync, until a later put replaces them:
  hyperlog -d /tmp/a kv put color blue; hyperlog -d /tmp/b kv put color green
  hyperlog dupsh 'hyperlog -d /tmp/a kv sync' 'hyperlog -d /tmp/b kv sync'
  hyperlog -d /tmp/a kv get color
`,
  serve: `Usage: hyperlog [-d DIR] serve [--port 8787] [--host 127.0.0.1] [options]

Runs a relay, the same app as the relay worker, on this machine: clients sync with ws://HOST:PORT/logs/NAME.
Each log is kept in DIR/NAME.db (default DIR: ./.hyperlog-relay). Stops on Ctrl-C (SIGINT) or SIGTERM.
  --port N                 the port (default 8787; 0 for any free one)
  --host ADDRESS           the address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)
  --read-token-file FILE   reading needs the token in FILE (or the write token) [env READ_TOKEN]
  --write-token-file FILE  writing needs the token in FILE                      [env WRITE_TOKEN]
  --read-token TOKEN       the same, on the command line (every user can read it: a warning)
  --write-token TOKEN      the same, on the command line (a warning)
  --writers JSON           { "LOG" or "*": ["HEX PUBLIC KEY", ...] }            [env WRITERS]
  --max-frame-bytes N      the largest message (default 1048576)                [env MAX_FRAME_BYTES]
  --max-node-bytes N       the largest node (default 262144)                    [env MAX_NODE_BYTES]
  --max-nodes-per-second N nodes per second per socket, every phase (1000)      [env MAX_NODES_PER_SECOND]
  --max-nodes-burst N      nodes a socket may send at once (default 10000)      [env MAX_NODES_BURST]
  --max-bytes-per-second N bytes of nodes per second per socket (8388608)       [env MAX_BYTES_PER_SECOND]
  --max-bytes-burst N      bytes of nodes a socket may send at once (67108864)  [env MAX_BYTES_BURST]
  --max-sockets N          WebSockets on the relay (default 10000; 0: no cap)   [env MAX_SOCKETS]
  --max-sockets-per-log N  WebSockets on one log (default 1000; 0: no cap)      [env MAX_SOCKETS_PER_LOG]
  --max-open-logs N        logs kept open at once (default 256)                 [env MAX_OPEN_LOGS]
  --idle-log-ms N          an unused log is closed after N ms (default 30000)   [env IDLE_LOG_MS]
  --max-logs N             logs on the relay (default: no cap)                  [env MAX_LOGS]
  --max-log-bytes N        bytes of one log (default: no cap)                   [env MAX_LOG_BYTES]
  --hello-timeout-ms N     a socket must send its HELLO within N ms (10000)     [env HELLO_TIMEOUT_MS]
  --presence-max-bytes N   the largest presence state (default 4096)            [env PRESENCE_MAX_BYTES]
  --presence-per-second N  presence messages per second per socket (20)         [env PRESENCE_PER_SECOND]
  --presence-peers N       peers with a presence state on one log (100)         [env PRESENCE_PEERS]
  --presence-timeout-ms N  a peer silent for N ms leaves (default 30000)        [env PRESENCE_TIMEOUT_MS]
  --presence-readers 1|0   readers may publish presence (default 0)             [env PRESENCE_READERS]
  --exchange-idle-ms N     an initial exchange may wait N ms for a reply (30000) [env EXCHANGE_IDLE_MS]
  --receive-buffer-bytes N a socket is not read while N bytes it sent wait (262144) [env RECEIVE_BUFFER_BYTES]
  --metrics-token-file F   /metrics answers with the token in F                 [env METRICS_TOKEN]
  --token-secret-file F    the secret of signed tokens ('hyperlog token')       [env TOKEN_SECRET]
  --admin-token-file F     the dashboard at /admin, behind the token in F       [env ADMIN_TOKEN]
  --storage sqlite|kv[:PATH] sqlite: DIR/NAME.db per log (default); kv: every log in one Deno KV database,
                           DIR/logs.kv or PATH (Deno only: deno run -A --unstable-kv bin/hyperlog.mjs serve ...)
Options take "--name VALUE" or "--name=VALUE"; an option wins over its environment variable. A bad setting stops
the relay with exit code 2 and the reason.
`,
  token: `Usage: hyperlog token create --log NAME [--log 'PREFIX*' ...] --role read|write --ttl DURATION

Prints a capability token for a relay that has the same TOKEN_SECRET (taken from the environment: TOKEN_SECRET, at
least 32 characters): it opens the logs named (exact names, or prefixes ending in '*'), with the role, until it
expires (--ttl: a number and s, m, h or d). Clients send it as they send any token (--token=TOKEN).
  TOKEN_SECRET=... hyperlog token create --log 'chat-*' --role write --ttl 1h
`,
  log: LOG_HELP,
  dupsh: `Usage: hyperlog dupsh 'CMD A' 'CMD B'

Runs both commands in a shell, pipes A's stdout into B's stdin and B's stdout into A's stdin, forwards their stderr,
and exits non-zero if either command does.
`,
};

interface Parsed {
  dir: string;
  command: string | undefined;
  args: string[];
  flags: Set<string>;
  help: boolean;
}

const KNOWN_FLAGS: Record<string, readonly string[]> = {
  add: ["--json"],
  ls: [],
  heads: [],
  get: [],
  sync: ["--live", "--push", "--pull", "--hyperlog4", "--presence"],
  kv: ["--json", "--live", "--push", "--pull", "--hyperlog4"],
  serve: [],
  log: [],
  token: [],
  dupsh: [],
  import: ["--from-hyperlog4"],
};

const KV_FLAGS: Record<string, readonly string[]> = {
  put: ["--json"],
  get: [],
  del: [],
  ls: [],
  history: [],
  sync: ["--live", "--push", "--pull", "--hyperlog4"],
};

function parse(argv: readonly string[]): Parsed {
  const parsed: Parsed = { dir: ".hyperlog", command: undefined, args: [], flags: new Set(), help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-d" || arg === "--dir") {
      const dir = argv[++i];
      if (dir === undefined || dir === "") throw new UsageError(`The option ${arg} needs a directory`, parsed.command);
      parsed.dir = dir;
    } else if (arg.startsWith("--dir=")) {
      parsed.dir = arg.slice("--dir=".length);
    } else if (arg === "-h" || arg === "--help" || (arg === "help" && parsed.command === undefined)) {
      parsed.help = true;
    } else if (parsed.command === undefined) {
      if (arg.startsWith("-")) throw new UsageError(`Unknown option ${arg}`);
      parsed.command = arg;
    } else if (
      arg.startsWith("--") && parsed.command !== "dupsh" && parsed.command !== "serve" && parsed.command !== "token" &&
      parsed.command !== "log"
    ) {
      parsed.flags.add(arg);
    } else {
      parsed.args.push(arg);
    }
  }
  if (parsed.command !== undefined) {
    const known = KNOWN_FLAGS[parsed.command];
    if (known === undefined) throw new UsageError(`Unknown command ${JSON.stringify(parsed.command)}`);
    for (const flag of parsed.flags) {
      if ((parsed.command === "sync" || parsed.command === "kv") && flag.startsWith("--token=")) continue;
      if (parsed.command === "sync" && flag.startsWith("--presence=")) continue;
      if (!known.includes(flag)) {
        throw new UsageError(`Unknown option ${flag} for the ${parsed.command} command`, parsed.command);
      }
    }
  }
  return parsed;
}

function expectArgs(parsed: Parsed, min: number, max: number, what: string): void {
  if (parsed.args.length < min || parsed.args.length > max) {
    throw new UsageError(`The ${parsed.command} command takes ${what}`);
  }
}

async function openLog(io: FullCliIO, dir: string): Promise<Hyperlog<unknown>> {
  const log = new Hyperlog(await io.openStorage(dir), { valueEncoding: "json" });
  await log.ready();
  return log;
}

function nodeJson(node: object): string {
  return JSON.stringify(node);
}

/**
 * Runs the CLI with `argv` (without the runtime and script), returning the exit status. `sync` and `dupsh` use the
 * process's real stdin and stdout.
 *
 * @example
 * ```ts ignore
 * import { main } from "./cli.ts";
 * process.exitCode = await main(["-d", "/tmp/demo", "add", "hello"]);
 * ```
 */
export async function main(argv: readonly string[], given: CliIO = processIO()): Promise<number> {
  const io = withProcessIO(given);
  let parsed: Parsed;
  let command: string | undefined;
  try {
    parsed = parse(argv);
    command = parsed.command;
    if (parsed.help || parsed.command === undefined) {
      const text = parsed.command !== undefined ? HELP[parsed.command] ?? USAGE : USAGE;
      if (parsed.help) {
        await io.stdout(text);
        return 0;
      }
      await io.stderr(text);
      return 2;
    }
    switch (parsed.command) {
      case "add": {
        if (parsed.args.length < 1) throw new UsageError("The add command takes a VALUE and optional PREV keys");
        const [text, ...links] = parsed.args as [string, ...string[]];
        const value = valueOf(text, parsed.flags);
        for (const link of links) {
          if (!isKey(link)) {
            throw new UsageError(`PREV ${JSON.stringify(link)} is not a node key (64 lower-case hex characters)`);
          }
        }
        const log = await openLog(io, parsed.dir);
        try {
          const node = await log.add(links, value);
          await io.stdout(`${node.key}\n`);
        } finally {
          await log.close();
        }
        return 0;
      }
      case "ls": {
        expectArgs(parsed, 0, 0, "no arguments");
        const log = await openLog(io, parsed.dir);
        try {
          await writeLines(io, log.createReadStream(), nodeJson);
        } finally {
          await log.close();
        }
        return 0;
      }
      case "heads": {
        expectArgs(parsed, 0, 0, "no arguments");
        const log = await openLog(io, parsed.dir);
        try {
          await writeLines(io, await log.heads(), (node) => node.key);
        } finally {
          await log.close();
        }
        return 0;
      }
      case "get": {
        expectArgs(parsed, 1, 1, "one KEY");
        const key = parsed.args[0]!;
        if (!isKey(key)) {
          throw new UsageError(`KEY ${JSON.stringify(key)} is not a node key (64 lower-case hex characters)`);
        }
        const log = await openLog(io, parsed.dir);
        try {
          await io.stdout(nodeJson(await log.get(key)) + "\n");
        } finally {
          await log.close();
        }
        return 0;
      }
      case "sync": {
        if (parsed.args.length >= 1 && /^wss?:\/\//.test(parsed.args[0]!)) {
          // --presence JSON: the JSON is the argument after the URL.
          if (parsed.flags.has("--presence") && parsed.args.length === 2) {
            parsed.flags.delete("--presence");
            parsed.flags.add(`--presence=${parsed.args.pop()}`);
          }
          if (parsed.args.length === 1) return await syncRelay(io, parsed);
        }
        expectArgs(parsed, 0, 0, "no arguments (or a ws:// URL), only --live, --push or --pull");
        return await sync(
          io,
          parsed.dir,
          syncMode(parsed.flags),
          parsed.flags.has("--live"),
          parsed.flags.has("--hyperlog4"),
        );
      }
      case "import":
        return await importCommand(io, parsed);
      case "kv":
        return await kv(io, parsed);
      case "serve":
        return await serve(io, parsed, argv);
      case "log": {
        let options;
        try {
          options = parseLogArgs(parsed.args);
        } catch (error) {
          throw new UsageError((error as Error).message);
        }
        const color = io.tty.stdout && !io.env.NO_COLOR;
        const token = io.env.HYPERLOG_TOKEN || undefined;
        return await logCommand(options, { stdout: io.stdout, openLog: () => openLog(io, parsed.dir), color, token });
      }
      case "token":
        return await token(io, parsed);
      case "dupsh": {
        expectArgs(parsed, 2, 2, "two commands, each one quoted argument");
        return await io.dupsh(parsed.args[0]!, parsed.args[1]!);
      }
      default:
        throw new UsageError(`Unknown command ${JSON.stringify(parsed.command)}`);
    }
  } catch (err) {
    if (isBrokenPipe(err)) return 0;
    try {
      if (err instanceof UsageError) {
        // The usage of the command at fault only (its --help text); the whole usage without a known command.
        const usage = HELP[err.command ?? command ?? ""] ?? USAGE;
        await io.stderr(`hyperlog: ${err.message}\n\n${usage}`);
        return 2;
      }
      await io.stderr(`hyperlog: ${(err as Error).message}\n`);
    } catch (error) {
      if (!isBrokenPipe(error)) throw error;
    }
    return 1;
  }
}

function syncMode(flags: ReadonlySet<string>): ReplicationMode {
  if (flags.has("--push") && flags.has("--pull")) {
    throw new UsageError("The options --push and --pull cannot be used together; leave both out to sync both ways");
  }
  return flags.has("--push") ? "push" : flags.has("--pull") ? "pull" : "sync";
}

function valueOf(text: string, flags: ReadonlySet<string>): unknown {
  if (!flags.has("--json")) return text;
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`The option --json was given but ${JSON.stringify(text)} is not valid JSON`);
  }
}

/** `hyperlog kv ...`: the key/value store in the same log. */
async function kv(io: FullCliIO, parsed: Parsed): Promise<number> {
  const [sub, ...args] = parsed.args;
  const usage = (what: string) => new UsageError(`The kv ${sub} command takes ${what}`);
  if (sub === undefined) throw new UsageError("The kv command needs a subcommand: put, get, del, ls, history or sync");
  const known = KV_FLAGS[sub];
  if (known === undefined) {
    throw new UsageError(`Unknown kv subcommand ${JSON.stringify(sub)}: use put, get, del, ls, history or sync`);
  }
  for (const flag of parsed.flags) {
    if (known.includes(flag) || (sub === "sync" && flag.startsWith("--token="))) continue;
    throw new UsageError(`Unknown option ${flag} for the kv ${sub} command`);
  }
  if (sub === "sync") {
    // The same as hyperlog sync, over stdin/stdout or with a relay.
    if (args.length === 1 && /^wss?:\/\//.test(args[0]!)) return await syncRelay(io, { ...parsed, args });
    if (args.length !== 0) throw usage("no arguments (or a ws:// URL), only --live, --push, --pull or --token");
    return await sync(
      io,
      parsed.dir,
      syncMode(parsed.flags),
      parsed.flags.has("--live"),
      parsed.flags.has("--hyperlog4"),
    );
  }
  const arity: Record<string, [number, string]> = {
    put: [2, "a KEY and a VALUE"],
    get: [1, "one KEY"],
    del: [1, "one KEY"],
    history: [1, "one KEY"],
    ls: [0, "no arguments"],
  };
  const [count, what] = arity[sub]!;
  if (args.length !== count) throw usage(what);
  const value = sub === "put" ? valueOf(args[1]!, parsed.flags) : undefined;
  const log = await openLog(io, parsed.dir);
  const store = new HyperKV(log);
  try {
    const key = args[0]!;
    switch (sub) {
      case "put":
        await io.stdout(`${(await store.put(key, value)).key}\n`);
        break;
      case "del":
        await io.stdout(`${(await store.del(key)).key}\n`);
        break;
      case "get":
        await io.stdout(JSON.stringify(await store.get(key)) + "\n");
        break;
      case "history":
        await writeLines(io, await store.history(key), nodeJson);
        break;
      case "ls":
        await writeLines(io, store.createReadStream(), (entry) => JSON.stringify(entry));
        break;
    }
  } finally {
    await log.close();
  }
  return 0;
}

async function sync(
  io: FullCliIO,
  dir: string,
  mode: ReplicationMode,
  live: boolean,
  hyperlog4 = false,
): Promise<number> {
  const log = await openLog(io, dir);
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

/** `import --from-hyperlog4 DIR`: copies a hyperlog 4.12.1 LevelDB into the log (see compat/import.ts). */
async function importCommand(io: FullCliIO, parsed: Parsed): Promise<number> {
  if (!parsed.flags.has("--from-hyperlog4") || parsed.args.length !== 1) {
    throw new UsageError("import takes --from-hyperlog4 DIR (a LevelDB directory written by hyperlog 4)");
  }
  const from = parsed.args[0]!;
  let ClassicLevel: new (path: string, options?: object) => LevelDatabase;
  try {
    ({ ClassicLevel } = await import("classic-level" as string) as { ClassicLevel: typeof ClassicLevel });
  } catch {
    io.stderr("hyperlog import: reading a LevelDB needs the classic-level package; npm install classic-level\n");
    return 1;
  }
  const db = new ClassicLevel(from, { createIfMissing: false });
  const log = await openLog(io, parsed.dir);
  try {
    const result = await importHyperlog4(log, db);
    io.stderr(
      `import: ${result.imported} of ${result.nodes} nodes imported from hyperlog 4 database ${from}` +
        (result.signed > 0 ? ` (${result.signed} with hyperlog 4 signatures, kept beside them, not Ed25519)` : "") +
        "\n",
    );
    return 0;
  } finally {
    await log.close();
    await (db as { close(): Promise<void> }).close();
  }
}

/** The line a finished sync prints on stderr. */
function syncSummary(stats: ReplicationStats): string {
  const bytes = stats.bytesSent + stats.bytesReceived;
  return `sync: sent ${stats.nodesSent} nodes, received ${stats.nodesReceived} nodes (${bytes} bytes)\n`;
}

/** `sync ws://HOST/logs/NAME`: replicates with a relay over the runtime's global WebSocket. */
async function syncRelay(io: FullCliIO, parsed: Parsed): Promise<number> {
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

const SERVE_OPTIONS: Record<string, string> = {
  "--port": "",
  "--host": "",
  "--read-token": "READ_TOKEN",
  "--write-token": "WRITE_TOKEN",
  "--read-token-file": "READ_TOKEN",
  "--write-token-file": "WRITE_TOKEN",
  "--metrics-token-file": "METRICS_TOKEN",
  "--token-secret-file": "TOKEN_SECRET",
  "--admin-token": "ADMIN_TOKEN",
  "--admin-token-file": "ADMIN_TOKEN",
  "--writers": "WRITERS",
  "--max-frame-bytes": "MAX_FRAME_BYTES",
  "--max-node-bytes": "MAX_NODE_BYTES",
  "--max-nodes-per-second": "MAX_NODES_PER_SECOND",
  "--max-nodes-burst": "MAX_NODES_BURST",
  "--max-bytes-per-second": "MAX_BYTES_PER_SECOND",
  "--max-bytes-burst": "MAX_BYTES_BURST",
  "--max-sockets": "MAX_SOCKETS",
  "--max-sockets-per-log": "MAX_SOCKETS_PER_LOG",
  "--max-open-logs": "MAX_OPEN_LOGS",
  "--idle-log-ms": "IDLE_LOG_MS",
  "--max-logs": "MAX_LOGS",
  "--max-log-bytes": "MAX_LOG_BYTES",
  "--hello-timeout-ms": "HELLO_TIMEOUT_MS",
  "--presence-max-bytes": "PRESENCE_MAX_BYTES",
  "--presence-per-second": "PRESENCE_PER_SECOND",
  "--presence-peers": "PRESENCE_PEERS",
  "--presence-timeout-ms": "PRESENCE_TIMEOUT_MS",
  "--presence-readers": "PRESENCE_READERS",
  "--exchange-idle-ms": "EXCHANGE_IDLE_MS",
  "--receive-buffer-bytes": "RECEIVE_BUFFER_BYTES",
  "--storage": "",
};

/** `hyperlog serve`: the relay on this machine, until SIGINT or SIGTERM (or `io.signal`, for tests). */
async function serve(io: FullCliIO, parsed: Parsed, argv: readonly string[]): Promise<number> {
  const values: Record<string, string> = {};
  for (let i = 0; i < parsed.args.length; i++) {
    const arg = parsed.args[i]!;
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (!(name in SERVE_OPTIONS)) throw new UsageError(`Unknown option ${arg} for serve`);
    const value = eq === -1 ? parsed.args[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new UsageError(`${name} needs a value`);
    values[name] = value;
  }
  const port = Number(values["--port"] ?? "8787");
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--port ${values["--port"]} is not a port: give an integer from 0 to 65535`);
  }
  const settings: Record<string, string | undefined> = {};
  for (const variable of new Set(Object.values(SERVE_OPTIONS))) {
    if (variable !== "") settings[variable] = io.env[variable];
  }
  for (const [option, value] of Object.entries(values)) {
    const variable = SERVE_OPTIONS[option]!;
    if (variable === "") continue;
    if (option.endsWith("-file")) {
      // A secret from a file: not in the process list, not in the shell's history.
      try {
        settings[variable] = (await io.readTextFile(value)).trim();
      } catch {
        throw new UsageError(`${option} ${value}: the file cannot be read`);
      }
      if (settings[variable] === "") throw new UsageError(`${option} ${value}: the file is empty`);
    } else {
      if (option.endsWith("-token")) {
        io.stderr(
          `Warning: ${option} on the command line is visible to every user of this machine (ps); ` +
            `use ${option}-file FILE or the ${variable} environment variable\n`,
        );
      }
      settings[variable] = value;
    }
  }
  const dirGiven = argv.some((arg) => arg === "-d" || arg === "--dir" || arg.startsWith("--dir="));
  const dir = dirGiven ? parsed.dir : ".hyperlog-relay";
  const { serve: start } = await import("../worker/serve.ts");
  const { relayStorage } = await import("../worker/serve-kv.ts");
  let running;
  let storage;
  try {
    storage = await relayStorage(values["--storage"] ?? "sqlite", dir);
    const openLog = storage.openLog === undefined ? {} : { openLog: storage.openLog };
    running = await start({ dir, port, hostname: values["--host"] ?? "127.0.0.1", settings, ...openLog });
  } catch (error) {
    storage?.close();
    if (error instanceof RangeError || error instanceof TypeError) throw new UsageError(error.message);
    throw error;
  }
  await io.stdout(
    `hyperlog relay on ${running.url} (logs in ${storage.where}); sync with ${
      running.url.replace(/^http/, "ws")
    }/logs/NAME\n`,
  );
  await new Promise<void>((stop) => {
    io.signal?.addEventListener("abort", () => stop(), { once: true });
    if (io.signal === undefined) io.onInterrupt(stop);
  });
  await running.close();
  storage.close();
  await io.stderr("hyperlog relay stopped\n");
  return 0;
}

/** `hyperlog token create`: a signed capability token from TOKEN_SECRET in the environment. */
async function token(io: FullCliIO, parsed: Parsed): Promise<number> {
  const [sub, ...rest] = parsed.args;
  if (sub !== "create") throw new UsageError("token takes one subcommand: create");
  const logs: string[] = [];
  let role: string | undefined;
  let ttl: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const value = eq === -1 ? rest[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new UsageError(`${name} needs a value`);
    if (name === "--log") logs.push(value);
    else if (name === "--role") role = value;
    else if (name === "--ttl") ttl = value;
    else throw new UsageError(`Unknown option ${arg} for token create`);
  }
  const secret = io.env.TOKEN_SECRET;
  if (secret === undefined || secret === "") {
    throw new UsageError("token create needs the relay's secret in the environment: TOKEN_SECRET=...");
  }
  if (role === undefined || ttl === undefined) throw new UsageError("token create needs --log, --role and --ttl");
  const { createToken, parseTtl } = await import("../worker/tokens.ts");
  try {
    const expires = Date.now() + parseTtl(ttl);
    io.stdout(await createToken(secret, { logs, role: role as "read" | "write", expires }) + "\n");
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) throw new UsageError(error.message);
    throw error;
  }
  return 0;
}
