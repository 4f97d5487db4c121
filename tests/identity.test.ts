import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hyperlog, Identity, verifySignature } from "../mod.ts";
import { keyPreimage } from "../src/node.ts";
import { sha256 } from "../src/sha256.ts";
import { fromHex, toHex } from "../src/hex.ts";

describe("Identity", () => {
  it("derives the RFC 8032 public key from a secret key, and exports it back as bytes or hex", async () => {
    // RFC 8032 section 7.1, test 1.
    const secret = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const id = await Identity.fromSecretKey(secret);
    assert.equal(id.publicKey, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    assert.equal(await id.exportSecretKeyHex(), secret);
    assert.deepEqual(await id.exportSecretKey(), fromHex(secret));
    const fromBytes = await Identity.fromSecretKey(fromHex(secret));
    assert.equal(fromBytes.publicKey, id.publicKey);
    const sig = await id.sign(new Uint8Array(0));
    assert.equal(
      toHex(sig),
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    );
  });

  it("refuses secret keys, public keys and signatures of the wrong shape", async () => {
    await assert.rejects(Identity.fromSecretKey("abcd"), /Secret key must be 32 bytes/);
    await assert.rejects(Identity.fromSecretKey("zz".repeat(32)), /hex/);
    await assert.rejects(verifySignature("ab", new Uint8Array(), "00".repeat(64)), /Public key must be 32 bytes/);
    const id = await Identity.generate();
    await assert.rejects(verifySignature(id.publicKey, new Uint8Array(), "00"), /Signature must be 64 bytes/);
  });

  it("verifies its own signatures and no one else's", async () => {
    const a = await Identity.generate();
    const b = await Identity.generate();
    assert.notEqual(a.publicKey, b.publicKey);
    const data = new TextEncoder().encode("data");
    const sig = await a.sign(data);
    assert.equal(await verifySignature(a.publicKey, data, sig), true);
    assert.equal(await verifySignature(b.publicKey, data, sig), false);
    assert.equal(await verifySignature(a.publicKey, new TextEncoder().encode("dat4"), sig), false);
  });
});

describe("signed logs", () => {
  it("signs what it adds; the key covers the identity in the documented layout", async () => {
    const id = await Identity.generate();
    const log = new Hyperlog({ valueEncoding: "utf-8", identity: id });
    const node = await log.add(null, "hello");
    assert.equal(node.identity, id.publicKey);
    assert.match(node.signature ?? "", /^[0-9a-f]{128}$/);
    assert.notEqual(node.key, "8c7efb22472592f561a7a7647f8c5ee93134880b4ca0c92889a61848cd5c4602");
    const preimage = new TextEncoder().encode(`72\ned25519:${id.publicKey}5\nhello`);
    assert.deepEqual(keyPreimage([], new TextEncoder().encode("hello"), id.publicKey), preimage);
    assert.equal(node.key, toHex(sha256(preimage)));
    assert.equal(await verifySignature(id.publicKey, fromHex(node.key), node.signature!), true);
    await log.verify(node);
    const stored = await log.get(node.key);
    assert.equal(stored.signature, node.signature);
  });

  it("gives two writers of the same value two nodes", async () => {
    const a = new Hyperlog({ identity: await Identity.generate() });
    const b = new Hyperlog({ identity: await Identity.generate() });
    assert.notEqual((await a.add(null, "same")).key, (await b.add(null, "same")).key);
  });

  it("verify refuses a forged signature, a swapped identity, a changed value and a wrong key", async () => {
    const me = await Identity.generate();
    const mallory = await Identity.generate();
    const log = new Hyperlog({ identity: me });
    const node = await log.append({ amount: 10 });
    const forged = toHex(await mallory.sign(fromHex(node.key)));
    await assert.rejects(log.verify({ ...node, signature: forged }), { name: "SignatureError" });
    await assert.rejects(log.verify({ ...node, identity: mallory.publicKey }), { name: "InvalidNodeError" });
    await assert.rejects(log.verify({ ...node, value: { amount: 1000 } }), /does not match its content/);
    await assert.rejects(log.verify({ ...node, key: "00".repeat(32) }), { name: "InvalidNodeError" });
    const { signature: _s, ...noSignature } = node;
    await assert.rejects(log.verify(noSignature), /an identity but no signature/);
    await assert.rejects(log.verify({ ...node, signature: "zz" }), /128 lower-case hex/);
  });

  it("a log that requires signatures refuses unsigned nodes and unsigned writes", async () => {
    const open = new Hyperlog({ valueEncoding: "utf-8" });
    const unsigned = await open.add(null, "hello");
    const strict = new Hyperlog({ valueEncoding: "utf-8", requireSignatures: true });
    await assert.rejects(strict.verify(unsigned), /not signed, and this log requires signatures/);
    await assert.rejects(strict.add(null, "x"), { name: "SignatureError" });
    assert.equal(strict.length, 0);
  });

  it("a log with a writer list accepts listed writers only, even when the signature is valid", async () => {
    const alice = await Identity.generate();
    const bob = await Identity.generate();
    const log = new Hyperlog({ identity: alice, writers: [alice.publicKey] });
    const mine = await log.append("from alice");
    await log.verify(mine);
    const bobs = await new Hyperlog({ identity: bob }).append("from bob");
    await assert.rejects(log.verify(bobs), /not a listed writer/);
    const bobLog = new Hyperlog({ identity: bob, writers: [alice.publicKey] });
    await assert.rejects(bobLog.append("x"), /not one of them/);
    assert.throws(() => new Hyperlog({ writers: ["nope"] }), /not a public key/);
  });

  it("signs every node of a batch", async () => {
    const id = await Identity.generate();
    const log = new Hyperlog({ identity: id });
    const nodes = await log.batch(Array.from({ length: 50 }, (_, i) => ({ value: i, links: i > 0 ? [i - 1] : [] })));
    for (const node of nodes) await log.verify(node);
  });
});
