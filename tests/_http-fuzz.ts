/**
 * Malformed HTTP requests over raw TCP, for the relay's fuzz test (`tests/relay-fuzz.test.ts`) and the fuzz script
 * (`scripts/fuzz-relay.ts`): request lines, Host headers, header lines and WebSocket upgrades that a hostile client
 * could send, each built so that its right answer is a 4xx (or a closed connection), and a runner that sends them
 * to a host and tallies the status codes it answers.
 *
 * @module
 */
import { connect as tcpConnect } from "node:net";

/** A small seeded generator (mulberry32): the same seed gives the same requests on every runtime. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOSTS = [
  "[",
  "a b",
  "",
  "[::1",
  "]",
  "localhost:99999",
  "user@host",
  "h%zz",
  "x".repeat(300),
  "a/b",
  "exa mple.com:80",
  "\u00ff\u00fe",
  "[fe80::1%eth0]",
  "localhost:-1",
  "?",
  "#",
  "\\",
];
/** Targets whose right answer is a 4xx: bad names, keys, since, routes, unknown logs, odd request targets. */
const TARGETS = [
  "/nope",
  "/logs/bad%20name",
  "/logs/%ZZ",
  "/logs/%",
  "/logs/../../etc/passwd",
  "/logs/a%2F..%2Fb/ws",
  "/logs/x/nodes/ZZ",
  "/logs/x/nodes/%00",
  "/logs/x/changes?since=-1",
  "/logs/x/changes?since=%ZZ",
  "/logs/x/changes?since=99999999999999999999",
  "/logs/" + "n".repeat(200),
  "/logs/constructor/nodes/zz",
  "/logs/__proto__/changes?since=x",
  "/logs/x/ws",
  "/logs/x/debug/forget",
  "/%",
  "/%%%",
  "//evil.example/logs",
  "*",
  "http://[/nope",
  "http://a b/logs/x/nodes/ZZ",
  "x",
  "/logs/x/nodes/" + "g".repeat(64),
  "/logs/\u00ff",
  "/logs/x?token=%",
  "/" + "a".repeat(9000),
];
const METHODS = ["GET", "POST", "PUT", "DELETE", "BREW", "G E T", "", "get", "OPTIONS\u00ff", "CONNECT"];
const VERSIONS = ["HTTP/1.1", "HTTP/1.0", "HTTP/9.9", "HTTP/1.1x", "HTTP/", "", "http/1.1", "HTTP/1.1 extra"];
const BAD_HEADERS = [
  "no colon here",
  " leading-space: x",
  "bad name: x",
  "x-ctl: a\u0000b",
  "content-length: -1",
  "content-length: 5\r\ncontent-length: 6",
  "transfer-encoding: bogus",
  "transfer-encoding: chunked\r\ncontent-length: 3",
  "authorization: Bearer",
  "authorization: Bearer \u00ff\u00fe",
  "sec-websocket-protocol: bearer.",
  "sec-websocket-protocol: ,,,",
  "x-long: " + "y".repeat(20_000),
  ": empty-name",
  "expect: 100-continue",
];
const UPGRADE_KEYS = [
  "",
  "short",
  "!!!!",
  "dGhlIHNhbXBsZSBub25jZQ",
  "x".repeat(200),
  "=====",
  "dGhlIHNhbXBsZSBub25jZQ==",
];
const UPGRADE_VERSIONS = ["13", "8", "", "99", "abc"];

/** One malformed request, as the bytes sent (latin1). */
export interface FuzzRequest {
  /** The request's bytes, as a latin1 string. */
  text: string;
  /** What kind of malformation it carries (for the tally). */
  kind: string;
}

function pick<T>(rand: () => number, list: readonly T[]): T {
  return list[Math.floor(rand() * list.length)]!;
}

/** A request that is malformed in one of several ways (chosen by `rand`). */
export function fuzzRequest(rand: () => number): FuzzRequest {
  const target = pick(rand, TARGETS);
  const r = rand();
  if (r < 0.2) {
    // A bad Host on a request that is otherwise fine (the crash of issue 13).
    const path = rand() < 0.5 ? "/health" : "/logs/x/ws";
    const upgrade = path.endsWith("/ws")
      ? "upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-version: 13\r\n" +
        "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      : "";
    // The health route answers 200 when the server ignores the Host: allowed only with a sane Host, so that the
    // only 200s counted here are answers to requests that a server may fairly take.
    return { text: `GET ${path} HTTP/1.1\r\nHost: ${pick(rand, HOSTS)}\r\n${upgrade}\r\n`, kind: "host" };
  }
  if (r < 0.4) {
    return {
      text: `${pick(rand, METHODS)} ${target} ${pick(rand, VERSIONS)}\r\nHost: localhost\r\n\r\n`,
      kind: "request-line",
    };
  }
  if (r < 0.55) {
    return { text: `GET ${target} HTTP/1.1\r\nHost: localhost\r\n${pick(rand, BAD_HEADERS)}\r\n\r\n`, kind: "header" };
  }
  if (r < 0.8) {
    const path = rand() < 0.7 ? "/logs/x/ws" : target;
    const lines = [
      `GET ${path} HTTP/1.1`,
      `Host: ${rand() < 0.7 ? "localhost" : pick(rand, HOSTS)}`,
      `Upgrade: ${rand() < 0.8 ? "websocket" : pick(rand, ["", "h2c", "websocket, x", "\u00ff"])}`,
      `Connection: ${rand() < 0.8 ? "Upgrade" : pick(rand, ["close", "", "keep-alive"])}`,
      `Sec-WebSocket-Version: ${pick(rand, UPGRADE_VERSIONS)}`,
      // Never a valid key: the handshake must fail (a valid key is 16 bytes in base64).
      `Sec-WebSocket-Key: ${pick(rand, UPGRADE_KEYS.slice(0, -1))}`,
    ];
    if (rand() < 0.3) {
      lines.push(`Sec-WebSocket-Protocol: ${pick(rand, ["bearer.x", "hyperlog, bearer.", ",", "a b"])}`);
    }
    if (rand() < 0.3) lines.push(pick(rand, BAD_HEADERS));
    return { text: lines.join("\r\n") + "\r\n\r\n", kind: "upgrade" };
  }
  // Random bytes flipped in a request whose right answer is a 4xx.
  const base = `GET ${pick(rand, TARGETS.slice(0, 14))} HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n`;
  const chars = base.split("");
  const flips = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < flips; i++) {
    const at = Math.floor(rand() * (chars.length - 4));
    chars[at] = String.fromCharCode(Math.floor(rand() * 256));
  }
  return { text: chars.join(""), kind: "bytes" };
}

/**
 * What a host answered, counted by status code (`none` for a connection closed without an answer); a code is
 * suffixed with `*` when the answer came from the runtime's own HTTP layer rather than the relay's code (the relay
 * answers JSON; a runtime's parser refusing a request does not).
 */
export type Tally = Map<string, number>;

/**
 * Sends one request on its own connection and resolves with the status code of the answer (suffixed `*` when the
 * answer is not the relay's JSON), or `none` when the server closed without one (or sent no status line within
 * `quietMs`, after which the client ends its side and waits as long again).
 */
export function sendRaw(port: number, text: string, quietMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ port, host: "127.0.0.1" });
    let got = "";
    let done = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = (result: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    socket.setNoDelay(true);
    const ended = () => finish(statusOf(got) ?? (got.startsWith("HTTP/") ? statusOf(got + "\r\n\r\n")! : "none"));
    socket.on("error", ended);
    socket.on("close", ended);
    socket.on("data", (chunk: Uint8Array) => {
      got += Buffer.from(chunk).toString("latin1");
      const status = statusOf(got);
      if (status !== undefined) finish(status);
    });
    socket.on("connect", () => {
      socket.write(Buffer.from(text, "latin1"));
      timer = setTimeout(() => {
        socket.end();
        timer = setTimeout(ended, quietMs);
      }, quietMs);
    });
  });
}

/**
 * The status of the first final answer in `text` (an interim 100 Continue is skipped), once its head is in; `*`
 * marks an answer without a JSON content type (not the relay's own).
 */
function statusOf(text: string): string | undefined {
  for (;;) {
    const end = text.indexOf("\r\n\r\n");
    if (end === -1) {
      return text.length > 65536 || (text.length > 16 && !text.startsWith("HTTP/")) ? "garbage" : undefined;
    }
    const head = text.slice(0, end);
    const match = /^HTTP\/\d\.\d (\d{3})/.exec(head);
    if (match === null) return "garbage";
    const status = match[1]!;
    if (!status.startsWith("1") || status === "101") {
      return /\r\ncontent-type: *application\/json/i.test(head) || status === "101" ? status : `${status}*`;
    }
    text = text.slice(end + 4);
  }
}

/**
 * Whether an answer is allowed: the relay's own answers are 4xx; the runtime's HTTP layer may refuse a request with
 * any status from 400 up (Bun's parser answers 505 to a bad version, workerd's 500 or 501), never accept one.
 */
export function allowed(status: string): boolean {
  if (status === "none") return true;
  if (status.endsWith("*")) return Number(status.slice(0, 3)) >= 400;
  return /^4\d\d$/.test(status);
}

/**
 * Sends `count` requests from `fuzzRequest(random(seed))`, `concurrency` at a time, and tallies the answers; `bad`
 * holds up to 20 requests answered with a status not {@link allowed} (with the status), for the failure message.
 */
export async function fuzz(
  port: number,
  count: number,
  options: { seed?: number; concurrency?: number } = {},
): Promise<{ tally: Tally; bad: string[] }> {
  const rand = random(options.seed ?? 13);
  const requests = Array.from({ length: count }, () => fuzzRequest(rand));
  const tally: Tally = new Map();
  const bad: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < requests.length) {
      const request = requests[next++]!;
      const status = await sendRaw(port, request.text);
      tally.set(status, (tally.get(status) ?? 0) + 1);
      if (!allowed(status) && bad.length < 20) {
        bad.push(`${status} for ${request.kind}: ${JSON.stringify(request.text.slice(0, 200))}`);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 32 }, worker));
  return { tally, bad };
}
