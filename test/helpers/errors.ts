import { expect } from "vitest";
import { PerceiverError } from "../../src/errors.js";

/** Awaits `p`, which must reject with a PerceiverError, and returns that error (for the test to check its code). */
export async function perceiverErrorOf(p: Promise<unknown>): Promise<PerceiverError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(PerceiverError);
    return e as PerceiverError;
  }
  throw new Error("expected a PerceiverError, got success");
}
