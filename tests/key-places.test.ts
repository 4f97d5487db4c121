import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KeyPlaces } from "../src/key-places.ts";

const key = (i: number, prefix = ""): string => (prefix + i.toString(16)).padStart(64, "0");

describe("KeyPlaces", () => {
  it("finds the first place of every key, and -1 for a key not there", () => {
    const items = Array.from({ length: 5000 }, (_, i) => ({ key: key(i % 3000) }));
    const places = new KeyPlaces(items);
    for (let i = 0; i < 3000; i++) assert.equal(places.first(key(i)), i);
    for (let i = 3000; i < 3100; i++) assert.equal(places.first(key(i)), -1);
  });

  it("keeps keys apart that share their first 8 characters (the hashed part)", () => {
    // Every key hashes to the same slot: each must still be found by comparing whole keys.
    const items = Array.from({ length: 300 }, (_, i) => ({ key: "abcdef01" + key(i).slice(8) }));
    const places = new KeyPlaces(items);
    for (let i = 0; i < 300; i++) assert.equal(places.first(items[i]!.key), i);
    assert.equal(places.first("abcdef01" + key(300).slice(8)), -1);
    assert.equal(places.first("abcdef01"), -1, "a prefix of keys is not a key");
  });

  it("places only items[from..to), under the items' own indexes", () => {
    const items = Array.from({ length: 100 }, (_, i) => ({ key: key(i) }));
    const places = new KeyPlaces(items, 40, 60);
    assert.equal(places.first(key(39)), -1);
    assert.equal(places.first(key(40)), 40);
    assert.equal(places.first(key(59)), 59);
    assert.equal(places.first(key(60)), -1);
    assert.equal(new KeyPlaces(items, 100).first(key(99)), -1, "an empty range holds nothing");
  });
});
