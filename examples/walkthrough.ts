/**
 * The seed's walk-through: add nodes, list them, replicate two logs, and print what happened. The logs live in
 * SQLite files (the embedded default) in a fresh temporary directory. Run it with `npm start`.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hyperlog } from "../mod.ts";
import { openSqlite } from "../storage/sqlite-open.ts";

const dir = mkdtempSync(join(tmpdir(), "hyperlog-walkthrough-"));
console.log(`two logs in ${dir}: alice.db and bob.db\n`);

const short = (key: string) => key.slice(0, 8);

// 1. A log, and a few nodes: `add(links, value)` makes a node that points at earlier nodes by hash.
const alice = new Hyperlog(await openSqlite(join(dir, "alice.db")), { valueEncoding: "json" });
const hello = await alice.add(null, "hello");
const world = await alice.add([hello.key], "world");
await alice.append({ msg: "append links every current head" });
console.log(`alice added ${alice.length} nodes; "hello" has key ${hello.key}`);
console.log(`"world" links to ${world.links.map(short).join(", ")}`);

// 2. List them, in change order (every node after the nodes it links to).
console.log("\nalice's log:");
for await (const node of alice.createReadStream()) {
  console.log(
    `  #${node.change} ${short(node.key)} links=[${node.links.map(short).join(",")}] value=${
      JSON.stringify(node.value)
    }`,
  );
}

// 3. Bob writes on his own, offline: his log forks from alice's.
const bob = new Hyperlog(await openSqlite(join(dir, "bob.db")), { valueEncoding: "json" });
await bob.add(null, "hello");
await bob.append("bob was here");

// 4. Replicate: any pair of byte streams will do; here an in-process pipe.
const a = alice.replicate();
const b = bob.replicate();
a.readable.pipeTo(b.writable);
b.readable.pipeTo(a.writable);
const [sa, sb] = await Promise.all([a.done, b.done]);
console.log(
  `\nreplicated: alice sent ${sa.nodesSent} nodes and received ${sa.nodesReceived}; bob sent ${sb.nodesSent} and received ${sb.nodesReceived}`,
);
console.log(`${sa.bytesSent + sb.bytesSent} bytes on the wire, ${sa.roundTrips} round trips`);

// 5. Both logs now hold the same nodes and the same heads (two heads: the fork).
const heads = async (log: Hyperlog) => (await log.heads()).map((n) => short(n.key)).join(", ");
console.log(`alice: ${alice.length} nodes, heads ${await heads(alice)}`);
console.log(`bob:   ${bob.length} nodes, heads ${await heads(bob)}`);

// 6. A merge: one node that links to both heads joins the fork.
const merge = await bob.append("merged");
console.log(`\nbob merged the fork with ${short(merge.key)} -> links ${merge.links.map(short).join(", ")}`);
await alice.close();
await bob.close();

// 7. Reopen: everything was stored in the files.
const again = new Hyperlog(await openSqlite(join(dir, "bob.db")), { valueEncoding: "json" });
await again.ready();
console.log(`reopened bob.db: ${again.length} nodes, id ${again.id}`);
await again.close();
rmSync(dir, { recursive: true, force: true });
