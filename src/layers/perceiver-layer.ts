import type { MultiHeadAttention } from "./attention.js";
import type { LayerNorm } from "./layernorm.js";
import type { Mlp } from "./mlp.js";
import { LayerBuffers } from "./buffers.js";

export interface PerceiverLayerWeights {
  /** LN1 of the queries' input [qDim] */
  layernorm1: LayerNorm;
  /** LN2 of a cross-attention's inputs [kvDim]; null for self-attention (HF nn.Identity: keys and values come from LN1(h)) */
  layernorm2: LayerNorm | null;
  attention: MultiHeadAttention;
  /** add the layer's input to the attention output (HF use_query_residual) */
  useQueryResidual: boolean;
  /** LN before the MLP [qDim] */
  layernorm: LayerNorm;
  mlp: Mlp;
  /** working buffers; layers that run one after another can share one (the model does) */
  buffers?: LayerBuffers;
}

export interface PerceiverLayerForward {
  /** [B·Tq, qDim]: the latents (or the decoder's query) */
  hidden: Float32Array;
  /** [B·Tkv, kvDim] for a cross-attention; omitted for self-attention */
  inputs?: Float32Array;
  batch: number;
  tq: number;
  /** key/value tokens per image (cross-attention only) */
  tkv?: number;
  /** [B·Tq, qDim]; may alias hidden */
  out: Float32Array;
  /** receives the attention probabilities [B, heads, Tq, Tkv] when given */
  probs?: Float32Array;
  /**
   * The caller no longer needs `inputs`: LN2(inputs) is written over them instead of into a buffer (the encoder's
   * inputs: 4 MB per image for the conv model, 52 MB for the Fourier one).
   */
  overwriteInputs?: boolean;
}

/**
 * HF PerceiverLayer (pre-LN):
 *   a   = LN1(h);  kv = cross ? LN2(inputs) : a
 *   o   = Attention(a, kv) (+ h if useQueryResidual)
 *   out = o + MLP(LN(o))
 */
export class PerceiverLayer {
  readonly layernorm1: LayerNorm;
  readonly layernorm2: LayerNorm | null;
  readonly attention: MultiHeadAttention;
  readonly useQueryResidual: boolean;
  readonly layernorm: LayerNorm;
  readonly mlp: Mlp;
  readonly buffers: LayerBuffers;

  constructor(w: PerceiverLayerWeights) {
    ({ layernorm1: this.layernorm1, layernorm2: this.layernorm2, attention: this.attention, useQueryResidual: this.useQueryResidual, layernorm: this.layernorm, mlp: this.mlp } = w);
    this.buffers = w.buffers ?? new LayerBuffers();
  }

  get qDim(): number {
    return this.layernorm1.dim;
  }

  // hidden [B·Tq, qDim] (, inputs [B·Tkv, kvDim]) -> out [B·Tq, qDim]
  forward({ hidden, inputs, batch, tq, tkv = tq, out, probs, overwriteInputs = false }: PerceiverLayerForward): void {
    const buf = this.buffers;
    const rows = batch * tq;
    const normed = buf.normed.take(rows * this.qDim); // [B·Tq, qDim]
    this.layernorm1.forward(hidden, rows, normed);
    let kv = normed; // self-attention: keys and values from LN1(h)
    let kvTokens = tq;
    if (this.layernorm2) {
      if (!inputs) throw new Error("PerceiverLayer: cross-attention needs inputs");
      kv = overwriteInputs ? inputs : buf.kv.take(batch * tkv * this.layernorm2.dim); // [B·Tkv, kvDim]
      this.layernorm2.forward(inputs, batch * tkv, kv);
      kvTokens = tkv;
    }
    const attnOut = buf.attnOut.take(rows * this.qDim); // [B·Tq, qDim]
    // the residuals are added by the output projections' epilogues (attnOut and out are distinct from their inputs)
    const residual = this.useQueryResidual ? hidden : undefined;
    this.attention.forward({ q: normed, kv, batch, tq, tkv: kvTokens, out: attnOut, buffers: buf, probs, residual });

    this.layernorm.forward(attnOut, rows, normed); // normed now holds LN(o)
    this.mlp.forward({ x: normed, rows, out, buffers: buf, residual: attnOut });
  }
}
