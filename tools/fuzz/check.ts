/**
 * The fuzz property: on any input a target returns a result or throws a PerceiverError. Anything else (a raw
 * TypeError / RangeError / SyntaxError, a broken invariant such as a result of the wrong size, a case over the
 * time limit, or one that makes the process's memory jump) is a failure.
 */
import { PerceiverError } from "../../src/errors.js";

export type FailureKind = "crash" | "invariant" | "timeout" | "memory";

export interface CaseOutcome {
  status: "ok" | "rejected" | "failure";
  /** PerceiverError code when rejected */
  code?: string;
  kind?: FailureKind;
  message?: string;
  ms: number;
}

/** A result that is wrong although no error was thrown (thrown by targets' own checks). */
export class InvariantError extends Error {
  override readonly name = "InvariantError";
}

export function invariant(cond: unknown, message: string): asserts cond {
  if (!cond) throw new InvariantError(message);
}

/** "TypeError: x is undefined (at foo (file.ts:12:3))": the message and the innermost frame. */
export function describeError(e: unknown): string {
  if (!(e instanceof Error)) return `non-Error thrown: ${String(e)}`;
  const frame = e.stack?.split("\n").find((l) => /^\s+at /.test(l))?.trim();
  return `${e.name}: ${e.message.slice(0, 500)}${frame ? ` (${frame})` : ""}`;
}

/** Runs one input through a target in this thread and classifies what happened. */
export function runCase(run: (input: Uint8Array) => void, input: Uint8Array): CaseOutcome {
  const t0 = performance.now();
  try {
    run(input);
    return { status: "ok", ms: performance.now() - t0 };
  } catch (e) {
    const ms = performance.now() - t0;
    if (e instanceof PerceiverError) return { status: "rejected", code: e.code, ms };
    const kind: FailureKind = e instanceof InvariantError ? "invariant" : "crash";
    return { status: "failure", kind, message: describeError(e), ms };
  }
}
