/**
 * Layer norm in WebAssembly SIMD, generated as bytes like the GEMM kernel and in the same module, so rows staged
 * in wasm memory are normalized there, split by rows across the pool's threads (gemm-wasm.ts layerNormWasm). The
 * arithmetic is the TypeScript `layerNorm`'s, operation for operation and in the same order, so results are
 * bit-identical to it (tested): float64 throughout; the row sum and the sum of squared deviations as two float64x2
 * sums over groups of 4 floats (lanes 0,1 and 2,3: the TypeScript s0..s3), combined (s0 + s2) + (s1 + s3), then
 * the last dim % 4 elements in order; mean, 1/sqrt(var + eps), then ((x - mean)·inv)·weight + bias rounded once to
 * float32, two lanes at a time. The two float64x2 sums break what would otherwise be one long chain of dependent
 * adds.
 */
import { Code, F64, I32, V128, lanes32 } from "./assembler.js";
import { emitRowEnds, emitRowSweep } from "./row-loop.js";

// layernorm(p, rows, dim, weight, bias, eps): x [rows, dim] float32 at byte address p (rows contiguous)
//   -> x = (x - mean) / sqrt(var_biased + eps) · weight + bias, in place; weight, bias [dim] float32 byte addresses
export function layerNormCode(): Code {
  const P = { p: 0, rows: 1, dim: 2, weight: 3, bias: 4, eps: 5 };
  const f = new Code([I32, I32, I32, I32, I32, F64]);
  const r = f.local(I32), row = f.local(I32), q = f.local(I32), end = f.local(I32), end4 = f.local(I32);
  const wq = f.local(I32), bq = f.local(I32);
  const sum = f.local(F64), mean = f.local(F64), d = f.local(F64), inv = f.local(F64), n = f.local(F64);
  const v = f.local(V128), lo = f.local(V128), hi = f.local(V128), sa = f.local(V128), sb = f.local(V128);
  const meanv = f.local(V128), invv = f.local(V128), wv = f.local(V128), bv = f.local(V128);
  const HIGH = lanes32(2, 3, 2, 3);
  /** q over the row's groups of 4 floats, then `between`, then q over the last dim % 4 */
  const sweep = (group: () => void, tail: () => void, between?: () => void) => {
    f.get(row).set(q);
    emitRowSweep(f, q, end4, end, group, tail, between);
  };
  /** sum = the groups' (s0 + s2) + (s1 + s3), of sa = (s0, s1), sb = (s2, s3) */
  const combine = () => {
    f.get(sa).get(sb).f64x2Add().set(sa);
    f.get(sa).f64x2ExtractLane(0).get(sa).f64x2ExtractLane(1).f64Add().set(sum);
  };
  /** lo, hi = the float64 lanes 0,1 and 2,3 of the 4 floats at address (on the stack) */
  const load4 = () => {
    f.v128Load().set(v);
    f.get(v).f64x2PromoteLowF32x4().set(lo);
    f.get(v).get(v).i8x16Shuffle(HIGH).f64x2PromoteLowF32x4().set(hi);
  };
  const zeroSums = () => f.f64Const(0).f64x2Splat().tee(sa).set(sb);

  f.get(P.dim).f64ConvertI32S().set(n);
  f.get(P.p).set(row);
  f.i32Const(0).set(r);
  f.block().loop();
  f.get(r).get(P.rows).i32GeU().brIf(1);
  emitRowEnds(f, row, P.dim, end, end4);
  // mean
  zeroSums();
  sweep(() => {
    f.get(q); load4();
    f.get(sa).get(lo).f64x2Add().set(sa);
    f.get(sb).get(hi).f64x2Add().set(sb);
  }, () => f.get(sum).get(q).f32Load().f64PromoteF32().f64Add().set(sum), combine);
  f.get(sum).get(n).f64Div().set(mean);
  f.get(mean).f64x2Splat().set(meanv);
  // 1 / sqrt(sum of squared deviations / dim + eps)
  zeroSums();
  sweep(() => {
    f.get(q); load4();
    f.get(lo).get(meanv).f64x2Sub().tee(lo).get(lo).f64x2Mul().get(sa).f64x2Add().set(sa);
    f.get(hi).get(meanv).f64x2Sub().tee(hi).get(hi).f64x2Mul().get(sb).f64x2Add().set(sb);
  }, () => {
    f.get(q).f32Load().f64PromoteF32().get(mean).f64Sub().set(d);
    f.get(sum).get(d).get(d).f64Mul().f64Add().set(sum);
  }, combine);
  f.f64Const(1).get(sum).get(n).f64Div().get(P.eps).f64Add().f64Sqrt().f64Div().set(inv);
  f.get(inv).f64x2Splat().set(invv);
  // x = ((x - mean)·inv)·weight + bias
  f.get(P.weight).set(wq);
  f.get(P.bias).set(bq);
  sweep(() => {
    f.get(wq).v128Load().set(wv);
    f.get(bq).v128Load().set(bv);
    f.get(q);
    f.get(q); load4();
    f.get(lo).get(meanv).f64x2Sub().get(invv).f64x2Mul().get(wv).f64x2PromoteLowF32x4().f64x2Mul()
      .get(bv).f64x2PromoteLowF32x4().f64x2Add().f32x4DemoteF64x2Zero();
    f.get(hi).get(meanv).f64x2Sub().get(invv).f64x2Mul().get(wv).get(wv).i8x16Shuffle(HIGH).f64x2PromoteLowF32x4().f64x2Mul()
      .get(bv).get(bv).i8x16Shuffle(HIGH).f64x2PromoteLowF32x4().f64x2Add().f32x4DemoteF64x2Zero();
    f.i8x16Shuffle(lanes32(0, 1, 4, 5)).v128Store();
    f.get(wq).i32Const(16).i32Add().set(wq);
    f.get(bq).i32Const(16).i32Add().set(bq);
  }, () => {
    f.get(q);
    f.get(q).f32Load().f64PromoteF32().get(mean).f64Sub().get(inv).f64Mul();
    f.get(wq).f32Load().f64PromoteF32().f64Mul();
    f.get(bq).f32Load().f64PromoteF32().f64Add();
    f.f32DemoteF64().f32Store();
    f.get(wq).i32Const(4).i32Add().set(wq);
    f.get(bq).i32Const(4).i32Add().set(bq);
  });
  f.get(end).set(row);
  f.get(r).i32Const(1).i32Add().set(r);
  f.br(0);
  f.end().end();
  return f;
}
