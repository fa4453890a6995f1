/** The interface shared by the three image preprocessors (HF PerceiverImagePreprocessor). */

/** What every image preprocessor produces: the encoder inputs (HF `PerceiverImagePreprocessor` output). */
export interface PreprocessorOutput {
  /**
   * [B·T, numChannels]: per token t = row·gridWidth + col, its outChannels features, then the position encoding.
   * It may be the preprocessor's own buffer, overwritten by its next forward: read (or copy) it before that.
   */
  inputs: Float32Array;
  numTokens: number;
  numChannels: number;
  /** spatial size of the token grid (55x55 for the conv model on a 224x224 image, 224x224 for pixels / conv1x1) */
  gridHeight: number;
  gridWidth: number;
}

/**
 * The interface of the three image preprocessors (prep_type "conv", "pixels", "conv1x1"); the model picks one from
 * config.architecture.
 */
export interface Preprocessor {
  /** channels per token before the position encoding (HF inputs_without_pos) */
  readonly outChannels: number;
  /** channels per token fed to the encoder (HF num_channels = the cross-attention kv_dim) */
  readonly numChannels: number;
  /**
   * pixels [B, 3, H, W] -> encoder inputs [B·T, numChannels].
   * onConvnet, when given, receives each item's conv features [outChannels, gh, gw] (NCHW); only the conv model
   * has a convnet, the others never call it.
   */
  forward(pixels: Float32Array, batch: number, h: number, w: number, onConvnet?: (b: number, feats: Float32Array) => void): PreprocessorOutput;
  /** The token grid [gridHeight, gridWidth] for an H x W image (55x55 for the conv model at 224x224). */
  gridSize(h: number, w: number): [number, number];
}

