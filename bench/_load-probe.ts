// Temporary probe: N live clients x M nodes through the relay in Miniflare, printing progress.
import { startRelay } from "../tests/fixtures/relay-miniflare.ts";
import { connect } from "../tests/_relay-clients.ts";
const N = Number(process.argv[2] ?? 10), M = Number(process.argv[3] ?? 50);
const relay = process.env.SERVE ? await (async () => { const { serve } = await import("../worker/serve.ts"); const { mkdtempSync } = await import("node:fs"); const s = await serve({ dir: mkdtempSync("/tmp/hl-"), port: 0 }); return { url: s.url, stop: () => s.close() }; })() : await startRelay({ kv: false });
const t0 = Date.now();
const many = Array.from({ length: N }, () => connect(relay.url, "load"));
await Promise.all(many.map((c) => c.session.synced));
console.log("synced", Date.now() - t0);
const t1 = Date.now();
await Promise.all(many.map(async (c, i) => { for (let j = 0; j < M; j++) await c.log.append(`client ${i} node ${j}`); }));
for (let k = 0; k < 600; k++) {
  const lens = many.map((c) => c.log.length);
  const min = Math.min(...lens);
  if (k % 10 === 0 || min === N * M) console.log(Date.now() - t1, "min", min, "max", Math.max(...lens), many.map(c=>c.session.stats.nodesReceived).slice(0,3), many.filter(c=>c.socket.readyState!==1).length, "closed");
  if (min === N * M) break;
  await new Promise((r) => setTimeout(r, 200));
}
for (const c of many) c.socket.close();
await relay.stop();
