import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { after } from "node:test";
import { ClassicLevel } from "classic-level";
import { MemoryLevel } from "memory-level";
import { runStorageConformance } from "./conformance-node-test.ts";
import { type LevelDatabase, LevelStorage } from "./level.ts";

const require = createRequire(import.meta.url);
const dir = mkdtempSync(join(tmpdir(), "hyperlog-level-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

runStorageConformance("LevelStorage on memory-level (abstract-level 3)", {
  create: () => new LevelStorage(new MemoryLevel()),
});

runStorageConformance("LevelStorage on classic-level (LevelDB)", {
  create: () => new LevelStorage(new ClassicLevel(join(dir, `classic-${n++}`))),
  reopen: async (storage) => {
    const location = ((storage as LevelStorage).db as unknown as { location: string }).location;
    await storage.close();
    return new LevelStorage(new ClassicLevel(location));
  },
});

runStorageConformance("LevelStorage on memdb (levelup 1, what hyperlog 4's tests use)", {
  create: () => new LevelStorage((require("memdb") as () => LevelDatabase)()),
});

runStorageConformance("LevelStorage on level 5 (levelup 4 over leveldown, the seed's level())", {
  create: () => new LevelStorage((require("level") as (path: string) => LevelDatabase)(join(dir, `level5-${n++}`))),
  reopen: async (storage) => {
    const location = ((storage as LevelStorage).db as unknown as { db: { db: { location: string } } }).db.db.location;
    await storage.close();
    return new LevelStorage((require("level") as (path: string) => LevelDatabase)(location));
  },
});
