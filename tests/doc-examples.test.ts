/**
 * Runs the examples in the doc comments of the public modules, so they never rot: every ```ts block inside a
 * `/** ... *\/` comment of mod.ts, src/, cli/, storage/, worker/ and compat/ (except blocks marked `ts ignore`) is written to a temporary
 * module, with its relative imports pointed at the source tree, and imported. `console.assert` throws while they run
 * (on every runtime), so an example's assertions are checked. One test per example, on Node, Deno and Bun.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { after, describe, it } from "node:test";

const ROOT = new URL("../", import.meta.url);
const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";

/** The files whose doc examples run: the public modules (tests, fixtures and the CLI entry aside). */
function sources(): string[] {
  const files = ["mod.ts"];
  for (const dir of ["src", "src/hyperlog4", "cli", "storage", "worker", "compat"]) {
    for (const name of readdirSync(new URL(dir, ROOT)).sort()) {
      if (!name.endsWith(".ts") || name.endsWith(".test.ts") || name === "cli.ts") continue;
      files.push(`${dir}/${name}`);
    }
  }
  return files;
}

interface Example {
  file: string;
  line: number;
  code: string;
}

/** The ```ts blocks inside doc comments of `file`, without their leading ` * `. */
function examples(file: string): Example[] {
  const lines = readFileSync(new URL(file, ROOT), "utf8").split("\n");
  const found: Example[] = [];
  let inDoc = false;
  let block: { line: number; code: string[] } | undefined;
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (!inDoc) {
      if (line.startsWith("/**")) inDoc = !line.endsWith("*/");
      continue;
    }
    if (line.startsWith("*/") || line.endsWith("*/")) {
      inDoc = false;
      block = undefined;
      continue;
    }
    const text = raw.replace(/^\s*\* ?/, "");
    if (block === undefined) {
      if (/^```ts\s*$/.test(text.trim()) || /^```typescript\s*$/.test(text.trim())) block = { line: i + 1, code: [] };
      continue;
    }
    if (text.trim() === "```") {
      found.push({ file, line: block.line, code: block.code.join("\n") });
      block = undefined;
    } else {
      block.code.push(text);
    }
  }
  return found;
}

/**
 * Examples that import no value (only types, or nothing) from the project restate a type: they cannot fail when the
 * code is wrong. Their number may only go down (97 of 317 when first counted, in issue 17).
 */
const RESTATEMENTS_AT_MOST = 0;

/** Whether `example` imports no value from the project (its relative imports are all `import type`). */
function restatesTypes(example: Example): boolean {
  if (/import\s*\(\s*["']\./.test(example.code)) return false;
  for (const m of example.code.matchAll(/(?:import|export)\s+(type\s+)?([^;]*?)\s*from\s*["']\.[^"']*["']/g)) {
    if (m[1] !== undefined) continue;
    const braces = /^\{([\s\S]*)\}$/.exec(m[2]!.trim());
    const names = braces === null ? [m[2]!] : braces[1]!.split(",").map((s) => s.trim()).filter(Boolean);
    if (names.some((name) => !name.startsWith("type "))) return false;
  }
  return true;
}

/** Points the example's relative imports at the source file's folder. */
function absolutize(example: Example): string {
  const base = new URL(example.file, ROOT);
  return example.code.replace(
    /(from\s+|import\s*\(\s*|import\s+)(["'])(\.\.?\/[^"']+)\2/g,
    (_match, lead: string, quote: string, path: string) => `${lead}${quote}${new URL(path, base).href}${quote}`,
  );
}

const dir = mkdtempSync(join(tmpdir(), "hyperlog-doc-examples-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe(`doc examples (${runtime})`, () => {
  const all = sources().flatMap(examples);
  it("finds the examples", () => {
    assert.ok(all.length >= 100, `expected many doc examples, found ${all.length}`);
  });
  it(`at most ${RESTATEMENTS_AT_MOST} examples only restate types (a ratchet: lower it, never raise it)`, () => {
    const restating = all.filter(restatesTypes).map((e) => `${e.file}:${e.line}`);
    assert.ok(
      restating.length <= RESTATEMENTS_AT_MOST,
      `${restating.length} examples import no value from the project, so they cannot fail if the code is wrong; ` +
        `make the new ones call the code they document:\n${restating.join("\n")}`,
    );
  });
  let count = 0;
  for (const example of all) {
    const name = `${example.file}:${example.line}`;
    it(name, async () => {
      const path = join(dir, `example-${++count}-${example.file.replace(/[/.]/g, "_")}-${example.line}.ts`);
      writeFileSync(path, absolutize(example) + "\nexport {};\n");
      const saved = { assert: console.assert, log: console.log, info: console.info };
      console.assert = (condition?: boolean, ...data: unknown[]) => {
        if (!condition) throw new Error(`Assertion failed in the example at ${name}: ${data.join(" ")}`);
      };
      console.log = () => {};
      console.info = () => {};
      try {
        await import(pathToFileURL(path).href);
      } finally {
        Object.assign(console, saved);
      }
    });
  }
});

// The source tree is read relative to this file; say where, for a failing run's reader.
void fileURLToPath(ROOT);
