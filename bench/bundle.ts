/**
 * Bundle size of the browser client: what a page imports to keep a log in IndexedDB and in live sync with a relay
 * (`Hyperlog`, `IndexedDBStorage`, `connect`), bundled by esbuild from `mod.ts` for browsers, minified, then
 * gzipped (level 9). The SHA-256 in a browser is our own (`src/sha256-portable.ts`), which the bundle includes.
 *
 * Run it through the driver: `npm run bench -- --only bundle`.
 *
 * @module
 */
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BROWSER_BUILD, buildDemo } from "../scripts/build-demo.ts";
import type { BenchModule, Figure } from "./_util.ts";

/** What the browser client bundle exports. */
export const BROWSER_EXPORTS: readonly string[] = ["Hyperlog", "IndexedDBStorage", "connect", "HyperKV"];

/** The target for the gzipped bundle with presence and WebRTC (issue 15), in bytes. */
const TARGET = 30 * 1024;

/** The modules of presence and WebRTC in `src/`, which {@link browserBundleSize} can replace with empty stand-ins. */
export const PRESENCE_MODULES: readonly string[] = ["webrtc", "presence", "presence-wire"];

/**
 * Stand-ins for modules of `src/` (by name): the same exports, doing nothing (or the plain alternative), so that a
 * build with them says what the real module costs. None of them works: they only measure.
 */
const STAND_INS: Readonly<Record<string, string>> = {
  "webrtc": "export class DirectPeers {}",
  "presence-wire": "export const takeText = () => {}, ownsText = () => false;",
  "presence": "export class Presence {}",
  // Plain NODES messages only: what a session sends and takes without link references.
  "link-refs": `import { encodeNodesBodies, NODES_REFS } from "./node-codec.ts";
    export { NODES_REFS };
    export class LinkRefs { peerTakesRefs = false; sent() {} received() {} encode(n, m) { return encodeNodesBodies(n, m); }
      decode() { throw new Error(); } pristine() { return false; } }`,
  "memory-storage": "export class MemoryStorage {}",
  "identity": "export class Identity {} export const verifySignature = () => false;",
  "log-signatures": `export class SignatureRules { required = false; checkWriter() {} check() {}
    checkNodes(nodes) { return { drafts: nodes }; } } export const signDrafts = async () => {};`,
  "session-state": "export const captureState = () => undefined, restoreState = () => { throw new Error(); };",
};

/**
 * Parts of the browser client that only a feature or an API change could take out of it, each as the modules
 * {@link browserBundleSize} replaces with stand-ins to measure what the part costs.
 */
export const PARTS: readonly { name: string; modules: readonly string[] }[] = [
  { name: "presence and WebRTC", modules: PRESENCE_MODULES },
  { name: "link references (src/link-refs.ts)", modules: ["link-refs"] },
  { name: "signed logs (src/identity.ts, src/log-signatures.ts)", modules: ["identity", "log-signatures"] },
  { name: "MemoryStorage, the default storage", modules: ["memory-storage"] },
  { name: "the state Session.resume takes (src/session-state.ts)", modules: ["session-state"] },
];

/**
 * Bundles the browser client and returns its minified and gzipped sizes in bytes, and what each module puts in it
 * (minified bytes, biggest first). `stub` names modules of `src/` to replace with stand-ins that do nothing (for the
 * size without them: see {@link PRESENCE_MODULES} and {@link PARTS}).
 *
 * @example
 * ```ts ignore
 * import { browserBundleSize } from "./bundle.ts";
 * const { minified, gzipped } = await browserBundleSize();
 * ```
 */
export async function browserBundleSize(
  exports: readonly string[] = BROWSER_EXPORTS,
  stub: readonly string[] = [],
): Promise<{ minified: number; gzipped: number; code: string; modules: [string, number][] }> {
  const { build } = await import("esbuild");
  const root = fileURLToPath(new URL("..", import.meta.url));
  const pattern = new RegExp(`/src/(${stub.join("|") || "^$"})\\.ts$`);
  const result = await build({
    ...BROWSER_BUILD,
    metafile: true,
    stdin: { contents: `export { ${exports.join(", ")} } from "./mod.ts";`, resolveDir: root, loader: "ts" },
    plugins: [{
      name: "stub",
      setup(b) {
        b.onLoad({ filter: pattern }, (args) => ({
          loader: "js",
          contents: STAND_INS[args.path.replace(/^.*\/src\/(.*)\.ts$/, "$1")] ?? "",
        }));
      },
    }],
  });
  const code = result.outputFiles[0]!.contents;
  const output = Object.values(result.metafile.outputs)[0]!;
  const modules = Object.entries(output.inputs).map(([path, input]): [string, number] => [path, input.bytesInOutput])
    .filter(([, bytes]) => bytes > 0).sort((a, b) => b[1] - a[1]);
  return {
    minified: code.length,
    gzipped: gzipSync(code, { level: 9 }).length,
    code: result.outputFiles[0]!.text,
    modules,
  };
}

/** The relay worker as `wrangler deploy` would upload it: `wrangler deploy --dry-run --outdir`, bundled by wrangler. */
export function workerBundleSize(): { bytes: number; gzipped: number } {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), "hyperlog-bench-worker-"));
  try {
    const bin = join(root, "node_modules", ".bin");
    execFileSync(join(bin, "wrangler"), ["deploy", "--dry-run", "--outdir", dir], {
      cwd: root,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, WRANGLER_SEND_METRICS: "false" },
      stdio: "pipe",
    });
    const code = readFileSync(join(dir, "index.js"));
    return { bytes: code.length, gzipped: gzipSync(code).length };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The bundle-size benchmark module. */
export const benchmark: BenchModule = {
  name: "bundle",
  title: "Bundle size of the browser client (esbuild, minified, gzip -9)",
  notes: [
    `The bundle exports ${
      BROWSER_EXPORTS.join(", ")
    } from mod.ts, built by esbuild for browsers (ES2022, ESM), so everything they reach is in it: the log, memory and IndexedDB storage, replication, the WebSocket client, and the portable SHA-256.`,
    "The demo page's script is the client plus the page's plain-DOM code, bundled by scripts/build-demo.ts as `npm start` serves it.",
    "The relay worker is bundled by wrangler itself (`wrangler deploy --dry-run --outdir`), as a deploy would upload it.",
    "The row of parts replaces each part's modules with stand-ins that keep their exports and do nothing (PARTS, STAND_INS): what the bundle loses is what the part costs; a bundle with stand-ins does not work.",
    "The size does not vary between runs; it is measured once.",
  ],
  async run(): Promise<Figure[]> {
    const { minified, gzipped, modules } = await browserBundleSize();
    const without = await browserBundleSize(BROWSER_EXPORTS, PRESENCE_MODULES);
    // What each export adds, gzipped, in the order a page would take them up.
    const steps: string[] = [];
    let before = 0;
    for (let i = 1; i <= BROWSER_EXPORTS.length; i++) {
      const size = i === BROWSER_EXPORTS.length
        ? gzipped
        : (await browserBundleSize(BROWSER_EXPORTS.slice(0, i))).gzipped;
      steps.push(`${i === 1 ? "" : "+ "}${BROWSER_EXPORTS[i - 1]} ${((size - before) / 1024).toFixed(1)}`);
      before = size;
    }
    // What each part that only a feature or an API change could take out costs, gzipped.
    const parts: string[] = [];
    for (const part of PARTS) {
      const rest = (await browserBundleSize(BROWSER_EXPORTS, part.modules)).gzipped;
      parts.push(`${part.name} ${((gzipped - rest) / 1024).toFixed(1)}`);
    }
    const dir = mkdtempSync(join(tmpdir(), "hyperlog-bench-demo-"));
    const demo = await buildDemo(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
    const worker = workerBundleSize();
    const biggest = modules.slice(0, 8).map(([path, bytes]) =>
      `${path.replace(/^.*node_modules\//, "")} ${(bytes / 1024).toFixed(1)}`
    );
    return [
      {
        bench: "browser client bundle, minified",
        n: 1,
        unit: "KB",
        ours: minified / 1024,
        hyperlog: null,
        ratio: null,
        note: `the biggest modules, KB minified: ${biggest.join(", ")}`,
      },
      {
        bench: "browser client bundle with presence and WebRTC, minified + gzipped",
        n: 1,
        unit: "KB",
        ours: gzipped / 1024,
        hyperlog: null,
        ratio: null,
        target: "< 30 KB",
        met: gzipped < TARGET,
        note: `KB gzipped by export (each with what it reaches that the ones before did not): ${steps.join(", ")}`,
      },
      {
        bench: "browser client bundle without presence and WebRTC (empty stand-ins), minified + gzipped",
        n: 1,
        unit: "KB",
        ours: without.gzipped / 1024,
        hyperlog: null,
        ratio: null,
        note: `${(without.minified / 1024).toFixed(1)} KB minified`,
      },
      {
        bench: "browser client bundle: KB over the < 30 KB target, and what each part only a feature or API change could leave out costs",
        n: 1,
        unit: "KB",
        ours: (gzipped - TARGET) / 1024,
        hyperlog: null,
        ratio: null,
        note: `KB gzipped each part costs (measured with stand-ins that do nothing in its place): ${parts.join(", ")}; ` +
          "HyperKV costs its export step above",
      },
      {
        bench: "demo page script (worker/demo/page.ts as /demo.js), minified + gzipped",
        n: 1,
        unit: "KB",
        ours: demo.gzipped / 1024,
        hyperlog: null,
        ratio: null,
      },
      {
        bench: "relay worker bundle (wrangler deploy --dry-run), gzipped",
        n: 1,
        unit: "KB",
        ours: worker.gzipped / 1024,
        hyperlog: null,
        ratio: null,
        target: "< 3 MiB (Workers free plan)",
        met: worker.gzipped < 3 * 1024 * 1024,
        note: `${(worker.bytes / 1024).toFixed(1)} KB before gzip; the demo's static assets are uploaded beside it`,
      },
    ];
  },
};
