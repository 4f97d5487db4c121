/**
 * The views of {@link DenoKvStorage} (`deno-kv.ts`) in Deno KV, under the log's prefix `P`: `[...P, "vs", name]`
 * holds a view's checkpoint, the generation of its pairs, and the journal being applied; `[...P, "vd", name, gen,
 * key]` its pairs (`[...P, "vx", name, gen, key, i]`: the rest of a value over 64 KiB). A commit is atomic through
 * {@link KvWriter} (one operation, or a journal made visible by one step that sets the checkpoint); a drop deletes
 * the checkpoint in one step, which hides the generation, and remembers it in `[...P, "vt", gen]` until its pairs
 * are deleted.
 *
 * @module
 */
import { StorageConflictError, StorageError } from "../src/errors.ts";
import {
  decodeViewState,
  decodeViewValue,
  type DenoKvKey,
  type DenoKvKeyPart,
  encodeViewState,
  encodeViewValue,
  keyBytes,
  MAX_KEY_BYTES,
  type StoredViewState,
} from "./deno-kv-codec.ts";
import { utf8 } from "./deno-kv-bytes.ts";
import { bytesOf, type DenoKvEntryLike, type DenoKvLike, type KvWriter, newId } from "./deno-kv-journal.ts";
import type { ViewRange, ViewState, ViewWrite } from "../src/storage.ts";
import { checkViewCommit } from "../src/view-keys.ts";

/**
 * The views of one log in a Deno KV database (see the module doc); {@link DenoKvStorage} calls it.
 *
 * @example
 * ```ts ignore
 * const views = new KvViews(kv, (...parts) => ["hyperlog", ...parts], writer);
 * await views.commit("v", [{ key: "a", value: "1" }], { version: 1, change: 1 });
 * ```
 */
export class KvViews {
  readonly #kv: DenoKvLike;
  readonly #key: (...parts: DenoKvKeyPart[]) => DenoKvKey;
  readonly #writer: KvWriter;
  /** The generation of each view's pairs, as last read. */
  readonly #gens = new Map<string, string>();

  /** The views under `key(...)` in `kv`, written through `writer`. */
  constructor(kv: DenoKvLike, key: (...parts: DenoKvKeyPart[]) => DenoKvKey, writer: KvWriter) {
    this.#kv = kv;
    this.#key = key;
    this.#writer = writer;
  }

  /** The stored state of a view (after putting an interrupted commit in place), and its entry. */
  async stored(name: string): Promise<{ state: StoredViewState | undefined; entry: DenoKvEntryLike }> {
    for (;;) {
      const entry = await this.#kv.get(this.#key("vs", name));
      const bytes = bytesOf(entry, `The state of view ${name}`);
      const state = bytes === undefined ? undefined : decodeViewState(bytes);
      if (state !== undefined) this.#gens.set(name, state.gen);
      else this.#gens.delete(name);
      if (state === undefined || state.journal === "") return { state, entry };
      await this.#writer.apply(entry, state.journal, encodeViewState({ ...state, journal: "" }));
    }
  }

  /** The checkpoint of a view, or `undefined`. */
  async state(name: string): Promise<ViewState | undefined> {
    const { state } = await this.stored(name);
    return state === undefined ? undefined : { version: state.version, change: state.change };
  }

  /** The rest of a value over 64 KiB. */
  async #value(name: string, gen: string, key: string, first: Uint8Array): Promise<string> {
    const extra: Uint8Array[] = [];
    for (let i = 1; i <= first[0]!; i++) {
      const entry = await this.#kv.get(this.#key("vx", name, gen, key, i));
      const bytes = bytesOf(entry, `A piece of ${key} in view ${name}`);
      if (bytes === undefined) throw new StorageError(`A piece of ${key} in view ${name} is missing from Deno KV`);
      extra.push(bytes);
    }
    return decodeViewValue(first, extra);
  }

  /** The value of a key in a view, or `undefined`. */
  async get(name: string, key: string): Promise<string | undefined> {
    for (;;) {
      const gen = this.#gens.get(name) ?? "";
      const [stateEntry, valueEntry] = await this.#kv.getMany([
        this.#key("vs", name),
        this.#key("vd", name, gen, key),
      ]);
      const bytes = bytesOf(stateEntry!, `The state of view ${name}`);
      const state = bytes === undefined ? undefined : decodeViewState(bytes);
      if (state === undefined) return undefined;
      if (state.journal !== "" || state.gen !== gen) {
        await this.stored(name);
        continue;
      }
      const first = bytesOf(valueEntry!, `The value of ${key} in view ${name}`);
      return first === undefined ? undefined : await this.#value(name, gen, key, first);
    }
  }

  /** Pairs of a view in key order (Deno KV orders keys by UTF-8 bytes; see the README). */
  async range(name: string, range: ViewRange): Promise<Array<[string, string]>> {
    const { state } = await this.stored(name);
    if (state === undefined || !(range.limit > 0)) return [];
    const base = this.#key("vd", name, state.gen);
    const low = range.gt !== undefined && (range.gte === undefined || range.gt >= range.gte) ? range.gt : range.gte;
    const high = range.lt !== undefined && (range.lte === undefined || range.lt <= range.lte) ? range.lt : range.lte;
    if (low !== undefined && high !== undefined && low > high) return [];
    const start = low === undefined ? undefined : [...base, low];
    const end = high === undefined ? undefined : high === range.lt ? [...base, high] : [...base, high, 0];
    const selector = start !== undefined && end !== undefined
      ? { start, end }
      : { prefix: base, ...(start === undefined ? {} : { start }), ...(end === undefined ? {} : { end }) };
    const limit = range.limit === Infinity ? undefined : range.limit + 1;
    const out: Array<[string, string]> = [];
    const options = { reverse: range.reverse, batchSize: 500, ...(limit === undefined ? {} : { limit }) };
    for await (const entry of this.#kv.list(selector, options)) {
      const key = entry.key[entry.key.length - 1] as string;
      if (range.gt !== undefined && key === range.gt) continue;
      const first = bytesOf(entry, `The value of ${key} in view ${name}`)!;
      out.push([key, await this.#value(name, state.gen, key, first)]);
      if (out.length >= range.limit) break;
    }
    return out;
  }

  /** Applies writes and sets the checkpoint of a view, in one atomic step (see the module doc). */
  async commit(name: string, writes: readonly ViewWrite[], state: ViewState): Promise<void> {
    checkViewCommit(name, writes, state);
    const { state: stored, entry } = await this.stored(name);
    const gen = stored?.gen ?? newId();
    const last = new Map<string, string | undefined>();
    for (const { key, value } of writes) last.set(key, value);
    const kvWrites: { key: DenoKvKey; value: Uint8Array | undefined }[] = [];
    for (const [key, value] of last) {
      const dataKey = this.#key("vd", name, gen, key, 0);
      if (keyBytes(dataKey) > MAX_KEY_BYTES) {
        throw new StorageError(
          `View ${name}: the key ${JSON.stringify(key.slice(0, 40))}... is too long for Deno KV (keys of at most ` +
            `${MAX_KEY_BYTES} bytes with the prefix); use shorter keys`,
        );
      }
      if (value === undefined) {
        kvWrites.push({ key: this.#key("vd", name, gen, key), value: undefined });
        continue;
      }
      const [first, ...extra] = encodeViewValue(value);
      if (extra.length > 255) throw new StorageError(`View ${name}: the value of ${key} is over 16 MB`);
      kvWrites.push({ key: this.#key("vd", name, gen, key), value: first! });
      extra.forEach((piece, i) => kvWrites.push({ key: this.#key("vx", name, gen, key, i + 1), value: piece }));
    }
    const { ok } = await this.#writer.commit(
      entry,
      kvWrites,
      (journal) => encodeViewState({ version: state.version, change: state.change, gen, journal }),
    );
    if (!ok) throw new StorageConflictError(`View ${name} was committed by another writer meanwhile`);
    this.#gens.set(name, gen);
  }

  /** Removes a view's pairs and checkpoint: one atomic step hides them, then they are deleted. */
  async drop(name: string): Promise<void> {
    const { state, entry } = await this.stored(name);
    if (state === undefined) return;
    const ok = (await this.#writer.run([
      { key: entry.key, value: undefined },
      { key: this.#key("vt", state.gen), value: utf8.encode(name) },
    ], { key: entry.key, versionstamp: entry.versionstamp })).ok;
    if (!ok) throw new StorageConflictError(`View ${name} was committed by another writer meanwhile`);
    this.#gens.delete(name);
    await this.clean(name, state.gen);
  }

  /** Deletes the pairs of a dropped generation of a view, then its trash record. */
  async clean(name: string, gen: string): Promise<void> {
    await this.#writer.deletePrefix(this.#key("vd", name, gen));
    await this.#writer.deletePrefix(this.#key("vx", name, gen));
    await this.#writer.run([{ key: this.#key("vt", gen), value: undefined }]);
  }
}
