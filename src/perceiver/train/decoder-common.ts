/**
 * The parts of the classification decoder shared by its reference and fast paths: the query side (one query for
 * the whole batch) and the tail after the attention context (output projection, residuals, MLP, final layer).
 *   query side:  a = LN1(q0) [D],  q = Wq·a + bq [C]
 *   tail:        o = Wo·ctx + bo + q0        (use_query_residual)
 *                m = LN(o),  y = MLP(m) + o  (residual),  logits = Wf·y + bf
 * Backward of a residual: the gradient of a sum flows unchanged to both terms (do = dy + d(LN∘MLP path)).
 * `reference` selects the readable loops of every layer (src/layers/grad/*Ref) instead of the GEMM kernels.
 */
import { TORCH_LAYERNORM_EPS } from "../../layers/layernorm.js";
import { layerNormBackward, layerNormBackwardRef, layerNormForward } from "../../layers/grad/layernorm-backward.js";
import { linearBackward, linearBackwardRef, linearForward, linearForwardRef } from "../../layers/grad/linear-backward.js";
import { mlpBackward, mlpForward, type MlpWeights } from "../../layers/grad/mlp-backward.js";
import type { DecoderParams, DecoderShape } from "./decoder-params.js";

export const P = {
  query: "output_position_encodings.position_embeddings",
  ln1w: "decoding_cross_attention.attention.self.layernorm1.weight",
  ln1b: "decoding_cross_attention.attention.self.layernorm1.bias",
  ln2w: "decoding_cross_attention.attention.self.layernorm2.weight",
  ln2b: "decoding_cross_attention.attention.self.layernorm2.bias",
  wq: "decoding_cross_attention.attention.self.query.weight",
  bq: "decoding_cross_attention.attention.self.query.bias",
  wk: "decoding_cross_attention.attention.self.key.weight",
  bk: "decoding_cross_attention.attention.self.key.bias",
  wv: "decoding_cross_attention.attention.self.value.weight",
  bv: "decoding_cross_attention.attention.self.value.bias",
  wo: "decoding_cross_attention.attention.output.dense.weight",
  bo: "decoding_cross_attention.attention.output.dense.bias",
  lnw: "decoding_cross_attention.layernorm.weight",
  lnb: "decoding_cross_attention.layernorm.bias",
  w1: "decoding_cross_attention.mlp.dense1.weight",
  b1: "decoding_cross_attention.mlp.dense1.bias",
  w2: "decoding_cross_attention.mlp.dense2.weight",
  b2: "decoding_cross_attention.mlp.dense2.bias",
  wf: "final_layer.weight",
  bf: "final_layer.bias",
} as const;

const EPS = TORCH_LAYERNORM_EPS;

export interface QuerySide {
  a: Float32Array; // LN1(q0) [D]
  ahat: Float32Array;
  arstd: Float32Array;
  q: Float32Array; // [C]
}

export function queryForward(p: DecoderParams, s: DecoderShape, reference: boolean): QuerySide {
  const D = s.dLatents, C = s.qkChannels;
  const a = new Float32Array(D), ahat = new Float32Array(D), arstd = new Float32Array(1), q = new Float32Array(C);
  layerNormForward(p[P.query], p[P.ln1w], p[P.ln1b], 1, D, EPS, a, ahat, arstd);
  (reference ? linearForwardRef : linearForward)(a, p[P.wq], p[P.bq], 1, D, C, q);
  return { a, ahat, arstd, q };
}

// dq [C] -> grads of Wq, bq, LN1; dq0 [D] receives LN1's input gradient (added)
export function queryBackward(p: DecoderParams, s: DecoderShape, qs: QuerySide, dq: Float32Array, g: DecoderParams, dq0: Float32Array, reference: boolean): void {
  const D = s.dLatents, C = s.qkChannels;
  const da = new Float32Array(D), dx = new Float32Array(D);
  (reference ? linearBackwardRef : linearBackward)(qs.a, p[P.wq], dq, 1, D, C, da, g[P.wq], g[P.bq]);
  (reference ? layerNormBackwardRef : layerNormBackward)(da, qs.ahat, qs.arstd, p[P.ln1w], 1, D, dx, g[P.ln1w], g[P.ln1b]);
  for (let i = 0; i < D; i++) dq0[i] += dx[i];
}

export interface Tail {
  ctx: Float32Array; // [B, Cv]
  o: Float32Array; // [B, D]
  m: Float32Array; // LN(o) [B, D]
  mhat: Float32Array;
  mrstd: Float32Array;
  pre: Float32Array; // MLP pre-activation [B, F]
  act: Float32Array; // gelu(pre) [B, F]
  y: Float32Array; // [B, D]
  logits: Float32Array; // [B, L]
}

function mlpWeights(p: DecoderParams, s: DecoderShape): MlpWeights {
  return { w1: p[P.w1], b1: p[P.b1], w2: p[P.w2], b2: p[P.b2], dim: s.dLatents, hidden: s.widening * s.dLatents };
}

// ctx [B, Cv] -> the tail's activations and logits [B, L]
export function tailForward(p: DecoderParams, s: DecoderShape, ctx: Float32Array, B: number, reference: boolean): Tail {
  const D = s.dLatents, Cv = s.vChannels, F = s.widening * D, L = s.numLabels;
  const lin = reference ? linearForwardRef : linearForward;
  const o = new Float32Array(B * D);
  lin(ctx, p[P.wo], p[P.bo], B, Cv, D, o);
  const q0 = p[P.query];
  for (let b = 0; b < B; b++) for (let i = 0; i < D; i++) o[b * D + i] += q0[i]; // query residual
  const m = new Float32Array(B * D), mhat = new Float32Array(B * D), mrstd = new Float32Array(B);
  layerNormForward(o, p[P.lnw], p[P.lnb], B, D, EPS, m, mhat, mrstd);
  const pre = new Float32Array(B * F), act = new Float32Array(B * F), y = new Float32Array(B * D);
  mlpForward(mlpWeights(p, s), m, B, y, pre, act, reference);
  for (let i = 0; i < B * D; i++) y[i] += o[i]; // residual
  const logits = new Float32Array(B * L);
  lin(y, p[P.wf], p[P.bf], B, D, L, logits);
  return { ctx, o, m, mhat, mrstd, pre, act, y, logits };
}

// dlogits [B, L] -> grads of the tail's parameters; returns dctx [B, Cv]; dq0 [D] receives the query residual's share
export function tailBackward(
  p: DecoderParams, s: DecoderShape, t: Tail, dlogits: Float32Array, B: number, g: DecoderParams, dq0: Float32Array, reference: boolean,
): Float32Array {
  const D = s.dLatents, Cv = s.vChannels, L = s.numLabels;
  const back = reference ? linearBackwardRef : linearBackward;
  const dy = new Float32Array(B * D);
  back(t.y, p[P.wf], dlogits, B, D, L, dy, g[P.wf], g[P.bf]);
  // y = MLP(LN(o)) + o
  const dm = new Float32Array(B * D);
  mlpBackward(mlpWeights(p, s), t.m, t.pre, t.act, dy, B, dm, { w1: g[P.w1], b1: g[P.b1], w2: g[P.w2], b2: g[P.b2] }, reference);
  const dOut = new Float32Array(B * D);
  (reference ? layerNormBackwardRef : layerNormBackward)(dm, t.mhat, t.mrstd, p[P.lnw], B, D, dOut, g[P.lnw], g[P.lnb]);
  for (let i = 0; i < B * D; i++) dOut[i] += dy[i]; // do = dy (residual) + LN∘MLP path
  // o = Wo·ctx + bo + q0
  const dctx = new Float32Array(B * Cv);
  back(t.ctx, p[P.wo], dOut, B, Cv, D, dctx, g[P.wo], g[P.bo]);
  for (let b = 0; b < B; b++) for (let i = 0; i < D; i++) dq0[i] += dOut[b * D + i];
  return dctx;
}
