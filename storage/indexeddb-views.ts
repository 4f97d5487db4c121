/**
 * The requests behind `IndexedDBStorage`'s views, made within a transaction the storage runs: a view's checkpoint
 * in `views`, its pairs in `view_data` keyed by `[view name, key]`.
 *
 * @module
 */
import type { ViewRange, ViewState, ViewWrite } from "../src/storage.ts";
import { VIEW_DATA, viewKeyRange, VIEWS } from "./indexeddb-layout.ts";

/** Reads the checkpoint of the view `name` and passes it (a plain copy) to `done`. */
export function readViewState(
  tx: IDBTransaction,
  name: string,
  done: (state: ViewState | undefined, final: boolean) => void,
): void {
  const request = tx.objectStore(VIEWS).get(name);
  request.onsuccess = () => {
    const state = request.result as ViewState | undefined;
    done(state === undefined ? undefined : { version: state.version, change: state.change }, true);
  };
}

/** Reads the pairs of the view `name` within `range` into `pairs`, in key order (filled when `tx` completes). */
export function readViewRange(
  tx: IDBTransaction,
  name: string,
  range: ViewRange,
  pairs: Array<[string, string]>,
): void {
  const keys = viewKeyRange(name, range);
  if (keys === null || !(range.limit > 0)) return;
  const store = tx.objectStore(VIEW_DATA);
  if (!range.reverse) {
    // Two bulk reads over the same range in one transaction see the same pairs.
    const count = range.limit === Infinity ? undefined : Math.min(range.limit, 2 ** 32 - 1);
    const keyRequest = store.getAllKeys(keys, count);
    const valueRequest = store.getAll(keys, count);
    valueRequest.onsuccess = () => {
      const found = keyRequest.result as Array<[string, string]>;
      const values = valueRequest.result as string[];
      for (let i = 0; i < found.length; i++) pairs.push([found[i]![1], values[i]!]);
    };
    return;
  }
  const cursor = store.openCursor(keys, "prev");
  cursor.onsuccess = () => {
    const at = cursor.result;
    if (at === null) return;
    pairs.push([(at.key as [string, string])[1], at.value as string]);
    if (pairs.length < range.limit) at.continue();
  };
}

/** Applies `writes` in order to the view `name` and sets its checkpoint. */
export function writeView(tx: IDBTransaction, name: string, writes: readonly ViewWrite[], state: ViewState): void {
  const data = tx.objectStore(VIEW_DATA);
  for (const { key, value } of writes) {
    if (value === undefined) data.delete([name, key]);
    else data.put(value, [name, key]);
  }
  tx.objectStore(VIEWS).put({ version: state.version, change: state.change }, name);
}
