/**
 * The floating-point work of one forward pass, stage by stage, computed from the config: the one source of the
 * model's FLOP count (the bench divides by it, the docs print it, the diagram shows it).
 *
 * A FLOP here is one multiply or one add of a matrix product or convolution: a product [M,K]·[K,N] costs 2·M·N·K.
 * Element-wise work (layer norms, softmax, GELU, batch norm, ReLU, max-pool, the Fourier features, residual adds)
 * is left out: it is well under 1% of the total for the ImageNet models. Work that depends on the weights only
 * (the learned model's positions_projection, computed once and kept) is not per image and is left out too.
 */
import { conv2dOutputSize } from "../tensor/conv.js";
import type { PerceiverConfig } from "./config-type.js";
import { ConvPreprocessor, CONV_KERNEL, CONV_OUT_CHANNELS } from "./preprocessor-conv.js";
import { LEARNED_IN_CHANNELS, LEARNED_OUT_CHANNELS } from "./preprocessor-learned.js";
import { layerShapes, type AttentionShape } from "./shapes.js";

/** One matrix product (or a convolution written as one): out [m, n] = a [m, k] · b [k, n], `count` times. */
export interface FlopTerm {
  /** what it computes, e.g. "K = LN2(inputs)·Wkᵀ" */
  op: string;
  m: number;
  n: number;
  k: number;
  /** how many times the product runs per image (heads, shared-layer applications) */
  count: number;
  /** 2·m·n·k·count */
  flops: number;
}

export interface FlopStage {
  /** "preprocessor", "encoder cross-attention", "latent transformer", "decoder", "classifier" */
  stage: string;
  terms: FlopTerm[];
  flops: number;
}

export interface FlopBudget {
  stages: FlopStage[];
  /** FLOPs of one image */
  total: number;
  /** the encoder input tokens (the byte array's rows) and their channels (kv_dim) */
  tokens: number;
  kvDim: number;
}

const term = (op: string, m: number, n: number, k: number, count = 1): FlopTerm => ({ op, m, n, k, count, flops: 2 * m * n * k * count });

/**
 * One PerceiverLayer on tq query rows and tkv key/value rows (attention + MLP), per application.
 * Per head h: scores_h [tq, tkv] = Q_h [tq, qk/heads]·K_hᵀ, then P_h·V_h [tq, v/heads]; summed over the heads
 * this is the same work as one head of width qk (and v), so the terms below count all heads at once.
 */
function layerTerms(s: AttentionShape, tq: number, tkv: number, widening: number, count: number): FlopTerm[] {
  const h = s.numHeads;
  const perHead = (x: number) => x / h;
  return [
    term("Q = LN1(x)·Wqᵀ", tq, s.qkChannels, s.qDim, count),
    term("K = kv·Wkᵀ", tkv, s.qkChannels, s.kvDim, count),
    term("V = kv·Wvᵀ", tkv, s.vChannels, s.kvDim, count),
    term(`scores = Q_h·K_hᵀ (${h} head${h === 1 ? "" : "s"})`, tq, tkv, perHead(s.qkChannels), count * h),
    term("context = softmax(scores)·V_h", tq, perHead(s.vChannels), tkv, count * h),
    term("out = context·Woᵀ", tq, s.outChannels, s.vChannels, count),
    term("MLP dense1", tq, widening * s.qDim, s.qDim, count),
    term("MLP dense2", tq, s.qDim, widening * s.qDim, count),
  ];
}

function stage(name: string, terms: FlopTerm[]): FlopStage {
  return { stage: name, terms, flops: terms.reduce((a, t) => a + t.flops, 0) };
}

/** The token grid of the preprocessor for an h x w image (55x55 for the conv model at 224x224). */
function tokenGrid(cfg: PerceiverConfig, h: number, w: number): [number, number] {
  // gridSize reads no weights, so the prototype's serves without building a preprocessor
  return cfg.architecture === "PerceiverForImageClassificationConvProcessing" ? ConvPreprocessor.prototype.gridSize(h, w) : [h, w];
}

/** FLOPs of one image of height x width (default 224x224, what the image processor produces) through `cfg`. */
export function flopBudget(cfg: PerceiverConfig, height = 224, width = 224): FlopBudget {
  const s = layerShapes(cfg);
  const [gh, gw] = tokenGrid(cfg, height, width);
  const T = gh * gw;
  const N = cfg.numLatents;
  const D = cfg.dLatents;
  const stages: FlopStage[] = [];

  switch (cfg.architecture) {
    case "PerceiverForImageClassificationConvProcessing": {
      // conv 7x7/2 as a product: out [64, ch·cw] = W [64, 3·7·7] · patches [3·7·7, ch·cw]
      const pad = ConvPreprocessor.PAD;
      const ch = conv2dOutputSize(height, CONV_KERNEL, pad, Math.floor(CONV_KERNEL / 2), 2);
      const cw = conv2dOutputSize(width, CONV_KERNEL, pad, Math.floor(CONV_KERNEL / 2), 2);
      stages.push(stage("preprocessor", [term(`conv ${CONV_KERNEL}x${CONV_KERNEL}/2 (${ch}x${cw} outputs)`, CONV_OUT_CHANNELS, ch * cw, 3 * CONV_KERNEL * CONV_KERNEL)]));
      break;
    }
    case "PerceiverForImageClassificationLearned":
      stages.push(stage("preprocessor", [term("conv 1x1", T, LEARNED_OUT_CHANNELS, LEARNED_IN_CHANNELS)]));
      break;
    case "PerceiverForImageClassificationFourier":
      stages.push(stage("preprocessor", []));
      break;
  }
  stages.push(stage("encoder cross-attention", layerTerms(s.encoderCross, N, T, cfg.crossAttentionWideningFactor, 1)));
  const applications = cfg.numBlocks * cfg.numSelfAttendsPerBlock;
  stages.push(stage("latent transformer", layerTerms(s.encoderSelf, N, N, cfg.selfAttentionWideningFactor, applications)));
  stages.push(stage("decoder", layerTerms(s.decoderCross, 1, N, 1, 1)));
  stages.push(stage("classifier", [term("logits = z·Wᵀ", 1, cfg.numLabels, D)]));
  return { stages, total: stages.reduce((a, st) => a + st.flops, 0), tokens: T, kvDim: s.kvDim };
}
