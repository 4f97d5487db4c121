/**
 * The demo page's "History" tab: the room's DAG, newest first, drawn with the relay's SVG ({@link graphSvg}, the
 * lanes of {@link layoutDag}) and redrawn as nodes arrive. Concurrent kv writes show as a fork (two heads) and the
 * write that resolves them as the merge that links to both. The SVG text is parsed by `DOMParser` as XML (never
 * assigned as HTML), after {@link graphSvg} escaped every value.
 *
 * @module
 */
import type { Node } from "../../src/node.ts";
import { type GraphNode, graphSvg } from "../graph-svg.ts";

/** Nodes drawn, at most: the latest. */
const SHOWN = 200;
/** Characters of a label. */
const LABEL = 44;

function cut(text: string): string {
  const chars = Array.from(text.replace(/\s+/g, " "));
  return chars.length <= LABEL ? chars.join("") : chars.slice(0, LABEL - 1).join("") + "…";
}

function display(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
}

/**
 * The label of a node in the history: a chat message as `author: text`, a kv write as `key = value` or
 * `delete key`, anything else as its JSON.
 *
 * @example
 * ```ts
 * import { historyLabel } from "./history.ts";
 * console.assert(historyLabel({ k: "color", v: "blue" }) === "color = blue");
 * console.assert(historyLabel({ type: "chat", author: "ann", text: "hi", time: 1 }) === "ann: hi");
 * ```
 */
export function historyLabel(value: unknown): string {
  if (typeof value === "object" && value !== null) {
    const v = value as Record<string, unknown>;
    if (v.type === "chat" && typeof v.author === "string" && typeof v.text === "string") {
      return cut(`${v.author}: ${v.text}`);
    }
    if (typeof v.k === "string" && "v" in v) return cut(`${v.k} = ${display(v.v)}`);
    if (typeof v.d === "string") return cut(`delete ${v.d}`);
  }
  return cut(display(value));
}

/**
 * The history of a room: collects the nodes of the log (in change order) and draws the latest into `container`
 * when visible.
 *
 * @example
 * ```ts ignore
 * const history = new History(document.getElementById("history")!);
 * history.add(node);
 * history.show(true);
 * ```
 */
export class History {
  readonly #container: HTMLElement;
  readonly #nodes: GraphNode[] = [];
  #visible = false;
  #scheduled = false;

  /** Draws into `container`. */
  constructor(container: HTMLElement) {
    this.#container = container;
  }

  /** A node of the log, in change order. */
  add(node: Node<unknown>): void {
    this.#nodes.push({
      key: node.key,
      links: node.links,
      change: node.change,
      identity: node.identity,
      preview: historyLabel(node.value),
    });
    if (this.#nodes.length > 4 * SHOWN) this.#nodes.splice(0, this.#nodes.length - SHOWN);
    this.#schedule();
  }

  /** Shows or hides the tab: drawing happens only while it shows. */
  show(visible: boolean): void {
    this.#visible = visible;
    if (visible) this.#schedule();
  }

  #schedule(): void {
    if (!this.#visible || this.#scheduled) return;
    this.#scheduled = true;
    // Nodes that arrive together (a resync) are drawn once.
    setTimeout(() => {
      this.#scheduled = false;
      this.#draw();
    }, 30);
  }

  #draw(): void {
    const latest = this.#nodes.slice(-SHOWN).reverse();
    const svg = graphSvg(latest, { boxWidth: 460 });
    const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
    const root = doc.documentElement;
    if (root.nodeName !== "svg") throw new Error("The history graph did not parse");
    this.#container.replaceChildren(document.importNode(root, true));
    this.#container.dataset.nodes = String(latest.length);
  }
}
