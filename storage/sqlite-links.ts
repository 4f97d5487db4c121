/**
 * How `SqliteStorage` keeps a node's links (schema version 2): as references to the change numbers of the nodes
 * they name, not as their 32-byte keys. A link to an earlier stored node is the varint of the distance back
 * (`change - linked change`, one byte up to 127, two up to 16 383); a link to a node not stored before it (a
 * dangling link, or one to a later node of the same commit) is a zero byte followed by the 32 bytes of its key.
 * The keys are recovered on read with one lookup per distinct change a page links to outside itself, so keys,
 * hashes and signatures never change. The column goes through SQLite's `hex()`/`unhex()` like the others.
 *
 * @module
 */

import { HEX_BYTES, hexInto } from "../src/hex.ts";
import { hexOf } from "../src/wire-read.ts";

/**
 * The stored form of `links` (as hex, for `unhex()`), for a node numbered `change`: `changeOf` gives the change
 * number of a linked key that is stored (or committed before this node in the same commit), or `undefined`.
 */
export function encodeLinks(
  change: number,
  links: readonly string[],
  changeOf: (key: string) => number | undefined,
): string {
  let out = "";
  for (let i = 0; i < links.length; i++) {
    const link = links[i]!;
    const target = changeOf(link);
    if (target === undefined || target >= change || target < 1) {
      out += "00" + link;
      continue;
    }
    let distance = change - target;
    while (distance >= 128) {
      out += HEX_BYTES[(distance % 128) | 128];
      distance = Math.floor(distance / 128);
    }
    out += HEX_BYTES[distance];
  }
  return out;
}

/**
 * Decodes the stored links of node `change` (their hex, from `lower(hex(links))`): each entry is either a change
 * number (a reference) or a key (64 hex characters, kept as such). Throws a `TypeError` on a malformed column.
 */
export function decodeLinks(change: number, hex: string): (number | string)[] {
  const bytes = new Uint8Array(hex.length >> 1);
  hexInto(hex, bytes, 0);
  return decodeLinkBytes(change, bytes, 0, bytes.length);
}

/**
 * Decodes the stored links of node `change` from their bytes, `bytes` from `at` up to `end`, as
 * {@link decodeLinks} does from their hex. Throws a `TypeError` on a malformed column.
 */
export function decodeLinkBytes(change: number, bytes: Uint8Array, at: number, end: number): (number | string)[] {
  // Counted first, so that the array is made at its size (one made empty grows room for 17 on its first push).
  let count = 0;
  for (let i = at; i < end; i++) {
    if (bytes[i] === 0) i += 32;
    else if (bytes[i]! >= 128) continue;
    count++;
  }
  const out: (number | string)[] = new Array(count);
  let n = 0;
  while (at < end) {
    let byte = bytes[at++]!;
    if (byte === 0) {
      if (at + 32 > end) throw new TypeError(`The stored links of node ${change} are cut short`);
      out[n++] = hexOf(bytes, at, 32);
      at += 32;
      continue;
    }
    let distance = 0;
    let scale = 1;
    while (byte >= 128) {
      distance += (byte - 128) * scale;
      scale *= 128;
      if (at >= end) throw new TypeError(`The stored links of node ${change} are cut short`);
      byte = bytes[at++]!;
    }
    distance += byte * scale;
    out[n++] = change - distance;
  }
  return out;
}
