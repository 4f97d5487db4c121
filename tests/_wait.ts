/**
 * The one way a test waits: for a condition to hold (an event seen, a count reached), never for time to pass.
 *
 * @module
 */

/**
 * Polls `condition` until it holds; fails with `what` after `ms` (a generous bound: the machine may be shared, so
 * the bound is a hang guard, never an assertion about speed).
 *
 * @example
 * ```ts
 * import { waitFor } from "./_wait.ts";
 * let ready = false;
 * setTimeout(() => (ready = true), 1);
 * await waitFor(() => ready, 5_000, "the flag");
 * console.assert(ready);
 * let failed = false;
 * await waitFor(() => false, 10, "never").catch(() => (failed = true));
 * console.assert(failed);
 * ```
 */
export async function waitFor(condition: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Rejects if `promise` has not settled within `ms`: a hang guard (generous, its timer never outlives the race),
 * never an assertion about speed.
 *
 * @example
 * ```ts
 * import { within } from "./_wait.ts";
 * console.assert((await within(Promise.resolve(7), 5_000, "seven")) === 7);
 * let failed = false;
 * await within(new Promise(() => {}), 10, "never").catch(() => (failed = true));
 * console.assert(failed);
 * ```
 */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
