/**
 * The checks of what a log is given: links, counts, and nodes made elsewhere (their shape, and that their key
 * matches their content), and the checked node a log stores (a draft).
 *
 * @module
 */
import { InvalidNodeError } from "./errors.ts";
import { isKey } from "./hex.ts";
import { keyedFromContent } from "./keyed-nodes.ts";
import type { RawNode } from "./node.ts";
import { BYTES, computeKey, OFFSET, placeNode, SIZE } from "./node.ts";

/**
 * A checked node, ready to store: the value is already encoded, `size` bytes of `bytes` from `offset` (see
 * `PlacedNode`, which a local draft is: a local text value lies in a shared slab, and no view of it is made). The
 * fields come in `PlacedNode`'s order, so that local drafts and checked ones share one shape.
 */
export interface Draft {
  key: string;
  links: readonly string[];
  bytes: Uint8Array;
  offset: number;
  size: number;
  /** For a local node of a text encoding: the text the value bytes encode, to decode from without utf-8 work. */
  text: string | undefined;
  identity?: string;
  signature?: string;
}

/** The links of every node that has none: one frozen array shared by all of them. */
export const NO_LINKS: readonly string[] = Object.freeze([]);

/** What an error message calls the thing being checked: `where`, or `where index` for a document of a batch. */
export function label(where: string, index: number | undefined): string {
  return index === undefined ? where : `${where} ${index}`;
}

/** The links of a node being added: `null` or an array of distinct node keys; throws a `TypeError` saying which is wrong. */
export function checkLinks(links: unknown, where: string, index?: number): readonly string[] {
  if (links === null || links === undefined) return NO_LINKS;
  if (!Array.isArray(links)) {
    throw new TypeError(`${label(where, index)}: links must be an array of node keys or null`);
  }
  for (let i = 0; i < links.length; i++) {
    const link: unknown = links[i];
    if (!isKey(link)) {
      throw new TypeError(
        `${label(where, index)}: link ${i} is not a node key (expected 64 lower-case hex characters, got ${
          JSON.stringify(link)
        })`,
      );
    }
  }
  const twice = repeatedLink(links as string[]);
  if (twice !== undefined) throw new TypeError(`${label(where, index)}: link ${twice} is given twice`);
  return links as string[];
}

/** The first link that `links` holds twice, if any. */
function repeatedLink(links: readonly string[]): string | undefined {
  if (links.length < 2) return undefined;
  const seen = new Set<string>();
  for (const link of links) {
    if (seen.has(link)) return link;
    seen.add(link);
  }
  return undefined;
}

/**
 * The draft of a node whose key `key` was computed from its content, after checking it against the key it
 * `claimed` (if it claimed one).
 */
function checkedDraft(claimed: unknown, key: string, raw: RawNode, links: readonly string[]): Draft {
  if (claimed !== undefined && key !== claimed) {
    throw new InvalidNodeError(
      `Node ${claimed} does not match its content: its links, value and identity hash to ${key}`,
    );
  }
  // A node the wire decoder made keeps its value's place in its message's buffer of values (`keyed-nodes.ts`).
  const placed = raw as { [BYTES]?: Uint8Array; [OFFSET]?: number; [SIZE]?: number };
  const bytes = placed[BYTES];
  const draft: Draft = bytes === undefined
    ? { key, links, bytes: raw.value, offset: 0, size: raw.value.length, text: undefined }
    : { key, links, bytes, offset: placed[OFFSET]!, size: placed[SIZE]!, text: undefined };
  if (raw.identity !== undefined) {
    draft.identity = raw.identity;
    draft.signature = raw.signature!;
  }
  return draft;
}

/** A read-stream count option: `undefined`, or a non-negative integer (or `Infinity` where allowed). */
export function checkCount(value: unknown, name: string, allowInfinity: boolean): number | undefined {
  if (value === undefined) return undefined;
  if (
    typeof value !== "number" || Number.isNaN(value) || value < 0 ||
    (!Number.isInteger(value) && !(allowInfinity && value === Infinity))
  ) {
    throw new RangeError(`${name} must be a non-negative integer, got ${String(value)}`);
  }
  return value;
}

/** Checks a raw node's shape and computes its key; throws if a given key does not match. */
export function checkRaw(raw: RawNode): Draft {
  if (typeof raw !== "object" || raw === null) {
    throw new InvalidNodeError("A node must be an object with links and value");
  }
  const claimed = raw.key;
  const name = claimed === undefined ? "A received node" : `Node ${String(claimed)}`;
  if (claimed !== undefined && !isKey(claimed)) {
    throw new InvalidNodeError(`Node key ${JSON.stringify(claimed)} is not 64 lower-case hex characters`);
  }
  let links: readonly string[];
  try {
    links = checkLinks(raw.links, name);
  } catch (err) {
    throw new InvalidNodeError((err as Error).message);
  }
  if (raw.value === undefined) {
    throw new InvalidNodeError(
      `${name} has no value: copy a stored node with withChange or field by field (a spread leaves out what it reads through getters)`,
    );
  }
  if (!(raw.value instanceof Uint8Array)) throw new InvalidNodeError(`${name} has a value that is not bytes`);
  const { identity, signature } = raw;
  if ((identity === undefined) !== (signature === undefined)) {
    throw new InvalidNodeError(
      `${name} has ${identity === undefined ? "a signature but no identity" : "an identity but no signature"}`,
    );
  }
  if (identity !== undefined && !isKey(identity)) {
    throw new InvalidNodeError(`${name} has an identity that is not 64 lower-case hex characters`);
  }
  return checkedDraft(claimed, computeKey(links, raw.value, identity), raw, links);
}

/**
 * Checks a node made by the wire decoder: its fields are well-formed hex already; the content is checked (its key
 * hashed again unless `keyed`: the decoder computed it from the content).
 */
export function checkWire(raw: RawNode, keyed = false): Draft {
  const links = raw.links;
  const twice = repeatedLink(links);
  if (twice !== undefined) throw new InvalidNodeError(`Node ${raw.key} links to ${twice} twice`);
  // A node whose key the link-reference decoder computed from this content is not hashed again.
  const key = keyedFromContent(raw) ? raw.key as string : computeKey(links, raw.value, raw.identity);
  return checkedDraft(raw.key, key, raw, links);
}

/** A local node ready to sign and store: its links, its encoded value (text for a text encoding), its identity. */
export function makeDraft(links: readonly string[], value: Uint8Array | string, identity: string | undefined): Draft {
  // The placed node is the draft: its fields are a draft's, in the same order.
  const draft: Draft = placeNode(links, value, identity);
  if (identity !== undefined) draft.identity = identity;
  return draft;
}

/**
 * The links of batch document `i`: as given, with each number (the index of an earlier document of the batch)
 * replaced by that document's key; throws a `TypeError` for an index that is not an earlier document.
 */
export function batchLinks(raw: unknown, i: number, drafts: readonly Draft[]): unknown {
  if (!Array.isArray(raw) || !raw.some((link) => typeof link === "number")) return raw;
  return raw.map((link: unknown, j) => {
    if (typeof link !== "number") return link;
    if (!Number.isInteger(link) || link < 0 || link >= i) {
      throw new TypeError(
        `batch document ${i}: link ${j} refers to document ${link}, which is not an earlier document of the batch`,
      );
    }
    return drafts[link]!.key;
  });
}
