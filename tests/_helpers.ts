/**
 * Helpers shared by the tests.
 *
 * @module
 */

/**
 * A seeded pseudo-random generator (mulberry32): the same seed gives the same sequence, so a failing property test
 * can be replayed from the seed it prints.
 *
 * @example
 * ```ts
 * import { seeded } from "./_helpers.ts";
 * console.assert(seeded(1)() === seeded(1)());
 * ```
 */
export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
