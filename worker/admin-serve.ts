/**
 * The list of logs of `hyperlog serve` for the admin dashboard: the `NAME.db` files of its directory, with their
 * sizes (the database and its write-ahead log) and when they last changed.
 *
 * @module
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { LogRegistry, RegisteredLog } from "./admin.ts";
import { nameOfFile } from "./caps.ts";
import { LOG_NAME } from "./settings.ts";

/**
 * A {@link LogRegistry} over a directory of `NAME.db` files (file names as `fileNameOf` in caps.ts makes them).
 *
 * @example
 * ```ts
 * import { mkdtempSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { directoryRegistry } from "./admin-serve.ts";
 * const dir = mkdtempSync(join(tmpdir(), "registry-"));
 * writeFileSync(join(dir, "chat.db"), "12345");
 * const logs = await directoryRegistry(dir).logs();
 * console.assert(logs.length === 1 && logs[0]!.name === "chat" && logs[0]!.bytes === 5);
 * ```
 */
export function directoryRegistry(dir: string): LogRegistry {
  return {
    logs(): Promise<RegisteredLog[]> {
      const logs: RegisteredLog[] = [];
      let files: string[];
      try {
        files = readdirSync(dir);
      } catch {
        return Promise.resolve(logs);
      }
      for (const file of files) {
        if (!file.endsWith(".db")) continue;
        // The log's name from its file name (`+chat.db` is the log `Chat`; see caps.ts).
        const name = nameOfFile(file.slice(0, -3));
        if (name === undefined || !LOG_NAME.test(name)) continue;
        let bytes = 0;
        let modified = 0;
        for (const part of [file, `${file}-wal`]) {
          try {
            const stat = statSync(join(dir, part));
            bytes += stat.size;
            modified = Math.max(modified, stat.mtimeMs);
          } catch {
            // No write-ahead log.
          }
        }
        logs.push({ name, bytes, modified });
      }
      return Promise.resolve(logs);
    },
  };
}
