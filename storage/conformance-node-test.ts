/**
 * Registers the storage conformance cases with `node:test`, which Node, Deno and Bun all run.
 *
 * @module
 */
import { describe, it } from "node:test";
import { type ConformanceTarget, storageConformanceCases } from "./conformance.ts";

export type { ConformanceTarget };

/**
 * Registers the conformance tests for a backend with `node:test`.
 *
 * @example
 * ```ts ignore
 * import { runStorageConformance } from "./conformance-node-test.ts";
 * import { MemoryStorage } from "../src/memory-storage.ts";
 * runStorageConformance("MemoryStorage", { create: () => new MemoryStorage() });
 * ```
 */
export function runStorageConformance(name: string, target: ConformanceTarget): void {
  describe(`storage conformance: ${name}`, () => {
    for (const c of storageConformanceCases(target)) it(c.name, () => c.run());
  });
}
