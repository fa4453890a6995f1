/**
 * Row softmax in WebAssembly SIMD, generated as bytes like the GEMM kernel (it lives in the same module, so it
 * runs on the GEMM's result block in place, on any thread of the pool). Same arithmetic as the TypeScript
 * `softmaxRows`: the row max m (0 for a row of -inf), e = exp(x - m) in float64, stored as float32, the row sum of
 * the float64 e's, then x = float32(float32(e) · (1/sum)). Only exp differs: here it is computed two lanes at a
 * time as 2^k · p(r), with k = round((x - m)·log2 e), r = (x - m) - k·ln2 (ln2 split in a high part exact in k·ln2
 * and a low part), p the degree-12 Taylor polynomial of exp on |r| <= ln2/2 (truncation < 3e-16 relative), and
 * 2^k built from its exponent bits. Arguments below -708 are clamped there (exp(-708) ≈ 3e-308 rounds to float32
 * 0 like the true value). Within ~1e-15 relative of Math.exp, so the float32 outputs almost always match bit for bit.
 */
import { Code, F32, F64, I32, V128, lanes32 } from "./assembler.js";

/** fdlibm's split of ln 2: LN2_HI has 32 trailing zero bits (k·LN2_HI is exact), LN2_HI + LN2_LO = ln 2. */
const LN2_HI = 6.93147180369123816490e-1;
const LN2_LO = 1.90821492927058770002e-10;
/** 1/n! for n = 0..12 */
const INV_FACT = Array.from({ length: 13 }, (_, n) => {
  let f = 1;
  for (let i = 2; i <= n; i++) f *= i;
  return 1 / f;
});

// softmax(p, rows, cols, ld): x [rows, cols] float32 at byte address p, row stride ld bytes -> softmax of each
//   row, in place
//   (expIndex: the module's index of expLanesCode)
export function softmaxCode(expIndex: number): Code {
  const P = { p: 0, rows: 1, cols: 2, ld: 3 };
  const f = new Code([I32, I32, I32, I32]);
  const r = f.local(I32), row = f.local(I32), q = f.local(I32), end4 = f.local(I32), end = f.local(I32);
  const m = f.local(F32), tail = f.local(F64), inv = f.local(F64), e = f.local(F64);
  const mx = f.local(V128), md = f.local(V128), sum = f.local(V128), v = f.local(V128);
  const lo = f.local(V128), hi = f.local(V128), invv = f.local(V128), negInf = f.local(I32);

  /** local dst (f64x2) = exp(local src (f64x2)), through the module's `expLanes` function */
  const exp = (src: number, dst: number) => {
    f.get(src).call(expIndex).set(dst);
  };
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
    f.get(m).f64PromoteF32().f64x2Splat().set(md);

    // 2. e = exp(x - m): stored as float32, summed in float64
    f.f64Const(0).f64x2Splat().set(sum);
    f.f64Const(0).set(tail);
    sweep(() => {
      f.get(q).v128Load().set(v);
      f.get(v).f64x2PromoteLowF32x4().get(md).f64x2Sub().set(lo);
      exp(lo, lo);
      f.get(v).get(v).i8x16Shuffle(lanes32(2, 3, 2, 3)).f64x2PromoteLowF32x4().get(md).f64x2Sub().set(hi);
      exp(hi, hi);
      f.get(sum).get(lo).f64x2Add().get(hi).f64x2Add().set(sum);
      f.get(q).get(lo).f32x4DemoteF64x2Zero().get(hi).f32x4DemoteF64x2Zero().i8x16Shuffle(lanes32(0, 1, 4, 5)).v128Store();
    }, () => {
      f.get(q).f32Load().f64PromoteF32().get(md).f64x2ExtractLane(0).f64Sub().f64x2Splat().set(lo);
      exp(lo, lo);
      f.get(lo).f64x2ExtractLane(0).set(e);
      f.get(tail).get(e).f64Add().set(tail);
      f.get(q).get(e).f32DemoteF64().f32Store();
    });

    // 3. x = float32(e) · (1/sum)
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

// expLanes(x) -> exp of both float64 lanes of x (see the header; x <= 0 in softmax, clamped at -708)
export function expLanesCode(): Code {
  const f = new Code([V128], [V128]);
  const t = f.local(V128), k = f.local(V128);
  f.get(0).f64x2Const(-708).f64x2Max().set(t);
  f.get(t).f64x2Const(Math.LOG2E).f64x2Mul().f64x2Nearest().set(k);
  f.get(t).get(k).f64x2Const(LN2_HI).f64x2Mul().f64x2Sub().get(k).f64x2Const(LN2_LO).f64x2Mul().f64x2Sub().set(t);
  f.f64x2Const(INV_FACT[12]);
  for (let i = 11; i >= 0; i--) f.get(t).f64x2Mul().f64x2Const(INV_FACT[i]).f64x2Add();
  // 2^k: (k + 1023) << 52 as float64 bits (k >= -1022 after the clamp)
  f.get(k).i32x4TruncSatF64x2SZero().i64x2ExtendLowI32x4S().i64x2Const(1023).i64x2Add().i32Const(52).i64x2Shl();
  f.f64x2Mul();
  return f;
}
