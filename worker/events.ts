/**
 * The relay's log lines: one JSON object per line, on stderr for `hyperlog serve` and on the console for the Worker
 * (`console.error`, which is stderr on Node, Deno and Bun). Every refusal (an HTTP 4xx/5xx answer, a socket closed
 * with a code of its own) and every internal failure writes one. No token is ever written: the fields are chosen by
 * the callers, and {@link logEvent} drops any field named like a secret.
 *
 * @module
 */

/** Field names never written, whatever a caller passes. */
const SECRET = /token|secret|authorization|password/i;

/** Where the lines go: `console.error` unless replaced (tests collect them with {@link setEventSink}). */
let sink: (line: string) => void = (line) => console.error(line);

/**
 * Writes one event as a JSON line: `{"time": ISO, "event": NAME, ...fields}`.
 *
 * @example
 * ```ts
 * import { logEvent, setEventSink } from "./events.ts";
 * const lines: string[] = [];
 * const restore = setEventSink((line) => void lines.push(line));
 * logEvent("refused", { status: 401, token: "never written" });
 * restore();
 * console.assert(JSON.parse(lines[0]!).status === 401 && !lines[0]!.includes("never written"));
 * ```
 */
export function logEvent(event: string, fields: Record<string, unknown> = {}): void {
  const out: Record<string, unknown> = { time: new Date().toISOString(), event };
  for (const [name, value] of Object.entries(fields)) if (!SECRET.test(name)) out[name] = value;
  try {
    sink(JSON.stringify(out));
  } catch {
    // A log line never fails the request.
  }
}

/**
 * Sends the lines to `next` instead (for tests); returns a function that restores the previous sink.
 *
 * @example
 * ```ts
 * import { setEventSink } from "./events.ts";
 * const restore = setEventSink(() => {});
 * restore();
 * ```
 */
export function setEventSink(next: (line: string) => void): () => void {
  const previous = sink;
  sink = next;
  return () => void (sink = previous);
}

/**
 * What an internal failure shows in a log line (for the operator, never in a response): its name and message.
 *
 * @example
 * ```ts
 * import { describeError } from "./events.ts";
 * console.assert(describeError(new RangeError("Too deep")) === "RangeError: Too deep");
 * ```
 */
export function describeError(error: unknown): string {
  const e = error as { name?: unknown; message?: unknown };
  const name = typeof e?.name === "string" ? e.name : "Error";
  const message = typeof e?.message === "string" ? e.message : String(error);
  return `${name}: ${message}`;
}
