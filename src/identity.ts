/**
 * Ed25519 identities through WebCrypto: generate, import and export keys, sign and verify.
 *
 * @module
 */
import { fromBase64Url } from "./base64url.ts";
import { fromHex, toHex } from "./hex.ts";

const PKCS8_ED25519_PREFIX = fromHex("302e020100300506032b657004220420");
const ALGORITHM = { name: "Ed25519" } as const;

function bytesOf(input: Uint8Array | string, length: number, what: string): Uint8Array<ArrayBuffer> {
  const bytes = typeof input === "string" ? fromHex(input, what) : input;
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw new TypeError(`${what} must be ${length} bytes (or ${length * 2} hex characters)`);
  }
  return bytes.slice();
}

/**
 * An Ed25519 key pair that signs nodes. The secret key is the 32-byte Ed25519 seed.
 *
 * @example Generate, export and re-import an identity
 * ```ts
 * import { Identity } from "./identity.ts";
 * const me = await Identity.generate();
 * const again = await Identity.fromSecretKey(await me.exportSecretKey());
 * console.assert(again.publicKey === me.publicKey);
 * ```
 */
export class Identity {
  /** The public key as 64 lower-case hex characters; this is what nodes carry as `identity`. */
  readonly publicKey: string;
  #privateKey: CryptoKey;

  private constructor(privateKey: CryptoKey, publicKey: Uint8Array) {
    this.#privateKey = privateKey;
    this.publicKey = toHex(publicKey);
  }

  /**
   * Generates a new random identity.
   *
   * @example
   * ```ts
   * import { Identity } from "./identity.ts";
   * console.assert((await Identity.generate()).publicKey.length === 64);
   * ```
   */
  static async generate(): Promise<Identity> {
    const seed = crypto.getRandomValues(new Uint8Array(32));
    return await Identity.fromSecretKey(seed);
  }

  /**
   * Imports an identity from its 32-byte secret key (raw bytes or 64 hex characters).
   *
   * @example
   * ```ts
   * import { Identity } from "./identity.ts";
   * const id = await Identity.fromSecretKey("01".repeat(32));
   * console.assert(id.publicKey.length === 64);
   * ```
   */
  static async fromSecretKey(secretKey: Uint8Array | string): Promise<Identity> {
    const seed = bytesOf(secretKey, 32, "Secret key");
    const pkcs8 = new Uint8Array(PKCS8_ED25519_PREFIX.length + 32);
    pkcs8.set(PKCS8_ED25519_PREFIX);
    pkcs8.set(seed, PKCS8_ED25519_PREFIX.length);
    const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, ALGORITHM, true, ["sign"]);
    const jwk = await crypto.subtle.exportKey("jwk", privateKey);
    if (typeof jwk.x !== "string") throw new TypeError("This runtime's WebCrypto did not export the public key");
    return new Identity(privateKey, fromBase64Url(jwk.x)!);
  }

  /**
   * Exports the 32-byte secret key (the Ed25519 seed). Keep it secret.
   *
   * @example
   * ```ts
   * import { Identity } from "./identity.ts";
   * const id = await Identity.generate();
   * console.assert((await id.exportSecretKey()).length === 32);
   * ```
   */
  async exportSecretKey(): Promise<Uint8Array> {
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", this.#privateKey));
    return pkcs8.slice(pkcs8.length - 32);
  }

  /**
   * Exports the secret key as 64 hex characters.
   *
   * @example
   * ```ts
   * import { Identity } from "./identity.ts";
   * const id = await Identity.fromSecretKey("02".repeat(32));
   * console.assert((await id.exportSecretKeyHex()) === "02".repeat(32));
   * ```
   */
  async exportSecretKeyHex(): Promise<string> {
    return toHex(await this.exportSecretKey());
  }

  /**
   * Signs bytes, returning the 64-byte signature.
   *
   * @example
   * ```ts
   * import { Identity, verifySignature } from "./identity.ts";
   * const id = await Identity.generate();
   * const data = new Uint8Array([1, 2, 3]);
   * console.assert(await verifySignature(id.publicKey, data, await id.sign(data)));
   * ```
   */
  async sign(data: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(await crypto.subtle.sign(ALGORITHM, this.#privateKey, data.slice()));
  }
}

const keyCache = new Map<string, Promise<CryptoKey>>();
const KEY_CACHE_SIZE = 1024;

function publicCryptoKey(publicKey: string): Promise<CryptoKey> {
  let key = keyCache.get(publicKey);
  if (key === undefined) {
    key = crypto.subtle.importKey("raw", bytesOf(publicKey, 32, "Public key"), ALGORITHM, false, ["verify"]);
    if (keyCache.size >= KEY_CACHE_SIZE) keyCache.delete(keyCache.keys().next().value as string);
    keyCache.set(publicKey, key);
    key.catch(() => keyCache.delete(publicKey));
  }
  return key;
}

/**
 * Verifies an Ed25519 signature. Resolves `false` for a wrong signature; rejects with a `TypeError` for a public key
 * or signature of the wrong shape.
 *
 * @example
 * ```ts
 * import { Identity, verifySignature } from "./identity.ts";
 * const id = await Identity.generate();
 * const sig = await id.sign(new Uint8Array([7]));
 * console.assert(!(await verifySignature(id.publicKey, new Uint8Array([8]), sig)));
 * ```
 */
export async function verifySignature(
  publicKey: string | Uint8Array,
  data: Uint8Array,
  signature: string | Uint8Array,
): Promise<boolean> {
  const hexKey = typeof publicKey === "string" ? publicKey.toLowerCase() : toHex(bytesOf(publicKey, 32, "Public key"));
  const sig = bytesOf(signature, 64, "Signature");
  try {
    return await crypto.subtle.verify(ALGORITHM, await publicCryptoKey(hexKey), sig, data.slice());
  } catch (err) {
    if (err instanceof TypeError) throw err;
    return false;
  }
}
