/**
 * The command line's arguments: the global options, each command's known flags, and the errors that print a
 * command's usage.
 *
 * @module
 */
import type { ReplicationMode } from "../src/replicate.ts";

/** An error that should print the usage (of `command` when known) and exit with status 2. */
export class UsageError extends Error {
  /** The command whose usage to print; without it, the whole usage. */
  command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
}

/** The command line, parsed: the log's directory, the command, its arguments and flags. */
export interface Parsed {
  dir: string;
  command: string | undefined;
  args: string[];
  flags: Set<string>;
  help: boolean;
}

/** The flags each command knows. */
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

/** The flags each kv subcommand knows. */
export const KV_FLAGS: Record<string, readonly string[]> = {
  put: ["--json"],
  get: [],
  del: [],
  ls: [],
  history: [],
  sync: ["--live", "--push", "--pull", "--hyperlog4"],
};

/** Parses the command line; throws a {@link UsageError} for an unknown command or option. */
export function parse(argv: readonly string[]): Parsed {
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

/** Throws a {@link UsageError} unless the command got from `min` to `max` arguments. */
export function expectArgs(parsed: Parsed, min: number, max: number, what: string): void {
  if (parsed.args.length < min || parsed.args.length > max) {
    throw new UsageError(`The ${parsed.command} command takes ${what}`);
  }
}

/** The replication mode of --push and --pull (neither: sync both ways). */
export function syncMode(flags: ReadonlySet<string>): ReplicationMode {
  if (flags.has("--push") && flags.has("--pull")) {
    throw new UsageError("The options --push and --pull cannot be used together; leave both out to sync both ways");
  }
  return flags.has("--push") ? "push" : flags.has("--pull") ? "pull" : "sync";
}

/** A value given on the command line: the text itself, or with --json the JSON it holds. */
export function valueOf(text: string, flags: ReadonlySet<string>): unknown {
  if (!flags.has("--json")) return text;
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`The option --json was given but ${JSON.stringify(text)} is not valid JSON`);
  }
}
