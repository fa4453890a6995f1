/**
 * The one explicit mapping from HF state-dict names to shapes, derived from the config. Loading checks the
 * checkpoint against it and fails loudly, listing every missing, unexpected and mis-shaped key at once.
 */
import { PerceiverError } from "../errors.js";
import type { StateDict } from "../io/checkpoint/state-dict.js";
import type { PerceiverConfig } from "./config-type.js";
import { CONV_KERNEL, CONV_OUT_CHANNELS } from "./preprocessor-conv.js";
import { LEARNED_IN_CHANNELS, LEARNED_OUT_CHANNELS, LEARNED_PROJECT_POS_DIM } from "./preprocessor-learned.js";
import { layerShapes, type AttentionShape, type ShapeConfig } from "./shapes.js";

export type ExpectedWeights = Map<string, readonly number[]>;

function addLayer(m: ExpectedWeights, prefix: string, s: AttentionShape, cross: boolean, widening: number): void {
  const a = `${prefix}.attention`;
  m.set(`${a}.self.layernorm1.weight`, [s.qDim]);
  m.set(`${a}.self.layernorm1.bias`, [s.qDim]);
  if (cross) {
    m.set(`${a}.self.layernorm2.weight`, [s.kvDim]);
    m.set(`${a}.self.layernorm2.bias`, [s.kvDim]);
  }
  m.set(`${a}.self.query.weight`, [s.qkChannels, s.qDim]);
  m.set(`${a}.self.query.bias`, [s.qkChannels]);
  m.set(`${a}.self.key.weight`, [s.qkChannels, s.kvDim]);
  m.set(`${a}.self.key.bias`, [s.qkChannels]);
  m.set(`${a}.self.value.weight`, [s.vChannels, s.kvDim]);
  m.set(`${a}.self.value.bias`, [s.vChannels]);
  m.set(`${a}.output.dense.weight`, [s.outChannels, s.vChannels]);
  m.set(`${a}.output.dense.bias`, [s.outChannels]);
  m.set(`${prefix}.layernorm.weight`, [s.qDim]);
  m.set(`${prefix}.layernorm.bias`, [s.qDim]);
  m.set(`${prefix}.mlp.dense1.weight`, [widening * s.qDim, s.qDim]);
  m.set(`${prefix}.mlp.dense1.bias`, [widening * s.qDim]);
  m.set(`${prefix}.mlp.dense2.weight`, [s.qDim, widening * s.qDim]);
  m.set(`${prefix}.mlp.dense2.bias`, [s.qDim]);
}

/** The input_preprocessor's keys of each architecture (HF PerceiverImagePreprocessor as its __init__ builds it). */
function addPreprocessor(m: ExpectedWeights, cfg: WeightConfig): void {
  const pre = "perceiver.input_preprocessor";
  switch (cfg.architecture) {
    case "PerceiverForImageClassificationConvProcessing": // prep_type "conv": Conv2DDownsample, Fourier positions
      m.set(`${pre}.convnet.conv.weight`, [CONV_OUT_CHANNELS, 3, CONV_KERNEL, CONV_KERNEL]);
      for (const p of ["weight", "bias", "running_mean", "running_var"]) m.set(`${pre}.convnet.batchnorm.${p}`, [CONV_OUT_CHANNELS]);
      m.set(`${pre}.convnet.batchnorm.num_batches_tracked`, []); // int64 scalar, unused at inference
      return;
    case "PerceiverForImageClassificationFourier": // prep_type "pixels", Fourier positions: no weights
      return;
    case "PerceiverForImageClassificationLearned": // prep_type "conv1x1", trainable positions, project_pos_dim 256
      m.set(`${pre}.convnet_1x1.weight`, [LEARNED_OUT_CHANNELS, LEARNED_IN_CHANNELS, 1, 1]);
      m.set(`${pre}.convnet_1x1.bias`, [LEARNED_OUT_CHANNELS]);
      m.set(`${pre}.position_embeddings.position_embeddings`, [cfg.imageSize * cfg.imageSize, LEARNED_OUT_CHANNELS]);
      m.set(`${pre}.positions_projection.weight`, [LEARNED_PROJECT_POS_DIM, LEARNED_OUT_CHANNELS]);
      m.set(`${pre}.positions_projection.bias`, [LEARNED_PROJECT_POS_DIM]);
      return;
  }
}

/** The fields of the config the weights depend on. */
export type WeightConfig = ShapeConfig & Pick<
  PerceiverConfig, "numLatents" | "numSelfAttendsPerBlock" | "selfAttentionWideningFactor" | "crossAttentionWideningFactor" | "imageSize" | "numLabels"
>;

/**
 * Every state-dict key of the image classifier (cfg.architecture picks the preprocessor) with its shape.
 * check = false skips the heads-divide-channels checks (weightCount of a config still being validated).
 */
export function expectedWeights(cfg: WeightConfig, check = true): ExpectedWeights {
  const m: ExpectedWeights = new Map();
  const s = layerShapes(cfg, check);
  addPreprocessor(m, cfg);
  m.set("perceiver.embeddings.latents", [cfg.numLatents, cfg.dLatents]);
  addLayer(m, "perceiver.encoder.cross_attention", s.encoderCross, true, cfg.crossAttentionWideningFactor);
  for (let i = 0; i < cfg.numSelfAttendsPerBlock; i++) {
    addLayer(m, `perceiver.encoder.self_attends.${i}`, s.encoderSelf, false, cfg.selfAttentionWideningFactor);
  }
  const dec = "perceiver.decoder.decoder";
  m.set(`${dec}.output_position_encodings.position_embeddings`, [1, cfg.dLatents]);
  addLayer(m, `${dec}.decoding_cross_attention`, s.decoderCross, true, 1);
  m.set(`${dec}.final_layer.weight`, [cfg.numLabels, cfg.dLatents]);
  m.set(`${dec}.final_layer.bias`, [cfg.numLabels]);
  return m;
}

/** Where the parameters of a config go, keyed by the config field that scales each part. */
export interface WeightCount {
  total: number;
  /** parameters per group: preprocessor (image_size for the learned model), latents (num_latents), the
   *  cross-attention, the self-attention layers (num_self_attends_per_block), the decoder, the classifier (num_labels) */
  parts: { field: string; params: number }[];
}

/** The config field that scales the weights under each key prefix (first match). */
const PARTS: [prefix: string, field: string][] = [
  ["perceiver.input_preprocessor.", "image_size"],
  ["perceiver.embeddings.", "num_latents"],
  ["perceiver.encoder.cross_attention.", "cross_attention_widening_factor"],
  ["perceiver.encoder.self_attends.", "num_self_attends_per_block"],
  ["perceiver.decoder.decoder.final_layer.", "num_labels"],
  ["perceiver.decoder.", "d_latents"],
];

/**
 * Number of parameters the checkpoint of `cfg` holds: the sum over expectedWeights, grouped by PARTS, in floating
 * point so that absurd configs give huge numbers instead of wrapping. (parsePerceiverConfig calls it before the
 * heads are checked against every layer, so it counts without those checks.)
 */
export function weightCount(cfg: WeightConfig): WeightCount {
  const parts = PARTS.map(([, field]) => ({ field, params: 0 }));
  for (const [name, shape] of expectedWeights(cfg, false)) {
    const i = PARTS.findIndex(([prefix]) => name.startsWith(prefix));
    parts[i].params += shape.reduce((a, b) => a * b, 1);
  }
  return { total: parts.reduce((t, p) => t + p.params, 0), parts };
}

const fmt = (shape: readonly number[]) => `[${shape.join(",")}]`;

function listing(title: string, items: string[]): string {
  const shown = items.slice(0, 20).map((s) => `  ${s}`);
  if (items.length > 20) shown.push(`  … and ${items.length - 20} more`);
  return `${title} (${items.length}):\n${shown.join("\n")}`;
}

/** Check a checkpoint against the expected keys; throws one PerceiverError listing every problem. */
export function checkWeights(sd: StateDict, expected: ExpectedWeights, source: string): void {
  const names = new Set(sd.names());
  const missing = [...expected.keys()].filter((k) => !names.has(k));
  const unexpected = [...names].filter((k) => !expected.has(k));
  const misShaped: string[] = [];
  for (const [k, shape] of expected) {
    if (!names.has(k)) continue;
    const got = sd.info(k).shape;
    const ok = got.length === shape.length && got.every((d, i) => d === shape[i]);
    if (!ok) misShaped.push(`${k}: checkpoint ${fmt(got)}, model expects ${fmt(shape)}`);
  }
  const badDtype: string[] = [];
  for (const k of expected.keys()) {
    if (!names.has(k) || k.endsWith("num_batches_tracked")) continue;
    const dt = sd.info(k).dtype;
    if (dt !== "F32" && dt !== "F16" && dt !== "BF16" && dt !== "F64") badDtype.push(`${k}: ${dt}`);
  }
  if (badDtype.length) {
    throw new PerceiverError("CHECKPOINT_DTYPE", `${source}: ${listing("weights with a non-floating dtype", badDtype)}`);
  }
  if (missing.length === 0 && unexpected.length === 0 && misShaped.length === 0) return;

  const parts: string[] = [];
  if (misShaped.length) parts.push(listing("mis-shaped keys", misShaped));
  if (missing.length) parts.push(listing("missing keys", missing));
  if (unexpected.length) parts.push(listing("unexpected keys", unexpected));
  let hint = "";
  if (missing.length && [...names].some((k) => !k.startsWith("perceiver.") && expected.has(`perceiver.${k}`))) {
    hint = "\nhint: the checkpoint's keys lack the 'perceiver.' prefix: is it a PerceiverModel rather than an image classifier?";
  }
  const code = misShaped.length ? "CHECKPOINT_SHAPE_MISMATCH" : missing.length ? "CHECKPOINT_MISSING_KEYS" : "CHECKPOINT_UNEXPECTED_KEYS";
  throw new PerceiverError(code, `${source} does not match the config:\n${parts.join("\n")}${hint}`);
}
