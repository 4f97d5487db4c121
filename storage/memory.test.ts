import { runStorageConformance } from "./conformance.ts";
import { MemoryStorage } from "./memory.ts";

runStorageConformance("MemoryStorage", { create: () => new MemoryStorage() });
