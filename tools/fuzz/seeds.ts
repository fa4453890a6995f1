/**
 * Small valid inputs for the fuzzer and the bad-input corpus: a micro Perceiver (Fourier preprocessor, so no conv
 * weights; d_latents 4) whose whole checkpoint is ~11 KB, and a 2-tensor safetensors file cut from a real one.
 */
import { setFloat16 } from "@petamoriken/float16";
import { writeSafetensors, type SafetensorsTensor } from "../../src/io/checkpoint/safetensors.js";
import type { StateDict } from "../../src/io/checkpoint/state-dict.js";
import { parsePerceiverConfig, type PerceiverConfig } from "../../src/perceiver/config.js";
import { expectedWeights } from "../../src/perceiver/weights.js";
import { Prng } from "./prng.js";

/** config.json of the micro model. */
export const MICRO_CONFIG_JSON = {
  architectures: ["PerceiverForImageClassificationFourier"],
  model_type: "perceiver",
  num_latents: 2,
  d_latents: 4,
  d_model: 261,
  num_blocks: 1,
  num_self_attends_per_block: 1,
  num_self_attention_heads: 1,
  num_cross_attention_heads: 1,
  qk_channels: 4,
  v_channels: null,
  cross_attention_shape_for_attention: "kv",
  self_attention_widening_factor: 1,
  cross_attention_widening_factor: 1,
  hidden_act: "gelu",
  use_query_residual: true,
  image_size: 8,
  id2label: { "0": "cat", "1": "dog" },
} as const;

export function microConfig(): PerceiverConfig {
  return parsePerceiverConfig(MICRO_CONFIG_JSON, "micro/config.json");
}

/** Every weight of the micro model: layer norm weights near 1, everything else small, from a fixed seed. */
export function microWeights(seed = 1): Map<string, SafetensorsTensor> {
  const rng = new Prng(seed);
  const out = new Map<string, SafetensorsTensor>();
  for (const [name, shape] of expectedWeights(microConfig())) {
    const n = shape.reduce((p, d) => p * d, 1);
    const data = new Float32Array(n);
    const isNormWeight = /layernorm\d?\.weight$/.test(name);
    for (let i = 0; i < n; i++) data[i] = isNormWeight ? 1 + 0.1 * (rng.float() - 0.5) : 0.2 * (rng.float() - 0.5);
    out.set(name, { dtype: "F32", shape, data });
  }
  return out;
}

/** The micro checkpoint as safetensors bytes (F32, or F16 with metadata). */
export function microSafetensors(dtype: "F32" | "F16" = "F32"): Uint8Array {
  const w = microWeights();
  if (dtype === "F32") return writeSafetensors(w);
  const half = new Map<string, SafetensorsTensor>();
  for (const [k, t] of w) {
    const f = t.data as Float32Array;
    const h = new Uint16Array(f.length);
    const dv = new DataView(h.buffer);
    for (let i = 0; i < f.length; i++) setFloat16(dv, 2 * i, f[i], true);
    half.set(k, { dtype: "F16", shape: t.shape, data: h });
  }
  return writeSafetensors(half, { format: "pt" });
}

/** Two tensors (one F32 vector, one I64 scalar) copied out of a real checkpoint: a ~300-byte valid file. */
export function twoTensorSafetensors(sd: StateDict): Uint8Array {
  const vec = "perceiver.input_preprocessor.convnet.batchnorm.weight";
  const scalar = "perceiver.input_preprocessor.convnet.batchnorm.num_batches_tracked";
  const v = sd.getFloat32(vec).slice(0, 8);
  return writeSafetensors({
    [vec]: { dtype: "F32", shape: [8], data: v },
    [scalar]: { dtype: "I64", shape: [], data: new BigInt64Array([BigInt(Math.round(sd.getFloat32(scalar)[0]))]) },
  });
}
