/**
 * The demo page's module (bundled into `/demo.js` by `scripts/build-demo.ts`): a room, `/?room=NAME` (default
 * `demo`), is one log kept in IndexedDB and synced live with the relay's log of the same name by `connect()`.
 *
 * - Chat: each message is a node `{ type: "chat", text, author, time }` appended to the log, so it links to the
 *   current heads (everything its writer had seen). Messages are shown in causal order: by depth in the DAG (one
 *   more than the deepest node it links to), then by time and key, so every peer shows the same order once synced.
 * - Shared table: a HyperKV in the same log. Values set concurrently on two peers are shown side by side until
 *   someone sets the key again; that write links to all of them and resolves the conflict.
 * - History (a tab; `#history` opens it): the room's DAG, newest first, redrawn live (`history.ts`).
 * - The sync state is `connect()`'s (`connecting`, `syncing`, `live`, `offline`); "Go offline" closes the session
 *   (writes keep going to IndexedDB) and "Go online" opens a new one, which resyncs the difference.
 *
 * - Who is here: the relay's presence (each page publishes `{ name }`). With `?direct=1`, pages also connect to each
 *   other over WebRTC (`DirectPeers`), shown as "direct" beside a name; "Stop relay" then closes the relay
 *   connection while the data channels carry the chat on, peer to peer.
 *
 * A service worker (`worker/demo/sw.ts`) keeps a copy of the page, so a reload works while the relay is down. Plain
 * DOM, no framework; the HTML is `worker/demo/html.ts`.
 *
 * @module
 */
import { connect, type Sync, type SyncStateDetail } from "../../src/connect.ts";
import { HyperKV, type KVEntry } from "../../src/kv.ts";
import { Hyperlog } from "../../src/log.ts";
import type { Node } from "../../src/node.ts";
import { IndexedDBStorage } from "../../storage/indexeddb.ts";
import { Presence } from "../../src/presence.ts";
import { DirectPeers } from "../../src/webrtc.ts";
import { History } from "./history.ts";

/** A chat message, as stored in the log. */
interface ChatMessage {
  type: "chat";
  text: string;
  author: string;
  time: number;
}

/** A message on screen. */
interface Shown {
  key: string;
  depth: number;
  time: number;
  element: HTMLLIElement;
}

const ROOM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const AUTHOR_KEY = "hyperlog-demo-author";

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`The page lacks #${id}`);
  return element as T;
}

function isChat(value: unknown): value is ChatMessage {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return v.type === "chat" && typeof v.text === "string" && typeof v.author === "string" && typeof v.time === "number";
}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text?: string,
  className?: string,
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (text !== undefined) el.textContent = text;
  if (className !== undefined) el.className = className;
  return el;
}

const params = new URL(location.href).searchParams;
const requested = params.get("room") ?? "demo";
const room = ROOM_NAME.test(requested) ? requested : "demo";
const token = params.get("token") ?? undefined;
const directMode = params.get("direct") === "1";

const stateEl = byId<HTMLOutputElement>("state");
const detailEl = byId<HTMLSpanElement>("detail");
const toggle = byId<HTMLButtonElement>("toggle");
const countsEl = byId<HTMLSpanElement>("counts");
const messagesEl = byId<HTMLOListElement>("messages");
const kvBody = byId<HTMLTableSectionElement>("kv");
const authorInput = byId<HTMLInputElement>("author");
const messageInput = byId<HTMLInputElement>("message");
const keyInput = byId<HTMLInputElement>("kv-key");
const valueInput = byId<HTMLInputElement>("kv-value");

byId("room").textContent = room;
document.title = `hyperlog room ${room}`;

function report(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  detailEl.textContent = `Error: ${message}`;
  console.error(error);
}
addEventListener("unhandledrejection", (event) => report(event.reason));

if (requested !== room) report(new Error(`Room ${JSON.stringify(requested)} is not a valid name; showing "demo"`));

authorInput.value = localStorage.getItem(AUTHOR_KEY) ??
  `guest-${Math.floor(Math.random() * 0x10000).toString(16).padStart(4, "0")}`;
authorInput.addEventListener("change", () => localStorage.setItem(AUTHOR_KEY, authorInput.value.trim()));

const log = new Hyperlog<unknown>(new IndexedDBStorage(`hyperlog-room-${room}`), { valueEncoding: "json" });

// --- who is here (presence) and direct peers (WebRTC, with ?direct=1) --------------------------------------------

const peopleEl = byId<HTMLUListElement>("people");
const presence = new Presence({ state: { name: authorInput.value } });
const direct = directMode ? new DirectPeers(log, presence) : undefined;

function showPeople(): void {
  const items: HTMLLIElement[] = [];
  for (const [peer, state] of presence.peers) {
    const name = typeof (state as { name?: unknown })?.name === "string" ? (state as { name: string }).name : peer;
    const id = presence.directPeers.get(peer);
    const link = id === undefined ? undefined : direct?.peers.get(id);
    const li = element("li", name);
    li.dataset.peer = peer;
    if (link !== undefined) {
      li.dataset.direct = link;
      li.append(" ", element("span", link === "direct" ? "direct" : link, "badge"));
    }
    items.push(li);
  }
  peopleEl.replaceChildren(...items);
}
presence.addEventListener("presence", showPeople);
direct?.addEventListener("peer", showPeople);
let naming: ReturnType<typeof setTimeout> | undefined;
authorInput.addEventListener("input", () => {
  clearTimeout(naming);
  naming = setTimeout(() => presence.set({ name: authorInput.value.trim() || "anonymous" }), 200);
});
const kv = new HyperKV<unknown>(log);
await log.ready();

// --- chat, in causal order ---------------------------------------------------------------------------------------

const depths = new Map<string, number>();
const shown: Shown[] = [];
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

function before(a: Shown, b: Shown): boolean {
  return a.depth !== b.depth ? a.depth < b.depth : a.time !== b.time ? a.time < b.time : a.key < b.key;
}

function showMessage(node: Node<unknown>, message: ChatMessage, depth: number): void {
  const li = element("li");
  li.dataset.key = node.key;
  li.append(element("span", message.author, "author"), element("span", message.text, "text"));
  const time = element("time", timeFormat.format(message.time));
  time.dateTime = new Date(message.time).toISOString();
  li.append(time);
  const entry: Shown = { key: node.key, depth, time: message.time, element: li };
  // Usually the newest: search from the end.
  let at = shown.length;
  while (at > 0 && before(entry, shown[at - 1]!)) at--;
  const atBottom = messagesEl.scrollTop + messagesEl.clientHeight >= messagesEl.scrollHeight - 8;
  messagesEl.insertBefore(li, shown[at]?.element ?? null);
  shown.splice(at, 0, entry);
  if (atBottom && at === shown.length - 1) messagesEl.scrollTop = messagesEl.scrollHeight;
}

async function followLog(): Promise<void> {
  // Nodes arrive in change order, which puts every node after the nodes it links to.
  const reader = log.createReadStream({ live: true }).getReader();
  for (;;) {
    const { done, value: node } = await reader.read();
    if (done) return;
    let depth = 0;
    for (const link of node.links) depth = Math.max(depth, (depths.get(link) ?? 0) + 1);
    depths.set(node.key, depth);
    history.add(node);
    if (isChat(node.value)) showMessage(node, node.value, depth);
    showCounts();
  }
}

// --- the shared table --------------------------------------------------------------------------------------------

const rows = new Map<string, HTMLTableRowElement>();

function display(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function showEntry({ key, values }: KVEntry<unknown>): void {
  const old = rows.get(key);
  const entries = Object.entries(values).sort(([ka, a], [kb, b]) =>
    display(a) < display(b) ? -1 : display(a) > display(b) ? 1 : ka < kb ? -1 : 1
  );
  if (entries.length === 0) {
    old?.remove();
    rows.delete(key);
    showCounts();
    return;
  }
  const row = element("tr");
  row.dataset.key = key;
  if (entries.length > 1) row.className = "conflict";
  const cell = element("td");
  for (const [nodeKey, value] of entries) {
    const span = element("span", display(value), "value");
    span.dataset.node = nodeKey;
    cell.append(span);
    if (entries.length > 1) {
      const keep = element("button", "Keep");
      keep.type = "button";
      keep.setAttribute("aria-label", `Keep ${display(value)} for ${key}`);
      keep.addEventListener("click", () => kv.put(key, value).catch(report));
      cell.append(keep);
    }
  }
  row.append(element("td", key), cell);
  if (old !== undefined) old.replaceWith(row);
  else {
    const next = [...rows.keys()].filter((k) => k > key).sort()[0];
    kvBody.insertBefore(row, next === undefined ? null : rows.get(next)!);
  }
  rows.set(key, row);
  showCounts();
}

async function followTable(): Promise<void> {
  const reader = kv.createReadStream({ live: true }).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    showEntry(value);
  }
}

function showCounts(): void {
  countsEl.textContent = `${shown.length} messages · ${rows.size} keys · ${log.length} nodes`;
}

// --- tabs: the room (chat and table) and its history (the DAG, history.ts) ------------------------------------------

const history = new History(byId<HTMLDivElement>("history"));
const tabs = { room: byId<HTMLButtonElement>("tab-room"), history: byId<HTMLButtonElement>("tab-history") };

function selectTab(name: "room" | "history"): void {
  for (const [tab, button] of Object.entries(tabs)) {
    button.setAttribute("aria-selected", String(tab === name));
    byId(`panel-${tab}`).hidden = tab !== name;
  }
  history.show(name === "history");
}
tabs.room.addEventListener("click", () => selectTab("room"));
tabs.history.addEventListener("click", () => selectTab("history"));
if (location.hash === "#history") selectTab("history");

// --- sync --------------------------------------------------------------------------------------------------------

const socketUrl = new URL(`/logs/${room}/ws`, location.href).href;
let sync: Sync | undefined;

function showState(state: string, detail: string): void {
  stateEl.value = state;
  stateEl.dataset.state = state;
  detailEl.textContent = detail;
}

function start(): void {
  const current = connect(log, socketUrl, { ...(token === undefined ? {} : { token }), maxDelay: 5_000, presence });
  sync = current;
  toggle.textContent = directMode ? "Stop relay" : "Go offline";
  current.addEventListener("statechange", (event) => {
    if (sync !== current) return;
    const { state, retryIn, error, stats } = (event as CustomEvent<SyncStateDetail>).detail;
    if (state === "offline") {
      const why = error === undefined ? "" : ` (${error.message})`;
      showState("offline", `retrying in ${Math.ceil((retryIn ?? 0) / 1000)} s${why}`);
    } else if (state === "live" && stats !== undefined) {
      showState("live", `resync: sent ${stats.nodesSent}, received ${stats.nodesReceived} nodes`);
    } else showState(state, "");
  });
}

toggle.addEventListener("click", () => {
  if (sync === undefined) return start();
  const closing = sync;
  sync = undefined;
  toggle.textContent = directMode ? "Use relay" : "Go online";
  showState(
    "offline",
    directMode
      ? "relay stopped: direct peers still sync; the relay catches up when you use it again"
      : "paused: writes stay here until you go online",
  );
  closing.close().catch(report);
});

// --- forms -------------------------------------------------------------------------------------------------------

byId<HTMLFormElement>("chat-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = messageInput.value.trim();
  const author = authorInput.value.trim() || "anonymous";
  if (text === "") return;
  messageInput.value = "";
  log.append({ type: "chat", text, author, time: Date.now() } satisfies ChatMessage).catch(report);
});

byId<HTMLFormElement>("kv-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = keyInput.value.trim();
  if (key === "") return;
  const value = valueInput.value;
  valueInput.value = "";
  kv.put(key, value).catch(report);
});

// Keeps a copy of the page, so that a reload works while the relay is unreachable (see sw.ts).
navigator.serviceWorker?.register("/sw.js").catch((err) => console.warn("No offline copy of the page:", err));

followLog().catch(report);
followTable().catch(report);
showCounts();
start();
document.documentElement.dataset.ready = "true";
