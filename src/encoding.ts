/**
 * Value encodings: how a node's value becomes the bytes that are hashed, stored and sent.
 *
 * @module
 */
import { EncodingError } from "./errors.ts";

/**
 * A codec for values of type `T`. `encode` must be deterministic: the bytes are hashed into the node's key.
 *
 * @example A codec for numbers stored as decimal text
 * ```ts
 * import { Hyperlog } from "../mod.ts";
 * import type { Codec } from "./encoding.ts";
 * const decimal: Codec<number> = {
 *   encode: (n) => new TextEncoder().encode(String(n)),
 *   decode: (b) => Number(new TextDecoder().decode(b)),
 * };
 * const log = new Hyperlog<number>({ valueEncoding: decimal });
 * const node = await log.append(42);
 * console.assert((await log.get(node.key)).value === 42);
 * console.assert(new TextDecoder().decode((await log.storage.get(node.key))!.value) === "42");
 * ```
 */
export interface Codec<T = unknown> {
  /** Turns a value into bytes. Throw to refuse a value. */
  encode(value: T): Uint8Array;
  /** Turns bytes back into the value. */
  decode(bytes: Uint8Array): T;
}

/** The names of the built-in encodings. */
export type EncodingName = "json" | "utf-8" | "utf8" | "binary";

/** A built-in encoding's name or a custom codec. */
export type ValueEncoding<T = unknown> = EncodingName | Codec<T>;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function decodeText(bytes: Uint8Array, name: string): string {
  try {
    return decoder.decode(bytes);
  } catch (err) {
    throw new EncodingError(`Stored value is not valid utf-8, so it cannot be decoded as ${name}`, { cause: err });
  }
}

function jsonText(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new EncodingError(`Value cannot be encoded as json: ${(err as Error).message}`, { cause: err });
  }
  if (text === undefined) {
    throw new EncodingError(`Value cannot be encoded as json: ${typeof value} has no JSON form; use null or an object`);
  }
  return text;
}

function utf8Text(value: unknown): string {
  if (typeof value !== "string") {
    throw new EncodingError(`Value cannot be encoded as utf-8: expected a string, got ${describe(value)}`);
  }
  return value;
}

/** JSON text in utf-8, as hyperlog 4's `json` encoding. */
const json: Codec<unknown> = {
  encode: (value) => encoder.encode(jsonText(value)),
  decode(bytes) {
    const text = decodeText(bytes, "json");
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new EncodingError(`Stored value is not valid json: ${(err as Error).message}`, { cause: err });
    }
  },
};

/** utf-8 text: values must be strings. */
const utf8: Codec<unknown> = {
  encode: (value) => encoder.encode(utf8Text(value)),
  decode: (bytes) => decodeText(bytes, "utf-8"),
};

/** Raw bytes: values must be `Uint8Array`s (strings are taken as utf-8, as hyperlog 4 did). */
const binary: Codec<unknown> = {
  encode(value) {
    if (value instanceof Uint8Array) return value.slice();
    if (typeof value === "string") return encoder.encode(value);
    throw new EncodingError(
      `Value cannot be encoded as binary: expected a Uint8Array or a string, got ${describe(value)}`,
    );
  },
  decode: (bytes) => bytes.slice(),
};

const textForms = new Map<Codec<unknown>, (value: unknown) => string>([[json, jsonText], [utf8, utf8Text]]);

/**
 * For a built-in text encoding, the function that turns a value into the text whose utf-8 bytes are the encoding
 * (so the log can write it straight into its hashing buffer); `undefined` for other codecs.
 *
 * @example
 * ```ts
 * import { resolveEncoding, textForm } from "./encoding.ts";
 * console.assert(textForm(resolveEncoding("json"))?.({ a: 1 }) === '{"a":1}');
 * ```
 */
export function textForm<T>(codec: Codec<T>): ((value: T) => string) | undefined {
  return textForms.get(codec as Codec<unknown>);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (value instanceof Uint8Array) return "a Uint8Array";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/**
 * Resolves an encoding name or codec into a codec; throws a `TypeError` for an unknown name.
 *
 * @example
 * ```ts
 * import { resolveEncoding } from "./encoding.ts";
 * const json = resolveEncoding("json");
 * console.assert(new TextDecoder().decode(json.encode({ a: 1 })) === '{"a":1}');
 * ```
 */
export function resolveEncoding<T = unknown>(encoding: ValueEncoding<T> | undefined): Codec<T> {
  if (encoding === undefined || encoding === "json") return json as Codec<T>;
  if (encoding === "utf-8" || encoding === "utf8") return utf8 as Codec<T>;
  if (encoding === "binary") return binary as Codec<T>;
  if (
    typeof encoding === "object" && encoding !== null && typeof encoding.encode === "function" &&
    typeof encoding.decode === "function"
  ) {
    return wrapCodec(encoding);
  }
  throw new TypeError(
    `Unknown valueEncoding ${JSON.stringify(encoding)}: use "json", "utf-8", "binary" or an { encode, decode } codec`,
  );
}

function wrapCodec<T>(codec: Codec<T>): Codec<T> {
  return {
    encode(value) {
      let bytes: unknown;
      try {
        bytes = codec.encode(value);
      } catch (err) {
        throw new EncodingError(`Value cannot be encoded by the custom codec: ${(err as Error).message}`, {
          cause: err,
        });
      }
      if (!(bytes instanceof Uint8Array)) {
        throw new EncodingError(`The custom codec's encode returned ${describe(bytes)}; it must return a Uint8Array`);
      }
      return bytes;
    },
    decode: (bytes) => codec.decode(bytes),
  };
}
