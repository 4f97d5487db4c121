/**
 * The one wait a session's driver makes for it (see `Session.changed`): woken when a message came, when the log grew
 * (live), or when the driver stops.
 *
 * @module
 */

/**
 * One waiter at a time, woken by {@link Wakeup.poke}, by its signal, or by what else it waits for.
 *
 * @example
 * ```ts
 * import { Wakeup } from "./session-wake.ts";
 * const wakeup = new Wakeup();
 * let woken = false;
 * const waiting = wakeup.wait(new AbortController().signal).then(() => (woken = true));
 * wakeup.poke();
 * await waiting;
 * console.assert(woken);
 * ```
 */
export class Wakeup {
  #wake: (() => void) | undefined;

  /** Wakes the waiter, if there is one. */
  poke(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /**
   * Resolves at the next {@link Wakeup.poke}, when `signal` aborts, or when `also` (if given) resolves. A wait asked
   * for before this one is over ends first.
   */
  wait(signal: AbortSignal, also?: () => Promise<unknown>): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      // One listener at a time, removed when done: a listener left on the signal per call would make each call
      // slower than the last.
      const done = () => {
        signal.removeEventListener("abort", done);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      this.#wake?.();
      this.#wake = done;
      signal.addEventListener("abort", done);
      if (also !== undefined) void also().then(done);
    });
  }
}
