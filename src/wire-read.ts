/**
 * Readers shared by the decoders of node messages that carry link references (`link-refs.ts` for `NODES_REFS`,
 * `live-decode.ts` for `NODES_LIVE`): a varint read with nothing allocated per call, a key's hex as one flat string,
 * and the tail of a node (flags, signer, value), which both lay out as plain `NODES` does.
 *
 * @module
 */
import { InvalidNodeError } from "./errors.ts";
import { readVarint } from "./frame.ts";
import { HEX_PAIRS } from "./hex.ts";
import { copyBytes } from "./node.ts";

/** One key's worth of character codes to make a string from. */
const KEY_CODES: number[] = new Array<number>(64).fill(0);

/**
 * The hex of `length` (at most 64) bytes at `from`, as one flat string (a key built by `+=` is a rope, slow to look
 * up).
 *
 * @example
 * ```ts
 * import { hexOf } from "./wire-read.ts";
 * console.assert(hexOf(Uint8Array.of(0, 171, 255), 1, 2) === "abff");
 * ```
 */
export function hexOf(bytes: Uint8Array, from: number, length: number): string {
  const codes = length === 32 ? KEY_CODES : new Array<number>(2 * length).fill(0);
  for (let i = 0; i < length; i++) {
    const pair = HEX_PAIRS[bytes[from + i]!]!;
    codes[2 * i] = pair & 255;
    codes[2 * i + 1] = pair >> 8;
  }
  return String.fromCharCode.apply(null, codes);
}

/** Where the last {@link varintAt} ended (`end`), read right after the call. */
export const cursor: { end: number } = { end: 0 };

/**
 * The varint at `at` of `buf`, which must end by `end` (else -1), as `readVarint` reads it but with no pair made per
 * call: where it ends is left in {@link cursor}.
 *
 * @example
 * ```ts
 * import { cursor, varintAt } from "./wire-read.ts";
 * console.assert(varintAt(Uint8Array.of(0xac, 0x02, 7), 0, 3) === 300 && cursor.end === 2);
 * console.assert(varintAt(Uint8Array.of(0xac), 0, 1) === -1, "cut short");
 * ```
 */
export function varintAt(buf: Uint8Array, at: number, end: number): number {
  const first = at < end ? buf[at]! : 128;
  if (first < 128) {
    cursor.end = at + 1;
    return first;
  }
  const second = at + 1 < end ? buf[at + 1]! : 128;
  if (second < 128) {
    cursor.end = at + 2;
    return (first & 127) + second * 128;
  }
  const read = at < end ? readVarint(buf.subarray(0, end), at) : undefined;
  if (read === undefined) return -1;
  cursor.end = read[1];
  return read[0];
}

/**
 * What {@link readNodeTail} read: the signer of a signed node, and where the next value goes (the node's value is
 * `values` from where it was asked to put it up to there: no view of it is made).
 */
export interface NodeTail {
  /** The signer of a signed node, or `undefined`. */
  signer: { identity: string; signature: string } | undefined;
  /** Where in `values` the next node's value goes. */
  valuesAt: number;
}

/**
 * Reads the tail of a node whose body ends at `end`, from `at` (after its links): its flags, signer and value, the
 * value copied into `values` at `valuesAt` (one buffer for a message's values). Throws an `InvalidNodeError` for a
 * tail that is cut short, unknown flags, or a value that does not end where the node does.
 *
 * @example
 * ```ts
 * import { readNodeTail, type NodeTail } from "./wire-read.ts";
 * const tail: NodeTail = { signer: undefined, valuesAt: 0 };
 * const values = new Uint8Array(8);
 * readNodeTail(Uint8Array.of(0, 2, 104, 105), 0, 4, values, 0, tail);
 * console.assert(new TextDecoder().decode(values.subarray(0, tail.valuesAt)) === "hi" && tail.valuesAt === 2);
 * ```
 */
export function readNodeTail(
  message: Uint8Array,
  at: number,
  end: number,
  values: Uint8Array,
  valuesAt: number,
  tail: NodeTail,
): void {
  if (at >= end) throw new InvalidNodeError("Malformed node: truncated flags");
  const flags = message[at++]!;
  if (flags > 1) throw new InvalidNodeError(`Malformed node: unknown flags ${flags}`);
  tail.signer = undefined;
  if (flags === 1) {
    if (at + 96 > end) throw new InvalidNodeError("Malformed node: truncated signature");
    tail.signer = { identity: hexOf(message, at, 32), signature: hexOf(message, at + 32, 64) };
    at += 96;
  }
  const len = varintAt(message, at, end);
  if (len < 0) throw new InvalidNodeError("Malformed node: truncated value length");
  const from = cursor.end;
  if (from + len !== end) {
    throw new InvalidNodeError(`Malformed node: the value is ${len} bytes but the frame holds ${end - from}`);
  }
  copyBytes(message, from, values, valuesAt, len);
  tail.valuesAt = valuesAt + len;
}
