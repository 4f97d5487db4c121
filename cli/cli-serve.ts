/**
 * The relay's commands: `hyperlog serve` (the relay on this machine, its settings from options, files and the
 * environment) and `hyperlog token create` (a signed capability token).
 *
 * @module
 */
import { type Parsed, UsageError } from "./cli-args.ts";
import type { FullCliIO } from "./io.ts";
import { SERVE_SETTINGS } from "../worker/serve-settings.ts";

/** Secret settings: also read from a file (`--read-token-file FILE`), and some only from a file. */
const SECRETS: Readonly<Record<string, "file" | "file only">> = {
  READ_TOKEN: "file",
  WRITE_TOKEN: "file",
  ADMIN_TOKEN: "file",
  METRICS_TOKEN: "file only",
  TOKEN_SECRET: "file only",
};

/**
 * The options of `hyperlog serve`, each with the setting it sets (none for its own): every setting of the relay as
 * `--kebab-case` (`MAX_FRAME_BYTES` is `--max-frame-bytes`), secrets also as `--...-file`.
 */
const SERVE_OPTIONS: Readonly<Record<string, string>> = (() => {
  const options: Record<string, string> = { "--port": "", "--host": "", "--storage": "" };
  for (const name of SERVE_SETTINGS) {
    const option = `--${name.toLowerCase().replaceAll("_", "-")}`;
    if (SECRETS[name] !== "file only") options[option] = name;
    if (SECRETS[name] !== undefined) options[`${option}-file`] = name;
  }
  return options;
})();

/** `hyperlog serve`: the relay on this machine, until SIGINT or SIGTERM (or `io.signal`, for tests). */
export async function serve(io: FullCliIO, parsed: Parsed, argv: readonly string[]): Promise<number> {
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
export async function token(io: FullCliIO, parsed: Parsed): Promise<number> {
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
