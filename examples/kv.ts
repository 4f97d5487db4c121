/**
 * The seed's key/value example, made real: two peers keep a HyperKV in SQLite logs, write the same key at the same
 * time, sync, see both values side by side, and one resolves them. A view counts the writes per key beside it, and
 * is thrown away and rebuilt ("rm -rf db/index and the logs catch up").
 *
 * Run: `node examples/kv.ts` (also `deno run -A examples/kv.ts`, `bun examples/kv.ts`).
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HyperKV, Hyperlog, type KVNodeValue } from "../mod.ts";
import { openSqlite } from "../storage/sqlite-open.ts";

const dir = mkdtempSync(join(tmpdir(), "hyperlog-kv-example-"));
try {
  const alice = new Hyperlog<KVNodeValue>(await openSqlite(join(dir, "alice.db")));
  const bob = new Hyperlog<KVNodeValue>(await openSqlite(join(dir, "bob.db")));
  const aliceKv = new HyperKV<string>(alice);
  const bobKv = new HyperKV<string>(bob);

  // A view of our own beside the kv index: writes per key.
  const writes = alice.view({
    name: "writes-per-key",
    map: async (nodes, store) => {
      for (const node of nodes) {
        const key = "k" in node.value ? node.value.k : node.value.d;
        store.put(key, ((await store.get(key) as number | undefined) ?? 0) + 1);
      }
    },
  });

  await aliceKv.put("color", "blue");
  await bobKv.put("color", "green");
  await aliceKv.put("size", "large");

  const sync = async () => {
    const a = alice.replicate();
    const b = bob.replicate();
    a.readable.pipeTo(b.writable);
    b.readable.pipeTo(a.writable);
    await Promise.all([a.done, b.done]);
  };
  await sync();
  const show = (values: Record<string, string>) => Object.values(values).sort().join(" | ");
  console.log(`after sync, alice sees color = ${show(await aliceKv.get("color"))}`);
  console.log(`after sync, bob sees color   = ${show(await bobKv.get("color"))}`);

  await bobKv.put("color", "teal"); // links to both values: resolves the conflict
  await sync();
  console.log(`bob resolved it; alice sees color = ${show(await aliceKv.get("color"))}`);

  await bobKv.del("size");
  await sync();
  console.log(`bob deleted size; alice sees ${Object.keys(await aliceKv.get("size")).length} values`);
  const history = await aliceKv.history("color");
  console.log(`history of color: ${history.map((n) => ("k" in n.value ? n.value.v : "(deleted)")).join(" -> ")}`);

  await writes.ready();
  console.log(`writes per key: ${JSON.stringify(await writes.range())}`);
  await writes.reset(); // throw the index away; it catches up from the log
  await writes.ready();
  console.log(`rebuilt: ${JSON.stringify(await writes.range())}`);
  for await (const entry of aliceKv.createReadStream()) console.log(`ls: ${entry.key} = ${show(entry.values)}`);
  await alice.close();
  await bob.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
