/**
 * Typed errors thrown by hyperlog. Every error has a stable `name` so that callers can branch on it
 * without `instanceof` (errors that crossed a realm or a wire keep their name).
 *
 * @module
 */

/**
 * The base class of every error hyperlog throws on purpose.
 *
 * @example Branch on an error's name
 * ```ts
 * import { HyperlogError, NotFoundError } from "./errors.ts";
 * const err: HyperlogError = new NotFoundError("ab".repeat(32));
 * console.assert(err.name === "NotFoundError");
 * ```
 */
export class HyperlogError extends Error {
  /** Creates an error with the given message. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HyperlogError";
  }
}

/**
 * A node that is not in the log was asked for.
 *
 * @example
 * ```ts
 * import { NotFoundError } from "./errors.ts";
 * const err = new NotFoundError("00".repeat(32));
 * console.assert(err.key === "00".repeat(32));
 * ```
 */
export class NotFoundError extends HyperlogError {
  /** The key that was not found. */
  readonly key: string;
  /** Creates the error for `key`. */
  constructor(key: string) {
    super(`Node ${key} was not found in the log`);
    this.name = "NotFoundError";
    this.key = key;
  }
}

/**
 * A node links to nodes the log does not hold; nothing was stored.
 *
 * @example
 * ```ts
 * import { MissingLinksError } from "./errors.ts";
 * const err = new MissingLinksError(["11".repeat(32)]);
 * console.assert(err.missing.length === 1);
 * ```
 */
export class MissingLinksError extends HyperlogError {
  /** The keys that are linked to but not present. */
  readonly missing: readonly string[];
  /** Creates the error for the missing keys. */
  constructor(missing: readonly string[]) {
    const shown = missing.slice(0, 3).join(", ") + (missing.length > 3 ? ` and ${missing.length - 3} more` : "");
    super(`Cannot add a node that links to a missing node: ${shown}; add the linked nodes first`);
    this.name = "MissingLinksError";
    this.missing = missing;
  }
}

/**
 * A node is malformed: its key does not match its content, or a field has the wrong shape.
 *
 * @example
 * ```ts
 * import { InvalidNodeError } from "./errors.ts";
 * console.assert(new InvalidNodeError("Bad").name === "InvalidNodeError");
 * ```
 */
export class InvalidNodeError extends HyperlogError {
  /** Creates the error with a message that says what was wrong. */
  constructor(message: string) {
    super(message);
    this.name = "InvalidNodeError";
  }
}

/**
 * A signature is missing where one is required, does not verify, or comes from a writer the log does not accept.
 *
 * @example
 * ```ts
 * import { SignatureError } from "./errors.ts";
 * console.assert(new SignatureError("Bad signature").name === "SignatureError");
 * ```
 */
export class SignatureError extends HyperlogError {
  /** Creates the error with a message that says what was wrong. */
  constructor(message: string) {
    super(message);
    this.name = "SignatureError";
  }
}

/**
 * A value cannot be encoded or decoded with the log's value encoding.
 *
 * @example
 * ```ts
 * import { EncodingError } from "./errors.ts";
 * console.assert(new EncodingError("Bad value").name === "EncodingError");
 * ```
 */
export class EncodingError extends HyperlogError {
  /** Creates the error with a message that says what was wrong. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "EncodingError";
  }
}

/**
 * The log (or its storage) was closed before or during the call.
 *
 * @example
 * ```ts
 * import { ClosedError } from "./errors.ts";
 * console.assert(new ClosedError().name === "ClosedError");
 * ```
 */
export class ClosedError extends HyperlogError {
  /** Creates the error. */
  constructor(message = "The log is closed; open a new Hyperlog to use it again") {
    super(message);
    this.name = "ClosedError";
  }
}

/**
 * A storage backend refused a write that would break its invariants (a duplicate key, a gap in change numbers,
 * a second writer on the same store). Nothing of the write was stored.
 *
 * @example
 * ```ts
 * import { StorageConflictError } from "./errors.ts";
 * console.assert(new StorageConflictError("Gap").name === "StorageConflictError");
 * ```
 */
export class StorageConflictError extends HyperlogError {
  /** Creates the error with a message that says what was wrong. */
  constructor(message: string) {
    super(message);
    this.name = "StorageConflictError";
  }
}

/**
 * A replication peer broke the protocol (a malformed or oversized frame, an unknown version, an incompatible
 * mode), or the connection ended before the session finished.
 *
 * @example
 * ```ts
 * import { ProtocolError } from "./errors.ts";
 * console.assert(new ProtocolError("Bad frame").name === "ProtocolError");
 * ```
 */
export class ProtocolError extends HyperlogError {
  /** Creates the error with a message that says what was wrong. */
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/**
 * A replication session waited longer than its idle deadline (`idleTimeout`) for something it needs from the peer
 * (its HELLO, a reply, its nodes, an acknowledgement) while nothing moved either way. The message names what it
 * waited for. It is a {@link ProtocolError}, so code that handles protocol failures handles it too.
 *
 * @example
 * ```ts
 * import { ProtocolError, TimeoutError } from "./errors.ts";
 * const err = new TimeoutError("Waited 30000 ms for the peer's HELLO and nothing arrived");
 * console.assert(err.name === "TimeoutError" && err instanceof ProtocolError);
 * ```
 */
export class TimeoutError extends ProtocolError {
  /** Creates the error with a message that names what the session waited for. */
  constructor(message: string) {
    super(message);
    this.name = "TimeoutError";
  }
}

/**
 * A storage backend cannot open or use its store: the path cannot be opened, the file is not a database, belongs
 * to another program, is corrupted, or was written by a newer version of hyperlog. The message names the file and
 * says what to do; `cause` holds the driver's own error, when there is one. Nothing was written to the file.
 *
 * @example
 * ```ts
 * import { StorageError } from "./errors.ts";
 * const err = new StorageError("/tmp/log.db is not a SQLite database; open a hyperlog database file instead");
 * console.assert(err.name === "StorageError");
 * ```
 */
export class StorageError extends HyperlogError {
  /** Creates the error with a message that names the file and says what was wrong. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StorageError";
  }
}
