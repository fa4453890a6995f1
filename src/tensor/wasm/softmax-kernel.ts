/**
 * Row softmax in WebAssembly SIMD, generated as bytes like the GEMM kernel (it lives in the same module, so it
 * runs on the GEMM's result block in place, on any thread of the pool). The arithmetic of the TypeScript
 * `softmaxRows` and of torch's float32 softmax: the row max m (0 for a row of -inf), e = exp(x - m) computed in
 * float32 four lanes at a time, the row sum of the e's in float64, then x = float32(e · (1/sum)).
 * exp (expF32Lanes) is Cephes' expf: t = max(x - m, -87.3), k = round(t·log2 e), r = t - k·ln2 (ln2 split in a
 * part exact in k·ln2 and a remainder), exp(r) ≈ 1 + r + r²·P(r) with P Cephes' degree-5 minimax polynomial, times
 * 2^k built from its exponent bits; lanes with x - m < -87.3 give exactly 0 (exp there is below 1.2e-38, and a
 * probability that small is lost against the row's 1). Within a few float32 ulps of Math.exp(x - m) rounded to
 * float32 (tested); x - m itself is rounded to float32 first, as in torch.
 * (Until this kernel the exp ran in float64 with a degree-12 polynomial: 1.2 s of a 19 s single-thread forward
 * pass in `node --cpu-prof`, for 100M exponentials; four float32 lanes need about a quarter of the instructions.)
 */
import { Code, F32, F64, I32, V128, lanes32 } from "./assembler.js";

/** Cephes expf: ln 2 = EXP_C1 + EXP_C2, EXP_C1 = 355/512 (k·EXP_C1 is exact in float32 for |k| < 2^15). */
const EXP_C1 = 0.693359375;
const EXP_C2 = -2.12194440e-4;
/** Cephes expf's polynomial: exp(r) ≈ 1 + r + r²·(P0·r⁵ + ... + P5), |r| <= ln2/2 */
const EXP_P = [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1];
/** Arguments below this give exp = 0 (exp(-87.3) ≈ 1.3e-38, just above float32's smallest normal 2^-126). */
export const EXP_F32_MIN = -87.3;

// softmax(p, rows, cols, ld): x [rows, cols] float32 at byte address p, row stride ld bytes -> softmax of each
//   row, in place
//   (expIndex: the module's index of expF32LanesCode)
export function softmaxCode(expIndex: number): Code {
  const P = { p: 0, rows: 1, cols: 2, ld: 3 };
  const f = new Code([I32, I32, I32, I32]);
  const r = f.local(I32), row = f.local(I32), q = f.local(I32), end4 = f.local(I32), end = f.local(I32);
  const m = f.local(F32), tail = f.local(F64), inv = f.local(F64), e = f.local(F32);
  const mx = f.local(V128), mv = f.local(V128), sum = f.local(V128), v = f.local(V128);
  const invv = f.local(V128), negInf = f.local(I32);
  /** runs body with q stepping over the row's 4-float groups, then tailBody over the last cols % 4 floats */
  const sweep = (body: () => void, tailBody: () => void) => {
    f.get(row).set(q);
    f.block().loop();
    f.get(q).get(end4).i32GeU().brIf(1);
    body();
    f.get(q).i32Const(16).i32Add().set(q);
    f.br(0);
    f.end().end();
    f.block().loop();
    f.get(q).get(end).i32GeU().brIf(1);
    tailBody();
    f.get(q).i32Const(4).i32Add().set(q);
    f.br(0);
    f.end().end();
  };

  f.get(P.p).set(row);
  f.i32Const(0).set(r);
  f.block().loop();
  f.get(r).get(P.rows).i32GeU().brIf(1);
  {
    f.get(row).get(P.cols).i32Const(2).i32Shl().i32Add().set(end);
    f.get(row).get(P.cols).i32Const(-4).i32And().i32Const(2).i32Shl().i32Add().set(end4);

    // 1. row max (a row of -inf gets 0, so exp stays finite: NaN only where torch gives NaN too)
    f.f32Const(-Infinity).f32x4Splat().set(mx);
    f.f32Const(-Infinity).set(m);
    sweep(
      () => f.get(mx).get(q).v128Load().f32x4Max().set(mx),
      () => f.get(m).get(q).f32Load().f32Max().set(m),
    );
    for (let l = 0; l < 4; l++) f.get(m).get(mx).f32x4ExtractLane(l).f32Max().set(m);
    f.get(m).f32Const(-Infinity).f32Eq().set(negInf);
    f.f32Const(0).get(m).get(negInf).select().set(m);
    f.get(m).f32x4Splat().set(mv);

    // 2. e = exp(x - m) in float32, stored; summed in float64
    f.f64Const(0).f64x2Splat().set(sum);
    f.f64Const(0).set(tail);
    sweep(() => {
      f.get(q).v128Load().get(mv).f32x4Sub().call(expIndex).set(v);
      f.get(q).get(v).v128Store();
      f.get(sum).get(v).f64x2PromoteLowF32x4().f64x2Add();
      f.get(v).get(v).i8x16Shuffle(lanes32(2, 3, 2, 3)).f64x2PromoteLowF32x4().f64x2Add().set(sum);
    }, () => {
      f.get(q).v128Load32Splat().get(mv).f32x4Sub().call(expIndex).f32x4ExtractLane(0).set(e);
      f.get(q).get(e).f32Store();
      f.get(tail).get(e).f64PromoteF32().f64Add().set(tail);
    });

    // 3. x = float32(e · (1/sum))
    // (a row of -inf: exp(-inf) = 0 everywhere, 1/0 · 0 = NaN, as in softmaxRows and torch)
    f.f64Const(Number.NaN);
    f.f64Const(1).get(sum).f64x2ExtractLane(0).get(sum).f64x2ExtractLane(1).f64Add().get(tail).f64Add().f64Div();
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

// expF32Lanes(x) -> exp of the four float32 lanes of x (see the header; 0 below EXP_F32_MIN, NaN stays NaN)
export function expF32LanesCode(): Code {
  const f = new Code([V128], [V128]);
  const t = f.local(V128), k = f.local(V128), r = f.local(V128);
  f.get(0).f32x4Const(EXP_F32_MIN).f32x4Max().set(t); // max propagates NaN
  f.get(t).f32x4Const(Math.LOG2E).f32x4Mul().f32x4Nearest().set(k);
  f.get(t).get(k).f32x4Const(EXP_C1).f32x4Mul().f32x4Sub().get(k).f32x4Const(EXP_C2).f32x4Mul().f32x4Sub().set(r);
  f.f32x4Const(EXP_P[0]);
  for (let i = 1; i < EXP_P.length; i++) f.get(r).f32x4Mul().f32x4Const(EXP_P[i]).f32x4Add();
  f.get(r).f32x4Mul().get(r).f32x4Mul().get(r).f32x4Add().f32x4Const(1).f32x4Add();
  // 2^k: (k + 127) << 23 as float32 bits (k >= -126 after the clamp)
  f.get(k).i32x4TruncSatF32x4S().i32x4Const(127).i32x4Add().i32Const(23).i32x4Shl();
  f.f32x4Mul();
  // exactly 0 where x < EXP_F32_MIN (the clamp made those lanes finite)
  f.get(0).f32x4Const(EXP_F32_MIN).f32x4Lt().v128AndNot();
  return f;
}
