/**
 * Imports a database written by hyperlog 4.12.1 (its LevelDB, opened with any abstract-level or levelup binding)
 * into a new log: every node, in the old change order, with the same keys, links and value bytes. Each node is
 * stored by `Hyperlog.ingest`, so its key is checked against its content and its links must come first (they do:
 * change order is topological). Each node's writer log id and seq, and hyperlog 4's opaque identity and signature
 * bytes, go into the log's hyperlog 4 index, so the compat API shows them (`node.log`, `node.seq`) and hyperlog 4
 * peers replicate with the imported log as with the original.
 *
 * Signed nodes: hyperlog 4 signatures come from the application's `sign` callback and cover whatever it chose, so
 * they cannot become the new log's Ed25519 signatures; the nodes are imported unsigned (their keys are hyperlog 4's
 * keys, which do not cover an identity), and the old signature bytes travel with them to hyperlog 4 and compat
 * peers, whose `verify` callback checks them as before. A log that requires signatures refuses them.
 *
 * @module
 */
import { InvalidNodeError } from "../src/errors.ts";
import type { Hyperlog } from "../src/log.ts";
import { type LevelDatabase, levelGet, levelRange } from "../storage/level.ts";
import type { H4Record } from "../src/hyperlog4/log-index.ts";
import { decodeH4Node, type H4Node } from "../src/hyperlog4/messages.ts";
import { hyperlog4View } from "../src/hyperlog4/replicate.ts";

/**
 * What {@link importHyperlog4} did.
 *
 * @example
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import { type Hyperlog4ImportResult, importHyperlog4 } from "./import.ts";
 * // An abstract-level database with nothing in it: no id, no nodes.
 * const empty = { get: async () => undefined, batch: async () => {}, iterator: () => [].values() };
 * const result: Hyperlog4ImportResult = await importHyperlog4(new Hyperlog(), empty);
 * console.assert(result.nodes === 0 && result.imported === 0 && result.signed === 0 && result.id === undefined);
 * ```
 */
export interface Hyperlog4ImportResult {
  /** Nodes in the hyperlog 4 database. */
  nodes: number;
  /** Nodes the log did not have yet. */
  imported: number;
  /** Nodes that carried a hyperlog 4 signature. */
  signed: number;
  /** The hyperlog 4 database's own log id (`!!id`), if it had one. */
  id: string | undefined;
  /** Where the import stopped (the last change key read): pass it as `after` to import only what came since. */
  cursor?: string | undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function bytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === "string") return encoder.encode(value);
  throw new InvalidNodeError("The hyperlog 4 database holds a value that is neither bytes nor text");
}

/**
 * Imports the hyperlog 4.12.1 database `db` into `log` (see the module doc). Pages of `page` nodes are stored one
 * commit each; running it again imports nothing twice.
 *
 * @example
 * ```ts ignore
 * import { ClassicLevel } from "classic-level";
 * import { Hyperlog } from "../mod.ts";
 * import { importHyperlog4 } from "./import.ts";
 * const log = new Hyperlog();
 * const result = await importHyperlog4(log, new ClassicLevel("/tmp/old-hyperlog.db"));
 * console.log(`${result.imported} of ${result.nodes} nodes imported`);
 * ```
 */
export async function importHyperlog4(
  // deno-lint-ignore no-explicit-any
  log: Hyperlog<any>,
  db: LevelDatabase,
  options: { page?: number; after?: string | undefined } = {},
): Promise<Hyperlog4ImportResult> {
  const page = options.page ?? 1000;
  const dag = hyperlog4View(log);
  await dag.ready();
  await dag.sync();
  const id = await levelGet(db, "!!id", false);
  const result: Hyperlog4ImportResult = {
    nodes: 0,
    imported: 0,
    signed: 0,
    id: id === undefined ? undefined : typeof id === "string" ? id : decoder.decode(bytes(id)),
  };
  let cursor = options.after ?? "!changes!";
  for (;;) {
    const rows = await levelRange(db, { gt: cursor, lt: "!changes!~", limit: page, reverse: false }, false);
    if (rows.length === 0) break;
    cursor = rows[rows.length - 1]![0];
    const nodes: H4Node[] = [];
    for (const [, value] of rows) {
      const key = typeof value === "string" ? value : decoder.decode(bytes(value));
      const raw = await levelGet(db, `!nodes!${key}`, true);
      if (raw === undefined) {
        throw new InvalidNodeError(`The hyperlog 4 database lists node ${key} in its changes but does not hold it`);
      }
      const node = decodeH4Node(bytes(raw));
      if (node.key !== key) {
        throw new InvalidNodeError(`The hyperlog 4 database holds node ${node.key} under the key ${key}`);
      }
      nodes.push(node);
    }
    result.nodes += nodes.length;
    await dag.lock(async () => {
      const stored = await log.ingest(nodes.map((node) => ({ key: node.key, links: node.links, value: node.value })));
      const changes = new Map(stored.map((s) => [s.key, s.change]));
      result.imported += stored.length;
      const records: H4Record[] = [];
      const placed = new Map<string, string>();
      for (const node of nodes) {
        const change = changes.get(node.key);
        if (change === undefined) continue; // already in the log, with its place
        if (node.signature !== undefined) result.signed++;
        const links: string[] = [];
        for (const link of node.links) {
          const linkLog = placed.get(link) ?? (await dag.index.place(link))?.log;
          if (linkLog !== undefined && linkLog !== node.log && !links.includes(linkLog)) links.push(linkLog);
        }
        placed.set(node.key, node.log);
        records.push({
          key: node.key,
          change,
          log: node.log,
          seq: node.seq,
          links,
          first: true,
          identity: node.identity,
          signature: node.signature,
        });
      }
      await dag.index.record(records, await log.storage.length());
    });
    await dag.sync();
  }
  result.cursor = cursor;
  return result;
}
