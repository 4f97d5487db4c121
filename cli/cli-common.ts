/**
 * What the commands share: opening the log in its directory, writing lines to stdout with backpressure, and
 * telling a reader that has gone (`hyperlog ls | head -1`) from a failure.
 *
 * @module
 */
import { Hyperlog } from "../src/log.ts";
import type { FullCliIO } from "./io.ts";

/** True for the error of a write to a pipe whose reader has gone (`hyperlog ls | head -1`). */
export function isBrokenPipe(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "EPIPE";
}

/** How much output goes out in one write: lines are gathered up to this many characters. */
const CHUNK_CHARS = 64 * 1024;

/**
 * Writes one line per item on stdout, gathered into chunks of about 64 KiB, waiting for each write (so a slow
 * reader holds the command back instead of the output piling up in memory).
 */
export async function writeLines<T>(
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

/** Opens the log in `dir` (json values) and waits until it is ready. */
export async function openLog(io: FullCliIO, dir: string): Promise<Hyperlog<unknown>> {
  const log = new Hyperlog(await io.openStorage(dir), { valueEncoding: "json" });
  await log.ready();
  return log;
}

/** A node as one JSON line. */
export function nodeJson(node: object): string {
  return JSON.stringify(node);
}

/** Runs `use` on the log in `dir`, and closes the log however `use` ends. */
export async function withLog<R>(io: FullCliIO, dir: string, use: (log: Hyperlog<unknown>) => Promise<R>): Promise<R> {
  const log = await openLog(io, dir);
  try {
    return await use(log);
  } finally {
    await log.close();
  }
}
