/**
 * Who may write to a log: its signature rules (`requireSignatures`, `writers`), the signing of local nodes, and the
 * checks of nodes made elsewhere before they are stored.
 *
 * @module
 */
import { SignatureError } from "./errors.ts";
import { fromHex, isKey, toHex } from "./hex.ts";
import { type Identity, verifySignature } from "./identity.ts";
import { checkRaw, checkWire, type Draft } from "./log-checks.ts";
import type { RawNode } from "./node.ts";

/** A log's signature rules, from its options; throws a `TypeError` for a writer that is not a public key. */
export class SignatureRules {
  /** Whether every node must be signed. */
  readonly required: boolean;
  /** The public keys (hex) allowed to sign nodes, when the log lists them. */
  readonly writers: ReadonlySet<string> | undefined;

  constructor(options: { requireSignatures?: boolean; writers?: Iterable<string> }) {
    if (options.writers !== undefined) {
      const writers = new Set<string>();
      for (const writer of options.writers) {
        if (!isKey(writer)) {
          throw new TypeError(
            `Writer ${JSON.stringify(writer)} is not a public key: expected 64 lower-case hex characters`,
          );
        }
        writers.add(writer);
      }
      this.writers = writers;
    }
    this.required = options.requireSignatures === true || this.writers !== undefined;
  }

  /** Checks a draft's signature against the rules. */
  async check(draft: Draft): Promise<void> {
    const { identity, signature } = draft;
    if (identity === undefined || signature === undefined) {
      if (this.required) {
        throw new SignatureError(`Node ${draft.key} is not signed, and this log requires signatures`);
      }
      return;
    }
    if (typeof signature !== "string" || !/^[0-9a-f]{128}$/.test(signature)) {
      throw new SignatureError(`Node ${draft.key} has a signature that is not 128 lower-case hex characters`);
    }
    if (!(await verifySignature(identity, fromHex(draft.key), signature))) {
      throw new SignatureError(`Node ${draft.key} has a signature that does not verify for identity ${identity}`);
    }
    if (this.writers !== undefined && !this.writers.has(identity)) {
      throw new SignatureError(`Node ${draft.key} is signed by ${identity}, which is not a listed writer of this log`);
    }
  }

  /** Throws a `SignatureError` if a log with this identity may not add nodes under these rules. */
  checkWriter(identity: Identity | undefined): void {
    if (!this.required) return;
    if (identity === undefined) {
      throw new SignatureError("This log requires signed nodes; open it with an identity to add nodes");
    }
    if (this.writers !== undefined && !this.writers.has(identity.publicKey)) {
      throw new SignatureError(
        `This log accepts only listed writers, and ${identity.publicKey} is not one of them`,
      );
    }
  }

  /**
   * Checks nodes made elsewhere, in order: their shape and key (a node of the wire decoder, `fromWire`, needs no
   * shape check), then their signatures. Returns the drafts before the first bad node, and that node's error.
   */
  async checkNodes(
    nodes: readonly RawNode[],
    fromWire: boolean,
  ): Promise<{ drafts: Draft[]; failure: { error: Error; key?: string } | undefined }> {
    const drafts: Draft[] = [];
    let failure: { error: Error; key?: string } | undefined;
    for (const raw of nodes) {
      try {
        drafts.push(fromWire ? checkWire(raw) : checkRaw(raw));
      } catch (error) {
        failure = { error: error as Error };
        if (typeof raw?.key === "string") failure.key = raw.key;
        break;
      }
    }
    if (this.required || drafts.some((draft) => draft.identity !== undefined)) {
      const checks = await Promise.allSettled(drafts.map((draft) => this.check(draft)));
      const bad = checks.findIndex((check) => check.status === "rejected");
      if (bad >= 0) {
        failure = { error: (checks[bad] as PromiseRejectedResult).reason as Error, key: drafts[bad]!.key };
        drafts.length = bad;
      }
    }
    return { drafts, failure };
  }
}

/** Signs local drafts with the log's identity (none: nothing to do). */
export async function signDrafts(drafts: Draft[], identity: Identity | undefined): Promise<void> {
  if (identity === undefined) return;
  await Promise.all(drafts.map(async (draft) => {
    draft.signature = toHex(await identity.sign(fromHex(draft.key)));
  }));
}
