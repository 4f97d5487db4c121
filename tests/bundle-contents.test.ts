/**
 * What the browser client bundle (bench/bundle.ts: `Hyperlog`, `IndexedDBStorage`, `connect`, `HyperKV` from mod.ts,
 * as esbuild bundles it for browsers) may hold: the core (`src/`) and the browser's storage, nothing of the relay,
 * the CLI, hyperlog 4 or any package, and presence and WebRTC only as the modules that carry them.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { browserBundleSize, PRESENCE_MODULES } from "../bench/bundle.ts";
import { nodeOnly } from "./_helpers.ts";

nodeOnly("the browser client bundle", "esbuild is driven from Node here", () => {
  it("holds only src/ and the browser's storage: no relay, CLI, hyperlog 4, runtime module or package", async () => {
    const { modules, code } = await browserBundleSize();
    const paths = modules.map(([path]) => path);
    const foreign = paths.filter((path) =>
      !/^src\/(?!hyperlog4\/)[a-z0-9-]+\.ts$/.test(path) &&
      !/^storage\/(indexeddb(-[a-z]+)?|chunk-cache|sqlite-schema)\.ts$/.test(path)
    );
    assert.deepEqual(foreign, []);
    // The relay's cache of framed pages (and the session's path that copies from it) stays out of a client.
    assert.ok(!paths.includes("src/encoded-pages.ts"), "src/encoded-pages.ts is relay-only");
    assert.ok(paths.includes("src/sha256-portable.ts"), "the portable SHA-256 is the bundle's hash");
    // The bundle imports nothing: everything it runs is in it.
    assert.doesNotMatch(code, /\bimport\s*\(|^import\b|\bfrom\s*"[^"]+";/m);
  });

  it("without presence and WebRTC it is smaller by what their modules hold", async () => {
    const all = await browserBundleSize();
    const without = await browserBundleSize(undefined, PRESENCE_MODULES);
    const theirs = all.modules.filter(([path]) => PRESENCE_MODULES.some((m) => path === `src/${m}.ts`));
    assert.equal(theirs.length, PRESENCE_MODULES.length);
    assert.ok(without.minified < all.minified - theirs.reduce((n, [, bytes]) => n + bytes, 0) / 2);
  });
});
