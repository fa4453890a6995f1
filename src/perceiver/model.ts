/**
 * The Perceiver IO ImageNet classifiers, top-down in the paper's order:
 *   1. byte array      the preprocessor turns pixels [B, 3, H, W] into inputs [B·T, kvDim] (tokens ++ positions)
 *   2. latent array    a learned [N, D] array, one copy per image
 *   3. cross-attention the latents attend to the byte array (the only step whose cost grows with T)
 *   4. latent transformer  numSelfAttendsPerBlock self-attention layers with shared weights, applied numBlocks times
 *   5. output query    one learned query per image attends to the latents
 *   6. logits          a linear layer on the query's output
 * The three checkpoints differ only in the preprocessor (HF PerceiverImagePreprocessor):
 *   PerceiverForImageClassificationConvProcessing  deepmind/vision-perceiver-conv     conv 7x7/2 + maxpool, 55x55 tokens x 322
 *   PerceiverForImageClassificationFourier         deepmind/vision-perceiver-fourier  raw pixels, 224x224 tokens x 261
 *   PerceiverForImageClassificationLearned         deepmind/vision-perceiver-learned  conv 1x1, 224x224 tokens x 512
 * the encoder and the classification decoder are the same modules in all three. The weights are named once, in
 * weights.ts (checked there), and wired into layers by the constructor here.
 */
import { PerceiverError } from "../errors.js";
import type { StateDict } from "../io/checkpoint/state-dict.js";
import { defaultImageProcessorConfig, type ImageProcessorConfig } from "../io/image/image-processor.js";
import { MultiHeadAttention } from "../layers/attention.js";
import { LayerNorm } from "../layers/layernorm.js";
import { Linear } from "../layers/linear.js";
import { Mlp } from "../layers/mlp.js";
import { PerceiverLayer } from "../layers/perceiver-layer.js";
import { LayerBuffers } from "../layers/buffers.js";
import { ensureThreads } from "../tensor/gemm.js";
import { Tensor, indexOfNonFinite } from "../tensor/tensor.js";
import type { PerceiverConfig } from "./config-type.js";
import { ForwardTrace, type ForwardOptions, type ForwardOutput } from "./forward-trace.js";
import { checkForwardMemory } from "./memory.js";
import { ConvPreprocessor } from "./preprocessor-conv.js";
import { LearnedPreprocessor } from "./preprocessor-learned.js";
import { PixelsPreprocessor } from "./preprocessor-pixels.js";
import type { Preprocessor } from "./preprocessor.js";
import { loadPretrainedParts, type LoadOptions, type NamedBlob, type PretrainedParts } from "./pretrained.js";
import { layerShapes, type AttentionShape } from "./shapes.js";
import { checkWeights, expectedWeights } from "./weights.js";

export type { ForwardOptions, ForwardOutput } from "./forward-trace.js";

export class PerceiverForImageClassification {
  readonly config: PerceiverConfig;
  readonly preprocessor: Preprocessor; // input_preprocessor
  readonly latents: Float32Array; // embeddings.latents [N, D]
  readonly crossAttention: PerceiverLayer; // encoder.cross_attention
  readonly selfAttends: PerceiverLayer[]; // encoder.self_attends.0..L-1, applied numBlocks times
  readonly decoderQuery: Float32Array; // decoder.decoder.output_position_encodings.position_embeddings [1, D]
  readonly decoderCrossAttention: PerceiverLayer; // decoder.decoder.decoding_cross_attention
  readonly finalLayer: Linear; // decoder.decoder.final_layer [numLabels, D]
  /**
   * How images are prepared for this model: the checkpoint's preprocessor_config.json as fromPretrained read it
   * (the deepmind/vision-perceiver-conv defaults for a model built with fromStateDict). Use it as
   * `preprocessBatch(images, model.imageProcessorConfig)`.
   */
  imageProcessorConfig: ImageProcessorConfig = defaultImageProcessorConfig;

  private constructor(config: PerceiverConfig, sd: StateDict) {
    this.config = config;
    const get = (name: string) => sd.getFloat32(name);
    const s = layerShapes(config);
    const linear = (prefix: string, inF: number, outF: number) => new Linear(get(`${prefix}.weight`), get(`${prefix}.bias`), inF, outF);
    const layerNorm = (prefix: string, dim: number) => new LayerNorm(get(`${prefix}.weight`), get(`${prefix}.bias`), dim);
    // one set of working buffers for all layers: they run one after another (each buffer sized by its largest use)
    const buffers = new LayerBuffers();
    const layer = (prefix: string, shape: AttentionShape, cross: boolean, widening: number, useQueryResidual: boolean) => {
      const a = `${prefix}.attention`;
      return new PerceiverLayer({
        layernorm1: layerNorm(`${a}.self.layernorm1`, shape.qDim),
        layernorm2: cross ? layerNorm(`${a}.self.layernorm2`, shape.kvDim) : null,
        attention: new MultiHeadAttention({
          query: linear(`${a}.self.query`, shape.qDim, shape.qkChannels),
          key: linear(`${a}.self.key`, shape.kvDim, shape.qkChannels),
          value: linear(`${a}.self.value`, shape.kvDim, shape.vChannels),
          output: linear(`${a}.output.dense`, shape.vChannels, shape.outChannels),
          numHeads: shape.numHeads,
        }),
        useQueryResidual,
        layernorm: layerNorm(`${prefix}.layernorm`, shape.qDim),
        mlp: new Mlp(linear(`${prefix}.mlp.dense1`, shape.qDim, widening * shape.qDim), linear(`${prefix}.mlp.dense2`, widening * shape.qDim, shape.qDim)),
        buffers,
      });
    };

    this.preprocessor = buildPreprocessor(config, get);
    this.latents = get("perceiver.embeddings.latents");
    this.crossAttention = layer("perceiver.encoder.cross_attention", s.encoderCross, true, config.crossAttentionWideningFactor, config.useQueryResidual);
    // PerceiverLayer's use_query_residual defaults to True for the self-attention layers
    this.selfAttends = Array.from({ length: config.numSelfAttendsPerBlock }, (_, i) =>
      layer(`perceiver.encoder.self_attends.${i}`, s.encoderSelf, false, config.selfAttentionWideningFactor, true));
    const dec = "perceiver.decoder.decoder";
    this.decoderQuery = get(`${dec}.output_position_encodings.position_embeddings`);
    // PerceiverClassificationDecoder passes use_query_residual=True; widening factor 1
    this.decoderCrossAttention = layer(`${dec}.decoding_cross_attention`, s.decoderCross, true, 1, true);
    this.finalLayer = linear(`${dec}.final_layer`, config.dLatents, config.numLabels);
  }

  /** Build from a parsed config and a state dict (safetensors or pytorch_model.bin); checks every key first. */
  static fromStateDict(config: PerceiverConfig, sd: StateDict, source = "checkpoint"): PerceiverForImageClassification {
    checkWeights(sd, expectedWeights(config), source);
    return new PerceiverForImageClassification(config, sd);
  }

  /** Build from loaded parts (pretrained.ts): the state dict, and the image processor settings. */
  static fromParts(parts: PretrainedParts): PerceiverForImageClassification {
    const model = PerceiverForImageClassification.fromStateDict(parts.config, parts.stateDict, parts.source);
    model.imageProcessorConfig = parts.imageProcessorConfig;
    return model;
  }

  /**
   * Load config.json, preprocessor_config.json and the weights (model.safetensors, else pytorch_model.bin), from
   *   Node:    a local folder, a checkpoint file (config.json next to it), or a hub repo id (huggingface_hub cache);
   *   browser: a hub repo id (https://huggingface.co/{repo}/resolve/{revision}/{file}) or a base URL, kept in the
   *            Cache API so that the next load is offline; or picked Files. See pretrained.ts for the options.
   */
  static async fromPretrained(pathOrRepoId: string | readonly NamedBlob[], options: LoadOptions = {}): Promise<PerceiverForImageClassification> {
    const parts = await loadPretrainedParts(pathOrRepoId, options);
    const model = PerceiverForImageClassification.fromParts(parts);
    options.progress_callback?.({ status: "ready", name: typeof pathOrRepoId === "string" ? pathOrRepoId : "local files" });
    return model;
  }

  /** Total number of layer applications reported by onProgress. */
  get numLayerApplications(): number {
    return 2 + this.config.numBlocks * this.config.numSelfAttendsPerBlock;
  }

  /** pixelValues [B, 3, H, W] (normalized, NCHW) -> logits [B, numLabels]. */
  async forward(pixelValues: Tensor, options: ForwardOptions = {}): Promise<ForwardOutput> {
    await ensureThreads();
    return this.forwardSync(pixelValues, options);
  }

  /**
   * The same as forward, synchronously. It uses the worker threads already running (forward starts the default
   * ones: see setThreads); before that, it runs on the calling thread alone.
   */
  forwardSync(pixelValues: Tensor, options: ForwardOptions = {}): ForwardOutput {
    const trace = new ForwardTrace(options, this.numLayerApplications);
    const { batch, z } = this.encode(pixelValues, options, trace); // steps 1-4: z [B·N, D]
    const logits = this.decode(z, batch, trace); // steps 5-6: [B, numLabels]
    return trace.output(new Tensor(logits, [batch, this.config.numLabels]));
  }

  /**
   * Image features: the final latents [B, N, D] (the encoder output, before the decoder) and their mean over the
   * latents, a pooled [B, D] vector.
   */
  async extractFeatures(pixelValues: Tensor, options: Pick<ForwardOptions, "onProgress"> = {}): Promise<{ latents: Tensor; pooled: Tensor }> {
    await ensureThreads();
    const { batch, z } = this.encode(pixelValues, options, new ForwardTrace(options, this.numLayerApplications));
    const { numLatents: N, dLatents: D } = this.config;
    const pooled = new Float32Array(batch * D); // [B, D]
    const sum = new Float64Array(D);
    for (let b = 0; b < batch; b++) {
      sum.fill(0);
      for (let n = 0; n < N; n++) {
        const row = (b * N + n) * D;
        for (let d = 0; d < D; d++) sum[d] += z[row + d];
      }
      for (let d = 0; d < D; d++) pooled[b * D + d] = sum[d] / N;
    }
    return { latents: new Tensor(z, [batch, N, D]), pooled: new Tensor(pooled, [batch, D]) };
  }

  /** The encoder, steps 1-4: pixels [B, 3, H, W] -> the final latents z [B·N, D]. */
  private encode(pixelValues: Tensor, options: ForwardOptions, trace: ForwardTrace): { batch: number; z: Float32Array } {
    const { numLatents: N, dLatents: D, numBlocks } = this.config;
    const [batch, , h, w] = this.checkInput(pixelValues, options);

    // 1. byte array: inputs [B·T, kvDim], each token's features followed by its position encoding
    const byteArray = this.preprocessor.forward(pixelValues.data, batch, h, w, trace.onConvnet);
    const T = byteArray.numTokens;
    trace.byteArray(byteArray, this.preprocessor, batch);

    // 2. latent array: z [B·N, D], the learned latents copied for each image
    const z = new Float32Array(batch * N * D);
    for (let b = 0; b < batch; b++) z.set(this.latents, b * N * D);

    // 3. cross-attention: the latents attend to the byte array; z [B·N, D] -> z
    //    (the byte array is not read again: its layer norm is written over it)
    const encoderProbs = trace.attentionProbs([batch, this.crossAttention.attention.numHeads, N, T]);
    this.crossAttention.forward({ hidden: z, inputs: byteArray.inputs, batch, tq: N, tkv: T, out: z, probs: encoderProbs, overwriteInputs: true });
    trace.latents("cross_attention", z, [batch, N, D]);

    // 4. latent transformer: the same numSelfAttendsPerBlock layers applied numBlocks times; z -> z
    for (let block = 0; block < numBlocks; block++) {
      this.selfAttends.forEach((layer, i) => {
        layer.forward({ hidden: z, batch, tq: N, out: z });
        trace.latents(`self_attend_${i}.call${block}`, z, [batch, N, D]);
      });
    }
    return { batch, z };
  }

  /** The decoder, steps 5-6: the final latents z [B·N, D] -> logits [B, numLabels]. */
  private decode(z: Float32Array, batch: number, trace: ForwardTrace): Float32Array {
    const { numLatents: N, dLatents: D, numLabels } = this.config;

    // 5. output query: query [B, D], the learned query for each image, attends to the latents; query -> query
    //    (z is not read again: its layer norm is written over it)
    const query = new Float32Array(batch * D);
    for (let b = 0; b < batch; b++) query.set(this.decoderQuery, b * D);
    const decoderProbs = trace.attentionProbs([batch, 1, 1, N]);
    this.decoderCrossAttention.forward({ hidden: query, inputs: z, batch, tq: 1, tkv: N, out: query, probs: decoderProbs, overwriteInputs: true });
    trace.decoder(query, [batch, D]);

    // 6. logits [B, numLabels] = query · Wᵀ + b
    const logits = new Float32Array(batch * numLabels);
    this.finalLayer.forward(query, batch, logits);
    trace.progress();
    return logits;
  }

  /** Refuses bad pixel values and, before allocating any activation, a batch that clearly cannot fit in memory. */
  private checkInput(pixelValues: Tensor, options: ForwardOptions): readonly number[] {
    const shape = pixelValues.shape;
    if (shape.length !== 4 || shape[1] !== 3) {
      throw new PerceiverError("SHAPE_MISMATCH", `forward: pixelValues must be [B, 3, H, W], got [${shape.join(",")}]`);
    }
    const [batch, , height, width] = shape;
    if (batch < 1) throw new PerceiverError("SHAPE_MISMATCH", "forward: batch size must be at least 1");
    const { outputAttentions, outputHiddenStates } = options;
    checkForwardMemory(this.config, { batch, height, width, outputAttentions, outputHiddenStates }, { where: "forward" });
    const bad = indexOfNonFinite(pixelValues.data);
    if (bad >= 0) {
      throw new PerceiverError("INPUT_INVALID", `forward: pixelValues has a non-finite value (${pixelValues.data[bad]}) at index ${bad}`);
    }
    return shape;
  }
}

/** HF PerceiverImagePreprocessor as each architecture's __init__ configures it (keys: weights.ts addPreprocessor). */
function buildPreprocessor(cfg: PerceiverConfig, get: (name: string) => Float32Array): Preprocessor {
  const pre = "perceiver.input_preprocessor";
  switch (cfg.architecture) {
    case "PerceiverForImageClassificationConvProcessing":
      return new ConvPreprocessor({
        convWeight: get(`${pre}.convnet.conv.weight`),
        bnWeight: get(`${pre}.convnet.batchnorm.weight`),
        bnBias: get(`${pre}.convnet.batchnorm.bias`),
        bnRunningMean: get(`${pre}.convnet.batchnorm.running_mean`),
        bnRunningVar: get(`${pre}.convnet.batchnorm.running_var`),
      });
    case "PerceiverForImageClassificationFourier":
      return new PixelsPreprocessor();
    case "PerceiverForImageClassificationLearned":
      return new LearnedPreprocessor({
        convWeight: get(`${pre}.convnet_1x1.weight`),
        convBias: get(`${pre}.convnet_1x1.bias`),
        positionEmbeddings: get(`${pre}.position_embeddings.position_embeddings`),
        projectionWeight: get(`${pre}.positions_projection.weight`),
        projectionBias: get(`${pre}.positions_projection.bias`),
      }, cfg.imageSize);
  }
}
