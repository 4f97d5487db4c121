/**
 * The storm benchmark's C=50 write storm alone against `hyperlog serve` (not part of `npm run bench`), for profiling
 * the relay: `node bench/_storm-c50.ts [C] [PER]` prints the time, the relay's CPU and peak RSS, and the bytes per
 * delivered entry; `STORM_CPU_PROF=DIR` writes the relay's CPU profile there.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { client, until } from "./_storm-clients.ts";
import { startServer } from "./_storm-servers.ts";

const count = Number(process.argv[2] ?? 50);
const per = Number(process.argv[3] ?? 200);
const dir = mkdtempSync(join(tmpdir(), "storm-c50-"));
try {
  const server = await startServer("hyperlog", dir);
  const clients = Array.from({ length: count }, () => client("hyperlog", server.url));
  await Promise.all(clients.map((c) => c.ready()));
  const cpu0 = server.cpu();
  const bytes0 = server.meter.total();
  const start = performance.now();
  await Promise.all(clients.map(async (c, n) => {
    for (let i = 0; i < per; i++) {
      await c.append(n, i);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }));
  await until(() => clients.every((c) => c.held() === count * per), "all to hold all");
  const seconds = (performance.now() - start) / 1000;
  const cpu = server.cpu() - cpu0;
  const delivered = count * (count - 1) * per;
  const links = await clients[0]!.meanLinks();
  console.log(
    `C=${count}: ${seconds.toFixed(2)} s, relay CPU ${cpu.toFixed(2)} s (${(cpu * 1e6 / delivered).toFixed(1)} us per ` +
      `delivered entry), peak RSS ${(server.peakRss() / 1e6).toFixed(0)} MB, ` +
      `${((server.meter.total() - bytes0) / delivered).toFixed(1)} B per delivered entry, ${links.toFixed(1)} links per entry`,
  );
  await Promise.all(clients.map((c) => c.close()));
  await server.stop();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
