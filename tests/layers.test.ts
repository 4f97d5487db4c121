/**
 * The layer rule, checked on the source text: every import points down.
 *
 *   cli/      the hyperlog command          may import worker/, compat/, storage/, src/; runtime modules only in
 *                                           process-io.ts, the process's side of its I/O seam (io.ts)
 *   worker/   the relay and its hosts       may import storage/, src/ (and hono, ws, runtime modules)
 *   compat/   hyperlog 4's API              may import storage/, src/
 *   storage/  the backends                  may import src/ (and runtime modules)
 *   src/      the runtime-agnostic core     imports only src/ and @noble/hashes: no node:, bun:, cloudflare:,
 *                                           no Deno or Bun global
 *
 * (mod.ts, the public entry, sits above storage/: compat/, worker/ and cli/ may import it), and no cycle of imports
 * between the files of src/, type imports included (the engine's files name the log by the `LogHandle` interface).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The layers, lowest first; a file may import its own layer and the ones before it. */
const LAYERS = ["src", "storage", "compat", "worker", "cli"] as const;
/** What each layer may import besides relative paths into the layers allowed to it. */
const PACKAGES: Record<(typeof LAYERS)[number], RegExp> = {
  src: /^@noble\/hashes\//,
  storage: /^(node:|bun:|cloudflare:|@noble\/hashes\/)/,
  compat: /^(node:|events$|@noble\/hashes\/)/,
  worker: /^(node:|bun:|cloudflare:|hono(\/|$)|ws$|@noble\/hashes\/)/,
  cli: /^(node:|bun:|hono(\/|$)|ws$|@noble\/hashes\/)/,
};
/** Layers that `from` may import. */
const ALLOWED: Record<(typeof LAYERS)[number], readonly string[]> = {
  src: ["src"],
  storage: ["src", "storage"],
  compat: ["src", "storage", "compat"],
  worker: ["src", "storage", "worker"],
  cli: ["src", "storage", "worker", "cli", "compat"],
};

interface Import {
  specifier: string;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) return name === "public" ? [] : sourceFiles(path);
    return name.endsWith(".ts") && !name.endsWith(".test.ts") ? [path] : [];
  });
}

/** The code of a file without its comments (doc examples import from anywhere). */
function code(file: string): string {
  return readFileSync(join(ROOT, file), "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
}

/** The imports and re-exports of `file`, static and dynamic. */
function importsOf(file: string): Import[] {
  const text = code(file);
  const found: Import[] = [];
  for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?([^;]*?)\s*from\s*["']([^"']+)["']/gm)) {
    const names = m[3]!;
    const braces = /^\{([\s\S]*)\}$/.exec(names.trim());
    const allTypes = braces !== null &&
      braces[1]!.split(",").map((s) => s.trim()).filter(Boolean).every((s) => s.startsWith("type "));
    found.push({ specifier: m[4]!, typeOnly: m[2] !== undefined || allTypes });
  }
  for (const m of text.matchAll(/^\s*import\s+["']([^"']+)["']/gm)) found.push({ specifier: m[1]!, typeOnly: false });
  for (const m of text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) {
    found.push({ specifier: m[1]!, typeOnly: false });
  }
  return found;
}

function layerOf(path: string): (typeof LAYERS)[number] | undefined {
  const top = path.split("/")[0]!;
  return (LAYERS as readonly string[]).includes(top) ? top as (typeof LAYERS)[number] : undefined;
}

describe("layers", () => {
  const files = LAYERS.flatMap((layer) => sourceFiles(layer));

  it("every import points down (or within its layer)", () => {
    const wrong: string[] = [];
    for (const file of files) {
      const layer = layerOf(file)!;
      for (const { specifier } of importsOf(file)) {
        if (specifier.startsWith(".")) {
          const target = normalize(join(dirname(file), specifier));
          const to = layerOf(target);
          const entry = target === "mod.ts" && layer !== "src" && layer !== "storage";
          if (!entry && (to === undefined || !ALLOWED[layer].includes(to))) {
            wrong.push(`${file} imports ${specifier} (${to ?? target}), above or beside ${layer}/`);
          }
        } else if (!PACKAGES[layer].test(specifier)) {
          wrong.push(`${file} imports ${specifier}, which ${layer}/ may not use`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  });

  it("cli/ reaches the process only through its seam: process-io.ts is its one runtime-bound file", () => {
    const bound = sourceFiles("cli").filter((file) =>
      importsOf(file).some((i) => /^(node:|bun:)/.test(i.specifier)) ||
      /(?<![.\w"'])(Deno|Bun|process)\s*\./.test(code(file))
    );
    assert.deepEqual(bound, ["cli/process-io.ts"]);
  });

  it("src/ uses no runtime global (Deno, Bun, process)", () => {
    // sha256.ts feature-detects a native SHA-256 through `process.getBuiltinModule` and falls back on @noble/hashes
    // where there is none (browsers, Workers): the one reference allowed, and it imports nothing.
    const wrong = sourceFiles("src").filter((file) => file !== join("src", "sha256.ts")).filter((file) =>
      /(?<![.\w"'])(Deno|Bun|process)\s*\.|globalThis\.(Deno|Bun|process)\b|\)\s*\.\s*(Deno|Bun|process)\b|[{;,]\s*(Deno|Bun|process)\??\s*:/
        .test(code(file))
    );
    assert.deepEqual(wrong, []);
  });

  it("src/ holds no test files (they import node:test; tests live in tests/ or beside a backend in storage/)", () => {
    const found = (dir: string): string[] =>
      readdirSync(join(ROOT, dir)).flatMap((name) => {
        const path = join(dir, name);
        if (statSync(join(ROOT, path)).isDirectory()) return found(path);
        return name.endsWith(".test.ts") ? [path] : [];
      });
    assert.deepEqual(found("src"), []);
  });

  /** The files of src/ and what each imports (all imports, or value imports only). */
  const srcGraph = (values: boolean): Map<string, string[]> =>
    new Map(
      sourceFiles("src").map((file) => [
        file,
        importsOf(file).filter((i) => !(values && i.typeOnly) && i.specifier.startsWith("."))
          .map((i) => normalize(join(dirname(file), i.specifier))),
      ]),
    );

  /** The files of `graph` that lie on a cycle (each file that can reach itself). */
  const onCycles = (graph: Map<string, string[]>): string[] =>
    [...graph.keys()].filter((start) => {
      const seen = new Set<string>();
      const stack = [...graph.get(start)!];
      while (stack.length > 0) {
        const file = stack.pop()!;
        if (file === start) return true;
        if (seen.has(file)) continue;
        seen.add(file);
        stack.push(...graph.get(file) ?? []);
      }
      return false;
    }).sort();

  it("the files of src/ have no cycle of value imports", () => {
    assert.deepEqual(onCycles(srcGraph(true)), []);
  });

  // The engine's files (sessions, checkpoints, views) name the log by the LogHandle interface (log-handle.ts), not
  // the Hyperlog class, which imports them: no cycle even among type imports (there were 16 files on one).
  it("the files of src/ have no cycle of imports, type imports included", () => {
    assert.deepEqual(onCycles(srcGraph(false)), []);
  });

  it("finds the imports it checks (the parser is not blind)", () => {
    const log = importsOf("src/log.ts");
    assert.ok(log.some((i) => i.specifier === "./memory-storage.ts" && !i.typeOnly), "log.ts imports MemoryStorage");
    assert.ok(log.some((i) => i.specifier === "./storage.ts" && i.typeOnly), "log.ts imports the Storage type");
    assert.ok(importsOf("cli/process-io.ts").some((i) => i.specifier.startsWith("node:")), "process-io uses node:");
    assert.equal(relative(ROOT, join(ROOT, "src")), "src");
  });
});
