/**
 * The relay's views of a log: `GET /logs/NAME/graph` (an SVG with every node and edge of the latest nodes, heads
 * highlighted, hostile values escaped) and `/logs/NAME` as an HTML page for a browser (JSON stays the default), in
 * `hyperlog serve` (every runtime) and in the Worker (workerd through Miniflare, Node only).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Hyperlog } from "../mod.ts";
import { escapeXml, graphSvg } from "../worker/graph-svg.ts";
import { elements, parseXml, textOf } from "./_xml.ts";
import { type Client, connect, json, waitFor } from "./_relay-clients.ts";
import { servedRelay } from "./_served.ts";

const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const HOSTILE = `</text><script>alert(1)</script><text onload="alert(2)">]]><!-- &amp; \u0000\ud800`;

/** A DAG with a fork, a merge, two heads and a hostile value, written by a client. */
async function writeDag(log: Hyperlog<unknown>): Promise<void> {
  const root = await log.add(null, "root");
  const a = await log.add([root.key], { color: "blue" });
  const b = await log.add([root.key], { color: "green" });
  let tip = await log.add([a.key, b.key], { color: "teal", merges: 2 });
  await log.add([root.key], { note: HOSTILE });
  for (let i = 0; i < 5; i++) tip = await log.add([tip.key], `chain ${i}`);
}

/** Every node, edge and head of `log`'s latest `limit` nodes is in the SVG; nothing in it can run. */
async function checkSvg(svg: string, log: Hyperlog<unknown>, limit: number): Promise<void> {
  const root = parseXml(svg);
  assert.equal(root.name, "svg");
  const all = elements(root);
  for (const element of all) {
    assert.ok(!["script", "foreignObject", "iframe", "image", "use"].includes(element.name), element.name);
    for (const [name, value] of Object.entries(element.attributes)) {
      assert.ok(!/^on/i.test(name), `event attribute ${name}`);
      if (name === "href") assert.match(value, /^\/logs\/[\w.-]+\/nodes\/[0-9a-f]{64}$/);
    }
  }
  const latest: { key: string; links: readonly string[]; value: unknown }[] = [];
  for await (const node of log.createReadStream({ reverse: true, limit })) latest.push(node);
  const keys = new Set(latest.map((n) => n.key));
  const groups = all.filter((e) => e.name === "g" && /\bnode\b/.test(e.attributes.class ?? ""));
  assert.deepEqual(groups.map((g) => g.attributes["data-key"]).sort(), [...keys].sort(), "one box per node");
  const heads = new Set((await log.heads()).map((n) => n.key));
  for (const group of groups) {
    const key = group.attributes["data-key"]!;
    assert.equal(/\bhead\b/.test(group.attributes.class!), heads.has(key), `head mark of ${key}`);
    assert.ok(textOf(group).startsWith(key.slice(0, 8)), "the short key first");
  }
  const edges = all.filter((e) => e.name === "path" && e.attributes.class === "edge")
    .map((e) => `${e.attributes["data-from"]}>${e.attributes["data-to"]}`);
  const expected = latest.flatMap((n) => n.links.filter((l) => keys.has(l)).map((l) => `${n.key}>${l}`));
  assert.deepEqual(edges.sort(), expected.sort(), "one edge per link between shown nodes");
  // The hostile value is text: parsed back, it reads as it was written (as JSON), and its markup made no element.
  const hostile = latest.find((n) => typeof n.value === "object" && n.value !== null && "note" in n.value);
  if (hostile !== undefined) {
    const group = groups.find((g) => g.attributes["data-key"] === hostile.key)!;
    assert.ok(textOf(group).includes(`{"note":"</text><script>alert(1)</script><text onload=`), textOf(group));
    assert.ok(!svg.includes("<script") && !svg.includes("<text onload"));
  }
}

/** The relay views, against a relay at `base()` (serve or the Worker). */
function relayViews(base: () => string, clients: Client[]): void {
  let writer: Client;
  before(async () => {
    writer = connect(base(), "views", { log: new Hyperlog({ valueEncoding: "json" }) });
    clients.push(writer);
    await writeDag(writer.log);
    await writer.session.synced;
    await waitFor(async () => (await json(await fetch(`${base()}/logs/views`))).length === 10, 20_000, "10 nodes");
  });

  it("GET /logs/NAME/graph is an SVG of the latest nodes: every node, edge and head, values escaped", async () => {
    const response = await fetch(`${base()}/logs/views/graph`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "image/svg+xml");
    assert.match(response.headers.get("content-security-policy") ?? "", /default-src 'none'/);
    await checkSvg(await response.text(), writer.log, 100);
    const latest = await fetch(`${base()}/logs/views/graph?limit=4`);
    await checkSvg(await latest.text(), writer.log, 4);
    for (const bad of ["0", "1001", "x", "-1"]) {
      const refused = await fetch(`${base()}/logs/views/graph?limit=${bad}`);
      assert.equal(refused.status, 400, bad);
      assert.match(String((await json(refused)).error), /^limit=".*" is not valid: give a number of nodes from 1/);
    }
  });

  it("GET /logs/NAME is JSON by default and an HTML page for a browser, with the live sockets", async () => {
    assert.deepEqual(Object.keys(await json(await fetch(`${base()}/logs/views`))).sort(), ["heads", "length"]);
    const response = await fetch(`${base()}/logs/views`, { headers: { accept: "text/html,application/xhtml+xml" } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/html/);
    const html = await response.text();
    assert.match(html, /<td id="length">10<\/td>/);
    assert.match(html, /<td id="sockets">1<\/td>/, "the writer's socket");
    assert.match(html, /<td id="heads">2 /);
    assert.doesNotMatch(html, /<td id="last-write">not since/);
    assert.ok(!html.includes("<script"));
    const svg = html.slice(html.indexOf("<svg"), html.indexOf("</svg>") + "</svg>".length);
    await checkSvg(svg, writer.log, 100);
  });
}

describe("graphSvg", () => {
  it("escapes every text and keeps the document well-formed, whatever the values", () => {
    const hostileKey = `"><script>alert(3)</script>`;
    const svg = graphSvg([
      { key: hostileKey, links: ["a".repeat(64)], change: 2, identity: `<x onload="y">`, preview: HOSTILE },
      { key: "a".repeat(64), links: [], change: 1, preview: "\ufffe\uffff\u001b" },
    ], { title: HOSTILE, href: (key) => `/logs/x/nodes/${key}` });
    const root = parseXml(svg);
    assert.ok(!elements(root).some((e) => e.name === "script" || Object.keys(e.attributes).some((a) => /^on/.test(a))));
    const texts = elements(root).filter((e) => e.name === "text").map(textOf);
    assert.ok(texts[0]!.startsWith("</text><script>alert(1)"), "the title, as text");
    assert.equal(escapeXml("\ud83d\ude00"), "\ud83d\ude00", "a surrogate pair stays");
  });
});

describe("relay views in hyperlog serve", () => {
  const clients: Client[] = [];
  after(() => {
    for (const c of clients) c.socket.close();
  });
  const relay = servedRelay("hyperlog-views-");
  relayViews(relay.url, clients);
});

if (runtime === "node") {
  const { startRelay } = await import("./fixtures/relay-miniflare.ts");
  describe("relay views in the Worker (workerd through Miniflare)", () => {
    let relay: Awaited<ReturnType<typeof startRelay>> | undefined;
    const clients: Client[] = [];
    before(async () => {
      relay = await startRelay();
    });
    after(async () => {
      for (const c of clients) c.socket.close();
      await relay?.stop();
    });
    relayViews(() => relay!.url, clients);
  });
}
