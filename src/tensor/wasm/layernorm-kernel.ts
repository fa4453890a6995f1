/**
 * Layer norm in WebAssembly, generated as bytes like the GEMM kernel and in the same module, so rows staged in wasm
 * memory are normalized there, split by rows across the pool's threads (gemm-wasm.ts layerNormWasm). The
 * arithmetic is the TypeScript `layerNorm`'s, operation for operation and in the same order (scalar float64: the
 * row sum, mean, the sum of squared deviations, 1/sqrt(var + eps), then ((x - mean)·inv)·weight + bias rounded
 * once to float32), so results are bit-identical to it (tested).
 */
import { Code, F64, I32 } from "./assembler.js";

// layernorm(p, rows, dim, weight, bias, eps): x [rows, dim] float32 at byte address p (rows contiguous)
//   -> x = (x - mean) / sqrt(var_biased + eps) · weight + bias, in place; weight, bias [dim] float32 byte addresses
export function layerNormCode(): Code {
  const P = { p: 0, rows: 1, dim: 2, weight: 3, bias: 4, eps: 5 };
  const f = new Code([I32, I32, I32, I32, I32, F64]);
  const r = f.local(I32), row = f.local(I32), q = f.local(I32), end = f.local(I32), wq = f.local(I32), bq = f.local(I32);
  const sum = f.local(F64), mean = f.local(F64), d = f.local(F64), inv = f.local(F64), n = f.local(F64);
  /** q over the row's floats */
  const sweep = (body: () => void) => {
    f.get(row).set(q);
    f.block().loop();
    f.get(q).get(end).i32GeU().brIf(1);
    body();
    f.get(q).i32Const(4).i32Add().set(q);
    f.br(0);
    f.end().end();
  };

  f.get(P.dim).f64ConvertI32S().set(n);
  f.get(P.p).set(row);
  f.i32Const(0).set(r);
  f.block().loop();
  f.get(r).get(P.rows).i32GeU().brIf(1);
  f.get(row).get(P.dim).i32Const(2).i32Shl().i32Add().set(end);
  // mean
  f.f64Const(0).set(sum);
  sweep(() => f.get(sum).get(q).f32Load().f64PromoteF32().f64Add().set(sum));
  f.get(sum).get(n).f64Div().set(mean);
  // 1 / sqrt(sum of squared deviations / dim + eps)
  f.f64Const(0).set(sum);
  sweep(() => {
    f.get(q).f32Load().f64PromoteF32().get(mean).f64Sub().set(d);
    f.get(sum).get(d).get(d).f64Mul().f64Add().set(sum);
  });
  f.f64Const(1).get(sum).get(n).f64Div().get(P.eps).f64Add().f64Sqrt().f64Div().set(inv);
  // x = ((x - mean)·inv)·weight + bias
  f.get(P.weight).set(wq);
  f.get(P.bias).set(bq);
  sweep(() => {
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
