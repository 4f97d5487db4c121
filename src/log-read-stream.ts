/**
 * The read stream of a log (see `Hyperlog.createReadStream`): pages of 1024 nodes read from the storage in
 * change order (or reverse), turned into API nodes; a live stream then waits for the log to grow, and when the log
 * closes delivers what was committed before the close and ends.
 *
 * A stream that is not live also has its own async iterator (`for await`, `values()`): it locks the stream like the
 * standard one, but hands out the nodes of a page from an array, one settled promise each, instead of passing every
 * node through the stream's queue and a reader's read request (about 15 calls into the runtime's stream code a
 * node, which at 10 000 nodes mostly run before the JIT has compiled them). The stream's state follows: it closes
 * at the end, errors with the read's error, and is cancelled by `break` (unless `preventCancel`, which puts the
 * nodes of the page not yet handed out back in the stream's queue, so a later reader goes on where it stopped).
 *
 * @module
 */
import { ClosedError } from "./errors.ts";
import { checkCount } from "./log-checks.ts";
import type { ReadStreamOptions } from "./log-types.ts";
import type { Node } from "./node.ts";
import type { Kept } from "./log-values.ts";
import type { ReadRange } from "./storage.ts";

/** Nodes per storage read. */
const PAGE = 1024;

/** The runtime's async iterator of a `ReadableStream`. */
const standardValues = (ReadableStream.prototype as unknown as Record<symbol, unknown>)[Symbol.asyncIterator] as (
  this: ReadableStream,
  options?: { preventCancel?: boolean },
) => AsyncIterableIterator<never>;

/** Where a page's API nodes go: the stream's controller, or the async iterator's array. */
export interface NodeSink<T> {
  enqueue(node: Node<T>): void;
}

/** What a read stream needs of its log. */
export interface StreamSource<T> {
  /** Settles when the log is open. */
  readonly opening: Promise<void>;
  /** Reads a page of the log's storage, as it keeps its nodes (see `readKept`). */
  read(range: ReadRange): Promise<readonly Kept[]>;
  /** Whether the log is closed. */
  closed(): boolean;
  /** The log's length. */
  length(): number;
  /** Enqueues the API nodes of a page of stored nodes (one call a page: the loop stays in the log). */
  deliver(page: readonly Kept[], sink: NodeSink<T>): void;
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
      // A live stream reads forward: `nextPage` reads on from the cursor to `until`.
      for (let page; (page = await nextPage()).length > 0;) source.deliver(page, controller);
      end();
    } catch (error) {
      ended = true;
      controller.error(error);
    }
  };
  if (live) source.live.add(finalize);
  /** The next page, the cursor moved past it; empty at the end (or when a live stream has to wait). */
  const nextPage = async (): Promise<readonly Kept[]> => {
    if (remaining <= 0 || (reverse ? cursor <= since : cursor >= until)) return [];
    const page = await source.read(
      reverse
        ? { since, until: cursor, limit: Math.min(PAGE, remaining), reverse }
        : { since: cursor, until, limit: Math.min(PAGE, remaining), reverse },
    );
    if (page.length > 0) {
      remaining -= page.length;
      cursor = reverse ? page[page.length - 1]!.change - 1 : page[page.length - 1]!.change;
    }
    return page;
  };
  const pull = async (): Promise<void> => {
    await source.opening;
    for (;;) {
      if (cancelled || ended || finalizing) return;
      if (remaining <= 0 || (reverse ? cursor <= since : cursor >= until)) return end();
      // A live stream opened after the log closed has nothing to wait for.
      if (source.closed()) return live ? end() : controller.error(new ClosedError());
      const page = await source.read(
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
      // Closed while the page was read: its close woke the waiters already, so the checks above end the stream.
      if (cursor < source.length() || source.closed()) continue;
      await new Promise<void>((resolve) => {
        wake = resolve;
        source.waiters().add(resolve);
      });
    }
  };
  const stream = new ReadableStream<Node<T>>({
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
  if (live) return stream;

  let putBack = false;

  /** The async iterator of a stream that is not live (see the module doc). */
  const values = (options?: { preventCancel?: boolean }): AsyncIterableIterator<Node<T>> => {
    // Once read otherwise (a reader, a pipe, an iteration that put nodes back in the queue), the stream's own queue
    // may hold nodes, or a pull may be under way: the standard iterator then reads them in order.
    if (pulling !== undefined || putBack) return standardValues.call(stream, options);
    const preventCancel = options?.preventCancel === true;
    const reader = stream.getReader();
    // One array for every page, emptied in place: a new one per page took its elements kind afresh, and the code
    // the engine compiled for the first page was thrown away for the next (measured at 10 000 nodes).
    const buffer: Node<T>[] = [];
    let at = 0;
    let done = false;
    let refilling: Promise<void> | undefined;
    const sink: NodeSink<T> = { enqueue: (node) => void buffer.push(node) };
    const finish = () => {
      done = true;
      buffer.length = 0;
      reader.releaseLock();
    };
    /** Reads the next page into the buffer, or ends the stream (and the iteration) when there is none. */
    const refill = async (): Promise<void> => {
      try {
        await source.opening;
        if (cancelled || ended) return finish();
        if (source.closed()) throw new ClosedError();
        const page = await nextPage();
        buffer.length = 0;
        at = 0;
        if (page.length > 0) return source.deliver(page, sink);
        end();
        finish();
      } catch (error) {
        if (!ended) {
          ended = true;
          controller.error(error);
        }
        finish();
        throw error;
      } finally {
        refilling = undefined;
      }
    };
    const iterator: AsyncIterableIterator<Node<T>> = {
      next(): Promise<IteratorResult<Node<T>>> {
        if (refilling !== undefined) return refilling.then(() => iterator.next());
        if (at < buffer.length) return Promise.resolve({ value: buffer[at++]!, done: false });
        if (done) return Promise.resolve({ value: undefined, done: true });
        refilling = refill();
        return refilling.then(() => iterator.next());
      },
      async return(value?: unknown): Promise<IteratorResult<Node<T>>> {
        await refilling?.catch(() => {});
        if (!done) {
          if (preventCancel) {
            putBack = true;
            for (; at < buffer.length; at++) controller.enqueue(buffer[at]!);
          } else {
            await reader.cancel(value);
          }
          finish();
        }
        return { value, done: true } as IteratorResult<Node<T>>;
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  };
  const own = { value: values, writable: true, configurable: true };
  return Object.defineProperties(stream, { values: own, [Symbol.asyncIterator]: own });
}
