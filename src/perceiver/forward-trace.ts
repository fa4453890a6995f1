/**
 * What a forward pass reports besides its logits, kept off the model's main line: named intermediates (the golden
 * dumps' names), hidden states, attention probabilities and progress. The model calls one hook per stage; each
 * hook does nothing unless the caller asked for that output.
 */
import { Tensor } from "../tensor/tensor.js";
import type { Preprocessor, PreprocessorOutput } from "./preprocessor.js";

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

export class ForwardTrace {
  private readonly attentions: Tensor[] = [];
  private readonly hidden: Tensor[] = [];
  private readonly convnet: Float32Array[] = [];
  private done = 0;

  constructor(private readonly options: ForwardOptions, private readonly totalLayers: number) {}

  /** The preprocessor's per-image callback for its conv features [64, gh, gw], when they are asked for. */
  get onConvnet(): ((b: number, feats: Float32Array) => void) | undefined {
    return this.options.onIntermediate ? (_b, f) => this.convnet.push(f.slice()) : undefined;
  }

  /** After the preprocessor: "convnet", "preprocessor_without_pos" [B,T,C0], "preprocessor" [B,T,kvDim]. */
  byteArray(pre: PreprocessorOutput, preprocessor: Preprocessor, batch: number): void {
    const emit = this.options.onIntermediate;
    if (!emit) return;
    const T = pre.numTokens, C = pre.numChannels, oc = preprocessor.outChannels;
    if (this.convnet.length) emit("convnet", new Tensor(concat(this.convnet), [batch, oc, pre.gridHeight, pre.gridWidth]));
    const noPos = new Float32Array(batch * T * oc);
    for (let r = 0; r < batch * T; r++) noPos.set(pre.inputs.subarray(r * C, r * C + oc), r * oc);
    emit("preprocessor_without_pos", new Tensor(noPos, [batch, T, oc]));
    emit("preprocessor", new Tensor(pre.inputs.slice(), [batch, T, C]));
  }

  /** A buffer for attention probabilities of `shape` when they are asked for (kept for the output), else undefined. */
  attentionProbs(shape: number[]): Float32Array | undefined {
    if (!this.options.outputAttentions) return undefined;
    const p = new Float32Array(shape.reduce((a, b) => a * b, 1));
    this.attentions.push(new Tensor(p, shape));
    return p;
  }

  /** After an encoder layer: the latents z [B·N, D] as intermediate `name` and as a hidden state; progress. */
  latents(name: string, z: Float32Array, shape: [number, number, number]): void {
    if (this.options.onIntermediate) this.options.onIntermediate(name, new Tensor(z.slice(), shape));
    if (this.options.outputHiddenStates) this.hidden.push(new Tensor(z.slice(), shape));
    this.progress();
  }

  /** After the decoder's cross-attention: its output [B, D] as "decoder". */
  decoder(query: Float32Array, shape: [number, number]): void {
    this.options.onIntermediate?.("decoder", new Tensor(query.slice(), shape));
  }

  progress(): void {
    this.options.onProgress?.(++this.done, this.totalLayers);
  }

  output(logits: Tensor): ForwardOutput {
    const out: ForwardOutput = { logits };
    if (this.options.outputAttentions) out.crossAttentions = this.attentions;
    if (this.options.outputHiddenStates) out.hiddenStates = this.hidden;
    return out;
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
