/**
 * The read stream of a log (see `Hyperlog.createReadStream`): pages of 1024 nodes read from the storage in
 * change order (or reverse), turned into API nodes; a live stream then waits for the log to grow, and when the log
 * closes delivers what was committed before the close and ends.
 *
 * @module
 */
import { ClosedError } from "./errors.ts";
import { checkCount } from "./log-checks.ts";
import type { ReadStreamOptions } from "./log-types.ts";
import type { Node, StoredNode } from "./node.ts";
import type { Storage } from "./storage.ts";

/** Nodes per storage read. */
const PAGE = 1024;

/** What a read stream needs of its log. */
export interface StreamSource<T> {
  /** Settles when the log is open. */
  readonly opening: Promise<void>;
  /** The log's storage. */
  readonly storage: Storage;
  /** Whether the log is closed. */
  closed(): boolean;
  /** The log's length. */
  length(): number;
  /** Enqueues the API nodes of a page of stored nodes (one call a page: the loop stays in the log). */
  deliver(page: readonly StoredNode[], controller: ReadableStreamDefaultController<Node<T>>): void;
  /** The log's waiters, woken when it grows or closes. */
  waiters(): Set<() => void>;
  /** The live streams' finalizers, run when the log closes. */
  readonly live: Set<() => Promise<void>>;
}

/** A read stream over `source` (see `Hyperlog.createReadStream`). */
export function readStream<T>(source: StreamSource<T>, options: ReadStreamOptions): ReadableStream<Node<T>> {
  const since = checkCount(options.since, "since", false) ?? 0;
  const until = checkCount(options.until, "until", true) ?? Infinity;
  let remaining = checkCount(options.limit, "limit", true) ?? Infinity;
  const reverse = options.reverse === true;
  const live = options.live === true;
  if (reverse && live) {
    throw new RangeError("A read stream cannot be both reverse and live; drop one of the two options");
  }
  let cursor = reverse ? until : since;
  let cancelled = false;
  let ended = false;
  let finalizing = false;
  let wake: (() => void) | undefined;
  let controller!: ReadableStreamDefaultController<Node<T>>;
  let pulling: Promise<void> | undefined;
  const end = () => {
    ended = true;
    source.live.delete(finalize);
    controller.close();
  };
  /** When the log closes: delivers every node committed before the close that the stream has not read, then ends. */
  const finalize = async (): Promise<void> => {
    finalizing = true;
    source.live.delete(finalize);
    await pulling?.catch(() => {});
    if (cancelled || ended) return;
    try {
      while (remaining > 0 && cursor < until) {
        const page = await source.storage.read({ since: cursor, until, limit: Math.min(PAGE, remaining), reverse });
        if (page.length === 0) break;
        source.deliver(page, controller);
        remaining -= page.length;
        cursor = page[page.length - 1]!.change;
      }
      end();
    } catch (error) {
      ended = true;
      controller.error(error);
    }
  };
  if (live) source.live.add(finalize);
  const pull = async (): Promise<void> => {
    await source.opening;
    for (;;) {
      if (cancelled || ended || finalizing) return;
      if (remaining <= 0 || (reverse ? cursor <= since : cursor >= until)) return end();
      // A live stream opened after the log closed has nothing to wait for.
      if (source.closed()) return live ? end() : controller.error(new ClosedError());
      const page = await source.storage.read(
        reverse
          ? { since, until: cursor, limit: Math.min(PAGE, remaining), reverse }
          : { since: cursor, until, limit: Math.min(PAGE, remaining), reverse },
      );
      if (page.length > 0) {
        source.deliver(page, controller);
        remaining -= page.length;
        cursor = reverse ? page[page.length - 1]!.change - 1 : page[page.length - 1]!.change;
        return;
      }
      if (!live) return end();
      if (cursor < source.length()) continue;
      await new Promise<void>((resolve) => {
        wake = resolve;
        source.waiters().add(resolve);
      });
    }
  };
  return new ReadableStream<Node<T>>({
    start: (c) => {
      controller = c;
    },
    pull: () => {
      pulling = pull();
      return pulling;
    },
    cancel: () => {
      cancelled = true;
      source.live.delete(finalize);
      if (wake !== undefined) {
        source.waiters().delete(wake);
        wake();
      }
    },
  }, { highWaterMark: 0 });
}
