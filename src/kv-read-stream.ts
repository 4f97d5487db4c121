/**
 * HyperKV's read stream: the keys that have values, in key order, page by page from the index; live, then each
 * later change of a key in range, as the index's batches report them.
 *
 * @module
 */
import { HEADS, type HeadsRecord, type KVLog, kvValue, valuesOf } from "./kv-index.ts";
import type { KVEntry, KVReadStreamOptions } from "./kv-types.ts";
import type { View, ViewBatchDetail } from "./view.ts";

/** What the read stream reads: the log (nodes, length, closing) and the store's index. */
export interface KVStreamSource {
  log: KVLog & { readonly closed: boolean; readonly length: number; waitForLength(length: number): Promise<void> };
  view: View<unknown>;
}

/** The stream of `kv.createReadStream(options)`. */
export function kvReadStream<V>(source: KVStreamSource, options: KVReadStreamOptions): ReadableStream<KVEntry<V>> {
  const { log, view } = source;
  if (typeof options !== "object" || options === null) throw new TypeError("Read stream options must be an object");
  const bounds: Record<string, string> = {};
  for (const name of ["gt", "gte", "lt", "lte", "prefix"] as const) {
    const bound = options[name];
    if (bound === undefined) continue;
    if (typeof bound !== "string") throw new TypeError(`Read stream bound ${name} must be a string`);
    bounds[name] = HEADS + bound;
  }
  if (bounds.prefix === undefined) bounds.prefix = HEADS;
  const inRange = (key: string) =>
    (options.gt === undefined || key > options.gt) && (options.gte === undefined || key >= options.gte) &&
    (options.lt === undefined || key < options.lt) && (options.lte === undefined || key <= options.lte) &&
    (options.prefix === undefined || key.startsWith(options.prefix));
  const live = options.live === true;
  const PAGE = 256;
  let cursor: string | undefined;
  let snapshotDone = false;
  let changed = new Set<string>();
  let wake: (() => void) | undefined;
  const onBatch = (event: Event) => {
    for (const node of (event as CustomEvent<ViewBatchDetail>).detail.nodes) {
      const write = kvValue(node.value);
      if (write !== undefined && inRange(write.key)) changed.add(write.key);
    }
    wake?.();
  };
  const onError = () => wake?.();
  const stop = () => {
    view.removeEventListener("batch", onBatch);
    view.removeEventListener("error", onError);
    wake?.();
  };
  if (live) {
    view.addEventListener("batch", onBatch);
    view.addEventListener("error", onError);
  }
  return new ReadableStream<KVEntry<V>>({
    pull: async (controller) => {
      try {
        if (!snapshotDone) {
          await view.ready();
          for (;;) {
            const page = await view.range({
              ...bounds,
              ...(cursor === undefined ? {} : { gt: cursor }),
              limit: PAGE,
            });
            if (page.length === 0) break;
            cursor = page[page.length - 1]![0];
            let sent = false;
            for (const [viewKey, record] of page) {
              const values = await valuesOf<V>(log, record as HeadsRecord);
              if (Object.keys(values).length === 0) continue;
              controller.enqueue({ key: viewKey.slice(HEADS.length), values });
              sent = true;
            }
            if (sent) return;
          }
          snapshotDone = true;
          if (!live) return controller.close();
        }
        for (;;) {
          if (changed.size > 0) {
            const keys = [...changed].sort();
            changed = new Set();
            for (const key of keys) {
              controller.enqueue({
                key,
                values: await valuesOf<V>(log, await view.get(HEADS + key) as HeadsRecord | undefined),
              });
            }
            return;
          }
          if (log.closed || view.error !== undefined) {
            stop();
            return controller.close();
          }
          // Woken by the index's next batch, by any commit of the log, or by its close.
          await new Promise<void>((resolve) => {
            wake = resolve;
            log.waitForLength(log.length).then(resolve, resolve);
          });
          wake = undefined;
        }
      } catch (err) {
        stop();
        if (log.closed) controller.close();
        else controller.error(err);
      }
    },
    cancel: stop,
  }, { highWaterMark: 0 });
}
