/**
 * The self-hosted relay with every log in one Deno KV database, log `NAME` under the key prefix
 * `["hyperlog", "logs", NAME]`: `hyperlog serve --storage kv[:PATH]` on Deno, and the Deno Deploy entry
 * (`deno-deploy.ts`). Log names are single key parts, so no log's prefix starts another's.
 *
 * @module
 */
import { resolve } from "node:path";
import { mkdirSync } from "node:fs";
import { type DenoKvKey, type DenoKvLike, DenoKvStorage } from "../storage/deno-kv.ts";
import type { Storage } from "../mod.ts";

/**
 * The key prefix under which the relay keeps its logs: log `NAME` is under `[...KV_LOGS_PREFIX, NAME]`.
 *
 * @example
 * ```ts
 * import { KV_LOGS_PREFIX } from "./serve-kv.ts";
 * console.assert(KV_LOGS_PREFIX.join("/") === "hyperlog/logs");
 * ```
 */
export const KV_LOGS_PREFIX: DenoKvKey = ["hyperlog", "logs"];

/**
 * Opens each log of the relay in `kv`, under `[...prefix, name]` (the storages leave `kv` open: close it after the
 * relay).
 *
 * @example
 * ```ts
 * import { kvLogs } from "./serve-kv.ts";
 * import type { DenoKvLike } from "../storage/deno-kv.ts";
 * const kv = { atomic() {} } as unknown as DenoKvLike;
 * const storage = await kvLogs(kv)("chat");
 * console.assert((storage as unknown as { prefix: unknown[] }).prefix.join("/") === "hyperlog/logs/chat");
 * ```
 */
export function kvLogs(kv: DenoKvLike, prefix: DenoKvKey = KV_LOGS_PREFIX): (name: string) => Promise<Storage> {
  return (name) => Promise.resolve(new DenoKvStorage(kv, { prefix: [...prefix, name] }));
}

/**
 * Where a relay keeps its logs, from the CLI's `--storage` value: `sqlite` (the default: `DIR/NAME.db` per log),
 * `kv` (one Deno KV database, `DIR/logs.kv`) or `kv:PATH` (the Deno KV database at PATH, or `kv::memory:`).
 * `openLog` is for `serve()` (absent for SQLite); `where` says where, for the CLI's first line; `close` closes the
 * database once the relay is closed. Throws a `TypeError` for another value, or for `kv` outside Deno or without
 * `--unstable-kv`.
 *
 * @example
 * ```ts
 * import { relayStorage } from "./serve-kv.ts";
 * const sqlite = await relayStorage("sqlite", "./relay-data");
 * console.assert(sqlite.openLog === undefined);
 * ```
 */
export async function relayStorage(
  spec: string,
  dir: string,
): Promise<{ openLog?: (name: string) => Promise<Storage>; where: string; close(): void }> {
  if (spec === "sqlite") return { where: resolve(dir), close() {} };
  if (spec !== "kv" && !spec.startsWith("kv:")) {
    throw new TypeError(`--storage ${spec} is not a storage: give sqlite, kv or kv:PATH`);
  }
  const deno = (globalThis as unknown as { Deno?: { openKv?: (path?: string) => Promise<DenoKvLike> } }).Deno;
  if (typeof deno?.openKv !== "function") {
    throw new TypeError(
      deno === undefined
        ? "--storage kv needs Deno: deno run -A --unstable-kv bin/hyperlog.mjs serve --storage kv"
        : "--storage kv needs Deno KV: run Deno with --unstable-kv",
    );
  }
  let path = spec.slice(3);
  if (path === "") {
    mkdirSync(dir, { recursive: true });
    path = `${dir}/logs.kv`;
  }
  const kv = await deno.openKv(path);
  return {
    openLog: kvLogs(kv),
    where: `the Deno KV database ${path === ":memory:" ? path : resolve(path)}`,
    close: () => kv.close(),
  };
}
