/**
 * Row softmax in WebAssembly SIMD, generated as bytes like the GEMM kernel (it lives in the same module, so it
 * runs on the GEMM's result block in place, on any thread of the pool). The arithmetic of the TypeScript
 * `softmaxRows` and of torch's float32 softmax: the row max m (0 for a row of -inf), e = exp(x - m) computed in
 * float32 four lanes at a time, the row sum of the e's in float64, then x = float32(e · (1/sum)).
 * exp is Cephes' expf, inlined in the loop: t = max(x - m, -87.3), k = round(t·log2 e), r = t - k·ln2 (ln2 split
 * in a part exact in k·ln2 and a remainder), exp(r) ≈ 1 + r + r²·P(r) with P Cephes' degree-5 minimax
 * polynomial, times 2^k built from its exponent bits; lanes with x - m < -87.3 give exactly 0 (exp there is below
 * 1.2e-38, and a probability that small is lost against the row's 1). Within a few float32 ulps of Math.exp(x - m)
 * rounded to float32 (tested); x - m itself is rounded to float32 first, as in torch.
 * For speed: f32x4.pmax (one maxps) instead of f32x4.max (a NaN-exact sequence of about seven instructions, in the
 * max sweep's dependency chain), rounding by adding 1.5·2^23 instead of f32x4.nearest + i32x4.trunc_sat,
 * constants in locals, two float64 sums; the exp in float32, four lanes at a time, needs about a quarter of the
 * instructions of a float64 one (the model takes about 100M exponentials per image).
 */
import { Code, F32, F64, I32, V128, lanes32 } from "./assembler.js";
import { emitRowEnds, emitRowSweep } from "./row-loop.js";

/** Cephes expf: ln 2 = EXP_C1 + EXP_C2, EXP_C1 = 355/512 (k·EXP_C1 is exact in float32 for |k| < 2^15). */
const EXP_C1 = 0.693359375;
const EXP_C2 = -2.12194440e-4;
/** Cephes expf's polynomial: exp(r) ≈ 1 + r + r²·(P0·r⁵ + ... + P5), |r| <= ln2/2 */
const EXP_P = [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1];
/** Arguments below this give exp = 0 (exp(-87.3) ≈ 1.3e-38, just above float32's smallest normal 2^-126). */
export const EXP_F32_MIN = -87.3;
/** 1.5·2^23: float32 x + ROUND_MAGIC is x rounded to an integer, held in the low mantissa bits (|x| < 2^22). */
const ROUND_MAGIC = 12582912;

// softmax(p, rows, cols, ld): x [rows, cols] float32 at byte address p, row stride ld bytes -> softmax of each
//   row, in place
export function softmaxCode(): Code {
  const P = { p: 0, rows: 1, cols: 2, ld: 3 };
  const f = new Code([I32, I32, I32, I32]);
  const r = f.local(I32), row = f.local(I32), q = f.local(I32), end4 = f.local(I32), end = f.local(I32);
  const m = f.local(F32), tail = f.local(F64), inv = f.local(F64), e = f.local(F32);
  const mx = f.local(V128), mv = f.local(V128), sum = f.local(V128), v = f.local(V128);
  const invv = f.local(V128), negInf = f.local(I32);
  const sum2 = f.local(V128), xv = f.local(V128);
  const ex = expLocals(f);
  /** runs body with q stepping over the row's 4-float groups, then tailBody over the last cols % 4 floats */
  const sweep = (body: () => void, tailBody: () => void) => {
    f.get(row).set(q);
    emitRowSweep(f, q, end4, end, body, tailBody);
  };

  f.get(P.p).set(row);
  f.i32Const(0).set(r);
  f.block().loop();
  f.get(r).get(P.rows).i32GeU().brIf(1);
  {
    emitRowEnds(f, row, P.cols, end, end4);

    // 1. row max (a row of -inf gets 0, so exp stays finite: NaN only where torch gives NaN too)
    f.f32Const(-Infinity).f32x4Splat().set(mx);
    f.f32Const(-Infinity).set(m);
    sweep(
      () => f.get(mx).get(q).v128Load().f32x4Pmax().set(mx), // a NaN is skipped here, as in softmaxRows
      () => f.get(m).get(q).f32Load().f32Max().set(m),
    );
    for (let l = 0; l < 4; l++) f.get(m).get(mx).f32x4ExtractLane(l).f32Max().set(m);
    f.get(m).f32Const(-Infinity).f32Eq().set(negInf);
    f.f32Const(0).get(m).get(negInf).select().set(m);
    f.get(m).f32x4Splat().set(mv);

    // 2. e = exp(x - m) in float32, stored; summed in float64
    f.f64Const(0).f64x2Splat().set(sum);
    f.f64Const(0).f64x2Splat().set(sum2);
    f.f64Const(0).set(tail);
    sweep(() => {
      f.get(q).v128Load().get(mv).f32x4Sub().set(xv);
      emitExpF32Lanes(f, xv, ex);
      f.set(v);
      f.get(q).get(v).v128Store();
      f.get(sum).get(v).f64x2PromoteLowF32x4().f64x2Add().set(sum);
      f.get(sum2).get(v).get(v).i8x16Shuffle(lanes32(2, 3, 2, 3)).f64x2PromoteLowF32x4().f64x2Add().set(sum2);
    }, () => {
      // (a second copy of the inlined exp: one copy with a branch per group is slower)
      f.get(q).v128Load32Splat().get(mv).f32x4Sub().set(xv);
      emitExpF32Lanes(f, xv, ex);
      f.f32x4ExtractLane(0).set(e);
      f.get(q).get(e).f32Store();
      f.get(tail).get(e).f64PromoteF32().f64Add().set(tail);
    });

    // 3. x = float32(e · (1/sum))
    // (a row of -inf: exp(-inf) = 0 everywhere, 1/0 · 0 = NaN, as in softmaxRows and torch)
    f.f64Const(Number.NaN);
    f.f64Const(1).get(sum).get(sum2).f64x2Add().set(sum).get(sum).f64x2ExtractLane(0).get(sum).f64x2ExtractLane(1).f64Add().get(tail).f64Add().f64Div();
    f.get(negInf).select().set(inv);
    f.get(inv).f64x2Splat().set(invv);
    sweep(() => {
      f.get(q).v128Load().set(v);
      f.get(q);
      f.get(v).f64x2PromoteLowF32x4().get(invv).f64x2Mul().f32x4DemoteF64x2Zero();
      f.get(v).get(v).i8x16Shuffle(lanes32(2, 3, 2, 3)).f64x2PromoteLowF32x4().get(invv).f64x2Mul().f32x4DemoteF64x2Zero();
      f.i8x16Shuffle(lanes32(0, 1, 4, 5)).v128Store();
    }, () => {
      f.get(q).get(q).f32Load().f64PromoteF32().get(inv).f64Mul().f32DemoteF64().f32Store();
    });
  }
  f.get(row).get(P.ld).i32Add().set(row);
  f.get(r).i32Const(1).i32Add().set(r);
  f.br(0);
  f.end().end();
  return f;
}

interface ExpLocals {
  /** v128 constants: EXP_F32_MIN, LOG2E, ROUND_MAGIC, EXP_C1, EXP_C2, EXP_P..., 1 (f32x4) and 127 (i32x4) */
  min: number; log2e: number; magic: number; c1: number; c2: number; p: number[]; one: number; bias: number;
  /** scratch */
  t: number; k: number; r: number;
}

/**
 * Locals for emitExpF32Lanes, its constants set once here (emit at the start of the function) instead of a
 * v128.const at each use inside the loop.
 */
function expLocals(f: Code): ExpLocals {
  // f32.const + splat: 8 bytes less than a v128.const each
  const c = (v: number) => { const l = f.local(V128); f.f32Const(v).f32x4Splat().set(l); return l; };
  const e: ExpLocals = {
    min: c(EXP_F32_MIN), log2e: c(Math.LOG2E), magic: c(ROUND_MAGIC), c1: c(EXP_C1), c2: c(EXP_C2),
    p: EXP_P.map(c), one: c(1), bias: f.local(V128), t: f.local(V128), k: f.local(V128), r: f.local(V128),
  };
  f.i32x4Const(127).set(e.bias);
  return e;
}

/** Emits exp of the four float32 lanes of local x (the algorithm of the header), leaving the result on the stack. */
function emitExpF32Lanes(f: Code, x: number, e: ExpLocals): void {
  const { t, k, r } = e;
  f.get(x).get(e.min).f32x4Pmax().set(t); // pmax(x, min) = x < min ? min : x keeps a NaN x
  // y = t·log2 e + ROUND_MAGIC: adding 1.5·2^23 rounds to the nearest integer (ties to even, as f32x4.nearest),
  // so k = y - ROUND_MAGIC exactly, and y's low mantissa bits hold k: 2^k = (bits(y) + 127) << 23 (the bits of
  // the magic itself shift out). Cheaper than nearest + i32x4.trunc_sat, same k.
  f.get(t).get(e.log2e).f32x4Mul().get(e.magic).f32x4Add().set(k);
  f.get(t).get(k).get(e.magic).f32x4Sub().tee(r).get(e.c1).f32x4Mul().f32x4Sub()
    .get(r).get(e.c2).f32x4Mul().f32x4Sub().set(r);
  f.get(e.p[0]);
  for (let i = 1; i < EXP_P.length; i++) f.get(r).f32x4Mul().get(e.p[i]).f32x4Add();
  f.get(r).f32x4Mul().get(r).f32x4Mul().get(r).f32x4Add().get(e.one).f32x4Add();
  // 2^k: (k + 127) << 23 as float32 bits (k >= -126 after the clamp)
  f.get(k).get(e.bias).i32x4Add().i32Const(23).i32x4Shl();
  f.f32x4Mul();
  // exactly 0 where x < EXP_F32_MIN (the clamp made those lanes finite)
  f.get(x).get(e.min).f32x4Lt().v128AndNot();
}
