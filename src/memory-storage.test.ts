import { runStorageConformance } from "../storage/conformance-node-test.ts";
import { MemoryStorage } from "./memory-storage.ts";

runStorageConformance("MemoryStorage", { create: () => new MemoryStorage() });
