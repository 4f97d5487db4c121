/**
 * The replication engine's bounds against a hostile peer, at the sizes: the reply to the worst 2 KB a
 * reader can send a 50 000-node log, and the CPU that 40 concurrent first contacts cost a 50 000 x 1 KB log. The
 * attacks talk to the session directly (`Session`: messages in, messages out), so the figures are the engine's,
 * whatever the transport. Smaller versions run as tests (`tests/bounds.test.ts`).
 *
 * @module
 */
import { Hyperlog, Session } from "../mod.ts";
import { decodeMessage, encodeMessage, type ReconEntry } from "../src/wire.ts";
import { type BenchContext, type BenchModule, type Figure, median } from "./_util.ts";

const NODES = 50_000;
const CONTACTS = 40;

async function filled(count: number, valueBytes: number): Promise<Hyperlog<unknown>> {
  const log = new Hyperlog({ valueEncoding: "utf-8" });
  const pad = "x".repeat(Math.max(0, valueBytes - 12));
  for (let i = 0; i < count; i += 1000) {
    await log.batch(Array.from({ length: Math.min(1000, count - i) }, (_, j) => ({ value: `${i + j} ${pad}` })));
  }
  return log as Hyperlog<unknown>;
}

function hello(count: number, nonce: string): Uint8Array {
  return encodeMessage({
    type: "hello",
    hello: {
      mode: "sync",
      live: false,
      id: "0".repeat(32),
      nonce,
      length: count,
      count,
      xor: new Uint8Array(16).fill(7),
      maxFrame: 1 << 20,
      window: 1 << 19,
    },
  });
}

/**
 * The deepest reconciliation an attacker can drive, its turns cut into messages of at most 2 KB: the worst ratio of
 * a turn's reply to the turn's requests (a reply goes out when the turn ends), and the total.
 */
async function amplification(log: Hyperlog<unknown>): Promise<{ ratio: number; request: number; total: number }> {
  const session = new Session(log, {});
  await session.start();
  await session.receive([hello(NODES + 1, "e".repeat(32))]);
  await session.receive([encodeMessage({ type: "check", checkpoint: null })]);
  let open = [""];
  let ratio = 0;
  let total = 0;
  let sent = 0;
  while (open.length > 0) {
    const entries: ReconEntry[] = open.flatMap((prefix) =>
      [..."0123456789abcdef"].map((d) => ({
        kind: "fp" as const,
        prefix: prefix + d,
        fp: { count: 1000, xor: new Uint8Array(16).fill(open.length % 250 + 1) },
      }))
    );
    const next: string[] = [];
    let turnIn = 0;
    let turnOut = 0;
    for (let start = 0; start < entries.length;) {
      let end = start + 1;
      while (
        end < entries.length &&
        encodeMessage({ type: "recon", end: false, entries: entries.slice(start, end + 1) }).length <= 2048
      ) end++;
      const request = encodeMessage({ type: "recon", end: end === entries.length, entries: entries.slice(start, end) });
      turnIn += request.length;
      const reply = await session.receive([request]);
      turnOut += reply.reduce((n, b) => n + b.length, 0);
      for (const body of reply) {
        const message = decodeMessage(body);
        if (message.type === "recon") { for (const e of message.entries) if (e.kind === "fp") next.push(e.prefix); }
      }
      start = end;
    }
    ratio = Math.max(ratio, turnOut / turnIn);
    total += turnOut;
    sent += turnIn;
    open = next;
  }
  return { ratio, request: sent, total };
}

async function run(context: BenchContext): Promise<Figure[]> {
  context.progress(`bounds: ${NODES} nodes`);
  const small = await filled(NODES, 20);
  const amp = await amplification(small);
  await small.close();
  const cpu: number[] = [];
  const firstBuild: number[] = [];
  for (let rep = 0; rep < context.reps; rep++) {
    context.progress(`bounds: ${CONTACTS} first contacts on ${NODES} x 1 KB [${rep + 1}/${context.reps}]`);
    const log = await filled(NODES, 1024);
    // The key index is built on the first session of a process (or Object); count it apart.
    let start = process.cpuUsage();
    const first = new Session(log, {});
    await first.start();
    let used = process.cpuUsage(start);
    firstBuild.push((used.user + used.system) / 1e6);
    start = process.cpuUsage();
    await Promise.all(Array.from({ length: CONTACTS }, async (_, i) => {
      const session = new Session(log, {});
      await session.start();
      await session.receive([hello(NODES + 1, i.toString(16).padStart(32, "0"))]);
    }));
    used = process.cpuUsage(start);
    cpu.push((used.user + used.system) / 1e6);
    await log.close();
  }
  return [
    {
      bench: "amplification",
      case: "reply per 2 KB of requests, worst turn",
      n: NODES,
      unit: "KiB",
      ours: (amp.ratio * 2048) / 1024,
      hyperlog: null,
      ratio: null,
      target: "<= 256 KiB",
      met: amp.ratio * 2048 <= 256 * 1024,
      note: `worst turn: ${amp.ratio.toFixed(1)} bytes back per byte in; the whole attack: ${
        Math.round(amp.request / 1024)
      } KiB in, ${Math.round(amp.total / 1024)} KiB back (each key listed once)`,
    },
    {
      bench: "first contacts",
      case: `${CONTACTS} concurrent HELLOs, 1 KB values`,
      n: NODES,
      unit: "s CPU",
      ours: median(cpu),
      hyperlog: null,
      ratio: null,
      target: "< 1 s",
      met: median(cpu) < 1,
      note: `the key index, built once per process on the first session: ${median(firstBuild).toFixed(2)} s`,
    },
  ];
}

/** The bounds benchmark (`--only bounds`). */
export const benchmark: BenchModule = {
  name: "bounds",
  title: "Replication bounds against a hostile peer",
  notes: [
    "amplification: the deepest reconciliation an attacker can drive (every range split, fingerprints that never match), cut into messages of at most 2 KB; a reply goes out when a turn ends, so the figure is the worst turn's reply per 2 KB of its requests. The empty prefix repeated in one message (the attack on version 1) is refused with nothing sent back.",
    "first contacts: CPU of 40 concurrent sessions receiving a HELLO that needs reconciling, on a log of 50 000 nodes with 1 KB values, after the key index exists.",
  ],
  run,
};
