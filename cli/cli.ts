/**
 * The `hyperlog` command line: the seed's slides, made real. Its commands reach the outside world only through a
 * {@link CliIO} (io.ts); the real process's side of that seam is process-io.ts, the one runtime-bound file here.
 * This file is the command table and the log's own commands (add, ls, heads, get, import); the others live beside
 * it: arguments (cli-args.ts), help (cli-help.ts), sync (cli-sync.ts), kv (cli-kv.ts), serve and token
 * (cli-serve.ts), log (cli-log.ts), what they share (cli-common.ts).
 *
 * @module
 */
import { importHyperlog4 } from "../compat/import.ts";
import { isKey } from "../src/keys.ts";
import type { LevelDatabase } from "../storage/level.ts";
import { expectArgs, parse, type Parsed, UsageError, valueOf } from "./cli-args.ts";
import { isBrokenPipe, nodeJson, openLog, withLog, writeLines } from "./cli-common.ts";
import { HELP, USAGE } from "./cli-help.ts";
import { kv } from "./cli-kv.ts";
import { logCommand, parseLogArgs } from "./cli-log.ts";
import { serve, token } from "./cli-serve.ts";
import { sync, syncRelay } from "./cli-sync.ts";
import type { CliIO, FullCliIO } from "./io.ts";
import { processIO, withProcessIO } from "./process-io.ts";

export type { CliIO } from "./io.ts";

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
        await withLog(io, parsed.dir, async (log) => {
          const node = await log.add(links, value);
          await io.stdout(`${node.key}\n`);
        });
        return 0;
      }
      case "ls": {
        expectArgs(parsed, 0, 0, "no arguments");
        await withLog(io, parsed.dir, async (log) => {
          await writeLines(io, log.createReadStream(), nodeJson);
        });
        return 0;
      }
      case "heads": {
        expectArgs(parsed, 0, 0, "no arguments");
        await withLog(io, parsed.dir, async (log) => {
          await writeLines(io, await log.heads(), (node) => node.key);
        });
        return 0;
      }
      case "get": {
        expectArgs(parsed, 1, 1, "one KEY");
        const key = parsed.args[0]!;
        if (!isKey(key)) {
          throw new UsageError(`KEY ${JSON.stringify(key)} is not a node key (64 lower-case hex characters)`);
        }
        await withLog(io, parsed.dir, async (log) => {
          await io.stdout(nodeJson(await log.get(key)) + "\n");
        });
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
        return await sync(io, parsed);
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
