/**
 * Opening a Deno KV storage (`deno-kv.ts`): its options, and the database at a path with `Deno.openKv`.
 *
 * @module
 */
import { StorageError } from "../src/errors.ts";
import type { DenoKvKey } from "./deno-kv-codec.ts";
import type { DenoKvLike } from "./deno-kv-journal.ts";

/**
 * Options of `DenoKvStorage` (`deno-kv.ts`).
 *
 * @example
 * ```ts
 * import { type DenoKvLike, DenoKvStorage, type DenoKvStorageOptions } from "./deno-kv.ts";
 * const kv = { atomic() {} } as unknown as DenoKvLike; // constructing a storage reads nothing yet
 * const options: DenoKvStorageOptions = { prefix: ["logs", "chat"], watch: false };
 * console.assert(new DenoKvStorage(kv, options).prefix.join("/") === "logs/chat");
 * let refused: unknown;
 * try {
 *   new DenoKvStorage(kv, { prefix: [] });
 * } catch (error) {
 *   refused = error;
 * }
 * console.assert(refused instanceof TypeError); // a prefix has at least one part
 * ```
 */
export interface DenoKvStorageOptions {
  /** The key prefix of this log in the database (`["hyperlog"]` by default); give each log its own. */
  prefix?: DenoKvKey;
  /** Close the database when the storage closes (true when `DenoKvStorage.open` opened it). */
  closeKv?: boolean;
  /** Where the database is, for error messages (set by `DenoKvStorage.open`). */
  path?: string | undefined;
  /**
   * Follow other writers' commits with Deno KV's `watch` (see `DenoKvStorage.watch`): true by default on
   * Deno, false elsewhere (the npm client's watch keeps Node's process alive after it is cancelled).
   */
  watch?: boolean;
}

/**
 * The Deno KV database at `path` (a file, `:memory:`, or Deno's default database when omitted), opened with
 * `Deno.openKv`, which Deno 2 still gates behind `--unstable-kv`; a `StorageError` says why it cannot be.
 *
 * @example
 * ```ts
 * import { openKvAt } from "./deno-kv-open.ts";
 * if (!("Deno" in globalThis)) {
 *   let refused: unknown;
 *   await openKvAt(":memory:").catch((error) => (refused = error));
 *   console.assert(refused instanceof Error && /needs Deno/.test((refused as Error).message));
 * }
 * ```
 */
export async function openKvAt(path?: string): Promise<DenoKvLike> {
  const deno = (globalThis as unknown as { Deno?: { openKv?: (path?: string) => Promise<DenoKvLike> } }).Deno;
  if (typeof deno?.openKv !== "function") {
    throw new StorageError(
      deno === undefined
        ? "Deno KV needs Deno (elsewhere, open a database with the npm client @deno/kv and pass it)"
        : "Deno.openKv is not available: run Deno with --unstable-kv",
    );
  }
  let kv: DenoKvLike;
  try {
    kv = await deno.openKv(path);
  } catch (err) {
    throw new StorageError(`Cannot open the Deno KV database ${path ?? "(default)"}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return kv;
}
