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

  /** A socket closed by the relay with `code`. */
  refused(code: number): void {
    this.#byCode.set(code, (this.#byCode.get(code) ?? 0) + 1);
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
