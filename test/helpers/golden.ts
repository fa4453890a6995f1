/** Golden-dump helpers: read fixtures and compare with stated tolerances, reporting the worst element. */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { readSafetensorsFile } from "../../src/io/checkpoint/safetensors-node.js";
import type { SafetensorsFile } from "../../src/io/checkpoint/safetensors.js";

export const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), "../fixtures");

export function fixture(...parts: string[]): string {
  return join(FIXTURES, ...parts);
}

export async function readGolden(...parts: string[]): Promise<SafetensorsFile> {
  return readSafetensorsFile(fixture(...parts));
}

export interface DiffStats {
  maxAbs: number;
  maxRel: number;
  worstIndex: number;
  /** max over elements of |a-b| / (atol + rtol·|b|): <= 1 means within tolerance */
  maxRatio: number;
}

export function diffStats(actual: ArrayLike<number>, expected: ArrayLike<number>, atol = 0, rtol = 0): DiffStats {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let maxAbs = 0, maxRel = 0, worstIndex = -1, maxRatio = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], b = expected[i];
    const d = Math.abs(a - b);
    if (!(d <= Infinity)) return { maxAbs: NaN, maxRel: NaN, worstIndex: i, maxRatio: Infinity }; // NaN
    if (d > maxAbs) maxAbs = d;
    const rel = d / Math.max(Math.abs(b), 1e-30);
    if (rel > maxRel) maxRel = rel;
    const ratio = atol + rtol > 0 ? d / (atol + rtol * Math.abs(b)) : d;
    if (ratio > maxRatio) { maxRatio = ratio; worstIndex = i; }
  }
  return { maxAbs, maxRel, worstIndex, maxRatio };
}

/** Assert |actual - expected| <= atol + rtol·|expected| elementwise, naming the layer and the worst element. */
export function expectClose(name: string, actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number): DiffStats {
  const s = diffStats(actual, expected, atol, rtol);
  const where = s.worstIndex >= 0 ? ` at index ${s.worstIndex}: got ${actual[s.worstIndex]}, expected ${expected[s.worstIndex]}` : "";
  expect(s.maxRatio, `${name}: max |diff| ${s.maxAbs.toExponential(3)} exceeds ${atol} + ${rtol}·|expected|${where}`).toBeLessThanOrEqual(1);
  return s;
}
