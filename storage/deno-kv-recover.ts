/**
 * What `DenoKvStorage.open` puts right after a writer died: view commits and drops it interrupted are finished
 * (their journals say what to write), and journals nobody committed are deleted ten minutes after they started (a
 * commit too large for one atomic operation writes its journal first; see `deno-kv.ts`).
 *
 * @module
 */
import type { DenoKvKey, DenoKvKeyPart } from "./deno-kv-codec.ts";
import { decodeViewState } from "./deno-kv-codec.ts";
import { utf8 } from "./deno-kv-bytes.ts";
import { bytesOf, type DenoKvLike, JOURNAL_ID, type KvWriter } from "./deno-kv-journal.ts";
import type { KvViews } from "./deno-kv-views.ts";

/** A journal nobody committed (its writer died) is deleted by an `open` this long after it was started. */
const ORPHAN_JOURNAL_MS = 10 * 60 * 1000;

/**
 * Finishes the interrupted view commits and drops of the log whose keys `key` makes, and deletes its old orphan
 * journals (all but `journal`, the one its tip is applying).
 */
export async function recover(
  kv: DenoKvLike,
  key: (...parts: DenoKvKeyPart[]) => DenoKvKey,
  journal: string,
  views: KvViews,
  writer: KvWriter,
): Promise<void> {
  const prefixLength = key().length;
  const live = new Set<string>([journal]);
  const depth = prefixLength + 2;
  for await (const entry of kv.list({ prefix: key("vs") })) {
    if (entry.key.length !== depth) continue;
    const state = decodeViewState(bytesOf(entry, "A view state")!);
    if (state.journal !== "") await views.stored(entry.key[entry.key.length - 1] as string);
  }
  for await (const entry of kv.list({ prefix: key("vt") })) {
    if (entry.key.length !== depth) continue;
    await views.clean(
      utf8.decode(bytesOf(entry, "A dropped view")!),
      entry.key[entry.key.length - 1] as string,
    );
  }
  const orphans = new Set<string>();
  for await (const entry of kv.list({ prefix: key("j") })) {
    const id = entry.key[prefixLength + 1];
    // Only keys shaped like a journal piece: never another log's, whatever its prefix.
    if (entry.key.length !== prefixLength + 3 || typeof id !== "string" || !JOURNAL_ID.test(id)) continue;
    const started = parseInt(id.split("-")[0]!, 36);
    if (!live.has(id) && Date.now() - started > ORPHAN_JOURNAL_MS) orphans.add(id);
  }
  for (const id of orphans) await writer.deletePrefix(key("j", id));
}
