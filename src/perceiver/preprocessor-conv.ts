/**
 * PerceiverImagePreprocessor with prep_type="conv" (HF `Conv2DDownsample` + Fourier position encoding):
 *   zero-pad 3 on every side, conv 7x7 stride 2 (no bias), BatchNorm (eval), ReLU, maxpool 3x3 stride 2 (unpadded)
 *   -> [B, 64, 55, 55] -> NHWC flatten -> [B, 3025, 64] ++ 258 Fourier features -> [B, 3025, 322].
 * Note: this padding is NOT TF-SAME and the pool is unpadded (DeepMind's JAX model differs: 56x56).
 */
import { PerceiverError } from "../errors.js";
import { relu } from "../tensor/activations.js";
import { batchNorm2d, conv2dGemm, conv2dOutputSize, maxPool2d } from "../tensor/conv.js";
import { packWeight, type PackedWeight } from "../tensor/gemm.js";
import { repeatItemColumns, transposeInto } from "../tensor/layout.js";
import { GrowingBuffer } from "../layers/buffers.js";
import { fourierChannels, fourierPositionEncodingInto } from "./position-encoding.js";
import type { Preprocessor, PreprocessorOutput } from "./preprocessor.js";

export interface ConvPreprocessorWeights {
  convWeight: Float32Array; // convnet.conv.weight [64, 3, 7, 7]
  bnWeight: Float32Array; // convnet.batchnorm.weight [64]
  bnBias: Float32Array; // convnet.batchnorm.bias [64]
  bnRunningMean: Float32Array; // convnet.batchnorm.running_mean [64]
  bnRunningVar: Float32Array; // convnet.batchnorm.running_var [64]
}

export const CONV_OUT_CHANNELS = 64;
export const CONV_KERNEL = 7;
export const FOURIER_NUM_BANDS = 64;
export const FOURIER_MAX_RESOLUTION = [56, 56] as const;
const BN_EPS = 1e-5;

/** 2 coords + 2·2·64 sin/cos = 258 */
const FOURIER_CHANNELS = fourierChannels(2, FOURIER_NUM_BANDS);
/** HF num_channels: 64 conv features + 258 Fourier = 322 (the cross-attention kv_dim) */
export const CONV_NUM_CHANNELS = CONV_OUT_CHANNELS + FOURIER_CHANNELS;

export class ConvPreprocessor implements Preprocessor {
  readonly inChannels = 3;
  readonly outChannels = CONV_OUT_CHANNELS;
  readonly numChannels = CONV_NUM_CHANNELS;
  /** the encoder inputs [B·T, 322], read (and layer-normed in place) by the cross-attention before the next forward */
  private readonly inputs = new GrowingBuffer();
  /** one image's pooled features [64, gh·gw] */
  private readonly pooled = new GrowingBuffer();
  /**
   * one image's conv output [64, ch·cw], only for images so small that it does not fit in the image's own rows of
   * the inputs (where it lives otherwise, until its tokens are written there)
   */
  private readonly convApart = new GrowingBuffer();
  /** convWeight [64, 3·7·7] packed once for conv2dGemm */
  private readonly convPacked: PackedWeight;

  constructor(readonly weights: ConvPreprocessorWeights) {
    this.convPacked = packWeight(weights.convWeight, CONV_OUT_CHANNELS, this.inChannels * CONV_KERNEL * CONV_KERNEL);
  }

  /** HF Conv2dSamePadding: ZeroPad2d(k//2 + (k - 2·(k//2)) - 1, k//2) per side = 3 on every side for k = 7. */
  static readonly PAD = Math.floor(CONV_KERNEL / 2) + (CONV_KERNEL - 2 * Math.floor(CONV_KERNEL / 2)) - 1;

  gridSize(h: number, w: number): [number, number] {
    const p = ConvPreprocessor.PAD;
    const ch = conv2dOutputSize(h, CONV_KERNEL, p, Math.floor(CONV_KERNEL / 2), 2);
    const cw = conv2dOutputSize(w, CONV_KERNEL, p, Math.floor(CONV_KERNEL / 2), 2);
    return [Math.floor((ch - 3) / 2) + 1, Math.floor((cw - 3) / 2) + 1];
  }

  /**
   * pixels [B, 3, H, W] -> encoder inputs [B·T, 322].
   * onConvnet, when given, receives each item's pooled conv features [64, gh, gw] (NCHW, before flattening).
   */
  forward(pixels: Float32Array, batch: number, h: number, w: number, onConvnet?: (b: number, feats: Float32Array) => void): PreprocessorOutput {
    if (h < CONV_KERNEL - 2 * ConvPreprocessor.PAD + 4 || w < CONV_KERNEL - 2 * ConvPreprocessor.PAD + 4) {
      throw new PerceiverError("INPUT_INVALID", `ConvPreprocessor: image ${h}x${w} is too small for conv 7x7/2 + maxpool 3x3/2`);
    }
    const wt = this.weights;
    const c = this.inChannels;
    const o = this.outChannels;
    const pad = ConvPreprocessor.PAD;
    const padAfter = Math.floor(CONV_KERNEL / 2);
    const ch = conv2dOutputSize(h, CONV_KERNEL, pad, padAfter, 2);
    const cw = conv2dOutputSize(w, CONV_KERNEL, pad, padAfter, 2);
    const [gh, gw] = this.gridSize(h, w);
    const tokens = gh * gw;
    const nc = this.numChannels;

    const itemFloats = tokens * nc;
    const convFloats = o * ch * cw;
    const inputs = this.inputs.take(batch * itemFloats);
    const pooled = this.pooled.take(o * tokens);
    const convApart = convFloats > itemFloats ? this.convApart.take(convFloats) : null;
    for (let b = 0; b < batch; b++) {
      const x = pixels.subarray(b * c * h * w, (b + 1) * c * h * w);
      const conv = convApart ?? inputs.subarray(b * itemFloats, b * itemFloats + convFloats);
      conv2dGemm(x, c, h, w, this.convPacked, CONV_KERNEL, CONV_KERNEL, null, { stride: 2, pad: [pad, padAfter, pad, padAfter] }, conv);
      batchNorm2d(conv, o, ch * cw, wt.bnRunningMean, wt.bnRunningVar, wt.bnWeight, wt.bnBias, BN_EPS, conv);
      relu(conv, conv, conv.length);
      maxPool2d(conv, o, ch, cw, 3, 2, pooled);
      onConvnet?.(b, pooled);
      // NCHW -> tokens [T, 64] (t = row·gw + col): the conv output in these rows is no longer needed
      const base = b * itemFloats;
      transposeInto(pooled, 0, o, tokens, inputs, base, nc);
    }
    // the position encoding after the 64 features of each token: item 0's computed, the others copied from it
    fourierPositionEncodingInto([gh, gw], FOURIER_NUM_BANDS, FOURIER_MAX_RESOLUTION, inputs, o, nc);
    repeatItemColumns(inputs, batch, tokens, nc, o);
    return { inputs, numTokens: tokens, numChannels: nc, gridHeight: gh, gridWidth: gw };
  }
}
