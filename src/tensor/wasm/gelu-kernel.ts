/**
 * GELU in WebAssembly (the exact erf form), generated as bytes like the GEMM kernel and in the same module, so it
 * runs on the result block of `linear` in place (gemm.ts's linearGelu), on any thread of the pool. The arithmetic
 * is the TypeScript `gelu`'s, operation for operation: v = x·√½, erf from the same table of degree-8 expansions
 * (activations.ts ERF_TABLE, copied into wasm memory by the driver) evaluated in the same Estrin order, then
 * 0.5·x·(1 + erf) rounded once to float32. Results are bit-identical to `gelu` (tested).
 */
import { ERF_TABLE } from "../activations.js";
import { Code, F64, I32 } from "./assembler.js";

/** Bytes of the erf table the driver writes into wasm memory. */
export const ERF_TABLE_BYTES = ERF_TABLE.coefficients.length * 8;

// gelu(p, rows, cols, ld, table): x [rows, cols] float32 at byte address p, row stride ld bytes
//   -> x = 0.5·x·(1 + erf(x·√½)) in place; table: byte address of ERF_TABLE.coefficients (float64)
export function geluCode(): Code {
  const P = { p: 0, rows: 1, cols: 2, ld: 3, table: 4 };
  const { grid, degree, max } = ERF_TABLE;
  const stride = (degree + 1) * 8; // bytes per expansion
  const last = max * grid; // index of the last grid point
  if (degree !== 8) throw new Error("geluCode: the Estrin evaluation below is written for degree 8");
  const f = new Code([I32, I32, I32, I32, I32]);
  const r = f.local(I32), row = f.local(I32), q = f.local(I32), end = f.local(I32), i = f.local(I32), c = f.local(I32);
  const x = f.local(F64), v = f.local(F64), ax = f.local(F64), d = f.local(F64), d2 = f.local(F64), d4 = f.local(F64);
  const e = f.local(F64);
  const coef = (k: number) => f.get(c).f64Load(8 * k);

  f.get(P.p).set(row);
  f.i32Const(0).set(r);
  f.block().loop();
  f.get(r).get(P.rows).i32GeU().brIf(1);
  f.get(row).get(P.cols).i32Const(2).i32Shl().i32Add().set(end);
  f.get(row).set(q);
  f.block().loop();
  f.get(q).get(end).i32GeU().brIf(1);
  {
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
    // ((c0 + d·c1) + d2·(c2 + d·c3)) + d4·(((c4 + d·c5) + d2·(c6 + d·c7)) + d4·c8)
    coef(0); f.get(d); coef(1); f.f64Mul().f64Add();
    f.get(d2); coef(2); f.get(d); coef(3); f.f64Mul().f64Add().f64Mul().f64Add();
    f.get(d4);
    coef(4); f.get(d); coef(5); f.f64Mul().f64Add();
    f.get(d2); coef(6); f.get(d); coef(7); f.f64Mul().f64Add().f64Mul().f64Add();
    f.get(d4); coef(8); f.f64Mul().f64Add();
    f.f64Mul().f64Add();
    // |v| >= max: erf = 1; then the sign of v
    f.set(e);
    f.f64Const(1).get(e).get(ax).f64Const(max).f64Ge().select().get(v).f64Copysign().set(e);
    f.get(q);
    f.f64Const(0.5).get(x).f64Mul().f64Const(1).get(e).f64Add().f64Mul().f32DemoteF64().f32Store();
  }
  f.get(q).i32Const(4).i32Add().set(q);
  f.br(0);
  f.end().end();
  f.get(row).get(P.ld).i32Add().set(row);
  f.get(r).i32Const(1).i32Add().set(r);
  f.br(0);
  f.end().end();
  return f;
}
