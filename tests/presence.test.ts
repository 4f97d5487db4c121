/**
 * Presence through the relay, on both hosts: `hyperlog serve` (every runtime) and the Worker in Miniflare (Node
 * only). Clients are the package's own `connect()` (its `presence`) and raw WebSockets for the hostile cases: join,
 * update, leave on close, leave on a missing heartbeat, signals to one peer, and every bound (state size, rate, peers
 * per log, readers) with its own code. On the Worker, presence also survives the Durable Object's loss of memory.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect, Hyperlog, type PresenceEvent, type Sync } from "../mod.ts";
import { DEFAULT_PRESENCE, PRESENCE_CODE, readPresence } from "../worker/presence-settings.ts";
import { ConfigError } from "../worker/settings.ts";
import { PresenceHub, type PresenceStore, type StoredPresence } from "../worker/presence-hub.ts";
import { CLOSE } from "../worker/limits.ts";
import { type RunningServer, serve } from "../worker/serve.ts";
import { nodeOnly } from "./_helpers.ts";

/** The relay settings every suite runs with (small bounds, so that tests reach them). */
const SETTINGS = {
  WRITE_TOKEN: "w",
  READ_TOKEN: "r",
  PRESENCE_MAX_BYTES: "256",
  PRESENCE_PER_SECOND: "20",
  PRESENCE_PEERS: "3",
  PRESENCE_TIMEOUT_MS: "600",
};

/** A raw WebSocket that speaks presence only: its text messages, and a way to wait for one. */
class Raw {
  readonly socket: WebSocket;
  readonly texts: Record<string, unknown>[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;
  #waiters: (() => void)[] = [];
  constructor(base: string, log: string, token = "w") {
    this.socket = new WebSocket(`${base.replace(/^http/, "ws")}/logs/${log}/ws?token=${token}`);
    this.socket.binaryType = "arraybuffer";
    this.opened = new Promise((resolve) => this.socket.addEventListener("open", () => resolve()));
    this.closed = new Promise((resolve) =>
      this.socket.addEventListener("close", (e) => {
        resolve({ code: e.code, reason: e.reason });
        for (const wake of this.#waiters.splice(0)) wake();
      })
    );
    this.socket.addEventListener("message", (e) => {
      if (typeof e.data !== "string") return;
      this.texts.push(JSON.parse(e.data));
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }
  async send(message: unknown): Promise<void> {
    await this.opened;
    this.socket.send(typeof message === "string" ? message : JSON.stringify(message));
  }
  /** The first text message that matches (waiting for it); fails if the socket closes first. */
  async next(match: (m: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> {
    for (;;) {
      const found = this.texts.find(match);
      if (found !== undefined) return found;
      if (this.socket.readyState >= 2) throw new Error(`The socket closed before ${what}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }
}

/** Resolves with the first presence event on `sync` that matches. */
function presenceEvent(sync: Sync, match: (e: PresenceEvent) => boolean): Promise<PresenceEvent> {
  return new Promise((resolve) => {
    const listener = (event: Event) => {
      const detail = (event as CustomEvent<PresenceEvent>).detail;
      if (!match(detail)) return;
      sync.presence.removeEventListener("presence", listener);
      resolve(detail);
    };
    sync.presence.addEventListener("presence", listener);
  });
}

/** Resolves once `sync.presence.peers` holds a peer whose state matches. */
async function peerWith(sync: Sync, match: (state: unknown) => boolean): Promise<string> {
  for (;;) {
    for (const [peer, state] of sync.presence.peers) if (match(state)) return peer;
    await presenceEvent(sync, () => true);
  }
}

/** Resolves once `sync` has its relay's welcome (its id). */
async function welcomed(sync: Sync): Promise<void> {
  if (sync.presence.self !== undefined) return;
  await new Promise((resolve) => sync.presence.addEventListener("welcome", resolve, { once: true }));
}

const named = (name: string) => (state: unknown) => (state as { name?: string })?.name === name;

/** The scenarios, against a relay at `base()`. */
function scenarios(base: () => string, host: "serve" | "worker"): void {
  const open: (Sync | Raw)[] = [];
  const logs: Hyperlog<unknown>[] = [];
  const client = (log: string, state?: unknown, token = "w"): Sync => {
    const hyperlog = new Hyperlog();
    logs.push(hyperlog);
    const sync = connect(hyperlog, `${base().replace(/^http/, "ws")}/logs/${log}/ws`, {
      token,
      presence: state === undefined ? {} : { state },
    });
    open.push(sync);
    return sync;
  };
  const raw = (log: string, token = "w"): Raw => {
    const socket = new Raw(base(), log, token);
    open.push(socket);
    return socket;
  };
  after(async () => {
    for (const item of open) {
      if (item instanceof Raw) item.socket.close();
      else await item.close();
    }
    for (const log of logs) await log.close();
  });

  it("join, update and leave on close: each peer sees the others' states", async () => {
    const a = client(`${host}-room`, { name: "a" });
    const b = client(`${host}-room`, { name: "b" });
    const aSeen = await peerWith(b, named("a"));
    const bSeen = await peerWith(a, named("b"));
    assert.notEqual(aSeen, bSeen);
    assert.equal(a.presence.self, aSeen, "the relay's id for a is the one b sees");
    const update = presenceEvent(b, (e) => e.type === "update" && e.peer === aSeen);
    a.presence.set({ name: "a", cursor: 42 });
    assert.deepEqual((await update).state, { name: "a", cursor: 42 });
    assert.deepEqual(b.presence.peers.get(aSeen), { name: "a", cursor: 42 });
    const leave = presenceEvent(b, (e) => e.type === "leave" && e.peer === aSeen);
    await a.close();
    await leave;
    assert.equal(b.presence.peers.has(aSeen), false);
  });

  it("a late joiner gets everyone in its welcome; clear() leaves without closing", async () => {
    const a = client(`${host}-late`, { name: "a" });
    await welcomed(a);
    const b = client(`${host}-late`);
    await peerWith(b, named("a"));
    const left = presenceEvent(b, (e) => e.type === "leave");
    a.presence.clear();
    await left;
    assert.equal(b.presence.peers.size, 0);
    assert.equal(a.state === "closed", false);
  });

  it("presence started on a live sync (sync.presence first used then) rides on its open socket", async () => {
    const hyperlog = new Hyperlog();
    logs.push(hyperlog);
    const plain = connect(hyperlog, `${base().replace(/^http/, "ws")}/logs/${host}-lazy/ws`, { token: "w" });
    open.push(plain);
    await plain.when("live");
    const watcher = client(`${host}-lazy`, { name: "watcher" });
    plain.presence.set({ name: "late" });
    await peerWith(watcher, named("late"));
    await hyperlog.append("still replicating");
    assert.equal(plain.state, "live");
  });

  it("a peer that stops sending (no heartbeat) leaves after the timeout, and its socket is closed", async () => {
    const watcher = client(`${host}-timeout`, { name: "watcher" });
    const silent = raw(`${host}-timeout`);
    await silent.send({ t: "set", state: { name: "silent" } });
    const peer = await peerWith(watcher, named("silent"));
    // The watcher's heartbeats (every timeout / 3) keep it there; the silent socket sends nothing more.
    const left = presenceEvent(watcher, (e) => e.type === "leave" && e.peer === peer);
    assert.equal((await silent.closed).code, PRESENCE_CODE.TIMEOUT);
    await left;
    assert.equal(watcher.presence.peers.has(peer), false);
    assert.equal(watcher.state === "closed", false, "the watcher's heartbeats kept it in");
  });

  it("signals reach the one peer they are addressed to; an unknown peer is an error, not a close", async () => {
    const a = raw(`${host}-signal`);
    const b = raw(`${host}-signal`);
    const c = raw(`${host}-signal`);
    await a.send({ t: "watch" });
    await c.send({ t: "watch" });
    await b.send({ t: "set", state: { name: "b" } });
    const welcomeB = await b.next((m) => m.t === "welcome", "b's welcome");
    await a.next((m) => m.t === "join", "b's join");
    await a.send({ t: "signal", to: welcomeB.peer, data: { sdp: "offer" } });
    const signal = await b.next((m) => m.t === "signal", "the signal");
    const welcomeA = await a.next((m) => m.t === "welcome", "a's welcome");
    assert.deepEqual(signal, { t: "signal", from: welcomeA.peer, data: { sdp: "offer" } });
    await a.send({ t: "signal", to: "0000000000000000", data: 1 });
    const error = await a.next((m) => m.t === "error", "the error");
    assert.equal(error.code, PRESENCE_CODE.NO_SUCH_PEER);
    // c saw b join but never the signal: send c a sentinel and check that nothing came before it.
    await b.send({ t: "set", state: { name: "b2" } });
    await c.next((m) => m.t === "update", "the sentinel update");
    assert.equal(c.texts.some((m) => m.t === "signal"), false);
  });

  it("a state over PRESENCE_MAX_BYTES closes the socket with 4015; set() refuses it before sending", async () => {
    const big = raw(`${host}-big`);
    await big.send({ t: "set", state: { name: "x".repeat(300) } });
    assert.equal((await big.closed).code, PRESENCE_CODE.TOO_LARGE);
    const sync = client(`${host}-big`, { name: "ok" });
    await welcomed(sync);
    assert.equal(sync.presence.maxBytes, 256);
    assert.throws(() => sync.presence.set({ name: "x".repeat(300) }), RangeError);
    assert.throws(() => sync.presence.set(null), TypeError);
  });

  it("more than twice PRESENCE_PER_SECOND messages at once closes the socket with 4030", async () => {
    const flood = raw(`${host}-flood`);
    await flood.opened;
    // One more than the bucket holds (2 x 20), sent at once (a relay's bucket refills 0.02 a millisecond). Nothing is
    // sent after it: Deno's WebSocket reports code 0, not the relay's code, when messages keep coming after a close.
    for (let i = 0; i < 41; i++) flood.socket.send('{"t":"ping"}');
    assert.equal((await flood.closed).code, PRESENCE_CODE.RATE_LIMITED);
  });

  it("past PRESENCE_PEERS, a new state is refused with 4504 and the socket stays (it may watch)", async () => {
    const three = [raw(`${host}-full`), raw(`${host}-full`), raw(`${host}-full`)];
    for (const [i, socket] of three.entries()) {
      await socket.send({ t: "set", state: { name: `p${i}` } });
      await socket.next((m) => m.t === "welcome", "a welcome");
    }
    const fourth = raw(`${host}-full`);
    await fourth.send({ t: "set", state: { name: "p3" } });
    const error = await fourth.next((m) => m.t === "error", "the refusal");
    assert.equal(error.code, PRESENCE_CODE.TOO_MANY_PEERS);
    const welcome = await fourth.next((m) => m.t === "welcome", "the welcome");
    assert.equal((welcome.peers as unknown[]).length, 3);
    // Still open, still watching: a peer that leaves is seen, and then the fourth may join.
    three[0]!.socket.close();
    await fourth.next((m) => m.t === "leave", "a leave");
    await fourth.send({ t: "set", state: { name: "p3" } });
    await three[1]!.next((m) => m.t === "join" && (m.state as { name: string }).name === "p3", "the fourth's join");
  });

  it("a reader may watch but not publish (PRESENCE_READERS unset): error 4003, the socket stays", async () => {
    const writer = client(`${host}-readers`, { name: "writer" });
    const reader = raw(`${host}-readers`, "r");
    await reader.send({ t: "set", state: { name: "reader" } });
    const error = await reader.next((m) => m.t === "error", "the refusal");
    assert.equal(error.code, PRESENCE_CODE.READ_ONLY);
    await reader.next((m) => m.t === "welcome", "the welcome");
    await reader.next(
      (m) => m.t === "join" || (m.t === "welcome" && (m.peers as unknown[]).length === 1),
      "the writer, in the welcome or as a join",
    );
    // The writer never saw the reader: a sentinel from another writer comes first and alone.
    const other = client(`${host}-readers`, { name: "sentinel" });
    await peerWith(writer, named("sentinel"));
    assert.equal([...writer.presence.peers.values()].some(named("reader")), false);
    await other.close();
  });

  it("hyperlog sync ws://... --live --presence JSON publishes its state and prints the others' on stderr", async () => {
    const { main } = await import("../cli/cli.ts");
    const { openSqlite } = await import("../storage/sqlite-open.ts");
    const dir = mkdtempSync(join(tmpdir(), "hyperlog-presence-cli-"));
    let err = "";
    let printed: () => void = () => {};
    const stop = new AbortController();
    const io = {
      stdout: () => {},
      stderr: (text: string) => {
        err += text;
        printed();
      },
      openStorage: (d: string) => openSqlite(join(d, "log.db")),
      signal: stop.signal,
    };
    const url = `${base().replace(/^http/, "ws")}/logs/${host}-cli`;
    const running = main(["-d", dir, "sync", url, "--token=w", "--live", "--presence", '{"name":"cli"}'], io);
    try {
      const web = client(`${host}-cli`, { name: "web" });
      await peerWith(web, named("cli"));
      const printedLine = (pattern: RegExp) =>
        (async () => {
          while (!pattern.test(err)) await new Promise<void>((resolve) => (printed = resolve));
        })();
      await printedLine(/presence: join [0-9a-f]{16} \{"name":"web"\}/);
      await web.close();
      await printedLine(/presence: leave [0-9a-f]{16}\n/);
    } finally {
      stop.abort();
      await running;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("text that is not a presence message closes the socket with 4000", async () => {
    const bad = raw(`${host}-bad`);
    await bad.send("not json");
    assert.equal((await bad.closed).code, CLOSE.PROTOCOL);
  });

  if (host === "worker") {
    it("survives the Durable Object's loss of memory: updates and leaves still reach everyone", async () => {
      const a = client("worker-wake", { name: "a" });
      const b = client("worker-wake", { name: "b" });
      const aPeer = await peerWith(b, named("a"));
      await peerWith(a, named("b"));
      const forgot = await fetch(`${base()}/logs/worker-wake/debug/forget?token=w`, { method: "POST" });
      assert.equal(forgot.status, 200);
      const update = presenceEvent(b, (e) => e.type === "update" && e.peer === aPeer);
      a.presence.set({ name: "a", after: "wake" });
      assert.deepEqual((await update).state, { name: "a", after: "wake" });
      // A newcomer after the wake-up is welcomed with both.
      const c = client("worker-wake", { name: "c" });
      await peerWith(c, named("a"));
      await peerWith(c, named("b"));
      await fetch(`${base()}/logs/worker-wake/debug/forget?token=w`, { method: "POST" });
      const leave = presenceEvent(b, (e) => e.type === "leave" && e.peer === aPeer);
      await a.close();
      await leave;
    });
  }
}

describe("presence settings", () => {
  it("a setting that does not parse is a ConfigError naming it, at start", async () => {
    for (
      const [name, value] of [["PRESENCE_PEERS", "many"], ["PRESENCE_TIMEOUT_MS", "5"], ["PRESENCE_READERS", "yes"]]
    ) {
      assert.throws(
        () => readPresence({ [name!]: value }),
        (e: Error) => e instanceof ConfigError && e.message.includes(name!),
      );
    }
    const dir = mkdtempSync(join(tmpdir(), "hyperlog-presence-bad-"));
    try {
      await assert.rejects(serve({ dir, port: 0, settings: { PRESENCE_MAX_BYTES: "-1" } }), ConfigError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.deepEqual(readPresence({}), DEFAULT_PRESENCE);
  });
});

describe("the presence hub in process", () => {
  /** A fake socket that keeps what the hub sends it. */
  const socket = () => {
    const sent: Record<string, unknown>[] = [];
    return {
      sent,
      readyState: 1,
      send(data: Uint8Array | string) {
        sent.push(JSON.parse(String(data)));
      },
      close() {
        this.readyState = 3;
      },
    };
  };

  it("lets readers publish when PRESENCE_READERS=1", () => {
    const [writer, reader] = [socket(), socket()];
    const hub = new PresenceHub({
      sockets: () => [writer, reader],
      peerOf: (ws) => (ws === writer ? "w" : "r"),
      roleOf: (ws) => (ws === writer ? "write" : "read"),
      close() {},
    }, { settings: readPresence({ PRESENCE_READERS: "1" }) });
    hub.message(writer, '{"t":"watch"}');
    hub.message(reader, '{"t":"set","state":{"name":"reader"}}');
    assert.deepEqual(writer.sent.at(-1), { t: "join", peer: "r", state: { name: "reader" }, direct: false });
    assert.equal(reader.sent.some((m) => m.t === "error"), false);
    hub.close();
  });

  it("over the fan-out budget, states are coalesced: each watcher gets the latest, later, not every update", async () => {
    const [flooder, ...watchers] = [socket(), socket(), socket(), socket()];
    let wake = () => {};
    for (const w of watchers) {
      const send = w.send.bind(w);
      w.send = (data: Uint8Array | string) => (send(data), wake());
    }
    const all = [flooder, ...watchers];
    const hub = new PresenceHub({
      sockets: () => all,
      peerOf: (ws) => `p${all.indexOf(ws as typeof flooder)}`,
      roleOf: () => "write",
      close() {},
    }, { settings: readPresence({ PRESENCE_PER_SECOND: "1000", PRESENCE_FANOUT_BYTES: "4096" }) });
    for (const w of watchers) hub.message(w, '{"t":"watch"}');
    const pad = "x".repeat(200);
    for (let seq = 0; seq < 50; seq++) hub.message(flooder, JSON.stringify({ t: "set", state: { seq, pad } }));
    const latest = (w: typeof flooder) => w.sent.filter((m) => m.peer === "p0").at(-1)?.state as { seq?: number };
    // A second's budget is 4096 bytes: about five frames of ~250 bytes to three watchers, then the queue.
    assert.ok(watchers.every((w) => w.sent.filter((m) => m.peer === "p0").length <= 6));
    assert.ok(hub.stats.coalesced > 40, `${hub.stats.coalesced} coalesced`);
    while (!watchers.every((w) => latest(w)?.seq === 49)) await new Promise<void>((resolve) => (wake = resolve));
    assert.ok(watchers.every((w) => w.sent.filter((m) => m.peer === "p0").length <= 7));
    assert.deepEqual(watchers[0]!.sent.filter((m) => m.peer === "p0").map((m) => m.t)[0], "join");
    hub.close();
  });

  it("a socket that does not read gets no presence frame, then its peers' latest states and leaves", () => {
    const [a, b, paused] = [socket(), socket(), { ...socket(), bufferedAmount: 1 << 20 }];
    const all = [a, b, paused];
    const hub = new PresenceHub({
      sockets: () => all,
      peerOf: (ws) => ["a", "b", "paused"][all.indexOf(ws as typeof a)],
      roleOf: () => "write",
      close() {},
    }, { settings: DEFAULT_PRESENCE });
    hub.message(paused, '{"t":"watch"}');
    hub.message(b, '{"t":"watch"}');
    const welcomed = paused.sent.length;
    for (let seq = 0; seq < 10; seq++) hub.message(a, JSON.stringify({ t: "set", state: { seq } }));
    hub.message(b, '{"t":"set","state":{"name":"b"}}');
    hub.message(b, '{"t":"clear"}');
    assert.equal(paused.sent.length, welcomed, "nothing was sent to the paused socket");
    assert.ok(hub.stats.held >= 12, JSON.stringify(hub.stats));
    assert.equal(b.sent.filter((m) => m.peer === "a").length, 10, "a reading socket got every update");
    // It reads again: the next frame about a replaces what it missed of a; b's leave comes first.
    paused.bufferedAmount = 0;
    hub.message(a, '{"t":"set","state":{"seq":10}}');
    const news = paused.sent.slice(welcomed);
    assert.deepEqual(news.map((m) => [m.t, m.peer]), [["leave", "b"], ["update", "a"]]);
    assert.deepEqual(news.at(-1)!.state, { seq: 10 });
    hub.close();
  });

  it("a hub made again from its store keeps the peers whose socket is open and tells them who left meanwhile", () => {
    const rows = new Map<string, StoredPresence>();
    const store: PresenceStore = {
      load: () => [...rows.values()],
      put: (row) => void rows.set(row.peer, row),
      delete: (peer) => void rows.delete(peer),
    };
    const [a, b] = [socket(), socket()];
    const host = (open: typeof a[]) => ({
      sockets: () => open,
      peerOf: (ws: unknown) => (ws === a ? "a" : "b"),
      roleOf: () => "write" as const,
      close() {},
    });
    const first = new PresenceHub(host([a, b]), { settings: DEFAULT_PRESENCE, store });
    first.message(a, '{"t":"set","state":{"name":"a"}}');
    first.message(b, '{"t":"set","state":{"name":"b"},"direct":"idb"}');
    assert.equal(rows.size, 2);
    // The host forgets everything (hibernation); b's socket closed while it slept.
    b.readyState = 3;
    const second = new PresenceHub(host([a]), { settings: DEFAULT_PRESENCE, store });
    assert.deepEqual(second.list(), [{ peer: "a", state: { name: "a" }, direct: false }]);
    assert.deepEqual(a.sent.at(-1), { t: "leave", peer: "b" });
    assert.deepEqual([...rows.keys()], ["a"]);
    first.close();
    second.close();
  });
});

describe("presence through hyperlog serve", () => {
  let dir: string;
  let server: RunningServer;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "hyperlog-presence-"));
    server = await serve({ dir, port: 0, settings: SETTINGS });
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  scenarios(() => server.url, "serve");
});

nodeOnly("presence through the relay worker", "Miniflare drives workerd from Node", () => {
  let relay: { url: string; stop(): Promise<void> };
  before(async () => {
    const { startRelay } = await import("./fixtures/relay-miniflare.ts");
    relay = await startRelay({ vars: { ...SETTINGS, RELAY_DEBUG: "1" }, kv: false });
  });
  after(async () => {
    await relay.stop();
  });
  scenarios(() => relay.url, "worker");
});
