/**
 * Turns the replication benchmark's samples into figures: medians, ratios, targets and notes.
 *
 * @module
 */
import type { RssSample } from "./_replicate-rss.ts";
import {
  type ExchangeSamples,
  FIRST_CONTACT_NEW,
  LATENCY_MS,
  type MemoryResult,
  RESYNC_NEW,
  type SessionSample,
  SHARED,
} from "./_replicate-workload.ts";
import { type Figure, median, ratio } from "./_util.ts";

/** Extra fields of a figure: the optional ones of {@link Figure}, and extra keys for its JSON line. */
type Extra = Partial<Pick<Figure, "target" | "met" | "note" | "hyperlogN">> & { [key: string]: unknown };

/** A figure; the ratio is `ours / theirs`. */
function row(
  bench: string,
  label: string,
  n: number,
  unit: string,
  ours: number,
  theirs: number | null,
  extra: Extra = {},
): Figure {
  return { bench, case: label, n, unit, ours, hyperlog: theirs, ratio: ratio(ours, theirs), ...extra };
}

/** The median of `pick` over the samples. */
function med(samples: readonly SessionSample[], pick: (s: SessionSample) => number): number {
  return median(samples.map(pick));
}

/**
 * The fresh sync figures at every size: rate (target >= 20x hyperlog 4), wire bytes per node, the nodes' own
 * size per node, and the wire's excess over it (target: wire <= 1.15x own).
 *
 * @example
 * ```ts ignore
 * import { freshFigures } from "./_replicate-figures.ts";
 * console.table(freshFigures(ours, theirs));
 * ```
 */
export function freshFigures(ours: MemoryResult, theirs: MemoryResult): Figure[] {
  const figures: Figure[] = [];
  for (const { n, runs } of ours.fresh) {
    const other = theirs.fresh.find((f) => f.n === n)?.runs;
    if (other === undefined) throw new Error(`hyperlog 4 has no fresh sync at n=${n}`);
    const rate = med(runs, (s) => n / s.seconds);
    const theirRate = med(other, (s) => n / s.seconds);
    const fast = theirRate > 0 && rate / theirRate >= 20;
    const single: Extra = other.length === 1 && runs.length > 1
      ? {
        note: `hyperlog 4.12.1 at n=${n}: a single run (it took ${
          Math.round(other[0]!.seconds)
        } s; two more would add a minute or so).`,
      }
      : {};
    figures.push(
      row("sync", "fresh sync", n, "nodes/s", rate, theirRate, { target: ">= 20x hyperlog", met: fast, ...single }),
    );
    // Per CPU second of the process (both sides run in it): the two implementations run one after the other, so
    // on a shared machine the wall-time ratio moves with the load between them; this one moves much less.
    const cpuRate = med(runs, (s) => n / s.cpuSeconds);
    const theirCpuRate = med(other, (s) => n / s.cpuSeconds);
    figures.push(row("sync-cpu", "fresh sync: nodes per CPU second", n, "nodes/s", cpuRate, theirCpuRate));
    const wire = med(runs, (s) => s.bytes / n);
    const theirWire = med(other, (s) => s.bytes / n);
    figures.push(row("sync-wire", "fresh sync: bytes on the wire", n, "bytes/node", wire, theirWire));
    const own = med(runs, (s) => s.own / n);
    const theirOwn = med(other, (s) => s.own / n);
    figures.push(row("sync-own", "fresh sync: nodes' own size", n, "bytes/node", own, theirOwn));
    const beyond = (wire / own - 1) * 100;
    const theirBeyond = (theirWire / theirOwn - 1) * 100;
    const overhead: Figure & Extra = {
      ...row("sync-overhead", "fresh sync: wire beyond own (wire/own - 1)", n, "%", beyond, theirBeyond),
      ratio: null,
      target: "<= 15 % (wire <= 1.15x own)",
      met: wire / own <= 1.15,
      wireOverOwn: wire / own,
      hyperlogWireOverOwn: theirWire / theirOwn,
    };
    figures.push(overhead);
  }
  return figures;
}

/**
 * The figures of a resync (targets: under 4 KB beyond the new nodes, at most 3 round trips) or a first contact
 * (under 64 KB, at most 8 round trips): bytes, round trips, one-way flights, time with and without latency.
 *
 * @example
 * ```ts ignore
 * import { exchangeFigures } from "./_replicate-figures.ts";
 * console.table(exchangeFigures("resync", ours.resync, theirs.resync));
 * ```
 */
export function exchangeFigures(
  kind: "resync" | "first-contact",
  ours: ExchangeSamples,
  theirs: ExchangeSamples,
): Figure[] {
  const all = (s: ExchangeSamples): SessionSample[] => [...s.quiet, ...s.delayed];
  const newNodes = kind === "resync" ? 2 * RESYNC_NEW : 2 * FIRST_CONTACT_NEW;
  const label = kind === "resync" ? "resync" : "first contact";
  const beyond = med(all(ours), (s) => s.bytes - s.own);
  const theirBeyond = med(all(theirs), (s) => s.bytes - s.own);
  const bytes = med(all(ours), (s) => s.bytes);
  const theirBytes = med(all(theirs), (s) => s.bytes);
  const details: Extra = {
    bytesTotal: bytes,
    hyperlogBytesTotal: theirBytes,
    bytesBeyondNew: beyond,
    hyperlogBytesBeyondNew: theirBeyond,
  };
  const figures = kind === "resync"
    ? [row("resync-bytes", `resync: bytes beyond the ${newNodes} new`, SHARED, "bytes", beyond, theirBeyond, {
      target: "< 4 KB (4,096)",
      met: beyond < 4096,
      ...details,
    })]
    : [row("first-contact-bytes", `first contact: bytes (${newNodes} new nodes)`, SHARED, "bytes", bytes, theirBytes, {
      target: "< 64 KB (65,536)",
      met: bytes < 65536,
      ...details,
    })];

  const trips = med(all(ours), (s) => s.roundTrips ?? NaN);
  const flights = med(ours.delayed, (s) => s.flights);
  const theirFlights = med(theirs.delayed, (s) => s.flights);
  const limit = kind === "resync" ? 3 : 8;
  const note = kind === "resync"
    ? "hyperlog 4.12.1 does not count round trips: its figure, here and for the first contact, is its one-way flights / 2 " +
      "(measured on the link, see the notes). Ours is its own stats.roundTrips, which counts each exchange of messages " +
      "both sides send at once (HELLO, CHECK, RECON) as one, so it can exceed flights / 2."
    : "hyperlog 4.12.1: one-way flights / 2, as for the resync.";
  const tripsTarget: Extra = { target: `<= ${limit}`, met: trips <= limit, note };
  figures.push(
    row(`${kind}-round-trips`, `${label}: round trips`, SHARED, "round trips", trips, theirFlights / 2, tripsTarget),
  );
  figures.push(
    row(`${kind}-flights`, `${label}: one-way flights (${LATENCY_MS} ms)`, SHARED, "flights", flights, theirFlights),
  );
  const slow = med(ours.delayed, (s) => s.seconds * 1000);
  const theirSlow = med(theirs.delayed, (s) => s.seconds * 1000);
  figures.push(row(`${kind}-time-latency`, `${label}: time, ${LATENCY_MS} ms latency`, SHARED, "ms", slow, theirSlow));
  const quick = med(ours.quiet, (s) => s.seconds * 1000);
  const theirQuick = med(theirs.quiet, (s) => s.seconds * 1000);
  figures.push(row(`${kind}-time`, `${label}: time, no latency`, SHARED, "ms", quick, theirQuick));
  return figures;
}

/**
 * The figures of the two-process SQLite sync of `n` nodes (this library only): each side's peak RSS (target:
 * under `targetMb`), time and rate, and the rate each side's CPU time allows (the figure a loaded machine keeps).
 *
 * @example
 * ```ts ignore
 * import { rssFigures } from "./_replicate-figures.ts";
 * console.table(rssFigures(1_000_000, samples, 300));
 * ```
 */
export function rssFigures(n: number, samples: readonly RssSample[], targetMb: number): Figure[] {
  const single: Extra = samples.length === 1 ? { note: "SQLite sync between two processes: a single run." } : {};
  const sender = median(samples.map((s) => s.sender.rss));
  const receiver = median(samples.map((s) => s.receiver.rss));
  const target = `< ${targetMb} MB`;
  return [
    row("sync-sqlite-rss-sender", "SQLite sync: sender peak RSS", n, "MB", sender, null, {
      target,
      met: sender < targetMb,
      ...single,
    }),
    row("sync-sqlite-rss-receiver", "SQLite sync: receiver peak RSS", n, "MB", receiver, null, {
      target,
      met: receiver < targetMb,
    }),
    row("sync-sqlite-time", "SQLite sync: time", n, "s", median(samples.map((s) => s.receiver.seconds)), null),
    row("sync-sqlite", "SQLite sync: rate", n, "nodes/s", median(samples.map((s) => n / s.receiver.seconds)), null),
    // On a shared machine the wall time waits for the CPU: the rate each side's own CPU time allows says what
    // the code does (the sync is at most as fast as its slower side).
    row(
      "sync-sqlite-cpu-sender",
      "SQLite sync: nodes per sender CPU s",
      n,
      "nodes/s",
      median(samples.map((s) => n / s.sender.cpu)),
      null,
    ),
    row(
      "sync-sqlite-cpu-receiver",
      "SQLite sync: nodes per receiver CPU s",
      n,
      "nodes/s",
      median(samples.map((s) => n / s.receiver.cpu)),
      null,
    ),
  ];
}
