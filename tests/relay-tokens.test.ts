/**
 * Signed capability tokens (`worker/tokens.ts`, `hyperlog token create`): a token names logs (exact or `prefix*`),
 * a role and an expiry, and the relay checks it at the edge: on `hyperlog serve` (Node, Deno, Bun) and, on Node, on
 * the Worker in Miniflare.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { Hyperlog } from "../mod.ts";
import { main } from "../cli/cli.ts";
import { openSqlite } from "../storage/sqlite-open.ts";
import { setEventSink } from "../worker/events.ts";
import { CLOSE } from "../worker/limits.ts";
import { serve } from "../worker/serve.ts";
import { createToken } from "../worker/tokens.ts";
import { connect, json, nodeMessage } from "./_relay-clients.ts";
import { servedRelay } from "./_served.ts";

const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const SECRET = "0123456789abcdef".repeat(4);

/** Mints a token through the command, as an operator would. */
async function mint(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io = {
    stdout: (t: string) => void (out += t),
    stderr: (t: string) => void (err += t),
    openStorage: openSqlite,
  };
  const previous = process.env.TOKEN_SECRET;
  process.env.TOKEN_SECRET = SECRET;
  try {
    const code = await main(["token", "create", ...args], io);
    return { code, out: out.trim(), err };
  } finally {
    if (previous === undefined) delete process.env.TOKEN_SECRET;
    else process.env.TOKEN_SECRET = previous;
  }
}

/** The checks, against a relay at `url` whose TOKEN_SECRET is {@link SECRET} and that has no static token. */
async function checks(url: string): Promise<void> {
  const writer = await mint(["--log", "chat-*", "--role", "write", "--ttl", "1h"]);
  assert.equal(writer.code, 0, writer.err);
  const reader = (await mint(["--log", "chat-1", "--role=read", "--ttl=10m"])).out;
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

  const log = new Hyperlog();
  await log.append("with a capability");
  const client = connect(url, "chat-1", { log, live: false, token: writer.out });
  assert.equal((await client.session.done).nodesSent, 1);
  assert.equal((await json(await fetch(`${url}/logs/chat-1`, bearer(reader)))).length, 1, "the read token reads");

  const other = await fetch(`${url}/logs/notes`, bearer(writer.out));
  assert.equal(other.status, 403, "chat-* does not open notes");
  assert.match(String((await json(other)).error), /does not open log "notes"/);
  await assert.rejects(connect(url, "notes", { token: writer.out, live: false }).session.done);

  const readOnly = connect(url, "chat-1", { token: reader });
  await readOnly.session.synced;
  const own = await readOnly.log.append("not allowed");
  // A client told it may only read pushes nothing: send the node by hand, as a hostile one would.
  readOnly.socket.send(await nodeMessage(readOnly.log, own.key));
  assert.equal((await readOnly.closed).code, CLOSE.READ_ONLY, "a read token cannot write");

  const expired = await createToken(SECRET, { logs: ["chat-*"], role: "write", expires: Date.now() - 1000 });
  assert.equal((await fetch(`${url}/logs/chat-1`, bearer(expired))).status, 401, "expired");
  const forged = await createToken("f".repeat(64), { logs: ["*"], role: "write", expires: Date.now() + 60_000 });
  assert.equal((await fetch(`${url}/logs/chat-1`, bearer(forged))).status, 401, "another secret");
  assert.equal((await fetch(`${url}/logs/chat-1`)).status, 401, "no token: TOKEN_SECRET alone closes the relay");
  assert.equal((await fetch(`${url}/logs/chat-1`, bearer("a.b.c"))).status, 401, "garbage in a JWT's shape");
}

describe("capability tokens: hyperlog token create", () => {
  it("needs the secret, a role, a duration and a log name or prefix", async () => {
    assert.equal((await mint(["--log", "chat-*", "--role", "admin", "--ttl", "1h"])).code, 2);
    assert.equal((await mint(["--log", "chat-*", "--role", "read", "--ttl", "forever"])).code, 2);
    assert.equal((await mint(["--log", "bad name", "--role", "read", "--ttl", "1h"])).code, 2);
    assert.equal((await mint(["--role", "read", "--ttl", "1h"])).code, 2);
    const { code, out } = await mint(["--log", "a", "--log", "b-*", "--role", "read", "--ttl", "90s"]);
    assert.equal(code, 0);
    const payload = JSON.parse(atob(out.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")));
    assert.deepEqual(payload.logs, ["a", "b-*"]);
    assert.ok(Math.abs(payload.exp - (Date.now() / 1000 + 90)) < 5);
  });
});

describe(`capability tokens on hyperlog serve (${runtime})`, () => {
  let restore: () => void;
  before(() => {
    restore = setEventSink(() => {});
  });
  const relay = servedRelay("hyperlog-tokens-", { TOKEN_SECRET: SECRET });
  after(() => restore());

  it("a token opens the logs it names with its role, until it expires", () => checks(relay.url()));

  it("a short TOKEN_SECRET stops the relay at start", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hyperlog-tokens-short-"));
    await assert.rejects(serve({ dir, port: 0, settings: { TOKEN_SECRET: "short" } }), /at least 32 characters/);
    rmSync(dir, { recursive: true, force: true });
  });
});

if (runtime === "node") {
  describe("capability tokens on the relay worker (workerd through Miniflare)", () => {
    let relay: { url: string; stop(): Promise<void> };
    before(async () => {
      const { startRelay } = await import("./fixtures/relay-miniflare.ts");
      relay = await startRelay({ kv: false, vars: { TOKEN_SECRET: SECRET } });
    });
    after(async () => {
      await relay?.stop();
    });

    it("a token opens the logs it names with its role, until it expires", () => checks(relay.url));
  });
}
