/**
 * The trainable parameters of HF's PerceiverClassificationDecoder, named as in the state dict, and their
 * initialization (HF PerceiverPreTrainedModel._init_weights: Linear weights ~ N(0, initializer_range), biases 0,
 * LayerNorm weight 1 / bias 0, the trainable query ~ N(0, initializer_range)).
 */
import type { PerceiverConfig } from "../config.js";
import { layerShapes } from "../shapes.js";
import { Rng } from "./rng.js";

/** The state-dict prefix of every decoder parameter. */
export const DECODER_PREFIX = "perceiver.decoder.decoder.";

/** Sizes of a classification decoder (the HF one: numHeads 1, qkChannels = vChannels = dLatents, widening 1). */
export interface DecoderShape {
  numLatents: number; // N, latents attended to
  dLatents: number; // D, the query's and each latent's width
  qkChannels: number; // C, query/key width over all heads
  vChannels: number; // Cv, value width over all heads
  numHeads: number; // H
  numLabels: number; // L
  widening: number; // MLP hidden width = widening·D
}

/** The decoder of an image classifier with this config and `numLabels` classes. */
export function decoderShape(cfg: PerceiverConfig, numLabels: number): DecoderShape {
  const s = layerShapes(cfg).decoderCross;
  return {
    numLatents: cfg.numLatents, dLatents: cfg.dLatents, qkChannels: s.qkChannels, vChannels: s.vChannels,
    numHeads: s.numHeads, numLabels, widening: 1,
  };
}

/** Parameter names (without DECODER_PREFIX) in a fixed order: the order of init draws and of the optimizer. */
export const DECODER_PARAM_NAMES = [
  "output_position_encodings.position_embeddings",
  "decoding_cross_attention.attention.self.layernorm1.weight",
  "decoding_cross_attention.attention.self.layernorm1.bias",
  "decoding_cross_attention.attention.self.layernorm2.weight",
  "decoding_cross_attention.attention.self.layernorm2.bias",
  "decoding_cross_attention.attention.self.query.weight",
  "decoding_cross_attention.attention.self.query.bias",
  "decoding_cross_attention.attention.self.key.weight",
  "decoding_cross_attention.attention.self.key.bias",
  "decoding_cross_attention.attention.self.value.weight",
  "decoding_cross_attention.attention.self.value.bias",
  "decoding_cross_attention.attention.output.dense.weight",
  "decoding_cross_attention.attention.output.dense.bias",
  "decoding_cross_attention.layernorm.weight",
  "decoding_cross_attention.layernorm.bias",
  "decoding_cross_attention.mlp.dense1.weight",
  "decoding_cross_attention.mlp.dense1.bias",
  "decoding_cross_attention.mlp.dense2.weight",
  "decoding_cross_attention.mlp.dense2.bias",
  "final_layer.weight",
  "final_layer.bias",
] as const;

export type DecoderParamName = (typeof DECODER_PARAM_NAMES)[number];

/** One Float32Array per parameter (also used for gradients and optimizer moments: same names and sizes). */
export type DecoderParams = Record<DecoderParamName, Float32Array>;

/** Each parameter's shape, as in the HF state dict. */
export function decoderParamShapes(s: DecoderShape): Record<DecoderParamName, number[]> {
  const D = s.dLatents, C = s.qkChannels, Cv = s.vChannels, F = s.widening * D, L = s.numLabels;
  const a = "decoding_cross_attention.attention";
  return {
    "output_position_encodings.position_embeddings": [1, D],
    [`${a}.self.layernorm1.weight`]: [D],
    [`${a}.self.layernorm1.bias`]: [D],
    [`${a}.self.layernorm2.weight`]: [D],
    [`${a}.self.layernorm2.bias`]: [D],
    [`${a}.self.query.weight`]: [C, D],
    [`${a}.self.query.bias`]: [C],
    [`${a}.self.key.weight`]: [C, D],
    [`${a}.self.key.bias`]: [C],
    [`${a}.self.value.weight`]: [Cv, D],
    [`${a}.self.value.bias`]: [Cv],
    [`${a}.output.dense.weight`]: [D, Cv],
    [`${a}.output.dense.bias`]: [D],
    "decoding_cross_attention.layernorm.weight": [D],
    "decoding_cross_attention.layernorm.bias": [D],
    "decoding_cross_attention.mlp.dense1.weight": [F, D],
    "decoding_cross_attention.mlp.dense1.bias": [F],
    "decoding_cross_attention.mlp.dense2.weight": [D, F],
    "decoding_cross_attention.mlp.dense2.bias": [D],
    "final_layer.weight": [L, D],
    "final_layer.bias": [L],
  } as Record<DecoderParamName, number[]>;
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Zero-filled arrays of every parameter's size (gradients, Adam moments). */
export function zerosLike(s: DecoderShape): DecoderParams {
  const shapes = decoderParamShapes(s);
  const out = {} as DecoderParams;
  for (const n of DECODER_PARAM_NAMES) out[n] = new Float32Array(numel(shapes[n]));
  return out;
}

/** Parameters that get weight decay: the Linear weight matrices (not biases, LayerNorms or the query). */
export function isDecayed(name: DecoderParamName): boolean {
  return name.endsWith(".weight") && !name.includes("layernorm");
}

/**
 * HF _init_weights, seeded: in DECODER_PARAM_NAMES order, each Linear weight and the query draw N(0, std²)
 * element by element (row-major); biases are 0, LayerNorm weights 1 and biases 0. std = config.initializer_range
 * (HF default 0.02).
 */
export function initDecoderParams(s: DecoderShape, seed: number, std = 0.02): DecoderParams {
  const rng = new Rng(seed);
  const p = zerosLike(s);
  for (const n of DECODER_PARAM_NAMES) {
    const t = p[n];
    if (n.includes("layernorm")) {
      if (n.endsWith(".weight")) t.fill(1);
    } else if (n.endsWith(".weight") || n === "output_position_encodings.position_embeddings") {
      for (let i = 0; i < t.length; i++) t[i] = std * rng.normal();
    }
  }
  return p;
}
