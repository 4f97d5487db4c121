/**
 * A strict little XML parser for the tests of the relay's SVG: elements, attributes, text, the five predefined
 * entities and numeric character references. It throws on anything not well-formed (a tag left open or closed
 * twice, an unquoted or repeated attribute, a bare `&` or `<`), so a value that broke out of its text would fail.
 *
 * @module
 */

/** An element: its name, attributes and children (elements and text). */
export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: (XmlElement | string)[];
}

function decode(text: string, at: number): string {
  return text.replace(/&([^;]*);|&|</g, (match, entity: string | undefined) => {
    if (match === "&" || match === "<") throw new SyntaxError(`A bare ${match} in text near ${at}`);
    const named: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
    if (entity! in named) return named[entity!]!;
    const numeric = /^#(x[0-9a-fA-F]+|[0-9]+)$/.exec(entity!);
    if (numeric === null) throw new SyntaxError(`Unknown entity &${entity}; near ${at}`);
    const code = numeric[1]!.startsWith("x") ? parseInt(numeric[1]!.slice(1), 16) : Number(numeric[1]);
    return String.fromCodePoint(code);
  });
}

/**
 * Parses a document with one root element.
 *
 * @example
 * ```ts ignore
 * const root = parseXml("<svg><g a='1'>x</g></svg>");
 * ```
 */
export function parseXml(source: string): XmlElement {
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[A-Za-z_:][\w:.-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>/y;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let at = 0;
  while (at < source.length) {
    const lt = source.indexOf("<", at);
    const text = source.slice(at, lt === -1 ? source.length : lt);
    if (text !== "") {
      if (stack.length === 0) {
        if (text.trim() !== "") throw new SyntaxError(`Text outside the root element near ${at}`);
      } else stack.at(-1)!.children.push(decode(text, at));
    }
    if (lt === -1) break;
    tag.lastIndex = lt;
    const match = tag.exec(source);
    if (match === null) throw new SyntaxError(`A malformed tag near ${lt}: ${source.slice(lt, lt + 40)}`);
    const [, closing, name, attrs, selfClosing] = match;
    if (closing === "/") {
      const open = stack.pop();
      if (open === undefined || open.name !== name) throw new SyntaxError(`</${name}> closes ${open?.name} at ${lt}`);
      if (attrs !== "" || selfClosing === "/") throw new SyntaxError(`A malformed closing tag at ${lt}`);
    } else {
      const element: XmlElement = { name: name!, attributes: {}, children: [] };
      for (const a of attrs!.matchAll(/\s+([A-Za-z_:][\w:.-]*)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/g)) {
        if (a[1]! in element.attributes) throw new SyntaxError(`Attribute ${a[1]} twice at ${lt}`);
        element.attributes[a[1]!] = decode(a[2] ?? a[3] ?? "", lt);
      }
      if (stack.length === 0) {
        if (root !== undefined) throw new SyntaxError(`A second root element at ${lt}`);
        root = element;
      } else stack.at(-1)!.children.push(element);
      if (selfClosing !== "/") stack.push(element);
    }
    at = tag.lastIndex;
  }
  if (stack.length > 0) throw new SyntaxError(`<${stack.at(-1)!.name}> is never closed`);
  if (root === undefined) throw new SyntaxError("No root element");
  return root;
}

/**
 * Every element under `root` (itself included), depth first.
 *
 * @example
 * ```ts ignore
 * const groups = elements(root).filter((e) => e.name === "g");
 * ```
 */
export function elements(root: XmlElement): XmlElement[] {
  const out: XmlElement[] = [root];
  for (const child of root.children) if (typeof child !== "string") out.push(...elements(child));
  return out;
}

/**
 * The text inside an element, its descendants' included.
 *
 * @example
 * ```ts ignore
 * const label = textOf(group);
 * ```
 */
export function textOf(element: XmlElement): string {
  return element.children.map((child) => typeof child === "string" ? child : textOf(child)).join("");
}
