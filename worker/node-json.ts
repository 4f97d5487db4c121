/**
 * A stored node as the relay's HTTP routes show it, for any value the relay accepted: the value parsed when it is
 * JSON that re-encodes within bounds, else `valueBase64`. Encoding never throws, so that `/nodes/KEY` and `/changes`
 * never fail on stored data (a 200 KB `[[[...]]]` value overflowed the stack of `JSON.stringify`).
 *
 * @module
 */
import type { StoredNode } from "../mod.ts";

/** Nesting deeper than this is served in base64 (JSON engines recurse once per level). */
export const MAX_JSON_DEPTH = 64;

const textDecoder = new TextDecoder("utf-8", { fatal: true });

/** Whether the JSON text `bytes` nests deeper than `limit` (strings skipped); a cheap scan, no parse. */
function tooDeep(bytes: Uint8Array, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

function toBase64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/**
 * A node as a JSON-ready object: `key`, `links`, `change`, then `value` (parsed JSON) or `valueBase64`, and
 * `identity` and `signature` when signed.
 *
 * @example
 * ```ts
 * import { nodeJson } from "./node-json.ts";
 * const value = new TextEncoder().encode('"hi"');
 * console.assert(nodeJson({ key: "k", links: [], value, change: 1 }).value === "hi");
 * const deep = new TextEncoder().encode("[".repeat(1000) + "]".repeat(1000));
 * console.assert(typeof nodeJson({ key: "k", links: [], value: deep, change: 1 }).valueBase64 === "string");
 * ```
 */
export function nodeJson(node: StoredNode): Record<string, unknown> {
  const out: Record<string, unknown> = { key: node.key, links: node.links, change: node.change };
  let parsed: unknown;
  let isJson = false;
  if (!tooDeep(node.value, MAX_JSON_DEPTH)) {
    try {
      parsed = JSON.parse(textDecoder.decode(node.value));
      isJson = true;
    } catch {
      // Not JSON (or not UTF-8): base64 below.
    }
  }
  if (isJson) out.value = parsed;
  else out.valueBase64 = toBase64(node.value);
  if (node.identity !== undefined) {
    out.identity = node.identity;
    out.signature = node.signature;
  }
  return out;
}

/**
 * A node as one line of JSON text (no newline). Never throws: a value that does not re-encode goes in base64.
 *
 * @example
 * ```ts
 * import { nodeText } from "./node-json.ts";
 * const value = new TextEncoder().encode("[1]");
 * console.assert(JSON.parse(nodeText({ key: "k", links: [], value, change: 1 })).value[0] === 1);
 * ```
 */
export function nodeText(node: StoredNode): string {
  try {
    return JSON.stringify(nodeJson(node));
  } catch {
    const out: Record<string, unknown> = { key: node.key, links: node.links, change: node.change };
    out.valueBase64 = toBase64(node.value);
    if (node.identity !== undefined) {
      out.identity = node.identity;
      out.signature = node.signature;
    }
    return JSON.stringify(out);
  }
}
