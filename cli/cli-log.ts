/**
 * `hyperlog log`: the DAG, newest first, like `git log --graph --oneline`, from a local store or from a relay's
 * HTTP routes; or as Graphviz DOT. Part of the CLI; the lane layout is {@link layoutDag}, the drawing
 * {@link graphLines}. Uses no runtime module: the CLI hands it its output and its store.
 *
 * @module
 */
import { graphLines, previewValue } from "../src/graph-text.ts";
import { type DagRow, layoutDag } from "../src/layout-dag.ts";
import type { Hyperlog } from "../src/log.ts";

/**
 * The help of `hyperlog log`.
 *
 * @example
 * ```ts
 * import { LOG_HELP } from "./cli-log.ts";
 * console.assert(LOG_HELP.startsWith("Usage: hyperlog [-d DIR] log"));
 * ```
 */
export const LOG_HELP: string = `Usage: hyperlog [-d DIR] log [URL] [--graph] [--limit N] [--since CHANGE] [--dot]

Prints the nodes newest first, one line each: the short key, "(head)" for a head, the writer's short public key
for a signed node, and a one-line preview of the value. Heads come first.
  --graph           draw the lanes of forks and merges, like git log --graph
  --limit N         only the latest N nodes
  --since CHANGE    only the nodes after change number CHANGE
  --dot             print Graphviz DOT instead (hyperlog log --dot | dot -Tsvg > log.svg)
  --color, --no-color
                    colour (default: when the output is a terminal and NO_COLOR is unset)
  --token TOKEN     the relay's read token (also from HYPERLOG_TOKEN)
With a URL (ws://HOST/logs/NAME, wss://, http:// or https://), reads the log from a relay's HTTP routes
(/logs/NAME and /logs/NAME/changes) instead of DIR.
`;

/**
 * The options of `hyperlog log`, parsed.
 *
 * @example
 * ```ts
 * import { parseLogArgs } from "./cli-log.ts";
 * const options = parseLogArgs(["--graph", "--limit", "10"]);
 * console.assert(options.graph && options.limit === 10);
 * ```
 */
export interface LogOptions {
  /** A relay log's URL, or undefined for the local store. */
  url: URL | undefined;
  /** Draw the lanes. */
  graph: boolean;
  /** Print DOT. */
  dot: boolean;
  /** The latest this many nodes, at most. */
  limit: number;
  /** Only nodes after this change number. */
  since: number;
  /** Colour: true, false, or undefined for "when a terminal". */
  color: boolean | undefined;
  /** The relay token. */
  token: string | undefined;
}

/**
 * Parses the arguments after `log`; throws a `RangeError` saying what is wrong.
 *
 * @example
 * ```ts
 * import { parseLogArgs } from "./cli-log.ts";
 * let message = "";
 * try {
 *   parseLogArgs(["--limit", "many"]);
 * } catch (error) {
 *   message = (error as Error).message;
 * }
 * console.assert(message.startsWith("--limit"));
 * ```
 */
export function parseLogArgs(args: readonly string[]): LogOptions {
  const options: LogOptions = {
    url: undefined,
    graph: false,
    dot: false,
    limit: Infinity,
    since: 0,
    color: undefined,
    token: undefined,
  };
  const count = (name: string, text: string | undefined, min: number): number => {
    if (text === undefined || !/^\d{1,15}$/.test(text) || Number(text) < min) {
      throw new RangeError(`${name} takes an integer of at least ${min}, not ${JSON.stringify(text ?? "")}`);
    }
    return Number(text);
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf("=");
    const name = arg.startsWith("--") && eq !== -1 ? arg.slice(0, eq) : arg;
    const value = () => (eq !== -1 && arg.startsWith("--") ? arg.slice(eq + 1) : args[++i]);
    if (name === "--graph") options.graph = true;
    else if (name === "--dot") options.dot = true;
    else if (name === "--color") options.color = true;
    else if (name === "--no-color") options.color = false;
    else if (name === "--limit") options.limit = count("--limit", value(), 1);
    else if (name === "--since") options.since = count("--since", value(), 0);
    else if (name === "--token") {
      const token = value();
      if (token === undefined || token === "") throw new RangeError("--token needs a value");
      options.token = token;
    } else if (!arg.startsWith("-") && options.url === undefined) options.url = relayUrl(arg);
    else throw new RangeError(`Unknown option ${arg} for log`);
  }
  return options;
}

/** The relay log URL as http(s)://HOST/logs/NAME. */
function relayUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RangeError(`${JSON.stringify(text)} is not a URL; use ws://HOST/logs/NAME or http://HOST/logs/NAME`);
  }
  const match = /^\/logs\/([^/]+)(\/ws)?\/?$/.exec(url.pathname);
  if (!/^(wss?|https?):$/.test(url.protocol) || match === null) {
    throw new RangeError(`${url.href} is not a relay log URL; use ws://HOST/logs/NAME or http://HOST/logs/NAME`);
  }
  url.protocol = url.protocol === "wss:" || url.protocol === "https:" ? "https:" : "http:";
  url.pathname = `/logs/${match[1]}`;
  url.search = "";
  return url;
}

/** A node as `log` shows it. */
interface Shown {
  key: string;
  links: readonly string[];
  change: number;
  identity?: string | undefined;
  preview: string;
}

/** The latest nodes of a local log, newest first. */
async function localNodes(log: Hyperlog<unknown>, options: LogOptions): Promise<Shown[]> {
  const nodes: Shown[] = [];
  const stream = log.createReadStream({
    reverse: true,
    since: options.since,
    ...(options.limit === Infinity ? {} : { limit: options.limit }),
  });
  for await (const node of stream) {
    nodes.push({
      key: node.key,
      links: node.links,
      change: node.change,
      identity: node.identity,
      preview: previewValue(node.value),
    });
  }
  return nodes;
}

/** The latest nodes of a relay's log, newest first, from `/logs/NAME` and `/logs/NAME/changes`. */
async function relayNodes(url: URL, options: LogOptions, fetcher: typeof fetch): Promise<Shown[]> {
  const headers: Record<string, string> = options.token === undefined
    ? {}
    : { authorization: `Bearer ${options.token}` };
  const get = async (path: string): Promise<Response> => {
    const response = await fetcher(new URL(path, url), { headers });
    if (!response.ok) {
      const body = await response.text();
      let message = body;
      try {
        message = (JSON.parse(body) as { error?: string }).error ?? body;
      } catch {
        // Not JSON.
      }
      throw new Error(`The relay answered ${response.status} for ${path}: ${message.slice(0, 200)}`);
    }
    return response;
  };
  const info = await (await get(url.pathname)).json() as { length?: unknown };
  const length = typeof info.length === "number" ? info.length : 0;
  const since = options.limit === Infinity ? options.since : Math.max(options.since, length - options.limit);
  const text = await (await get(`${url.pathname}/changes?since=${since}`)).text();
  const nodes: Shown[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const node = JSON.parse(line) as {
      key: string;
      links: string[];
      change: number;
      identity?: string;
      value?: unknown;
      valueBase64?: string;
    };
    nodes.push({
      key: node.key,
      links: node.links,
      change: node.change,
      identity: node.identity,
      preview: "value" in node
        ? previewValue(node.value)
        : `<${Math.floor((node.valueBase64?.length ?? 0) * 3 / 4)} bytes>`,
    });
  }
  nodes.sort((a, b) => b.change - a.change);
  return options.limit === Infinity ? nodes : nodes.slice(0, options.limit);
}

/** A DOT string literal. */
function dotString(text: string): string {
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

/**
 * The nodes as Graphviz DOT: a box per node (short key and preview; heads bold and green), an edge per link.
 *
 * @example
 * ```ts
 * import { dotGraph } from "./cli-log.ts";
 * const dot = dotGraph([{ key: "b".repeat(64), links: ["a".repeat(64)], preview: '"x"' }, {
 *   key: "a".repeat(64),
 *   links: [],
 *   preview: '"y"',
 * }]);
 * console.assert(dot.includes(`"${"b".repeat(64)}" -> "${"a".repeat(64)}";`));
 * ```
 */
export function dotGraph(nodes: readonly { key: string; links: readonly string[]; preview: string }[]): string {
  const layout = layoutDag(nodes);
  const lines = ["digraph hyperlog {", '  node [shape=box, fontname="monospace"];'];
  for (const row of layout.rows) {
    const label = `${row.node.key.slice(0, 8)}\n${row.node.preview}`;
    lines.push(
      `  ${dotString(row.node.key)} [label=${dotString(label)}${row.head ? ", style=bold, color=green" : ""}];`,
    );
  }
  for (const edge of layout.edges) {
    lines.push(`  ${dotString(layout.rows[edge.from]!.node.key)} -> ${dotString(layout.rows[edge.to]!.node.key)};`);
  }
  lines.push("}");
  return lines.join("\n") + "\n";
}

/**
 * Where `hyperlog log` reads and writes.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { type LogIO, logCommand, parseLogArgs } from "./cli-log.ts";
 * const log = new Hyperlog({ valueEncoding: "json" });
 * await log.append("only");
 * let out = "";
 * const io: LogIO = { stdout: (text) => void (out += text), openLog: () => Promise.resolve(log), color: false, token: undefined };
 * console.assert((await logCommand(parseLogArgs([]), io)) === 0 && out.includes('"only"'), out);
 * console.assert(log.closed, "the command closes the log it opened");
 * ```
 */
export interface LogIO {
  /** Writes to standard output. */
  stdout: (text: string) => void;
  /** Opens the local log (closed by the command). */
  openLog: () => Promise<Hyperlog<unknown>>;
  /** Colour by default (standard output is a terminal and NO_COLOR is unset). */
  color: boolean;
  /** The token from the environment (HYPERLOG_TOKEN). */
  token: string | undefined;
  /** `fetch`, for a relay (default: the global one). */
  fetch?: typeof fetch;
}

const paint = (on: boolean, code: string, text: string): string => on ? `\x1b[${code}m${text}\x1b[0m` : text;

/**
 * Runs `hyperlog log` with parsed options; resolves with the exit status.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { logCommand, parseLogArgs } from "./cli-log.ts";
 * const log = new Hyperlog({ valueEncoding: "json" });
 * const a = await log.append("first");
 * await log.add([a.key], "second");
 * let out = "";
 * await logCommand(parseLogArgs(["--graph"]), {
 *   stdout: (text) => void (out += text),
 *   openLog: () => Promise.resolve(log),
 *   color: false,
 *   token: undefined,
 * });
 * console.assert(/^\* [0-9a-f]{8} \(head\) "second"\n\* [0-9a-f]{8} "first"\n$/.test(out), out);
 * ```
 */
export async function logCommand(options: LogOptions, io: LogIO): Promise<number> {
  let nodes: Shown[];
  if (options.url !== undefined) {
    nodes = await relayNodes(options.url, { ...options, token: options.token ?? io.token }, io.fetch ?? fetch);
  } else {
    const log = await io.openLog();
    try {
      nodes = await localNodes(log, options);
    } finally {
      await log.close();
    }
  }
  if (options.dot) {
    io.stdout(dotGraph(nodes));
    return 0;
  }
  const color = options.color ?? io.color;
  const label = (row: DagRow<Shown>) => {
    const node = row.node;
    let text = paint(color, "33", node.key.slice(0, 8));
    if (row.head) text += " " + paint(color, "1;32", "(head)");
    if (node.identity !== undefined) text += " " + paint(color, "36", `[${node.identity.slice(0, 8)}]`);
    text += " " + node.preview;
    if (row.outside > 0) text += paint(color, "2", ` (+${row.outside} older)`);
    return text;
  };
  const lines = graphLines(layoutDag(nodes), label, { graph: options.graph, color });
  if (lines.length > 0) io.stdout(lines.join("\n") + "\n");
  return 0;
}
