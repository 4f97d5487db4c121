/**
 * The command line's help: the whole usage, and each command's (`hyperlog <command> --help`).
 *
 * @module
 */
import { LOG_HELP } from "./cli-log.ts";

/** The whole usage (`hyperlog --help`). */
export const USAGE: string = `Usage: hyperlog [-d DIR] <command> [arguments]

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

/** Each command's usage, by command. */
export const HELP: Record<string, string> = {
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
  --presence-fanout-bytes N presence bytes per second per log (2 MiB)  [env PRESENCE_FANOUT_BYTES]
  --receive-buffer-bytes N a socket is not read while N bytes it sent wait (262144) [env RECEIVE_BUFFER_BYTES]
  --pages-cache-bytes N    framed nodes kept for late joiners, all logs (256 MiB) [env PAGES_CACHE_BYTES]
  --exchange-idle-ms N     an initial exchange may wait N ms for a reply (30000) [env EXCHANGE_IDLE_MS]
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
