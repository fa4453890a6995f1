/**
 * PerceiverImagePreprocessor with prep_type="conv1x1" and a trainable position encoding
 * (deepmind/vision-perceiver-learned):
 *   conv 1x1 (3 -> 256, bias, stride 1) = a Linear applied to every pixel -> NHWC flatten -> [B, H·W, 256]
 *   ++ positions_projection(position_embeddings) [image_size², 256] -> [B, H·W, 512]
 *
 * HF PerceiverForImageClassificationLearned passes prep_type="conv1x1", spatial_downsample=1, out_channels=256,
 * position_encoding_type="trainable", concat_or_add_pos="concat", project_pos_dim=256 and
 * trainable_position_encoding_kwargs {num_channels: 256, index_dims: image_size**2}: one flat table of
 * image_size² learned vectors, then nn.Linear(256, 256) on it (build_position_encoding's positions_projection).
 *
 * Input size: HF only resizes the table when forward is called with interpolate_pos_encoding=True (bicubic; off by
 * default, and the image processor always produces image_size x image_size). Without it, torch.cat needs
 * H·W = image_size² and the table is used in its flat order. perceiver-ts does the same and refuses other sizes.
 */
import { PerceiverError } from "../errors.js";
import { Linear } from "../layers/linear.js";
import type { Preprocessor, PreprocessorOutput } from "./preprocessor.js";

export const LEARNED_IN_CHANNELS = 3;
/** out_channels of convnet_1x1 and num_channels of the trainable position encoding */
export const LEARNED_OUT_CHANNELS = 256;
/** project_pos_dim: width of positions_projection's output */
export const LEARNED_PROJECT_POS_DIM = 256;
/** HF num_channels: out_channels + project_pos_dim = 512 (the cross-attention kv_dim) */
export const LEARNED_NUM_CHANNELS = LEARNED_OUT_CHANNELS + LEARNED_PROJECT_POS_DIM;

/** Tokens per Linear call, so the conv scratch stays small ([1024, 256]). */
const TOKEN_CHUNK = 1024;

export interface LearnedPreprocessorWeights {
  convWeight: Float32Array; // input_preprocessor.convnet_1x1.weight [256, 3, 1, 1]
  convBias: Float32Array; // input_preprocessor.convnet_1x1.bias [256]
  positionEmbeddings: Float32Array; // input_preprocessor.position_embeddings.position_embeddings [image_size², 256]
  projectionWeight: Float32Array; // input_preprocessor.positions_projection.weight [256, 256]
  projectionBias: Float32Array; // input_preprocessor.positions_projection.bias [256]
}

export class LearnedPreprocessor implements Preprocessor {
  readonly outChannels = LEARNED_OUT_CHANNELS;
  readonly numChannels = LEARNED_NUM_CHANNELS;
  /** image_size²: the number of learned positions, which must equal H·W */
  readonly numPositions: number;
  readonly convnet1x1: Linear; // [256, 3, 1, 1] read as a Linear [256, 3]
  readonly positionsProjection: Linear;
  private readonly positionEmbeddings: Float32Array;
  private projected: Float32Array | null = null;

  constructor(weights: LearnedPreprocessorWeights, readonly imageSize: number) {
    this.numPositions = imageSize * imageSize;
    this.convnet1x1 = new Linear(weights.convWeight, weights.convBias, LEARNED_IN_CHANNELS, LEARNED_OUT_CHANNELS);
    this.positionsProjection = new Linear(weights.projectionWeight, weights.projectionBias, LEARNED_OUT_CHANNELS, LEARNED_PROJECT_POS_DIM);
    this.positionEmbeddings = weights.positionEmbeddings;
  }

  /**
   * positions_projection(position_embeddings) [image_size², 256]. It depends on the weights only, so it is computed
   * on first use and kept.
   */
  positionEncoding(): Float32Array {
    if (!this.projected) {
      this.projected = new Float32Array(this.numPositions * LEARNED_PROJECT_POS_DIM);
      this.positionsProjection.forward(this.positionEmbeddings, this.numPositions, this.projected);
    }
    return this.projected;
  }

  // pixels [B, 3, H, W] -> inputs [B·H·W, 512]: row t = y·W + x holds (conv1x1 of pixel (y, x), projected position t)
  /** Every pixel is a token: the grid is the image. */
  gridSize(h: number, w: number): [number, number] {
    return [h, w];
  }

  forward(pixels: Float32Array, batch: number, h: number, w: number): PreprocessorOutput {
    const c = LEARNED_IN_CHANNELS;
    const oc = this.outChannels;
    const pc = LEARNED_PROJECT_POS_DIM;
    const nc = this.numChannels;
    const tokens = h * w;
    if (pixels.length !== batch * c * tokens) {
      throw new PerceiverError("SHAPE_MISMATCH", `LearnedPreprocessor: pixels hold ${pixels.length} values, expected [${batch},${c},${h},${w}]`);
    }
    if (tokens !== this.numPositions) {
      throw new PerceiverError(
        "INPUT_INVALID",
        `LearnedPreprocessor: a ${h}x${w} image has ${tokens} pixels but the learned position embeddings cover ` +
          `image_size² = ${this.imageSize}x${this.imageSize} = ${this.numPositions} (resize the image to ` +
          `${this.imageSize}x${this.imageSize}; position interpolation is not implemented)`,
      );
    }
    const pos = this.positionEncoding();
    const inputs = new Float32Array(batch * tokens * nc); // [B·H·W, 512]
    const nhwc = new Float32Array(TOKEN_CHUNK * c); // a chunk of pixels as rows [chunk, 3]
    const feats = new Float32Array(TOKEN_CHUNK * oc); // their conv 1x1 features [chunk, 256]
    for (let b = 0; b < batch; b++) {
      const x = b * c * tokens;
      for (let t0 = 0; t0 < tokens; t0 += TOKEN_CHUNK) {
        const n = Math.min(TOKEN_CHUNK, tokens - t0);
        // NCHW -> NHWC rows [n, 3], then the 1x1 conv: feats [n, 256] = rows · Wᵀ + bias
        for (let t = 0; t < n; t++) for (let k = 0; k < c; k++) nhwc[t * c + k] = pixels[x + k * tokens + t0 + t];
        this.convnet1x1.forward(nhwc.subarray(0, n * c), n, feats.subarray(0, n * oc));
        for (let t = 0; t < n; t++) {
          const row = (b * tokens + t0 + t) * nc;
          inputs.set(feats.subarray(t * oc, (t + 1) * oc), row);
          inputs.set(pos.subarray((t0 + t) * pc, (t0 + t + 1) * pc), row + oc);
        }
      }
    }
    return { inputs, numTokens: tokens, numChannels: nc, gridHeight: h, gridWidth: w };
  }
}
