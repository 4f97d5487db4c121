/**
 * The heads of `DenoKvStorage`, as stored: pieces of at most 2 000 keys (32 bytes each) under `[...P, "h", i]`, so
 * that a commit rewrites only the pieces it changes.
 *
 * @module
 */
import { hexInto, toHex } from "../src/hex.ts";
import type { StoredNode } from "../src/node.ts";
import type { DenoKvKey, DenoKvKeyPart, KvWrite } from "./deno-kv-codec.ts";
import { bytesOf, type DenoKvEntryLike } from "./deno-kv-journal.ts";

/** Heads per piece of `[...P, "h", i]`. */
const HEADS_PER_PIECE = 2000;

/** The heads of a log, as stored: pieces of at most 2 000, and the piece of each head. */
export interface HeadPieces {
  /** The versionstamp of the tip they belong to. */
  stamp: string | null;
  /** The keys of each piece. */
  pieces: Set<string>[];
  /** The piece of each head. */
  where: Map<string, number>;
}

/** The heads from the entries of their pieces, read with the tip whose versionstamp is `stamp`. */
export function parseHeads(stamp: string | null, parts: readonly DenoKvEntryLike[]): HeadPieces {
  const heads: HeadPieces = { stamp, pieces: [], where: new Map() };
  for (const piece of parts) {
    const bytes = bytesOf(piece, "A piece of the heads") ?? new Uint8Array(0);
    const set = new Set<string>();
    for (let at = 0; at < bytes.length; at += 32) {
      const key = toHex(bytes.subarray(at, at + 32));
      set.add(key);
      heads.where.set(key, heads.pieces.length);
    }
    heads.pieces.push(set);
  }
  return heads;
}

/**
 * Changes `heads` in place for the nodes of a commit (each becomes a head, what it links to stops being one) and
 * returns the writes of the pieces that changed.
 */
export function commitHeads(
  heads: HeadPieces,
  nodes: readonly StoredNode[],
  key: (...parts: DenoKvKeyPart[]) => DenoKvKey,
): KvWrite[] {
  const changed = new Set<number>();
  for (const node of nodes) {
    for (const link of node.links) {
      const at = heads.where.get(link);
      if (at === undefined) continue;
      heads.pieces[at]!.delete(link);
      heads.where.delete(link);
      changed.add(at);
    }
    let last = heads.pieces.length - 1;
    if (last < 0 || heads.pieces[last]!.size >= HEADS_PER_PIECE) heads.pieces.push(new Set()), last++;
    heads.pieces[last]!.add(node.key);
    heads.where.set(node.key, last);
    changed.add(last);
  }
  const writes: KvWrite[] = [];
  for (const i of [...changed].sort((a, b) => a - b)) {
    const value = new Uint8Array(heads.pieces[i]!.size * 32);
    let at = 0;
    for (const head of heads.pieces[i]!) hexInto(head, value, (at++) * 32);
    writes.push({ key: key("h", i), value });
  }
  return writes;
}
