/**
 * The seam between the `hyperlog` command and the process it runs in: everything the commands read from or write
 * to the outside world (streams, environment, files, signals, child processes) goes through a {@link CliIO}.
 * `process-io.ts` fills it in from the real process (Node, Deno and Bun all provide the `node:` modules it uses);
 * a test passes its own, and whatever it leaves out comes from the process.
 *
 * @module
 */
import type { Storage } from "../src/storage.ts";

/**
 * Where a command reads and writes: its streams and how it opens a store. A write may return a promise: the command
 * waits for it before writing more (backpressure from a slow reader), and a write that fails with an `EPIPE` error
 * (the reader has gone, as in `hyperlog ls | head -1`) ends the command quietly with status 0.
 *
 * @example
 * ```ts
 * import { MemoryStorage } from "../mod.ts";
 * import { main } from "./cli.ts";
 * import type { CliIO } from "./io.ts";
 * let out = "";
 * const storage = new MemoryStorage();
 * const io: CliIO = { stdout: (t) => void (out += t), stderr: () => {}, openStorage: async () => storage };
 * console.assert((await main(["add", "hello"], io)) === 0 && /^[0-9a-f]{64}\n$/.test(out));
 * ```
 */
export interface CliIO {
  /** Standard output. */
  stdout: (text: string) => void | Promise<void>;
  /** Standard error. */
  stderr: (text: string) => void | Promise<void>;
  /** Opens the store in a directory. */
  openStorage: (dir: string) => Promise<Storage>;
  /** Stops a long-running command (`serve`) when aborted; without it, SIGINT or SIGTERM does. */
  signal?: AbortSignal;
  /** The environment (`HYPERLOG_TOKEN`, `TOKEN_SECRET`, the relay's settings, `NO_COLOR`). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Whether standard output and standard error are terminals (colour, progress lines). */
  tty?: { readonly stdout: boolean; readonly stderr: boolean };
  /** Standard input and output as byte streams, for `sync` over a pipe (`dupsh`, `nc`). */
  byteStreams?: () => { input: ReadableStream<Uint8Array>; output: WritableStream<Uint8Array> };
  /** Reads a text file (`serve --...-file FILE`); throws when it cannot. */
  readTextFile?: (path: string) => string | Promise<string>;
  /** Runs two shell commands with each one's output piped into the other's input; resolves with the exit status. */
  dupsh?: (a: string, b: string) => Promise<number>;
  /** Calls `stop` once on SIGINT or SIGTERM (used by `serve` when there is no `signal`). */
  onInterrupt?: (stop: () => void) => void;
}

/** A {@link CliIO} with every part filled in. */
export type FullCliIO = Required<Omit<CliIO, "signal">> & Pick<CliIO, "signal">;
