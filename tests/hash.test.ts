import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { nativeSha256, portableSha256, sha256, sha256Hex } from "../src/sha256.ts";
import { computeKey, encodeNode, keyAt, keyPreimage, placeNode, valueAt, valueSize, withChange } from "../src/node.ts";
import { Hyperlog, MemoryStorage } from "../mod.ts";
import { toHex } from "../src/hex.ts";
import { sha256HexJs } from "../src/sha256-portable.ts";
import { seeded } from "./_helpers.ts";

describe("SHA-256 implementations agree", () => {
  it("matches the FIPS 180-2 vectors", () => {
    const abc = new TextEncoder().encode("abc");
    assert.equal(toHex(portableSha256(abc)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert.equal(sha256Hex(new Uint8Array(0)), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  });

  it("gives WebCrypto's digests at every length around the block boundaries, and for 1 MiB", async () => {
    const rand = seeded(11);
    const lengths = [...Array.from({ length: 140 }, (_, i) => i), 183, 184, 191, 192, 1000, 65_536, 1 << 20];
    for (const length of lengths) {
      const data = new Uint8Array(length);
      for (let i = 0; i < length; i++) data[i] = Math.floor(rand() * 256);
      const expected = toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
      assert.equal(toHex(portableSha256(data)), expected, `length ${length}`);
      assert.equal(sha256HexJs(data), expected, `hex, length ${length}`);
    }
  });

  it("the portable hex digest reuses its state: digests in turn, and one of a view into a larger buffer, stay right", async () => {
    const buffer = new TextEncoder().encode("xxabcxx");
    const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const long = new Uint8Array(200).fill(7);
    const longHex = toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", long)));
    for (let i = 0; i < 3; i++) {
      assert.equal(sha256HexJs(buffer.subarray(2, 5)), abc);
      assert.equal(sha256HexJs(long), longHex);
      assert.equal(sha256HexJs(new Uint8Array(0)), empty);
      assert.equal(toHex(portableSha256(buffer.subarray(2, 5))), abc, "the bytes form shares the state");
    }
  });

  it("computes the FIPS 180-4 constants: the 448-bit vector and a million a's", () => {
    const text = new TextEncoder().encode("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq");
    assert.equal(toHex(portableSha256(text)), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const million = new Uint8Array(1_000_000).fill(0x61);
    assert.equal(toHex(portableSha256(million)), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  });

  it("gives the same digests with the portable hash, the runtime's native hash and WebCrypto, on random inputs", async () => {
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

  it("hashes ASCII text as its bytes: links, an identity, odd links, every ASCII character, across slabs", () => {
    const rand = seeded(19);
    const identity = "ef".repeat(32);
    const cases: Array<[string[], string, string | undefined]> = [
      [[], "", undefined],
      [[], "hello", undefined],
      [["cd".repeat(32)], JSON.stringify({ k: "key1", v: 1 }), undefined],
      [["ab".repeat(32), "cd".repeat(32), "01".repeat(32)], "x", identity],
      [[], Array.from({ length: 128 }, (_, i) => String.fromCharCode(i)).join(""), identity],
      [["abc", ""], "odd links", undefined],
      [["caf\u00e9"], "a link that is not ASCII", undefined],
      [[], "caf\u00e9", undefined],
      [[], "lone \ud800 surrogate", undefined],
      [[], "a".repeat(4096), undefined],
      [[], "b".repeat(4097), undefined],
      // Frames longer than the hash's scratch buffer (16 KiB): the general path.
      [Array.from({ length: 300 }, (_, i) => i.toString(16).padStart(64, "0")), "many links", undefined],
    ];
    // Many values in a row fill one slab and start the next: the earlier values keep their bytes.
    for (let i = 0; i < 2000; i++) {
      let text = "";
      for (let j = 0; j < 1 + Math.floor(rand() * 90); j++) text += String.fromCharCode(32 + Math.floor(rand() * 95));
      cases.push([i % 3 === 0 ? ["cd".repeat(32)] : [], text, i % 5 === 0 ? identity : undefined]);
    }
    const made = cases.map(([links, text, id]) => ({ links, text, id, node: encodeNode(links, text, id) }));
    for (const { links, text, id, node } of made) {
      const bytes = new TextEncoder().encode(text);
      assert.deepEqual(node.value, bytes, `value of ${JSON.stringify(text.slice(0, 20))}`);
      assert.equal(
        node.key,
        toHex(portableSha256(keyPreimage(links, bytes, id))),
        `key of ${JSON.stringify(text.slice(0, 20))}`,
      );
      assert.equal(node.key, computeKey(links, bytes, id));
    }
  });
});

describe("placed values", () => {
  it("places ASCII text side by side in a shared slab, and says where; bytes stay as given", () => {
    const a = placeNode([], "first");
    const b = placeNode([], "second");
    assert.equal(a.bytes, b.bytes, "one slab for both");
    assert.equal(b.offset, a.offset + a.size);
    assert.equal(new TextDecoder().decode(valueAt(b.bytes, b.offset, b.size)), "second");
    assert.equal(valueAt(a.bytes, a.offset, a.size).byteLength, 5);
    const given = new TextEncoder().encode("bytes");
    const c = placeNode([], given);
    assert.deepEqual([c.bytes === given, c.offset, c.size], [true, 0, 5]);
    assert.equal(valueAt(given, 0, 5), given, "a whole buffer is returned as it is, not viewed");
    assert.equal(c.key, computeKey([], given));
    // Text that is not ASCII takes the general path, into the slab too, and decodes back.
    const d = placeNode([], "caf\u00e9");
    assert.equal(new TextDecoder().decode(valueAt(d.bytes, d.offset, d.size)), "caf\u00e9");
    assert.equal(d.key, computeKey([], new TextEncoder().encode("caf\u00e9")));
  });

  it("keyAt hashes a value where it lies in a larger buffer: every size around the copy's cut-over, the scratch's end", () => {
    const random = seeded(18);
    const link = "ab".repeat(32);
    const id = "cd".repeat(32);
    // Sizes around the 48-byte cut-over between a byte loop and a copy, and past the 16 KiB scratch (the fallback).
    for (const size of [0, 1, 47, 48, 49, 200, 16 * 1024 - 80, 16 * 1024 - 79, 16 * 1024, 20_000]) {
      const value = new Uint8Array(size).map(() => Math.floor(random() * 256));
      const bytes = new Uint8Array(size + 10);
      bytes.set(value, 7);
      for (const [links, identity] of [[[], undefined], [[link, link], undefined], [[link], id]] as const) {
        const expected = toHex(portableSha256(keyPreimage(links, value, identity)));
        assert.equal(keyAt(links, bytes, 7, size, identity), expected, `size ${size}, ${links.length} links`);
        assert.equal(computeKey(links, value, identity), expected);
      }
    }
  });

  it("valueSize gives a node's value length, for a log's own node from its slot, for others from the value", async () => {
    const storage = new MemoryStorage();
    const log = new Hyperlog<string>(storage);
    const nodes = await log.batch([{ value: "one" }, { value: "caf\u00e9" }, { value: "x".repeat(70_000) }]);
    for (const node of nodes) {
      const stored = (await storage.get(node.key))!;
      assert.equal(valueSize(stored), stored.value.length);
    }
    assert.equal(valueSize({ links: [], value: new Uint8Array(7) }), 7);
  });

  it("withChange copies every field of a node whose value is a getter, signed or not", async () => {
    const storage = new MemoryStorage();
    const log = new Hyperlog<string>(storage);
    const plain = await log.append("hi");
    const stored = (await storage.get(plain.key))!;
    assert.equal(Object.hasOwn(stored, "value"), false, "the log's node reads its value through a getter");
    assert.equal("value" in { ...stored }, false, "which a spread leaves out: the reason for withChange");
    // Such a copy given to another log is refused with a message that says why, and the node itself is taken.
    const other = new Hyperlog<string>();
    await assert.rejects(other.ingest([{ ...stored }]), { name: "InvalidNodeError", message: /has no value: copy/ });
    assert.deepEqual((await other.ingest([stored])).map((n) => n.key), [stored.key]);
    const copy = withChange(stored, 9);
    assert.deepEqual(copy, { key: stored.key, links: stored.links, value: stored.value, change: 9 });
    const signed = { ...copy, identity: "ab".repeat(32), signature: "cd".repeat(64) };
    assert.deepEqual(withChange(signed, 2), { ...signed, change: 2 });
  });
});
