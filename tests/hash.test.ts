import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { nativeSha256, portableSha256, sha256, sha256Hex } from "../src/sha256.ts";
import { computeKey, encodeNode, keyPreimage } from "../src/node.ts";
import { toHex } from "../src/hex.ts";
import { seeded } from "./_helpers.ts";

describe("SHA-256 implementations agree", () => {
  it("matches the FIPS 180-2 vectors", () => {
    const abc = new TextEncoder().encode("abc");
    assert.equal(toHex(portableSha256(abc)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert.equal(sha256Hex(new Uint8Array(0)), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  });

  it("gives the same digests with noble, the runtime's native hash and WebCrypto, on random inputs", async () => {
    const rand = seeded(42);
    for (let round = 0; round < 200; round++) {
      const data = new Uint8Array(Math.floor(rand() * 300) + (round === 0 ? 0 : 1));
      for (let i = 0; i < data.length; i++) data[i] = Math.floor(rand() * 256);
      const expected = toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
      assert.equal(toHex(portableSha256(data)), expected);
      assert.equal(toHex(sha256(data)), expected);
      assert.equal(sha256Hex(data), expected);
      if (nativeSha256 !== undefined) assert.equal(toHex(nativeSha256(data)), expected);
    }
  });
});

describe("node keys", () => {
  it("frames links and value as hyperlog 4 does", () => {
    const link = "ab".repeat(32);
    const pre = new TextDecoder().decode(keyPreimage([link], new TextEncoder().encode("hi")));
    assert.equal(pre, `64\n${link}2\nhi`);
  });

  it("computes the same key from a string or its bytes, however long the value", () => {
    const rand = seeded(7);
    for (const size of [0, 1, 9, 10, 99, 100, 1000, 70_000, 200_000]) {
      let text = "";
      for (let i = 0; i < size; i++) text += String.fromCharCode(rand() < 0.9 ? 97 + (i % 26) : 0x4e00 + (i % 500));
      const bytes = new TextEncoder().encode(text);
      const links = size % 2 === 0 ? [] : ["cd".repeat(32)];
      const fromText = encodeNode(links, text);
      assert.equal(fromText.key, computeKey(links, bytes));
      assert.deepEqual(fromText.value, bytes);
      assert.equal(fromText.key, toHex(portableSha256(keyPreimage(links, bytes))));
    }
  });
});
