/**
 * The full-size vision-perceiver-conv checkpoint with deterministic synthetic weights, regenerated bit-exactly
 * from test/fixtures/full/weights_manifest.json (recipe in test/fixtures/GOLDEN_README.md) into
 * weights/full-synthetic/ (git-ignored). Reused when the stored manifest digest matches. Used by the golden and
 * end-to-end tests, the benchmarks, and `npm run try` (scripts/try-offline.ts). Its weights are not trained: its
 * ImageNet labels are meaningless.
 */
import { createHash } from "node:crypto";
import { copyFile, mkdir, readFile, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { readSafetensorsFile, writeSafetensorsFile } from "../src/io/checkpoint/safetensors-node.js";
import type { SafetensorsTensor } from "../src/io/checkpoint/safetensors.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const FULL_FIXTURES = join(ROOT, "test/fixtures/full");
export const FULL_MODEL_DIR = join(ROOT, "weights/full-synthetic");

interface ManifestTensor {
  name: string;
  shape: number[];
  dtype: string;
  seed?: number;
  a?: number;
  b?: number;
  kept?: number[];
}

/** The manifest's hash PRNG: fmix32 of (i·0x9E3779B9 + seed), mapped to [-1, 1), then fround(a + fround(b·v)). */
export function syntheticValues(seed: number, a: number, b: number, n: number): Float32Array {
  const out = new Float32Array(n);
  const fa = Math.fround(a);
  const fb = Math.fround(b);
  for (let i = 0; i < n; i++) {
    let x = (Math.imul(i, 0x9e3779b9) + seed) >>> 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x85ebca6b) >>> 0;
    x ^= x >>> 13;
    x = Math.imul(x, 0xc2b2ae35) >>> 0;
    x ^= x >>> 16;
    const u = (x >>> 8) * 2 ** -24;
    const v = 2 * u - 1;
    out[i] = fa + Math.fround(fb * v);
  }
  return out;
}

export async function generateFullCheckpoint(manifestText: string): Promise<Map<string, SafetensorsTensor>> {
  const manifest = JSON.parse(manifestText) as { tensors: ManifestTensor[] };
  const tensors = new Map<string, SafetensorsTensor>();
  for (const t of manifest.tensors) {
    const n = t.shape.reduce((p, d) => p * d, 1);
    if (t.kept) {
      tensors.set(t.name, { dtype: "I64", shape: t.shape, data: BigInt64Array.from(t.kept.map(BigInt)) });
    } else {
      if (t.dtype !== "float32" || t.seed === undefined || t.a === undefined || t.b === undefined) {
        throw new Error(`manifest entry ${t.name} is neither a seeded float32 tensor nor kept values`);
      }
      tensors.set(t.name, { dtype: "F32", shape: t.shape, data: syntheticValues(t.seed, t.a, t.b, n) });
    }
  }
  return tensors;
}

/** Make sure weights/full-synthetic/{config.json,model.safetensors} exist and match the manifest; returns the folder. */
export async function ensureFullCheckpoint(log: (msg: string) => void = () => {}): Promise<string> {
  const manifestText = await readFile(join(FULL_FIXTURES, "weights_manifest.json"), "utf8");
  const digest = createHash("sha256").update(manifestText).digest("hex");
  const weights = join(FULL_MODEL_DIR, "model.safetensors");
  await mkdir(FULL_MODEL_DIR, { recursive: true });
  await copyFile(join(FULL_FIXTURES, "config.json"), join(FULL_MODEL_DIR, "config.json"));
  try {
    await stat(weights);
    const st = await readSafetensorsFile(weights);
    if (st.metadata.manifest_sha256 === digest) return FULL_MODEL_DIR;
    log("weights/full-synthetic: manifest changed, regenerating");
  } catch {
    log("weights/full-synthetic: generating the 48.6M-parameter synthetic checkpoint from the manifest");
  }
  const t0 = performance.now();
  const tensors = await generateFullCheckpoint(manifestText);
  await writeSafetensorsFile(weights, tensors, { format: "pt", manifest_sha256: digest });
  log(`weights/full-synthetic: written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return FULL_MODEL_DIR;
}
