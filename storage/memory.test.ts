import { runStorageConformance } from "./conformance-node-test.ts";
import { MemoryStorage } from "./memory.ts";

runStorageConformance("MemoryStorage", { create: () => new MemoryStorage() });
