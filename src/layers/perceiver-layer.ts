import type { MultiHeadAttention } from "./attention.js";
import type { LayerNorm } from "./layernorm.js";
import type { Mlp } from "./mlp.js";
import { Scratch } from "./scratch.js";

/**
 * HF PerceiverLayer (pre-LN):
 *   a   = LN1(h);  kv = cross ? LN2(inputs) : a
 *   o   = Attention(a, kv) (+ h if useQueryResidual)
 *   out = o + MLP(LN(o))
 */
export class PerceiverLayer {
  constructor(
    readonly layernorm1: LayerNorm,
    /** null for self-attention (HF uses nn.Identity: keys and values come from LN1(h)) */
    readonly layernorm2: LayerNorm | null,
    readonly attention: MultiHeadAttention,
    readonly useQueryResidual: boolean,
    readonly layernorm: LayerNorm,
    readonly mlp: Mlp,
    /** working buffers; layers that run one after another can share one (the model does) */
    readonly scratch: Scratch = new Scratch(),
  ) {}

  get qDim(): number {
    return this.layernorm1.dim;
  }

  /**
   * hidden [B·Tq, qDim], inputs [B·Tkv, kvDim] (cross-attention) or null (self-attention) -> out [B·Tq, qDim].
   * out may alias hidden. probs (optional) receives the attention probabilities [B, heads, Tq, Tkv].
   * overwriteInputs: the caller no longer needs inputs, so LN2(inputs) is written over them instead of into a
   * scratch copy (the encoder's inputs: 4 MB per image for the conv model, 52 MB for the Fourier one).
   */
  forward(
    hidden: Float32Array, inputs: Float32Array | null, batch: number, tq: number, tkv: number,
    out: Float32Array, probs?: Float32Array, overwriteInputs = false,
  ): void {
    const s = this.scratch;
    const rows = batch * tq;
    const qDim = this.qDim;
    const normed = s.get("layer.normed", rows * qDim);
    this.layernorm1.forward(hidden, rows, normed);
    let kv = normed;
    let kvTokens = tq;
    if (this.layernorm2) {
      if (!inputs) throw new Error("PerceiverLayer: cross-attention needs inputs");
      kv = overwriteInputs ? inputs : s.get("layer.kv", batch * tkv * this.layernorm2.dim);
      this.layernorm2.forward(inputs, batch * tkv, kv);
      kvTokens = tkv;
    }
    const attnOut = s.get("layer.attnOut", rows * qDim);
    // the residuals are added by the output projections' epilogues (attnOut and out are distinct from their inputs)
    this.attention.forward(normed, kv, batch, tq, kvTokens, attnOut, s, probs, this.useQueryResidual ? hidden : undefined);

    this.layernorm.forward(attnOut, rows, normed);
    this.mlp.forward(normed, rows, out, s, attnOut);
  }
}
