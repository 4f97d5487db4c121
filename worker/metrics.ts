/**
 * The relay's counters, served at `/metrics` in the Prometheus text format (behind `METRICS_TOKEN`): open logs and
 * sockets (gauges, read when scraped), nodes and bytes in and out, refusals by close code and HTTP answers by
 * status (counters since start). `hyperlog serve` keeps one for the whole process; a Worker isolate keeps its own
 * (see README "Operating a relay").
 *
 * @module
 */

/**
 * Counters and gauges of one relay.
 *
 * @example
 * ```ts
 * import { RelayMetrics } from "./metrics.ts";
 * const metrics = new RelayMetrics();
 * metrics.gauge("open_logs", "Logs open now", () => 2);
 * metrics.add("nodes_in_total", 3);
 * metrics.refused(4029);
 * metrics.answered(404);
 * const text = metrics.render();
 * console.assert(text.includes("hyperlog_open_logs 2") && text.includes('hyperlog_refusals_total{code="4029"} 1'));
 * ```
 */
export class RelayMetrics {
  readonly #counters = new Map<string, number>();
  readonly #gauges = new Map<string, { help: string; read: () => number }>();
  readonly #byCode = new Map<number, number>();
  readonly #byStatus = new Map<number, number>();
  readonly #recent = new RecentCounts();

  /** Adds `n` to the counter `name` (`nodes_in_total`, `bytes_in_total`, `nodes_out_total`, `bytes_out_total`). */
  add(name: string, n = 1): void {
    this.#counters.set(name, (this.#counters.get(name) ?? 0) + n);
  }

  /** The value of counter `name`. */
  count(name: string): number {
    return this.#counters.get(name) ?? 0;
  }

  /** A gauge read when scraped. */
  gauge(name: string, help: string, read: () => number): void {
    this.#gauges.set(name, { help, read });
  }

  /** A socket closed by the relay with `code` (at `now`, for the last hour's counts). */
  refused(code: number, now: number = Date.now()): void {
    this.#byCode.set(code, (this.#byCode.get(code) ?? 0) + 1);
    this.#recent.add(code, 1, now);
  }

  /**
   * Refusals by close code in the hour before `now`, named for the admin dashboard
   * (`"refused 4029 (RATE_LIMITED), last hour"`).
   */
  refusalsLastHour(now: number = Date.now()): Record<string, number> {
    return refusalRows(this.#recent.counts(now));
  }

  /** An HTTP answer with `status`. */
  answered(status: number): void {
    this.#byStatus.set(status, (this.#byStatus.get(status) ?? 0) + 1);
  }

  /** The Prometheus text format (version 0.0.4). */
  render(): string {
    const lines: string[] = [];
    for (const [name, { help, read }] of this.#gauges) {
      let value = 0;
      try {
        value = read();
      } catch {
        // A gauge that cannot be read shows 0.
      }
      lines.push(`# HELP hyperlog_${name} ${help}`, `# TYPE hyperlog_${name} gauge`, `hyperlog_${name} ${value}`);
    }
    const help: Record<string, string> = {
      nodes_in_total: "Nodes received from sockets",
      bytes_in_total: "Bytes received from sockets",
      nodes_out_total: "Nodes sent to sockets",
      bytes_out_total: "Bytes sent to sockets",
      receive_pauses_total: "Times a socket was not read while what it had sent was not yet handled",
    };
    for (const name of Object.keys(help)) {
      lines.push(`# HELP hyperlog_${name} ${help[name]}`, `# TYPE hyperlog_${name} counter`);
      lines.push(`hyperlog_${name} ${this.count(name)}`);
    }
    lines.push("# HELP hyperlog_refusals_total Sockets closed by the relay, by close code");
    lines.push("# TYPE hyperlog_refusals_total counter");
    for (const [code, n] of [...this.#byCode].sort((a, b) => a[0] - b[0])) {
      lines.push(`hyperlog_refusals_total{code="${code}"} ${n}`);
    }
    lines.push("# HELP hyperlog_http_responses_total HTTP answers, by status");
    lines.push("# TYPE hyperlog_http_responses_total counter");
    for (const [status, n] of [...this.#byStatus].sort((a, b) => a[0] - b[0])) {
      lines.push(`hyperlog_http_responses_total{status="${status}"} ${n}`);
    }
    return lines.join("\n") + "\n";
  }
}

/** Per-minute buckets kept for an hour. */
const MINUTE = 60_000;
const BUCKETS = 60;

/**
 * Counts by close code over the last hour, in per-minute buckets (at most 60 buckets, each a small map: the memory
 * does not grow with the number of events).
 *
 * @example
 * ```ts
 * import { RecentCounts } from "./metrics.ts";
 * const recent = new RecentCounts();
 * recent.add(4029, 2, 0);
 * recent.add(4408, 1, 30 * 60_000);
 * console.assert(recent.counts(50 * 60_000).get(4029) === 2);
 * console.assert(recent.counts(61 * 60_000).get(4029) === undefined); // more than an hour ago
 * console.assert(recent.counts(61 * 60_000).get(4408) === 1);
 * ```
 */
export class RecentCounts {
  readonly #buckets: { minute: number; counts: Map<number, number> }[] = [];

  /** Adds `n` to `code` at `now` (milliseconds since the epoch). */
  add(code: number, n: number, now: number): void {
    const minute = Math.floor(now / MINUTE);
    let bucket = this.#buckets.at(-1);
    if (bucket === undefined || bucket.minute !== minute) {
      bucket = { minute, counts: new Map() };
      this.#buckets.push(bucket);
      while (this.#buckets.length > BUCKETS) this.#buckets.shift();
    }
    bucket.counts.set(code, (bucket.counts.get(code) ?? 0) + n);
  }

  /** The counts by code of the minutes within the hour before `now`. */
  counts(now: number): Map<number, number> {
    const since = Math.floor(now / MINUTE) - BUCKETS + 1;
    const total = new Map<number, number>();
    for (const { minute, counts } of this.#buckets) {
      if (minute < since) continue;
      for (const [code, n] of counts) total.set(code, (total.get(code) ?? 0) + n);
    }
    return total;
  }
}

/**
 * Names of the relay's close codes, for people reading the dashboard.
 */
const CLOSE_LABELS: Record<number, string> = {
  4000: "protocol error",
  4003: "read only",
  4008: "invalid node",
  4009: "frame too large",
  4010: "interrupted",
  4011: "internal error",
  4013: "node too large",
  4029: "too fast",
  4408: "no HELLO in time",
  4503: "too many sockets",
  4507: "log full",
  4508: "too many logs",
};

/**
 * Rows for the admin dashboard from counts by close code: `"refused 4029 (too fast), last hour": 3`, in code order.
 *
 * @example
 * ```ts
 * import { refusalRows } from "./metrics.ts";
 * const rows = refusalRows(new Map([[4408, 1], [4029, 3]]));
 * console.assert(Object.keys(rows)[0] === "refused 4029 (too fast), last hour" && rows[Object.keys(rows)[0]!] === 3);
 * ```
 */
export function refusalRows(counts: ReadonlyMap<number, number>): Record<string, number> {
  const rows: Record<string, number> = {};
  for (const [code, n] of [...counts].sort((a, b) => a[0] - b[0])) {
    const label = CLOSE_LABELS[code];
    rows[`refused ${code}${label === undefined ? "" : ` (${label})`}, last hour`] = n;
  }
  return rows;
}
