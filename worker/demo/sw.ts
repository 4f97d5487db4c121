/**
 * The demo page's service worker (bundled into `/sw.js` by `scripts/build-demo.ts`): it keeps a copy of the page
 * (`/`) and its script (`/demo.js`) so that a reload works while the relay is unreachable; the data comes from
 * IndexedDB. Network first: when the relay answers, its response is shown and the copy refreshed, so a deploy
 * reaches the page at the next load. Nothing else is touched (`/logs/...` goes to the network as usual).
 *
 * @module
 */

/** The parts of the service worker scope used here (lib.dom does not declare them). */
interface ExtendableEvent extends Event {
  waitUntil(promise: Promise<unknown>): void;
}
interface FetchEvent extends ExtendableEvent {
  readonly request: Request;
  respondWith(response: Promise<Response>): void;
}
interface ServiceWorkerScope {
  addEventListener(type: "install" | "activate", listener: (event: ExtendableEvent) => void): void;
  addEventListener(type: "fetch", listener: (event: FetchEvent) => void): void;
  skipWaiting(): Promise<void>;
  readonly clients: { claim(): Promise<void> };
  readonly location: Location;
}

const scope = globalThis as unknown as ServiceWorkerScope;
const CACHE = "hyperlog-demo-v1";
const SHELL = ["/", "/demo.js"];

scope.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => scope.skipWaiting()));
});

scope.addEventListener("activate", (event) => {
  event.waitUntil(scope.clients.claim());
});

scope.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== scope.location.origin || !SHELL.includes(url.pathname)) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const response = await fetch(event.request);
      if (response.ok) await cache.put(url.pathname, response.clone());
      return response;
    } catch (err) {
      // `/?room=NAME` is the same page as `/`: the copy is kept by path.
      const copy = await cache.match(url.pathname);
      if (copy !== undefined) return copy;
      throw err;
    }
  })());
});
