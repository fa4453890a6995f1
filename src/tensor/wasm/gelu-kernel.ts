/**
 * GELU in WebAssembly (the exact erf form), generated as bytes like the GEMM kernel and in the same module, so it
 * runs on the result block of `linear` in place (gemm.ts's linearGelu), on any thread of the pool. The arithmetic
 * is the TypeScript `gelu`'s, operation for operation: v = x·√½, erf from the same table of degree-8 expansions
 * (activations.ts ERF_TABLE, copied into wasm memory by the driver) evaluated in the same Estrin order, then
 * 0.5·x·(1 + erf) rounded once to float32. Results are bit-identical to `gelu` (tested, special values too).
 * Four floats per step as two float64x2 halves (each lane still gathers its own expansion's 9 coefficients).
 */
import { ERF_TABLE } from "../activations.js";
import { Code, F64, I32, V128, lanes32 } from "./assembler.js";
import { emitRowEnds, emitRowSweep } from "./row-loop.js";

/** Bytes of the erf table the driver writes into wasm memory. */
export const ERF_TABLE_BYTES = ERF_TABLE.coefficients.length * 8;

// gelu(p, rows, cols, ld, table): x [rows, cols] float32 at byte address p, row stride ld bytes
//   -> x = 0.5·x·(1 + erf(x·√½)) in place; table: byte address of ERF_TABLE.coefficients (float64)
// Four floats at a time as two float64x2 halves (each lane gathers its own expansion's coefficients), the row's
// last cols % 4 one at a time; both paths are the scalar arithmetic lane by lane (bit-identical, tested).
export function geluCode(): Code {
  const P = { p: 0, rows: 1, cols: 2, ld: 3, table: 4 };
  const { grid, degree, max } = ERF_TABLE;
  const stride = (degree + 1) * 8; // bytes per expansion
  const last = max * grid; // index of the last grid point
  if (degree !== 8) throw new Error("geluCode: the Estrin evaluation below is written for degree 8");
  const f = new Code([I32, I32, I32, I32, I32]);
  const r = f.local(I32), row = f.local(I32), q = f.local(I32), end = f.local(I32), end4 = f.local(I32);
  const i = f.local(I32), c = f.local(I32), c1 = f.local(I32);
  const x = f.local(F64), v = f.local(F64), ax = f.local(F64), d = f.local(F64), d2 = f.local(F64), d4 = f.local(F64);
  const e = f.local(F64);
  const xs = f.local(V128), lo = f.local(V128);
  const vx = f.local(V128), vv = f.local(V128), vax = f.local(V128), vi = f.local(V128), vd = f.local(V128);
  const vd2 = f.local(V128), vd4 = f.local(V128), ve = f.local(V128);

  /** ((c0 + d·c1) + d2·(c2 + d·c3)) + d4·(((c4 + d·c5) + d2·(c6 + d·c7)) + d4·c8), as erfFast; mul/add: the lane type's */
  const estrin = (coef: (k: number) => void, d: number, d2: number, d4: number, mul: () => void, add: () => void) => {
    coef(0); f.get(d); coef(1); mul(); add();
    f.get(d2); coef(2); f.get(d); coef(3); mul(); add(); mul(); add();
    f.get(d4);
    coef(4); f.get(d); coef(5); mul(); add();
    f.get(d2); coef(6); f.get(d); coef(7); mul(); add(); mul(); add();
    f.get(d4); coef(8); mul(); add();
    mul(); add();
  };

  /** the float64x2 lanes of `vx` -> gelu of each lane (float64x2) on the stack */
  const gelu2 = () => {
    f.get(vx).f64x2Const(Math.SQRT1_2).f64x2Mul().set(vv);
    f.get(vv).f64x2Abs().set(vax);
    // i = min(trunc(ax·grid + 0.5), last) per lane (NaN -> 0), in i32 lanes 0 and 1
    f.get(vax).f64x2Const(grid).f64x2Mul().f64x2Const(0.5).f64x2Add().i32x4TruncSatF64x2SZero();
    f.i32x4Const(last).i32x4MinS().set(vi);
    f.get(vax).get(vi).f64x2ConvertLowI32x4S().f64x2Const(1 / grid).f64x2Mul().f64x2Sub().set(vd);
    f.get(P.table).get(vi).i32x4ExtractLane(0).i32Const(stride).i32Mul().i32Add().set(c);
    f.get(P.table).get(vi).i32x4ExtractLane(1).i32Const(stride).i32Mul().i32Add().set(c1);
    f.get(vd).get(vd).f64x2Mul().set(vd2);
    f.get(vd2).get(vd2).f64x2Mul().set(vd4);
    // coefficient k of lane 0's expansion and of lane 1's
    estrin((k) => f.get(c1).get(c).v128Load64Splat(8 * k).v128Load64Lane(8 * k, 1), vd, vd2, vd4,
      () => f.f64x2Mul(), () => f.f64x2Add());
    f.set(ve);
    // |v| >= max: erf = 1; then the sign of v (f64.copysign is this bit select)
    f.f64x2Const(1).get(ve).get(vax).f64x2Const(max).f64x2Ge().v128Bitselect().set(ve);
    f.get(vv).get(ve).f64x2Const(-0).v128Bitselect().set(ve); // the sign bit of v, the rest of e
    f.f64x2Const(0.5).get(vx).f64x2Mul().f64x2Const(1).get(ve).f64x2Add().f64x2Mul();
  };

  f.get(P.p).set(row);
  f.i32Const(0).set(r);
  f.block().loop();
  f.get(r).get(P.rows).i32GeU().brIf(1);
  emitRowEnds(f, row, P.cols, end, end4);
  f.get(row).set(q);
  emitRowSweep(f, q, end4, end, () => {
    // four at a time
    f.get(q).v128Load().set(xs);
    f.get(xs).f64x2PromoteLowF32x4().set(vx);
    gelu2();
    f.f32x4DemoteF64x2Zero().set(lo);
    f.get(xs).get(xs).i8x16Shuffle(lanes32(2, 3, 2, 3)).f64x2PromoteLowF32x4().set(vx);
    f.get(q);
    f.get(lo);
    gelu2();
    f.f32x4DemoteF64x2Zero();
    f.i8x16Shuffle(lanes32(0, 1, 4, 5)).v128Store();
  }, () => {
    // the rest one at a time
    f.get(q).f32Load().f64PromoteF32().set(x);
    f.get(x).f64Const(Math.SQRT1_2).f64Mul().set(v);
    f.get(v).f64Abs().set(ax);
    // i = min((ax·grid + 0.5) | 0, last); NaN -> 0 (then d is NaN and so is the result, as in erfFast)
    f.get(ax).f64Const(grid).f64Mul().f64Const(0.5).f64Add().i32TruncSatF64S().set(i);
    f.get(i).i32Const(last).get(i).i32Const(last).i32LtS().select().set(i);
    f.get(ax).get(i).f64ConvertI32S().f64Const(1 / grid).f64Mul().f64Sub().set(d);
    f.get(P.table).get(i).i32Const(stride).i32Mul().i32Add().set(c);
    f.get(d).get(d).f64Mul().set(d2);
    f.get(d2).get(d2).f64Mul().set(d4);
    estrin((k) => f.get(c).f64Load(8 * k), d, d2, d4, () => f.f64Mul(), () => f.f64Add());
    // |v| >= max: erf = 1; then the sign of v
    f.set(e);
    f.f64Const(1).get(e).get(ax).f64Const(max).f64Ge().select().get(v).f64Copysign().set(e);
    f.get(q);
    f.f64Const(0.5).get(x).f64Mul().f64Const(1).get(e).f64Add().f64Mul().f32DemoteF64().f32Store();
  });
  f.get(row).get(P.ld).i32Add().set(row);
  f.get(r).i32Const(1).i32Add().set(r);
  f.br(0);
  f.end().end();
  return f;
}
