/**
 * The storm benchmark's late joiner, in a process of its own (so that the writers' logs in the benchmark's process
 * weigh on neither its heap nor its garbage collector). Driven over IPC by bench/storm.ts:
 * `join` (answers `joined` with the milliseconds until it held `total` entries and its mean links per entry),
 * `join-warm` (leaves, then joins again with a fresh log from this warm process: answers `joined-warm`),
 * `offline` (leaves, writes one entry), `rejoin` (answers `rejoined` once synced), `close`.
 *
 * Usage (by the benchmark): node bench/_storm-joiner.ts hyperlog|yjs URL TOTAL WRITER
 *
 * @module
 */
import process from "node:process";
import { type Client, client, until } from "./_storm-clients.ts";
import type { Kind } from "./_storm-servers.ts";

const [kind, url, total, writer] = process.argv.slice(2) as [Kind, string, string, string];
let joiner: Client | undefined;
process.on("message", async (message: string) => {
  if (message === "join") {
    const start = performance.now();
    joiner = client(kind, url);
    await until(() => joiner!.held() >= Number(total), "the late joiner");
    const ms = performance.now() - start;
    await joiner.ready();
    process.send!({ type: "joined", ms, links: await joiner.meanLinks() });
  } else if (message === "join-warm") {
    // A second join from this (now warm) process, for bench/_storm-late.ts.
    await joiner?.close();
    const start = performance.now();
    joiner = client(kind, url);
    await until(() => joiner!.held() >= Number(total), "the warm late joiner");
    process.send!({ type: "joined-warm", ms: performance.now() - start });
  } else if (message === "offline") {
    await joiner!.leave();
    await joiner!.append(Number(writer), 0);
    process.send!({ type: "left" });
  } else if (message === "rejoin") {
    joiner!.rejoin();
    await joiner!.ready();
    process.send!({ type: "rejoined" });
  } else if (message === "close") {
    await joiner?.close();
    process.disconnect();
  }
});
