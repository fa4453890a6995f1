/**
 * PerceiverImagePreprocessor with prep_type="pixels" (deepmind/vision-perceiver-fourier): every pixel is a token.
 *   [B, 3, H, W] -> NHWC flatten -> [B, H·W, 3] ++ 258 Fourier features -> [B, H·W, 261]
 * (50176 tokens for a 224x224 image). No weights: the raw normalized RGB values are the features.
 *
 * HF PerceiverForImageClassificationFourier passes prep_type="pixels", spatial_downsample=1 and Fourier kwargs
 * {concat_pos: True, max_resolution: (224, 224), num_bands: 64, sine_only: False}; position_encoding_type and
 * concat_or_add_pos keep their defaults ("fourier", "concat") and project_pos_dim is -1 (no projection).
 * With spatial_downsample=1 HF's `inputs[::1, ::1]` is the identity (note: for 4-D inputs that slice would act on
 * the batch and channel axes, not H and W; it only matters for a downsample factor above 1, which no checkpoint uses).
 */
import { PerceiverError } from "../errors.js";
import { repeatItemColumns, transposeInto } from "../tensor/layout.js";
import { fourierChannels, fourierPositionEncodingInto } from "./position-encoding.js";
import type { Preprocessor, PreprocessorOutput } from "./preprocessor.js";

const PIXELS_IN_CHANNELS = 3;
const PIXELS_FOURIER_NUM_BANDS = 64;
const PIXELS_FOURIER_MAX_RESOLUTION = [224, 224] as const;
/** 2 coords + 2·2·64 sin/cos = 258 (PerceiverFourierPositionEncoding.output_size()) */
const PIXELS_FOURIER_CHANNELS = fourierChannels(2, PIXELS_FOURIER_NUM_BANDS);
/** HF num_channels: ceil(in_channels / spatial_downsample) + 258 = 261 (the cross-attention kv_dim) */
export const PIXELS_NUM_CHANNELS = PIXELS_IN_CHANNELS + PIXELS_FOURIER_CHANNELS;
/**
 * Most pixels per image (1024x1024, 21x the 224x224 the model was trained on): every pixel is a 261-channel token,
 * and the encoder keeps about four such [H·W, 261] arrays per image (inputs, LN2(inputs), K, V: 4.4 GB here).
 */
const PIXELS_MAX_TOKENS = 1 << 20;

export class PixelsPreprocessor implements Preprocessor {
  readonly outChannels = PIXELS_IN_CHANNELS;
  readonly numChannels = PIXELS_NUM_CHANNELS;

  // pixels [B, 3, H, W] -> inputs [B·H·W, 261]: row t = y·W + x holds (r, g, b, position encoding of (y, x))
  /** Every pixel is a token: the grid is the image. */
  gridSize(h: number, w: number): [number, number] {
    return [h, w];
  }

  forward(pixels: Float32Array, batch: number, h: number, w: number): PreprocessorOutput {
    const c = PIXELS_IN_CHANNELS;
    if (pixels.length !== batch * c * h * w) {
      throw new PerceiverError("SHAPE_MISMATCH", `PixelsPreprocessor: pixels hold ${pixels.length} values, expected [${batch},${c},${h},${w}]`);
    }
    const tokens = h * w;
    if (tokens > PIXELS_MAX_TOKENS) {
      throw new PerceiverError("INPUT_INVALID", `PixelsPreprocessor: a ${h}x${w} image is ${tokens} pixel tokens, over the limit of ${PIXELS_MAX_TOKENS} (the model expects 224x224)`);
    }
    const nc = this.numChannels;
    const inputs = new Float32Array(batch * tokens * nc); // [B·H·W, 261]
    // the position encoding after the 3 colors of each token: item 0's computed, the others copied from it
    fourierPositionEncodingInto([h, w], PIXELS_FOURIER_NUM_BANDS, PIXELS_FOURIER_MAX_RESOLUTION, inputs, c, nc);
    repeatItemColumns(inputs, batch, tokens, nc, c);
    for (let b = 0; b < batch; b++) transposeInto(pixels, b * c * tokens, c, tokens, inputs, b * tokens * nc, nc); // NCHW -> NHWC
    return { inputs, numTokens: tokens, numChannels: nc, gridHeight: h, gridWidth: w };
  }
}
