/**
 * hyperlog: a Merkle-DAG log for peer-to-peer data replication that runs unchanged on Deno, Bun, Node,
 * Cloudflare Workers and browsers.
 *
 * @example Add two linked nodes and list the log
 * ```ts
 * import { Hyperlog } from "./mod.ts";
 * const log = new Hyperlog({ valueEncoding: "json" });
 * const a = await log.add(null, { hello: "world" });
 * await log.add([a.key], "second");
 * for await (const node of log.createReadStream()) console.log(node.change, node.key, node.value);
 * ```
 *
 * @module
 */
export { Hyperlog } from "./src/log.ts";
export type {
  BatchDoc,
  Hyperlog4Replicate,
  HyperlogOptions,
  RawNode,
  ReadStreamOptions,
  RejectDetail,
} from "./src/log.ts";
export type { Hyperlog4ReplicateOptions } from "./src/hyperlog4/replicate.ts";
export type { LogHandle } from "./src/log-handle.ts";
export type { Node, StoredNode } from "./src/node.ts";
export { computeKey, keyPreimage, withChange } from "./src/node.ts";
export { Identity, verifySignature } from "./src/identity.ts";
export { PROTOCOL_VERSION, replicate } from "./src/replicate.ts";
export type { ReplicateOptions, Replication, ReplicationMode, ReplicationStats } from "./src/replicate.ts";
export { replicateWebSocket, webSocketStream } from "./src/websocket.ts";
export { driveChannel, replicateChannel } from "./src/channel.ts";
export { Session } from "./src/session.ts";
export type { SessionOptions, SessionState } from "./src/session.ts";
export { EncodedPages, type EncodedRun, type SharedBytes } from "./src/encoded-pages.ts";
export type { Hello, Message, ReconEntry, WireNode } from "./src/wire.ts";
export { decodeMessage, encodeMessage, nodesInMessage } from "./src/wire.ts";
export type { Fingerprint, KeyIndex } from "./src/key-index.ts";
export { Driver } from "./src/driver.ts";
export type { DriverOptions, MessageTransport } from "./src/driver.ts";
export type { MessageChannelLike } from "./src/channel.ts";
export { connect, socketUrl, Sync } from "./src/connect.ts";
export type { ConnectOptions, SyncState, SyncStateDetail, WebSocketConstructor } from "./src/connect.ts";
export { attachPresence, Presence } from "./src/presence.ts";
export { utf8Length } from "./src/presence-wire.ts";
export type { PresenceErrorDetail, PresenceEvent, PresenceOptions, PresencePeer } from "./src/presence.ts";
export { DirectPeers, directPeers } from "./src/webrtc.ts";
export type { DirectOptions, IceServer, PeerConnectionConstructor, PeerEvent, PeerState } from "./src/webrtc.ts";
export type { WebSocketLike } from "./src/websocket.ts";
export { layoutDag } from "./src/layout-dag.ts";
export { previewValue } from "./src/graph-text.ts";
export { isKey } from "./src/keys.ts";
export type { DagEdge, DagLayout, DagNode, DagRow } from "./src/layout-dag.ts";
export { View } from "./src/view.ts";
export type { ViewBatchDetail, ViewOptions, ViewRangeOptions, ViewStore } from "./src/view.ts";
export { HyperKV } from "./src/kv.ts";
export type { HyperKVOptions, KVBatchOp, KVEntry, KVNodeValue, KVReadStreamOptions, KVWriteOptions } from "./src/kv.ts";
export { resolveEncoding } from "./src/encoding.ts";
export type { Codec, EncodingName, ValueEncoding } from "./src/encoding.ts";
export {
  ClosedError,
  EncodingError,
  HyperlogError,
  InvalidNodeError,
  MissingLinksError,
  NotFoundError,
  ProtocolError,
  SignatureError,
  StorageConflictError,
  StorageError,
  TimeoutError,
} from "./src/errors.ts";
export { MemoryStorage } from "./src/memory-storage.ts";
export { INDEXEDDB_SCHEMA_VERSION, IndexedDBStorage } from "./storage/indexeddb.ts";
export type { IndexedDBStorageOptions } from "./storage/indexeddb.ts";
export { SQLITE_SCHEMA_VERSION, SqliteStorage } from "./storage/sqlite.ts";
export type {
  SqliteDriver,
  SqliteFileOptions,
  SqliteRow,
  SqliteStorageOptions,
  SqliteSync,
  SqliteValue,
} from "./storage/sqlite.ts";
export type {
  MetaStore,
  NodeStore,
  ReadRange,
  Storage,
  ViewRange,
  ViewState,
  ViewStorage,
  ViewWrite,
} from "./src/storage.ts";
