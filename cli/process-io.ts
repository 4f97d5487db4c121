/**
 * The real process's side of the CLI seam ({@link CliIO}): its streams, environment, files, signals and child
 * processes, through the `node:` modules that Node, Deno and Bun all provide. The only runtime-bound file of cli/.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { Readable, Writable } from "node:stream";
import type { CliIO, FullCliIO } from "./io.ts";

let made: FullCliIO | undefined;

/**
 * The process's I/O, with SQLite storage in the directory (made once: its writers hold listeners on the process's
 * streams).
 *
 * @example
 * ```ts
 * import { processIO } from "./process-io.ts";
 * const io = processIO();
 * console.assert(io === processIO() && typeof io.env === "object" && typeof io.tty.stdout === "boolean");
 * ```
 */
export function processIO(): FullCliIO {
  made ??= {
    stdout: streamWriter(process.stdout),
    stderr: streamWriter(process.stderr),
    openStorage: async (dir) => {
      mkdirSync(resolve(dir), { recursive: true });
      const { openSqlite } = await import("../storage/sqlite-open.ts");
      return await openSqlite(join(dir, "log.db"));
    },
    env: process.env,
    tty: { stdout: process.stdout.isTTY === true, stderr: process.stderr.isTTY === true },
    byteStreams: () => ({
      input: Readable.toWeb(process.stdin) as unknown as ReadableStream<Uint8Array>,
      output: Writable.toWeb(process.stdout) as WritableStream<Uint8Array>,
    }),
    readTextFile: (path) => readFileSync(path, "utf8"),
    dupsh,
    onInterrupt: (stop) => {
      process.once("SIGINT", () => stop());
      process.once("SIGTERM", () => stop());
    },
  };
  return made;
}

/**
 * `io` with what it leaves out taken from the process.
 *
 * @example
 * ```ts
 * import { withProcessIO } from "./process-io.ts";
 * const io = withProcessIO({ stdout: () => {}, stderr: () => {}, openStorage: () => Promise.reject(), env: {} });
 * console.assert(io.env.HOME === undefined && typeof io.dupsh === "function");
 * ```
 */
export function withProcessIO(io: CliIO): FullCliIO {
  const full = processIO();
  const own = Object.fromEntries(Object.entries(io).filter(([, value]) => value !== undefined));
  return { ...full, ...own } as FullCliIO;
}

/**
 * Runs `a` and `b` (each with `sh -c`) with A's stdout piped into B's stdin and B's stdout into A's stdin; resolves
 * with the first non-zero exit status of the two, or 0. The two children share OS pipes: B is started with two
 * pipes and A is given their other ends, so the bytes of a sync go from one process to the other without passing
 * through this one (it only waits). Bun cannot give a child's pipe to another child (its streams have no file
 * descriptor), so there dupsh relays the bytes itself, as it did everywhere before.
 */
function dupsh(a: string, b: string): Promise<number> {
  return new Promise((done) => {
    // `sh -c` rather than `shell: true`: Deno's shell option mangles quoted words.
    const piped = { stdio: ["pipe", "pipe", "inherit"] as ["pipe", "pipe", "inherit"] };
    const second = spawn("/bin/sh", ["-c", b], piped);
    let first: ReturnType<typeof spawn>;
    try {
      first = spawn("/bin/sh", ["-c", a], { stdio: [second.stdout, second.stdin, "inherit"] });
      // The children hold the pipes' ends now; this process's copies would keep them open past a child's exit.
      second.stdout.destroy();
      second.stdin.destroy();
    } catch {
      const relayed = spawn("/bin/sh", ["-c", a], piped);
      // A peer that exits early closes its end; writing to it then must not crash dupsh.
      for (const child of [relayed, second]) child.stdin.on("error", () => {});
      relayed.stdout.pipe(second.stdin);
      second.stdout.pipe(relayed.stdin);
      first = relayed;
    }
    const codes: (number | undefined)[] = [undefined, undefined];
    let exited = 0;
    const onExit = (i: number) => (code: number | null, signal: NodeJS.Signals | null) => {
      codes[i] = code ?? (signal !== null ? 128 + 1 : 1);
      if (++exited === 2) done(codes.find((c) => c !== 0) ?? 0);
    };
    first.on("exit", onExit(0));
    second.on("exit", onExit(1));
    for (const child of [first, second]) {
      child.on("error", (err) => {
        process.stderr.write(`hyperlog dupsh: ${err.message}\n`);
      });
    }
  });
}

/**
 * A write to a process stream that waits while the stream's buffer is full (its 'drain' event), so output to a slow
 * pipe is held back rather than piled up in memory. Once the stream has failed (EPIPE: the reader has gone; ENOSPC),
 * every write throws that error, which ends the command; the stream's error is handled here, so it is no crash.
 */
function streamWriter(stream: NodeJS.WriteStream): (text: string) => void | Promise<void> {
  let failed: Error | undefined;
  stream.on("error", (error: Error) => {
    failed ??= error;
  });
  return (text) => {
    if (failed !== undefined) throw failed;
    try {
      if (stream.write(text)) return;
    } catch (error) {
      // Deno throws some write errors (ENOSPC) instead of emitting them, and the stream then never drains: mark
      // it destroyed, so nothing waits for it.
      failed ??= error as Error;
      stream.destroy(failed);
      throw failed;
    }
    return new Promise<void>((resolve, reject) => {
      const settle = () => {
        stream.off("drain", settle);
        stream.off("error", settle);
        stream.off("close", settle);
        if (failed !== undefined) reject(failed);
        else resolve();
      };
      stream.on("drain", settle);
      stream.on("error", settle);
      stream.on("close", settle);
    });
  };
}
