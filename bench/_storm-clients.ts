/**
 * The storm benchmark's clients: a `Hyperlog` in memory synced with `connect()`, or a Y.Doc with y-websocket's
 * provider; both append the same entries. Shared by the benchmark (bench/storm.ts) and its joiner child process
 * (bench/_storm-joiner.ts).
 *
 * @module
 */
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { connect, Hyperlog, type Sync } from "../mod.ts";
import type { Kind } from "./_storm-servers.ts";

const ROOM = "storm";
const TIMEOUT = 600_000;

/** One entry as both stacks write it. */
export function entry(c: number, i: number): { c: number; i: number; text: string } {
  return { c, i, text: `entry ${i} from client ${c}: a short message` };
}

/** A client of either stack: how many entries it holds, how it appends, how it leaves. */
export interface Client {
  held(): number;
  append(c: number, i: number): Promise<void>;
  /** Resolves once the initial exchange is over. */
  ready(): Promise<void>;
  /** Leaves (and comes back with `rejoin`). */
  leave(): Promise<void>;
  rejoin(): void;
  close(): Promise<void>;
  /** The mean number of links per entry it holds (hyperlog only; Yjs sends no graph). */
  meanLinks(): Promise<number>;
}

function hyperlogClient(url: string): Client {
  const log = new Hyperlog();
  let sync: Sync = connect(log, `${url}/logs/${ROOM}/ws`, { minDelay: 50 });
  return {
    held: () => log.length,
    append: async (c, i) => void await log.append(entry(c, i)),
    ready: () => sync.when("live"),
    leave: () => sync.close(),
    rejoin: () => void (sync = connect(log, `${url}/logs/${ROOM}/ws`, { minDelay: 50 })),
    close: () => sync.close(),
    meanLinks: async () => {
      let links = 0;
      let since = 0;
      for (;;) {
        const page = await log.storage.read({ since, until: log.length, limit: 1000, reverse: false });
        if (page.length === 0) return links / log.length;
        for (const node of page) links += node.links.length;
        since = page[page.length - 1]!.change;
      }
    },
  };
}

function yjsClient(url: string): Client {
  const doc = new Y.Doc();
  const array = doc.getArray<unknown>("entries");
  // Not BroadcastChannel: the clients share this process, and everything must go through the server.
  const provider = new WebsocketProvider(url, ROOM, doc, { disableBc: true });
  const synced = () =>
    new Promise<void>((resolve) => {
      if (provider.synced) return resolve();
      const on = (state: boolean) => {
        if (!state) return;
        provider.off("sync", on);
        resolve();
      };
      provider.on("sync", on);
    });
  return {
    held: () => array.length,
    append: async (c, i) => {
      doc.transact(() => array.push([entry(c, i)]));
      await null;
    },
    ready: synced,
    leave: () => Promise.resolve(provider.disconnect()),
    rejoin: () => provider.connect(),
    close: () => {
      provider.destroy();
      doc.destroy();
      return Promise.resolve();
    },
    meanLinks: () => Promise.resolve(0),
  };
}

/** A client of `kind` on the server at `url`. */
export const client = (kind: Kind, url: string): Client => kind === "hyperlog" ? hyperlogClient(url) : yjsClient(url);

/** Resolves once `condition` holds (checked every 5 ms), or fails after 10 minutes. */
export async function until(condition: () => boolean, what: string): Promise<void> {
  const end = Date.now() + TIMEOUT;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
