/**
 * `hyperlog kv ...`: the key/value store (HyperKV) in the same log: put, get, del, ls, history, and sync as
 * `hyperlog sync` does.
 *
 * @module
 */
import { HyperKV } from "../src/kv.ts";
import { KV_FLAGS, type Parsed, UsageError, valueOf } from "./cli-args.ts";
import { nodeJson, openLog, writeLines } from "./cli-common.ts";
import { sync, syncRelay } from "./cli-sync.ts";
import type { FullCliIO } from "./io.ts";

/** `hyperlog kv ...`: the key/value store in the same log. */
export async function kv(io: FullCliIO, parsed: Parsed): Promise<number> {
  const [sub, ...args] = parsed.args;
  const usage = (what: string) => new UsageError(`The kv ${sub} command takes ${what}`);
  if (sub === undefined) throw new UsageError("The kv command needs a subcommand: put, get, del, ls, history or sync");
  const known = KV_FLAGS[sub];
  if (known === undefined) {
    throw new UsageError(`Unknown kv subcommand ${JSON.stringify(sub)}: use put, get, del, ls, history or sync`);
  }
  for (const flag of parsed.flags) {
    if (known.includes(flag) || (sub === "sync" && flag.startsWith("--token="))) continue;
    throw new UsageError(`Unknown option ${flag} for the kv ${sub} command`);
  }
  if (sub === "sync") {
    // The same as hyperlog sync, over stdin/stdout or with a relay.
    if (args.length === 1 && /^wss?:\/\//.test(args[0]!)) return await syncRelay(io, { ...parsed, args });
    if (args.length !== 0) throw usage("no arguments (or a ws:// URL), only --live, --push, --pull or --token");
    return await sync(io, parsed);
  }
  const arity: Record<string, [number, string]> = {
    put: [2, "a KEY and a VALUE"],
    get: [1, "one KEY"],
    del: [1, "one KEY"],
    history: [1, "one KEY"],
    ls: [0, "no arguments"],
  };
  const [count, what] = arity[sub]!;
  if (args.length !== count) throw usage(what);
  const value = sub === "put" ? valueOf(args[1]!, parsed.flags) : undefined;
  const log = await openLog(io, parsed.dir);
  const store = new HyperKV(log);
  try {
    const key = args[0]!;
    switch (sub) {
      case "put":
        await io.stdout(`${(await store.put(key, value)).key}\n`);
        break;
      case "del":
        await io.stdout(`${(await store.del(key)).key}\n`);
        break;
      case "get":
        await io.stdout(JSON.stringify(await store.get(key)) + "\n");
        break;
      case "history":
        await writeLines(io, await store.history(key), nodeJson);
        break;
      case "ls":
        await writeLines(io, store.createReadStream(), (entry) => JSON.stringify(entry));
        break;
    }
  } finally {
    await log.close();
  }
  return 0;
}
