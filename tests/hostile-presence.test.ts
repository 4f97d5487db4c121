/**
 * Presence as a hostile client uses it: one socket floods state updates to a log with many watchers, and a watcher
 * stops reading. The relay's log-wide fan-out budget (`PRESENCE_FANOUT_BYTES`) caps what it sends per second, the
 * others still get the flooder's latest state (coalesced), and a socket that does not read makes nothing pile up
 * (`buffered_bytes` on `/metrics` stays under the high-water mark), then gets the latest state once it reads again.
 * Against `hyperlog serve` (every runtime) and the Worker in Miniflare (Node only; workerd does not tell the Durable
 * Object what a socket buffers, so the paused reader is a serve case).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { PRESENCE_HIGH_WATER } from "../worker/presence-hub.ts";
import { rawSocket } from "./_hostile.ts";
import { nodeOnly } from "./_helpers.ts";
import { type ServedRelay, servedRelay } from "./_served.ts";

/** A WebSocket that speaks presence only and counts what it receives. */
class Watcher {
  readonly socket: WebSocket;
  readonly opened: Promise<void>;
  /** Text bytes received about the peer `about` (once set). */
  bytesAbout = 0;
  /** Updates (and joins) received about `about`. */
  updatesAbout = 0;
  about: string | undefined;
  self: string | undefined;
  #latest: unknown;
  #waiters: (() => void)[] = [];
  constructor(base: string, log: string) {
    this.socket = new WebSocket(`${base.replace(/^http/, "ws")}/logs/${log}/ws?token=w`);
    this.opened = new Promise((resolve) => this.socket.addEventListener("open", () => resolve()));
    this.socket.addEventListener("message", (e) => {
      if (typeof e.data !== "string") return;
      const m = JSON.parse(e.data) as { t: string; peer?: string; state?: unknown };
      if (m.t === "welcome") this.self = m.peer;
      if (m.peer !== undefined && m.peer === this.about) {
        this.bytesAbout += new TextEncoder().encode(e.data).length;
        if (m.t === "join" || m.t === "update") {
          this.updatesAbout++;
          this.#latest = m.state;
        }
      }
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.socket.addEventListener("close", () => {
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }
  async send(message: unknown): Promise<void> {
    await this.opened;
    this.socket.send(JSON.stringify(message));
  }
  async welcomed(): Promise<string> {
    while (this.self === undefined) await this.#wait("the welcome");
    return this.self;
  }
  /** Resolves once the latest state of `about` matches. */
  async sees(match: (state: unknown) => boolean, what: string): Promise<void> {
    while (!match(this.#latest)) await this.#wait(what);
  }
  #wait(what: string): Promise<void> {
    if (this.socket.readyState >= 2) throw new Error(`The socket closed before ${what}`);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

const isLast = (state: unknown) => (state as { seq?: unknown } | undefined)?.seq === "last";

function scenarios(base: () => string, host: "serve" | "worker"): void {
  const open: Watcher[] = [];
  after(() => {
    for (const w of open) w.socket.close();
  });
  const watcher = (log: string) => {
    const w = new Watcher(base(), log);
    open.push(w);
    return w;
  };

  it("one socket flooding updates to 20 watchers: the relay sends at most the budget per second, coalesced, and the latest state arrives", async () => {
    const log = `${host}-flood`;
    const watchers = Array.from({ length: 20 }, () => watcher(log));
    for (const w of watchers) await w.send({ t: "watch" });
    await Promise.all(watchers.map((w) => w.welcomed()));
    const flooder = watcher(log);
    await flooder.send({ t: "watch" });
    const peer = await flooder.welcomed();
    for (const w of watchers) w.about = peer;
    const pad = "x".repeat(150);
    let bytesIn = 0;
    const started = Date.now();
    const updates = 300;
    for (let seq = 0; seq <= updates; seq++) {
      const text = JSON.stringify({ t: "set", state: { seq: seq === updates ? "last" : seq, pad } });
      bytesIn += text.length;
      flooder.socket.send(text);
    }
    await Promise.all(watchers.map((w) => w.sees(isLast, "the flooder's last state")));
    const seconds = (Date.now() - started) / 1000;
    const bytesOut = watchers.reduce((n, w) => n + w.bytesAbout, 0);
    const most = Math.max(...watchers.map((w) => w.updatesAbout));
    // The budget (BUDGET bytes a second, a second's worth at once) and one frame to each watcher beyond it.
    const frame = bytesOut / watchers.reduce((n, w) => n + w.updatesAbout, 0);
    assert.ok(
      bytesOut <= BUDGET * (seconds + 1) + frame * watchers.length,
      `${bytesOut} bytes out in ${seconds} s, over the budget of ${BUDGET} a second`,
    );
    assert.ok(most < updates / 2, `a watcher got ${most} of ${updates + 1} updates: they were not coalesced`);
    assert.ok(bytesOut < bytesIn * watchers.length / 2, `${bytesOut} bytes out for ${bytesIn} in`);
  });
}

/** The fan-out budget the suites run with (small, so that 20 watchers reach it at once). */
const BUDGET = 20_000;

/** `hyperlog serve` for this block: presence unthrottled per socket, `fanout` bytes a second for each log. */
function presenceServer(prefix: string, fanout: number): ServedRelay {
  return servedRelay(prefix, {
    WRITE_TOKEN: "w",
    METRICS_TOKEN: "m",
    PRESENCE_PER_SECOND: "100000",
    PRESENCE_FANOUT_BYTES: String(fanout),
    HELLO_TIMEOUT_MS: "120000",
  });
}

describe("hostile presence against hyperlog serve", () => {
  const relay = presenceServer("hyperlog-hostile-presence-", BUDGET);
  scenarios(relay.url, "serve");
});

nodeOnly("hostile presence against the relay worker", "Miniflare drives workerd from Node", () => {
  let relay: { url: string; stop(): Promise<void> };
  before(async () => {
    const { startRelay } = await import("./fixtures/relay-miniflare.ts");
    relay = await startRelay({
      vars: { WRITE_TOKEN: "w", PRESENCE_PER_SECOND: "100000", PRESENCE_FANOUT_BYTES: String(BUDGET) },
      kv: false,
    });
  });
  after(async () => {
    await relay.stop();
  });
  scenarios(() => relay.url, "worker");
});

describe("a paused presence reader on hyperlog serve (no budget in the way)", () => {
  const open: Watcher[] = [];
  after(() => {
    for (const w of open) w.socket.close();
  });
  const relay = presenceServer("hyperlog-paused-presence-", 1_000_000_000);
  const base = relay.url;
  const watcher = (log: string) => {
    const w = new Watcher(base(), log);
    open.push(w);
    return w;
  };
  it("a watcher that stops reading makes nothing pile up, and gets the latest state once it reads again", async () => {
    const log = "serve-paused";
    const paused = await rawSocket(`${base()}/logs/${log}/ws?token=w`);
    await paused.send(new TextEncoder().encode('{"t":"watch"}'), true);
    const reading = watcher(log);
    await reading.send({ t: "watch" });
    await reading.welcomed();
    // The paused socket's welcome (skipping the relay's binary HELLO) says it is a watcher now.
    for (;;) {
      const message = await paused.next();
      if (message[0] === 0x7b && new TextDecoder().decode(message).includes('"welcome"')) break;
    }
    paused.pause();
    const flooder = watcher(log);
    await flooder.send({ t: "watch" });
    reading.about = await flooder.welcomed();
    // 40 MB of states: more than the kernel's buffers of a loopback connection hold.
    const pad = "x".repeat(3900);
    const updates = 10_000;
    for (let seq = 0; seq <= updates; seq++) {
      flooder.socket.send(JSON.stringify({ t: "set", state: { seq: seq === updates ? "last" : seq, pad } }));
    }
    await reading.sees(isLast, "the flooder's last state");
    const metrics = await (await fetch(`${base()}/metrics`, { headers: { authorization: "Bearer m" } })).text();
    const buffered = Number(
      /^hyperlog_buffered_bytes (\d+)/m.exec(metrics)?.[1] ?? /buffered_bytes (\d+)/.exec(metrics)![1],
    );
    assert.ok(
      buffered <= PRESENCE_HIGH_WATER + 8192,
      `${buffered} bytes buffered for a paused reader (mark ${PRESENCE_HIGH_WATER})`,
    );
    // It reads again: what was buffered arrives, then the flooder's latest state.
    const decoder = new TextDecoder();
    paused.resume();
    for (;;) {
      const message = await paused.next();
      if (message[0] !== 0x7b) continue;
      const text = decoder.decode(message);
      if (text.includes('"seq":"last"')) break;
    }
    assert.ok(paused.received < updates * 4000, `the paused reader got ${paused.received} bytes: nothing was held`);
    paused.destroy();
  });
});
