/**
 * A promise-chain mutex: runs async sections one at a time, in call order.
 *
 * @module
 */

/**
 * Serializes async sections.
 *
 * @example
 * ```ts
 * import { Mutex } from "./mutex.ts";
 * const mutex = new Mutex();
 * const order: number[] = [];
 * await Promise.all([1, 2].map((n) => mutex.run(async () => { order.push(n); })));
 * console.assert(order.join() === "1,2");
 * ```
 */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  /** Runs `section` after every section queued before it has settled; resolves with its result. */
  run<R>(section: () => R | Promise<R>): Promise<R> {
    const result = this.#tail.then(section);
    this.#tail = result.then(noop, noop);
    return result;
  }

  /** Resolves once every section queued so far has settled. */
  idle(): Promise<void> {
    return this.#tail.then(noop);
  }
}

function noop(): void {}
