/**
 * PerceiverConfig: the fields of a Hugging Face `config.json` the image classifiers use (parsed and checked by
 * config.ts). A type of its own so that the modules deriving shapes from it (shapes.ts, weights.ts, memory.ts)
 * do not import the parser.
 */

export type ImageClassificationArchitecture =
  | "PerceiverForImageClassificationConvProcessing"
  | "PerceiverForImageClassificationFourier"
  | "PerceiverForImageClassificationLearned";

export const SUPPORTED_ARCHITECTURES: readonly ImageClassificationArchitecture[] = [
  "PerceiverForImageClassificationConvProcessing", // deepmind/vision-perceiver-conv
  "PerceiverForImageClassificationFourier", // deepmind/vision-perceiver-fourier
  "PerceiverForImageClassificationLearned", // deepmind/vision-perceiver-learned
];

export interface PerceiverConfig {
  architecture: ImageClassificationArchitecture;
  numLatents: number; // num_latents
  dLatents: number; // d_latents
  dModel: number; // d_model (unused by the image classifiers: kv_dim comes from the preprocessor)
  numBlocks: number; // num_blocks
  numSelfAttendsPerBlock: number; // num_self_attends_per_block
  numSelfAttentionHeads: number; // num_self_attention_heads
  numCrossAttentionHeads: number; // num_cross_attention_heads
  qkChannels: number | null; // qk_channels
  vChannels: number | null; // v_channels
  crossAttentionShapeForAttention: "kv" | "q"; // cross_attention_shape_for_attention
  selfAttentionWideningFactor: number; // self_attention_widening_factor
  crossAttentionWideningFactor: number; // cross_attention_widening_factor
  hiddenAct: "gelu"; // hidden_act
  useQueryResidual: boolean; // use_query_residual
  layerNormEps: number; // layer_norm_eps: present in configs but unused by HF (every LayerNorm uses 1e-5)
  imageSize: number; // image_size (the learned model has image_size² position embeddings)
  numLabels: number; // len(id2label)
  id2label: Record<number, string>;
}
