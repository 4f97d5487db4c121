/**
 * The relay's picture of a log: the latest nodes as an SVG, laid out by {@link layoutDag} (the lanes of
 * `hyperlog log --graph`): a dot per node on its lane, a box with its short key and a preview of its value, a line
 * per link, heads highlighted. Values are attacker-controlled: every text is escaped for XML, characters XML cannot
 * carry are replaced, and the SVG has no script, no event attribute and no external reference.
 *
 * @module
 */
import { layoutDag, previewValue } from "../mod.ts";

/**
 * A node as the SVG shows it.
 *
 * @example
 * ```ts
 * import { graphSvg } from "./graph-svg.ts";
 * import type { GraphNode } from "./graph-svg.ts";
 * const node: GraphNode = { key: "a".repeat(64), links: [], change: 1, preview: '"hi"' };
 * const svg = graphSvg([node]);
 * console.assert(svg.includes('data-key="' + "a".repeat(64)) && svg.includes("&quot;hi&quot;"));
 * ```
 */
export interface GraphNode {
  /** The node's key. */
  readonly key: string;
  /** The keys it links to. */
  readonly links: readonly string[];
  /** Its change number. */
  readonly change: number;
  /** The writer's public key, for a signed node. */
  readonly identity?: string | undefined;
  /** A one-line preview of the value (any text: it is escaped). */
  readonly preview: string;
}

/**
 * Options of {@link graphSvg}.
 *
 * @example
 * ```ts
 * import { graphSvg } from "./graph-svg.ts";
 * import type { GraphSvgOptions } from "./graph-svg.ts";
 * const options: GraphSvgOptions = { href: (key) => `/logs/chat/nodes/${key}` };
 * const svg = graphSvg([{ key: "a".repeat(64), links: [], change: 1, preview: "1" }], options);
 * console.assert(svg.includes(`href="/logs/chat/nodes/${"a".repeat(64)}"`));
 * ```
 */
export interface GraphSvgOptions {
  /** A link for each node's box (a path on the same relay); none when absent. */
  href?: (key: string) => string;
  /** A title shown above the graph. */
  title?: string;
  /** The width of the node boxes, in pixels (default 640: a 60-character preview fits). */
  boxWidth?: number;
}

const ROW = 26;
const LANE = 16;
const PAD = 12;
const TOP = 8;
const BOX_WIDTH = 640;
const MAX_BOX_WIDTH = 4096;
const TITLE = 26;
const textDecoder = new TextDecoder();
/** Characters XML 1.0 cannot carry: C0 controls but tab, newline and return; U+FFFE, U+FFFF; lone surrogates. */
// deno-lint-ignore no-control-regex
const NOT_XML =
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * Text for XML content or a quoted attribute: `& < > " '` as entities, and characters XML 1.0 cannot carry (most
 * C0 controls, lone surrogates, U+FFFE and U+FFFF) as U+FFFD.
 *
 * @example
 * ```ts
 * import { escapeXml } from "./graph-svg.ts";
 * console.assert(escapeXml(`</text><script>"'&`) === "&lt;/text&gt;&lt;script&gt;&quot;&#39;&amp;");
 * console.assert(escapeXml("a\u0000b\ud800") === "a\ufffdb\ufffd");
 * ```
 */
export function escapeXml(text: string): string {
  return text
    .replace(NOT_XML, "\ufffd")
    .replace(
      /[&<>"']/g,
      (c) => c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === '"' ? "&quot;" : "&#39;",
    );
}

/**
 * A one-line preview of an encoded value: the preview of its JSON when it is JSON of at most 4 KiB, else its
 * first characters (escaped as in a JSON string), or its size when it is not text.
 *
 * @example
 * ```ts
 * import { previewBytes } from "./graph-svg.ts";
 * console.assert(previewBytes(new TextEncoder().encode('{"a":1}')) === '{"a":1}');
 * console.assert(previewBytes(new Uint8Array([0xff, 0xfe])) === "<2 bytes>");
 * ```
 */
export function previewBytes(value: Uint8Array, max = 60): string {
  if (value.length <= 4096) {
    try {
      return previewValue(JSON.parse(textDecoder.decode(value)), max);
    } catch {
      // Not JSON: below.
    }
  }
  const text = textDecoder.decode(value.subarray(0, 4 * max));
  if (text.includes("\ufffd") || text.length === 0) return `<${value.length} bytes>`;
  const chars = Array.from(JSON.stringify(text).slice(1, -1));
  return chars.length < max && value.length <= 4 * max ? chars.join("") : chars.slice(0, max - 1).join("") + "…";
}

/**
 * The nodes (newest first) as an SVG document: one `<g class="node">` per node with `data-key`, one
 * `<path class="edge">` per link between two of them with `data-from` and `data-to`; heads have the class `head`.
 *
 * @example
 * ```ts
 * import { graphSvg } from "./graph-svg.ts";
 * const svg = graphSvg([
 *   { key: "b".repeat(64), links: ["a".repeat(64)], change: 2, preview: "</text><script>" },
 *   { key: "a".repeat(64), links: [], change: 1, preview: '"root"' },
 * ]);
 * console.assert(svg.startsWith("<svg") && svg.includes('class="node head" data-key="' + "b".repeat(64)));
 * console.assert(svg.includes("&lt;/text&gt;&lt;script&gt;") && !svg.includes("<script"));
 * ```
 */
export function graphSvg(nodes: readonly GraphNode[], options: GraphSvgOptions = {}): string {
  const layout = layoutDag(nodes);
  const top = TOP + (options.title === undefined ? 0 : TITLE);
  const boxX = PAD + Math.max(1, layout.width) * LANE + PAD;
  const boxWidth = Math.min(MAX_BOX_WIDTH, Math.max(100, Math.floor(options.boxWidth ?? BOX_WIDTH)));
  const width = boxX + boxWidth + PAD;
  const height = top + layout.rows.length * ROW + TOP;
  const x = (lane: number) => PAD + lane * LANE + LANE / 2;
  const y = (row: number) => top + row * ROW + ROW / 2;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}"` +
    ` font-family="ui-monospace, Menlo, Consolas, monospace" font-size="12">`,
    "<style>.edge{fill:none;stroke-width:1.5}.node rect{fill:#fff;stroke:#bbb}.node.head rect{fill:#eaffea;" +
    "stroke:#2a2;stroke-width:2}.node circle{fill:#555}.node.head circle{fill:#2a2}.key{font-weight:bold;fill:#a60}" +
    ".who{fill:#077}.value{fill:#222}.mark{fill:#2a2;font-weight:bold}</style>",
    `<rect width="${width}" height="${height}" fill="#fafafa"/>`,
  ];
  if (options.title !== undefined) {
    out.push(`<text x="${PAD}" y="${TOP + 16}" font-size="14" font-weight="bold">${escapeXml(options.title)}</text>`);
  }
  const colors = ["#d33", "#2a2", "#c80", "#36c", "#a3a", "#099"];
  for (const edge of layout.edges) {
    const child = layout.rows[edge.from]!;
    const parent = layout.rows[edge.to]!;
    const x1 = x(child.column);
    const y1 = y(edge.from);
    const xl = x(edge.lane);
    const x2 = x(parent.column);
    const y2 = y(edge.to);
    const d = `M${x1} ${y1}L${xl} ${y1 + ROW / 2}L${xl} ${y2 - ROW / 2}L${x2} ${y2}`;
    out.push(
      `<path class="edge" data-from="${escapeXml(child.node.key)}" data-to="${escapeXml(parent.node.key)}" stroke="${
        colors[edge.lane % colors.length]
      }" d="${d}"/>`,
    );
  }
  for (const [i, row] of layout.rows.entries()) {
    const node = row.node;
    const cy = y(i);
    const parts = [`<tspan class="key">${escapeXml(node.key.slice(0, 8))}</tspan>`];
    if (row.head) parts.push(`<tspan class="mark"> head</tspan>`);
    if (node.identity !== undefined) {
      parts.push(`<tspan class="who"> [${escapeXml(node.identity.slice(0, 8))}]</tspan>`);
    }
    parts.push(`<tspan class="value"> ${escapeXml(node.preview)}</tspan>`);
    const body = `<circle cx="${x(row.column)}" cy="${cy}" r="4.5"/>` +
      `<rect x="${boxX}" y="${cy - ROW / 2 + 3}" width="${boxWidth}" height="${ROW - 6}" rx="4"/>` +
      `<text x="${boxX + 8}" y="${cy + 4}">${parts.join("")}</text>` +
      `<title>${escapeXml(`#${node.change} ${node.key}`)}</title>`;
    const linked = options.href === undefined ? body : `<a href="${escapeXml(options.href(node.key))}">${body}</a>`;
    out.push(`<g class="node${row.head ? " head" : ""}" data-key="${escapeXml(node.key)}">${linked}</g>`);
  }
  out.push("</svg>");
  return out.join("\n");
}
