/**
 * What a log tells others: its events (`preadd`, `add`, `reject`), dispatched only when someone listens, and the
 * waiters woken when it grows or closes (live read streams, views, live replication sessions).
 *
 * @module
 */
import type { RejectDetail } from "./log-types.ts";

/** A log's events: which types have listeners (so that no event is made for nobody), and their dispatch. */
export class LogEvents {
  readonly #target: EventTarget;
  readonly #listeners = new Map<string, Set<unknown>>();

  constructor(target: EventTarget) {
    this.#target = target;
  }

  /** Whether anyone listens to `type`. */
  listening(type: string): boolean {
    const set = this.#listeners.get(type);
    return set !== undefined && set.size > 0;
  }

  /** Notes a listener added to the target. */
  added(type: string, listener: EventListenerOrEventListenerObject | null): void {
    if (listener === null) return;
    let set = this.#listeners.get(type);
    if (set === undefined) this.#listeners.set(type, set = new Set());
    set.add(listener);
  }

  /** Notes a listener removed from the target. */
  removed(type: string, listener: EventListenerOrEventListenerObject | null): void {
    if (listener !== null) this.#listeners.get(type)?.delete(listener);
  }

  /** Dispatches a `CustomEvent` of `type` with `detail`. */
  emit(type: string, detail: unknown): void {
    this.#target.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Dispatches a `reject` event for a refused node (or document), if anyone listens. */
  reject(error: Error, key: string | undefined): void {
    if (!this.listening("reject")) return;
    const detail: RejectDetail = key === undefined ? { error } : { error, key };
    this.emit("reject", detail);
  }
}

/** Whoever waits for a log to grow or close: each is woken once, at the next change. */
export class Waiters {
  #set = new Set<() => void>();

  /** The waiters of the next change (read streams add to it and remove from it themselves). */
  get set(): Set<() => void> {
    return this.#set;
  }

  /** Wakes every waiter. */
  wake(): void {
    if (this.#set.size === 0) return;
    const waiters = this.#set;
    this.#set = new Set();
    for (const wake of waiters) wake();
  }

  /** Resolves at the next change, or when `signal` aborts. */
  wait(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        this.#set.delete(wake);
        signal?.removeEventListener("abort", wake);
        resolve();
      };
      this.#set.add(wake);
      signal?.addEventListener("abort", wake, { once: true });
    });
  }
}
