/**
 * The Perceiver IO ImageNet classifiers, top-down like the paper:
 *   1. config          (config.ts; `architectures` picks the preprocessor)
 *   2. weights         (weights.ts: one explicit HF state-dict mapping; the constructor wires them into layers)
 *   3. forward         image -> preprocessor -> cross-attention onto latents -> L x self-attention blocks
 *                      -> decoder query cross-attends to the latents -> logits
 * The three checkpoints differ only in the preprocessor (HF PerceiverImagePreprocessor):
 *   PerceiverForImageClassificationConvProcessing  deepmind/vision-perceiver-conv     conv 7x7/2 + maxpool, 55x55 tokens x 322
 *   PerceiverForImageClassificationFourier         deepmind/vision-perceiver-fourier  raw pixels, 224x224 tokens x 261
 *   PerceiverForImageClassificationLearned         deepmind/vision-perceiver-learned  conv 1x1, 224x224 tokens x 512
 * the encoder and the classification decoder are the same modules in all three.
 */
import { PerceiverError } from "../errors.js";
import type { StateDict } from "../io/checkpoint/state-dict.js";
import { defaultImageProcessorConfig, type ImageProcessorConfig } from "../io/image/image-processor.js";
import { MultiHeadAttention } from "../layers/attention.js";
import { LayerNorm } from "../layers/layernorm.js";
import { Linear } from "../layers/linear.js";
import { Mlp } from "../layers/mlp.js";
import { PerceiverLayer } from "../layers/perceiver-layer.js";
import { Scratch } from "../layers/scratch.js";
import { ensureThreads } from "../tensor/gemm.js";
import { Tensor, indexOfNonFinite } from "../tensor/tensor.js";
import type { PerceiverConfig } from "./config.js";
import { ConvPreprocessor } from "./preprocessor-conv.js";
import type { Preprocessor } from "./preprocessor.js";
import { LearnedPreprocessor } from "./preprocessor-learned.js";
import { PixelsPreprocessor } from "./preprocessor-pixels.js";
import { checkForwardMemory } from "./memory.js";
import { loadPretrainedParts, type LoadOptions, type NamedBlob, type PretrainedParts } from "./pretrained.js";
import { checkWeights, expectedWeights, layerShapes } from "./weights.js";

export interface ForwardOptions {
  /** Return the encoder cross-attention [B, heads, latents, inputs] and decoder attention [B, 1, 1, latents]. */
  outputAttentions?: boolean;
  /** Return the latents after the cross-attention and after each of the numBlocks·numSelfAttendsPerBlock layers. */
  outputHiddenStates?: boolean;
  /**
   * Called with named intermediate activations (the golden-dump names): "convnet" [B,64,gh,gw] (conv model only),
   * "preprocessor_without_pos" [B,T,C0] (conv 64, pixels 3, conv1x1 256 channels), "preprocessor" [B,T,kvDim]
   * (C0 + position encoding: 322, 261, 512), "cross_attention" [B,N,D],
   * "self_attend_{i}.call{j}" [B,N,D] (layer i on its j-th application), "decoder" [B,D].
   */
  onIntermediate?: (name: string, value: Tensor) => void;
  /** Progress over the layers: done of total (cross-attention, each self-attention application, decoder). */
  onProgress?: (done: number, total: number) => void;
}

export interface ForwardOutput {
  /** [B, numLabels] */
  logits: Tensor;
  /** [encoder [B, heads, numLatents, numInputs], decoder [B, 1, 1, numLatents]] with outputAttentions */
  crossAttentions?: Tensor[];
  /** with outputHiddenStates: 1 + numBlocks·numSelfAttendsPerBlock tensors [B, numLatents, dLatents] */
  hiddenStates?: Tensor[];
}

export class PerceiverForImageClassification {
  readonly config: PerceiverConfig;
  readonly preprocessor: Preprocessor; // input_preprocessor
  readonly latents: Float32Array; // embeddings.latents [numLatents, dLatents]
  readonly crossAttention: PerceiverLayer; // encoder.cross_attention
  readonly selfAttends: PerceiverLayer[]; // encoder.self_attends.0..L-1, applied numBlocks times
  readonly decoderQuery: Float32Array; // decoder.decoder.output_position_encodings.position_embeddings [1, dLatents]
  readonly decoderCrossAttention: PerceiverLayer; // decoder.decoder.decoding_cross_attention
  readonly finalLayer: Linear; // decoder.decoder.final_layer
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
    this.preprocessor = buildPreprocessor(config, get);
    if (this.preprocessor.numChannels !== s.kvDim) throw new Error(`internal: preprocessor has ${this.preprocessor.numChannels} channels, layerShapes says ${s.kvDim}`);
    this.latents = get("perceiver.embeddings.latents");

    const linear = (prefix: string, inF: number, outF: number) => new Linear(get(`${prefix}.weight`), get(`${prefix}.bias`), inF, outF);
    const layerNorm = (prefix: string, dim: number) => new LayerNorm(get(`${prefix}.weight`), get(`${prefix}.bias`), dim);
    // one set of working buffers for all layers: they run one after another (sized by the largest, the encoder's
    // cross-attention; about 15 MB per self-attention layer saved)
    const scratch = new Scratch();
    const layer = (prefix: string, shape: typeof s.encoderCross, cross: boolean, widening: number, useQueryResidual: boolean) => {
      const a = `${prefix}.attention`;
      const attention = new MultiHeadAttention(
        linear(`${a}.self.query`, shape.qDim, shape.qkChannels),
        linear(`${a}.self.key`, shape.kvDim, shape.qkChannels),
        linear(`${a}.self.value`, shape.kvDim, shape.vChannels),
        linear(`${a}.output.dense`, shape.vChannels, shape.outChannels),
        shape.numHeads,
      );
      const mlp = new Mlp(linear(`${prefix}.mlp.dense1`, shape.qDim, widening * shape.qDim), linear(`${prefix}.mlp.dense2`, widening * shape.qDim, shape.qDim));
      return new PerceiverLayer(
        layerNorm(`${a}.self.layernorm1`, shape.qDim),
        cross ? layerNorm(`${a}.self.layernorm2`, shape.kvDim) : null,
        attention,
        useQueryResidual,
        layerNorm(`${prefix}.layernorm`, shape.qDim),
        mlp,
        scratch,
      );
    };

    this.crossAttention = layer("perceiver.encoder.cross_attention", s.encoderCross, true, config.crossAttentionWideningFactor, config.useQueryResidual);
    this.selfAttends = [];
    for (let i = 0; i < config.numSelfAttendsPerBlock; i++) {
      // PerceiverLayer's use_query_residual defaults to True for the self-attention layers
      this.selfAttends.push(layer(`perceiver.encoder.self_attends.${i}`, s.encoderSelf, false, config.selfAttentionWideningFactor, true));
    }
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
    const enc = this.encode(pixelValues, options);
    const { batch, z, attentions, hidden, progress } = enc;
    const cfg = this.config;
    const N = cfg.numLatents;
    const D = cfg.dLatents;

    // 3. Decoder: one trainable query per image cross-attends to the latents; final linear -> logits
    const query = new Float32Array(batch * D);
    for (let b = 0; b < batch; b++) query.set(this.decoderQuery, b * D);
    const decProbs = options.outputAttentions ? new Float32Array(batch * N) : undefined;
    // z is not read after the decoder: it layer-norms the latents in place
    this.decoderCrossAttention.forward(query, z, batch, 1, N, query, decProbs, true);
    if (decProbs) attentions.push(new Tensor(decProbs, [batch, 1, 1, N]));
    options.onIntermediate?.("decoder", new Tensor(query.slice(), [batch, D]));
    const logits = new Float32Array(batch * cfg.numLabels);
    this.finalLayer.forward(query, batch, logits);
    progress();

    const out: ForwardOutput = { logits: new Tensor(logits, [batch, cfg.numLabels]) };
    if (options.outputAttentions) out.crossAttentions = attentions;
    if (options.outputHiddenStates) out.hiddenStates = hidden;
    return out;
  }

  /**
   * Image features: the final latents [B, numLatents, dLatents] (the encoder output, before the decoder) and their
   * mean over the latents, a pooled [B, dLatents] vector.
   */
  async extractFeatures(pixelValues: Tensor, options: Pick<ForwardOptions, "onProgress"> = {}): Promise<{ latents: Tensor; pooled: Tensor }> {
    await ensureThreads();
    const { batch, z } = this.encode(pixelValues, options);
    const N = this.config.numLatents;
    const D = this.config.dLatents;
    const pooled = new Float32Array(batch * D);
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

  /** Steps 1-2 of the forward pass: pixels -> final latents z [B·N, D]. */
  private encode(pixelValues: Tensor, options: ForwardOptions) {
    const cfg = this.config;
    const shape = pixelValues.shape;
    if (shape.length !== 4 || shape[1] !== 3) {
      throw new PerceiverError("SHAPE_MISMATCH", `forward: pixelValues must be [B, 3, H, W], got [${shape.join(",")}]`);
    }
    const [batch, , h, w] = shape;
    if (batch < 1) throw new PerceiverError("SHAPE_MISMATCH", "forward: batch size must be at least 1");
    // refuse a batch whose activations clearly exceed the memory available, before allocating any of it
    checkForwardMemory(cfg, { batch, height: h, width: w, outputAttentions: options.outputAttentions, outputHiddenStates: options.outputHiddenStates }, { where: "forward" });
    const bad = indexOfNonFinite(pixelValues.data);
    if (bad >= 0) {
      throw new PerceiverError("INPUT_INVALID", `forward: pixelValues has a non-finite value (${pixelValues.data[bad]}) at index ${bad}`);
    }
    const emit = options.onIntermediate;
    const total = this.numLayerApplications;
    let done = 0;
    const progress = () => options.onProgress?.(++done, total);

    // 1. Preprocess: per-token features ++ position encoding -> inputs [B·T, kvDim]
    const convnet: Float32Array[] = [];
    const pre = this.preprocessor.forward(pixelValues.data, batch, h, w, emit ? (_b, f) => convnet.push(f.slice()) : undefined);
    const T = pre.numTokens;
    const C = pre.numChannels;
    if (emit) {
      const oc = this.preprocessor.outChannels;
      if (convnet.length) emit("convnet", new Tensor(concat(convnet), [batch, oc, pre.gridHeight, pre.gridWidth]));
      const noPos = new Float32Array(batch * T * oc);
      for (let r = 0; r < batch * T; r++) noPos.set(pre.inputs.subarray(r * C, r * C + oc), r * oc);
      emit("preprocessor_without_pos", new Tensor(noPos, [batch, T, oc]));
      emit("preprocessor", new Tensor(pre.inputs.slice(), [batch, T, C]));
    }

    // 2. Encoder: latents cross-attend to the inputs, then numBlocks x (numSelfAttendsPerBlock shared layers)
    const N = cfg.numLatents;
    const D = cfg.dLatents;
    const z = new Float32Array(batch * N * D);
    for (let b = 0; b < batch; b++) z.set(this.latents, b * N * D);
    const attentions: Tensor[] = [];
    const hidden: Tensor[] = [];
    const snapshot = () => new Tensor(z.slice(), [batch, N, D]);

    const heads = this.crossAttention.attention.numHeads;
    const encProbs = options.outputAttentions ? new Float32Array(batch * heads * N * T) : undefined;
    // the inputs are not read again: the cross-attention layer-norms them in place
    this.crossAttention.forward(z, pre.inputs, batch, N, T, z, encProbs, true);
    if (encProbs) attentions.push(new Tensor(encProbs, [batch, heads, N, T]));
    if (emit) emit("cross_attention", snapshot());
    if (options.outputHiddenStates) hidden.push(snapshot());
    progress();

    for (let block = 0; block < cfg.numBlocks; block++) {
      for (let i = 0; i < this.selfAttends.length; i++) {
        this.selfAttends[i].forward(z, null, batch, N, N, z);
        if (emit) emit(`self_attend_${i}.call${block}`, snapshot());
        if (options.outputHiddenStates) hidden.push(snapshot());
        progress();
      }
    }
    return { batch, z, attentions, hidden, progress };
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

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
