/**
 * Malformed HTTP over raw TCP to `hyperlog serve` on this runtime (Node, Deno, Bun) and, on Node, to the relay
 * worker in Miniflare: request lines, Host headers, header lines and WebSocket upgrades (`tests/_http-fuzz.ts`). The
 * relay answers each with a 4xx (the runtime's own parser may refuse one first, never accept it) and is still
 * serving afterwards. The test sends 1 500 per host; `node scripts/fuzz-relay.ts --count 10000 --worker` (and the
 * same with deno and bun) sends the 10 000 (README "Operating a relay").
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { setEventSink } from "../worker/events.ts";
import { allowed, fuzz, sendRaw } from "./_http-fuzz.ts";
import { servedRelay } from "./_served.ts";

const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const COUNT = 1500;

function summary(tally: Map<string, number>): string {
  return [...tally.entries()].sort().map(([status, n]) => `${status}: ${n}`).join(", ");
}

describe(`relay fuzz: malformed HTTP to hyperlog serve on ${runtime}`, () => {
  const lines: string[] = [];
  let restore: () => void;
  before(() => {
    restore = setEventSink((line) => void lines.push(line));
  });
  const relay = servedRelay("hyperlog-fuzz-");
  after(() => restore());

  it("the request that killed serve on Node (Host: [) is a 400, on the plain and the upgrade path", async () => {
    for (const host of ["[", "a b"]) {
      assert.equal(await sendRaw(relay.server.port, `GET /health HTTP/1.1\r\nHost: ${host}\r\n\r\n`), "400");
      const upgrade = `GET /logs/x/ws HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
      assert.equal(await sendRaw(relay.server.port, upgrade), "400");
    }
    assert.equal((await fetch(`${relay.url()}/health`)).status, 200);
  });

  it(`${COUNT} malformed requests: no answer outside 4xx from the relay, none accepted, still serving`, async () => {
    const { tally, bad } = await fuzz(relay.server.port, COUNT, { seed: 13 });
    assert.deepEqual(bad, [], `answers: ${summary(tally)}`);
    const relayAnswers = [...tally].filter(([s]) => /^4\d\d$/.test(s)).reduce((n, [, c]) => n + c, 0);
    assert.ok(relayAnswers > COUNT / 3, `most requests reach the relay's code (${summary(tally)})`);
    assert.ok([...tally.keys()].every(allowed));
    assert.equal((await fetch(`${relay.url()}/health`)).status, 200, "still serving");
    assert.deepEqual(readdirSync(relay.dir), [], "no log created by any of them");
  });
});

if (runtime === "node") {
  describe("relay fuzz: malformed HTTP to the relay worker (workerd through Miniflare)", () => {
    let relay: { url: string; stop(): Promise<void> };
    before(async () => {
      const { startRelay } = await import("./fixtures/relay-miniflare.ts");
      relay = await startRelay();
    });
    after(async () => {
      await relay?.stop();
    });

    it(`${COUNT} malformed requests: the Worker answers only 4xx; workerd refuses the rest; still serving`, async () => {
      const { tally, bad } = await fuzz(Number(new URL(relay.url).port), COUNT, { seed: 14 });
      assert.deepEqual(bad, [], `answers: ${summary(tally)}`);
      assert.equal((await fetch(`${relay.url}/health`)).status, 200, "still serving");
    });
  });
}
