/**
 * A relay and two clients: starts the relay worker (`worker/`) locally in Miniflare, as `npm start` runs it with
 * wrangler, and keeps two logs in live sync through it with `connect()`, the reconnecting client a browser page
 * uses. Each client writes, and both end with the same nodes and heads.
 *
 * Run: `node examples/relay.ts` (Node: Miniflare drives workerd from Node). Against a running relay (`npm start`),
 * the clients are the same: `connect(log, "ws://127.0.0.1:8787/logs/NAME/ws")`.
 *
 * @module
 */
import { connect, Hyperlog } from "../mod.ts";
import { startRelay } from "../tests/fixtures/relay-miniflare.ts";

/** Resolves once `log` holds `n` nodes. */
function untilLength(log: Hyperlog<unknown>, n: number): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (log.length < n) return;
      log.removeEventListener("add", check);
      resolve();
    };
    log.addEventListener("add", check);
    check();
  });
}

const relay = await startRelay();
console.log(`relay on ${relay.url}`);
const url = `${relay.url.replace(/^http/, "ws")}/logs/example/ws`;

const alice = new Hyperlog<string>(undefined, { valueEncoding: "utf-8" });
const bob = new Hyperlog<string>(undefined, { valueEncoding: "utf-8" });
await alice.append("hello from alice (written before connecting)");
const aliceSync = connect(alice, url);
const bobSync = connect(bob, url);
aliceSync.addEventListener("live", () => console.log("alice is live"));
bobSync.addEventListener("live", () => console.log("bob is live"));
await Promise.all([aliceSync.when("live"), bobSync.when("live")]);

await bob.append("hello from bob (written live)");
await Promise.all([untilLength(alice, 2), untilLength(bob, 2)]);

const heads = async (log: Hyperlog<string>) => (await log.heads()).map((node) => node.key.slice(0, 8)).sort().join(",");
console.log(`alice: ${alice.length} nodes, heads ${await heads(alice)}`);
console.log(`bob:   ${bob.length} nodes, heads ${await heads(bob)}`);
const summary = (await (await fetch(`${relay.url}/logs/example`)).json()) as { length: number };
console.log(`relay: ${summary.length} nodes`);
console.log((await heads(alice)) === (await heads(bob)) ? "converged" : "NOT converged");

await Promise.all([aliceSync.close(), bobSync.close()]);
await relay.stop();
