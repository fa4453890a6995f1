/**
 * The shapes a config implies, each computed here and only here: the encoder's kv dim (the preprocessor's
 * channels per token) and the channel widths of the three kinds of PerceiverLayer, following HF
 * PerceiverAttention's rules. weights.ts names every weight from these, memory.ts sizes the activations from them.
 */
import { PerceiverError } from "../errors.js";
import type { ImageClassificationArchitecture, PerceiverConfig } from "./config-type.js";
import { CONV_NUM_CHANNELS } from "./preprocessor-conv.js";
import { LEARNED_NUM_CHANNELS } from "./preprocessor-learned.js";
import { PIXELS_NUM_CHANNELS } from "./preprocessor-pixels.js";

/** HF input_preprocessor.num_channels: the encoder cross-attention's kv_dim (config.d_model is not used). */
function preprocessorNumChannels(architecture: ImageClassificationArchitecture): number {
  switch (architecture) {
    case "PerceiverForImageClassificationConvProcessing": return CONV_NUM_CHANNELS; // 64 conv + 258 Fourier = 322
    case "PerceiverForImageClassificationFourier": return PIXELS_NUM_CHANNELS; // 3 pixels + 258 Fourier = 261
    case "PerceiverForImageClassificationLearned": return LEARNED_NUM_CHANNELS; // 256 conv1x1 + 256 positions = 512
  }
}

/** Channel widths of one attention block. */
export interface AttentionShape {
  /** channels of the queries' input (the latents) and of the keys' and values' input */
  qDim: number;
  kvDim: number;
  /** channels of Q and K, of V (all heads together), of the output projection */
  qkChannels: number;
  vChannels: number;
  outChannels: number;
  numHeads: number;
}

export interface AttentionShapeOptions {
  cross: boolean;
  qDim: number;
  kvDim: number;
  numHeads: number;
  qkChannels: number | null;
  vChannels: number | null;
  /** check that the heads divide the channels (default true; false only to count weights of a config) */
  check?: boolean;
}

/** HF PerceiverAttention.__init__: the 'kv'/'q' rule for cross-attention, q_dim defaults for self-attention. */
function attentionShape(
  cfg: Pick<PerceiverConfig, "crossAttentionShapeForAttention">, opts: AttentionShapeOptions, where: string,
): AttentionShape {
  let qk = opts.qkChannels;
  let v = opts.vChannels;
  if (opts.cross && qk === null) qk = cfg.crossAttentionShapeForAttention === "q" ? opts.qDim : opts.kvDim;
  qk ??= opts.qDim;
  v ??= qk;
  if (opts.check !== false) {
    // (the decoder's cross-attention has one head; the encoder's take theirs from these fields)
    const heads = `num_heads (${opts.numHeads}, config field "${opts.cross ? "num_cross_attention_heads" : "num_self_attention_heads"}")`;
    if (qk % opts.numHeads !== 0) throw new PerceiverError("CONFIG_INVALID", `${where}: qk_channels (${qk}) must be divisible by ${heads}`);
    if (v % opts.numHeads !== 0) throw new PerceiverError("CONFIG_INVALID", `${where}: v_channels (${v}) must be divisible by ${heads}`);
  }
  const outChannels = opts.cross ? opts.qDim : v;
  return { qDim: opts.qDim, kvDim: opts.kvDim, qkChannels: qk, vChannels: v, outChannels, numHeads: opts.numHeads };
}

/** The attention shapes of the three kinds of PerceiverLayer in the image classifier. */
export interface LayerShapes {
  encoderCross: AttentionShape;
  encoderSelf: AttentionShape;
  decoderCross: AttentionShape;
  kvDim: number;
}

/** The fields of the config the layer shapes depend on. */
export type ShapeConfig = Pick<
  PerceiverConfig,
  | "architecture" | "dLatents" | "numSelfAttentionHeads" | "numCrossAttentionHeads" | "qkChannels" | "vChannels"
  | "crossAttentionShapeForAttention"
>;

export function layerShapes(cfg: ShapeConfig, check = true): LayerShapes {
  const kvDim = preprocessorNumChannels(cfg.architecture);
  const d = cfg.dLatents;
  const { qkChannels, vChannels } = cfg;
  return {
    kvDim,
    // PerceiverEncoder.cross_attention
    encoderCross: attentionShape(cfg, { cross: true, qDim: d, kvDim, numHeads: cfg.numCrossAttentionHeads, qkChannels, vChannels, check }, "encoder.cross_attention"),
    // PerceiverEncoder.self_attends.i
    encoderSelf: attentionShape(cfg, { cross: false, qDim: d, kvDim: d, numHeads: cfg.numSelfAttentionHeads, qkChannels, vChannels, check }, "encoder.self_attends"),
    // PerceiverClassificationDecoder -> PerceiverBasicDecoder(num_channels=d_latents, num_heads=1, qk/v=None)
    decoderCross: attentionShape(cfg, { cross: true, qDim: d, kvDim: d, numHeads: 1, qkChannels: null, vChannels: null, check }, "decoder.decoding_cross_attention"),
  };
}
