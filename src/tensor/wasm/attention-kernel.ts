/**
 * Multi-head attention in WebAssembly, one head at a time, from operands already in wasm memory (gemm-wasm.ts
 * attentionWasm stages them): for each block of up to ATTEND_ROWS query rows, the head's scores
 * S = alpha·Q_h·K_hᵀ (the GEMM kernel's `product` on the keys' 4-column panels), softmax over each row in
 * place (`softmax`), then context_h = P·V_h (`product` again, on the values' panels), written into the head's
 * columns of the context. Generated as bytes like the GEMM kernel and in the same module; it only calls the
 * module's other functions, so each output element is the same sum in the same order as the separate products
 * (gemmWasm's matmulTransBSoftmax, then matmul) and results are bit-identical to them (tested).
 * Nothing goes back to JavaScript between the two products, and a head is one job for the thread pool.
 *
 * Exports (shape contracts beside each):
 *  - stageRows: rows -> the staged A layout of `product` (K chunks of rows with stride A_STRIDE)
 *  - copyRows: a strided row copy (the context block -> the head's columns)
 *  - addRows: dst += src over rows (gemm-wasm.ts's residual epilogue: linearResidual)
 *  - attend: `count` heads, each described by a parameter block of PARAM_BYTES (fields in PARAM)
 */
import { Code, I32 } from "./assembler.js";
import { emitRowEnds, emitRowSweep } from "./row-loop.js";

/** Query rows per block of one head (the GEMM driver's row block: its A chunk stays in L2). */
export const ATTEND_ROWS = 128;
/** Bytes of one head's parameter block. */
export const PARAM_BYTES = 128;
/**
 * The i32 fields of a parameter block (index ·4 = byte offset); `alpha` is a float64 at byte ALPHA_AT.
 * Addresses and row strides are in bytes; q, kp, vp, out already point at the head's columns / panels.
 */
export const PARAM = {
  q: 0, ldq: 1, kp: 2, kpPanel: 3, vp: 4, vpPanel: 5, m: 6, n: 7, dqk: 8, dv: 9, out: 10, ldo: 11,
  aQ: 12, c: 13, r: 14, aP: 15, c2: 16, r2: 17, zeros: 18, pairsS: 19, pairsV: 20, ldc: 21, ldr: 22,
  ldc2: 23, ldr2: 24, kcsQ: 25, kcsP: 26, aChunk: 27,
} as const;
export const ALPHA_AT = 120;

/**
 * Emits: `n` floats from address local s to address local d, 16 bytes at a time, then one by one: copied (d = s)
 * or added (d += s, in float32). s and d advance past the row.
 */
function emitRow(f: Code, op: "copy" | "add", s: number, d: number, n: number, end: number, end4: number): void {
  emitRowEnds(f, s, n, end, end4);
  emitRowSweep(f, s, end4, end, () => {
    f.get(d);
    if (op === "add") f.get(d).v128Load();
    f.get(s).v128Load();
    if (op === "add") f.f32x4Add();
    f.v128Store();
    f.get(d).i32Const(16).i32Add().set(d);
  }, () => {
    f.get(d);
    if (op === "add") f.get(d).f32Load();
    f.get(s).f32Load();
    if (op === "add") f.f32Add();
    f.f32Store();
    f.get(d).i32Const(4).i32Add().set(d);
  });
}

// stageRows(src, lds, rows, cols, padRows, dst, chunkBytes, kcs, zeros): src [rows, cols] f32 (row stride lds
//   bytes) -> dst: K chunks of kcs columns (the last shorter), chunk q at dst + q·chunkBytes, [padRows, kc] with
//   row stride rowBytes (the kernel's A_STRIDE floats); rows from `rows` up to padRows are copied from `zeros`
//   (at least kcs zero floats)
export function stageRowsCode(rowBytes: number): Code {
  const P = { src: 0, lds: 1, rows: 2, cols: 3, padRows: 4, dst: 5, chunkBytes: 6, kcs: 7, zeros: 8 };
  const f = new Code([I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const c0 = f.local(I32), kc = f.local(I32), i = f.local(I32), chunk = f.local(I32);
  const s = f.local(I32), d = f.local(I32), end = f.local(I32), end4 = f.local(I32);
  f.i32Const(0).set(c0);
  f.get(P.dst).set(chunk);
  f.block().loop();
  f.get(c0).get(P.cols).i32GeU().brIf(1);
  f.get(P.cols).get(c0).i32Sub().set(kc);
  f.get(P.kcs).get(kc).get(P.kcs).get(kc).i32LtU().select().set(kc);
  f.i32Const(0).set(i);
  f.block().loop();
  f.get(i).get(P.padRows).i32GeU().brIf(1);
  // s = i < rows ? src + i·lds + c0·4 : zeros
  f.get(P.src).get(i).get(P.lds).i32Mul().i32Add().get(c0).i32Const(2).i32Shl().i32Add();
  f.get(P.zeros).get(i).get(P.rows).i32LtU().select().set(s);
  f.get(chunk).get(i).i32Const(rowBytes).i32Mul().i32Add().set(d);
  emitRow(f, "copy", s, d, kc, end, end4);
  f.get(i).i32Const(1).i32Add().set(i);
  f.br(0);
  f.end().end();
  f.get(c0).get(kc).i32Add().set(c0);
  f.get(chunk).get(P.chunkBytes).i32Add().set(chunk);
  f.br(0);
  f.end().end();
  return f;
}

// copyRows(src, lds, dst, ldd, rows, cols): src [rows, cols] f32 (row stride lds bytes) -> dst [rows, cols]
//   (row stride ldd bytes)
// addRows(src, lds, dst, ldd, rows, cols): the same rows, dst += src in float32 (gemm-wasm.ts's residual epilogue)
export function rowsCode(op: "copy" | "add"): Code {
  const P = { src: 0, lds: 1, dst: 2, ldd: 3, rows: 4, cols: 5 };
  const f = new Code([I32, I32, I32, I32, I32, I32]);
  const i = f.local(I32), s = f.local(I32), d = f.local(I32), end = f.local(I32), end4 = f.local(I32);
  f.i32Const(0).set(i);
  f.block().loop();
  f.get(i).get(P.rows).i32GeU().brIf(1);
  f.get(P.src).get(i).get(P.lds).i32Mul().i32Add().set(s);
  f.get(P.dst).get(i).get(P.ldd).i32Mul().i32Add().set(d);
  emitRow(f, op, s, d, P.cols, end, end4);
  f.get(i).i32Const(1).i32Add().set(i);
  f.br(0);
  f.end().end();
  return f;
}

/** Module indices of the functions `attend` calls. */
export interface AttendCallees {
  stageRows: number;
  product: number;
  softmax: number;
  copyRows: number;
}

// attend(params, count): `count` heads, parameter blocks PARAM_BYTES apart from byte address params. Per head,
//   per block of up to ATTEND_ROWS query rows r0..r0+rows:
//     aQ <- Q_h rows (stageRows); r [rows, n] = alpha·Q_h·K_hᵀ (product, c as its sums);
//     softmax(r); aP <- r (stageRows); r2 [rows, dv] = P·V_h (product, c2); out rows <- r2 (copyRows)
//   (mr: rows per register tile of product, a power of 2)
export function attendCode(fn: AttendCallees, mr: number): Code {
  const f = new Code([I32, I32]);
  const pb = f.local(I32), h = f.local(I32), r0 = f.local(I32), rows = f.local(I32), padRows = f.local(I32);
  const field = (name: keyof typeof PARAM) => f.get(pb).i32Load(4 * PARAM[name]);
  f.get(0).set(pb);
  f.i32Const(0).set(h);
  f.block().loop();
  f.get(h).get(1).i32GeU().brIf(1);
  f.i32Const(0).set(r0);
  f.block().loop();
  field("m"); f.get(r0).i32LeU().brIf(1);
  // rows = min(ATTEND_ROWS, m - r0); padRows = rows rounded up to mr
  field("m"); f.get(r0).i32Sub().set(rows);
  f.i32Const(ATTEND_ROWS).get(rows).get(rows).i32Const(ATTEND_ROWS).i32GeU().select().set(rows);
  f.get(rows).i32Const(mr - 1).i32Add().i32Const(-mr).i32And().set(padRows);
  // aQ <- Q_h[r0 : r0+rows]
  field("q"); f.get(r0); field("ldq"); f.i32Mul().i32Add();
  field("ldq"); f.get(rows); field("dqk"); f.get(padRows); field("aQ"); field("aChunk"); field("kcsQ"); field("zeros");
  f.call(fn.stageRows);
  // r = alpha·Q_h·K_hᵀ
  field("aQ"); field("aChunk"); field("kp"); field("kpPanel"); field("zeros"); field("c"); field("ldc"); field("r"); field("ldr");
  f.get(padRows).i32Const(Math.log2(mr)).i32ShrU(); field("pairsS"); field("dqk"); field("kcsQ"); f.get(pb).f64Load(ALPHA_AT);
  f.call(fn.product);
  // softmax over each row's n scores
  field("r"); f.get(rows); field("n"); field("ldr");
  f.call(fn.softmax);
  // aP <- P
  field("r"); field("ldr"); f.get(rows); field("n"); f.get(padRows); field("aP"); field("aChunk"); field("kcsP"); field("zeros");
  f.call(fn.stageRows);
  // r2 = P·V_h
  field("aP"); field("aChunk"); field("vp"); field("vpPanel"); field("zeros"); field("c2"); field("ldc2"); field("r2"); field("ldr2");
  f.get(padRows).i32Const(Math.log2(mr)).i32ShrU(); field("pairsV"); field("n"); field("kcsP"); f.f64Const(1);
  f.call(fn.product);
  // out[r0 : r0+rows, head columns] <- r2
  field("r2"); field("ldr2"); field("out"); f.get(r0); field("ldo"); f.i32Mul().i32Add(); field("ldo"); f.get(rows); field("dv");
  f.call(fn.copyRows);
  f.get(r0).i32Const(ATTEND_ROWS).i32Add().set(r0);
  f.br(0);
  f.end().end();
  f.get(pb).i32Const(PARAM_BYTES).i32Add().set(pb);
  f.get(h).i32Const(1).i32Add().set(h);
  f.br(0);
  f.end().end();
  return f;
}
