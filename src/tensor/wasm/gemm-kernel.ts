/**
 * The WebAssembly SIMD GEMM kernel, generated as bytes by the assembler in `assembler.ts` (no compiler, no
 * committed .wasm). The module imports `env.memory` and exports these functions (shape contracts below):
 * `block` (the product, 4x8 register tiles) and `product` (block over every K chunk: one thread's job),
 * `transpose` and `panelize` (B layouts -> 4-column panels), and
 * `softmax` (softmax-kernel.ts, for attention scores still in the result block) and `gelu` (gelu-kernel.ts, for
 * the MLP's first product), `layernorm` (layernorm-kernel.ts), and `attend` with its helpers `stageRows` and
 * `copyRows` (attention-kernel.ts: multi-head attention from staged Q, K, V, calling product and softmax), and
 * `addRows` (the residual epilogue).
 *
 * block computes a block of C = bias + A·B for `tiles` x 4 rows and `pairs` x 8 columns:
 *  - A (the activations) is staged by the driver as float32 rows with a FIXED stride of A_STRIDE floats, so the
 *    kernel reads a tile's 4 rows through one pointer with constant offsets (0, 1, 2, 3 strides), not 4
 *    pointers. A_STRIDE = KC + 4 floats (1040 bytes), so the 4 rows do not share L1 sets (4 KiB apart would).
 *  - B comes as panels of 4 columns, k-major ([K][4] floats, 16 bytes per k), cut by `transpose` (B [N,K]:
 *    a linear's weight, attention keys) or `panelize` (B [K,N]: attention values) from rows the driver copied
 *    into wasm memory. A tile reads two adjacent panels (8 columns) through two pointers.
 *  - The 4x8 tile keeps 8 f32x4 accumulators; per k it loads 2 B vectors, splats 4 A values
 *    (v128.load32_splat) and does 8 f32x4.mul + 8 f32x4.add. 4x8 is the register sweet spot on x86-64:
 *    8 accumulators + 2 B + 4 splats + a temporary fill the 16 SIMD registers; bigger tiles spill: V8's TurboFan
 *    loads all of an iteration's splats at its top and keeps one register as its scratch, so a 5x8 tile needs 17
 *    vector registers and keeps two accumulators on the stack (the tile shapes tried, and their speeds, are in
 *    docs/performance/history.md).
 *  - The k loop is not unrolled: TurboFan hoists all loads of an unrolled body to its top and then spills
 *    accumulators.
 *  - Precision: products are summed in the accumulators over runs of SUB = 64 k steps; each run is then added
 *    into the C tile in memory (float32, starting from the bias), so a sum over K is a two-level (blocked) float32
 *    sum: its error is bounded by about (SUB + K/SUB)·2^-24·Σ|a·b|, against K·2^-24 for one running float32 sum.
 *    One running sum over K = 1024 broke the full-size golden tolerances (docs/numerics.md). C is float32: full-size
 *    logits end 1.4e-6 from PyTorch's float64 run, as close as PyTorch's own float32 run (1.3e-6); a float64 C
 *    would cost 2 promotions, a shuffle and 2 float64 adds per run and accumulator instead of 2 float32 adds, and
 *    twice the memory, which keeps the model's 512-row products from running as one round.
 *    reference/wasm-sum-model.ts is this arithmetic in scalar JavaScript (the tests hold the kernel to it).
 *  - The driver calls block once per K chunk of at most KC steps (an A row chunk must fit the fixed stride):
 *    `accumulate` continues C from the previous chunk instead of starting from the bias, and `finish`
 *    writes alpha·C after the last chunk (the product in float64, rounded once to float32).
 *
 * Option `fma`: f32x4.relaxed_madd (Relaxed SIMD: fused or not, depending on the engine) instead of mul + add.
 */
import { Code, F64, I32, V128, lanes32, wasmModule } from "./assembler.js";
import { geluCode } from "./gelu-kernel.js";
import { layerNormCode } from "./layernorm-kernel.js";
import { softmaxCode } from "./softmax-kernel.js";
import { attendCode, rowsCode, stageRowsCode } from "./attention-kernel.js";

/** Rows per register tile. */
export const MR = 4;
/** Columns per register tile (two f32x4). */
export const NR = 8;
/** Largest K chunk per call of `block`. */
export const KC = 256;
/** Row stride, in floats, of the staged A block (see the header). */
export const A_STRIDE = KC + 4;
/** K steps summed in the accumulators before the tile is added to C in memory (see the header). */
export const SUB = 64;

export interface KernelOptions {
  /** f32x4.relaxed_madd instead of f32x4.mul + f32x4.add */
  fma?: boolean;
  /** K steps per float32 partial sum (default SUB) */
  sub?: number;
  /** import a shared memory with this maximum (pages), for worker threads */
  sharedMaxPages?: number;
}

/** Signature of the exported `panelize` function (see panelizeCode). */
export type PanelizeFn = (src: number, lds: number, dst: number, panels: number, k: number) => void;

/** The module's bytes: imports `env.memory`, exports the functions listed below (shape contracts beside each). */
export function gemmKernelModule(opts: KernelOptions = {}): Uint8Array<ArrayBuffer> {
  // functions in index order; those that call others find them by name
  const names = ["block", "transpose", "panelize", "softmax", "gelu", "layernorm", "product", "stageRows", "copyRows", "attend", "addRows"];
  const at = (name: string) => names.indexOf(name);
  const code: Record<string, Code> = {
    block: blockCode(opts),
    transpose: transposeCode(),
    panelize: panelizeCode(),
    softmax: softmaxCode(), // softmax-kernel.ts: run on the result block in place
    gelu: geluCode(), // gelu-kernel.ts: run on linear's result block in place
    layernorm: layerNormCode(), // layernorm-kernel.ts: on rows staged by layerNormWasm
    product: productCode(at("block")), // block over every K chunk
    stageRows: stageRowsCode(A_STRIDE * 4), // attention-kernel.ts: rows -> product's A layout
    copyRows: rowsCode("copy"),
    addRows: rowsCode("add"), // attention-kernel.ts: the residual epilogue
    attend: attendCode({ stageRows: at("stageRows"), product: at("product"), softmax: at("softmax"), copyRows: at("copyRows") }, MR),
  };
  return wasmModule({ memoryMinPages: 1, sharedMaxPages: opts.sharedMaxPages, functions: names.map((name) => ({ name, code: code[name] })) });
}

/** Signature of the exported `product` function (see productCode). */
export type ProductFn = (
  a: number, aChunk: number, b: number, panel: number, bias: number, c: number, ldc: number, out: number, ldo: number,
  tiles: number, pairs: number, k: number, kcs: number, alpha: number,
) => void;

// product(a, aChunk, b, panel, bias, c, ldc, out, ldo, tiles, pairs, k, kcs, alpha): the whole K of a block,
//   as block() once per K chunk of kcs steps (the last one shorter): chunk q's A at a + q·aChunk (row stride
//   A_STRIDE), its B panels from b + q·kcs·16; C starts from the bias, out = alpha·C after the last chunk.
//   One call is one thread's job: a row block and a range of column pairs, through every chunk (blockIndex: the
//   module's index of block).
function productCode(blockIndex: number): Code {
  const P = { a: 0, aChunk: 1, b: 2, panel: 3, bias: 4, c: 5, ldc: 6, out: 7, ldo: 8, tiles: 9, pairs: 10, k: 11, kcs: 12, alpha: 13 };
  const f = new Code([I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, F64]);
  const p = f.local(I32), kc = f.local(I32), aq = f.local(I32), bq = f.local(I32);
  f.get(P.a).set(aq).get(P.b).set(bq);
  f.i32Const(0).set(p);
  f.loop();
  // kc = min(kcs, k - p)
  f.get(P.k).get(p).i32Sub().set(kc);
  f.get(P.kcs).get(kc).get(P.kcs).get(kc).i32LtU().select().set(kc);
  f.get(aq).get(bq).get(P.panel).get(P.bias).get(P.c).get(P.ldc).get(P.out).get(P.ldo).get(P.tiles).get(P.pairs).get(kc);
  f.get(p); // accumulate: every chunk after the first
  f.get(p).get(kc).i32Add().get(P.k).i32GeU(); // finish: the last chunk
  f.get(P.alpha).call(blockIndex);
  f.get(p).get(kc).i32Add().set(p);
  f.get(aq).get(P.aChunk).i32Add().set(aq);
  f.get(bq).get(kc).i32Const(4).i32Shl().i32Add().set(bq);
  f.get(p).get(P.k).i32LtU().brIf(0);
  f.end();
  return f;
}

// block(a, b, panel, bias, c, ldc, out, ldo, tiles, pairs, kc, accumulate, finish, alpha)
//   a [tiles·4, kc] f32 (row stride A_STRIDE), b: pairs of 4-column f32 panels (kc steps, `panel` bytes apart),
//   bias [pairs·8] f32, c [tiles·4, pairs·8] f32 (row stride ldc bytes)
//   -> c = (accumulate ? c : bias) + a·b; if finish: out [tiles·4, pairs·8] f32 (row stride ldo bytes) = alpha·c
function blockCode(opts: KernelOptions): Code {
  const S = opts.sub ?? SUB;
  const P = {
    a: 0, b: 1, panel: 2, bias: 3, c: 4, ldc: 5, out: 6, ldo: 7, tiles: 8, pairs: 9, kc: 10, accumulate: 11, finish: 12,
    alpha: 13,
  };
  const f = new Code([I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, F64]);
  const jp = f.local(I32), it = f.local(I32);
  const bPair = f.local(I32), biasP = f.local(I32), cPair = f.local(I32);
  const aTile = f.local(I32), cTile = f.local(I32), cp = f.local(I32);
  const oPair = f.local(I32), oTile = f.local(I32), op = f.local(I32);
  const ap = f.local(I32), aEnd = f.local(I32), subEnd = f.local(I32), bp0 = f.local(I32), bp1 = f.local(I32);
  const acc: number[][] = [];
  for (let r = 0; r < MR; r++) acc.push([f.local(V128), f.local(V128)]);
  const bv = [f.local(V128), f.local(V128)], av = f.local(V128), alpha = f.local(V128);
  const ROW = A_STRIDE * 4; // bytes between staged A rows
  /** runs `body(r)` for the 4 rows of the C tile with cp at row r */
  const cRows = (body: (r: number) => void) => {
    f.get(cTile).set(cp);
    for (let r = 0; r < MR; r++) {
      body(r);
      if (r < MR - 1) f.get(cp).get(P.ldc).i32Add().set(cp);
    }
  };

  f.get(P.alpha).f64x2Splat().set(alpha);
  f.get(P.b).set(bPair).get(P.bias).set(biasP).get(P.c).set(cPair).get(P.out).set(oPair);
  f.i32Const(0).set(jp);
  // for each pair of B panels (8 columns)
  f.block().loop();
  f.get(jp).get(P.pairs).i32GeU().brIf(1);
  {
    f.get(P.a).set(aTile).get(cPair).set(cTile).get(oPair).set(oTile);
    f.i32Const(0).set(it);
    // for each tile of 4 rows
    f.block().loop();
    f.get(it).get(P.tiles).i32GeU().brIf(1);
    {
      // a new sum starts from the bias
      f.get(P.accumulate).i32Eqz().if();
      cRows(() => {
        for (let h = 0; h < 2; h++) f.get(cp).get(biasP).v128Load(16 * h).v128Store(16 * h);
      });
      f.end();
      f.get(aTile).set(ap);
      f.get(ap).get(P.kc).i32Const(2).i32Shl().i32Add().set(aEnd);
      f.get(bPair).set(bp0);
      f.get(bPair).get(P.panel).i32Add().set(bp1);
      // for each run of S k steps: partial sums in registers, added to the C tile
      f.block().loop();
      f.get(ap).get(aEnd).i32GeU().brIf(1);
      f.get(ap).i32Const(4 * S).i32Add().tee(subEnd).get(aEnd).get(subEnd).get(aEnd).i32LtU().select().set(subEnd);
      f.f32Const(0).f32x4Splat().set(acc[0][0]);
      for (let r = 0; r < MR; r++) for (let h = 0; h < 2; h++) if (r + h > 0) f.get(acc[0][0]).set(acc[r][h]);
      // acc[r][h] += splat(a[r][p]) · b[p][4h..4h+3]
      f.loop();
      f.get(bp0).v128Load().set(bv[0]);
      f.get(bp1).v128Load().set(bv[1]);
      for (let r = 0; r < MR; r++) {
        f.get(ap).v128Load32Splat(r * ROW).set(av);
        for (let h = 0; h < 2; h++) {
          if (opts.fma) f.get(av).get(bv[h]).get(acc[r][h]).f32x4RelaxedMadd().set(acc[r][h]);
          else f.get(acc[r][h]).get(av).get(bv[h]).f32x4Mul().f32x4Add().set(acc[r][h]);
        }
      }
      f.get(ap).i32Const(4).i32Add().set(ap);
      f.get(bp0).i32Const(16).i32Add().set(bp0);
      f.get(bp1).i32Const(16).i32Add().set(bp1);
      f.get(ap).get(subEnd).i32LtU().brIf(0);
      f.end();
      // c += acc
      cRows((r) => {
        for (let h = 0; h < 2; h++) f.get(cp).get(cp).v128Load(16 * h).get(acc[r][h]).f32x4Add().v128Store(16 * h);
      });
      f.br(0);
      f.end().end();
      // last chunk: out = float32(alpha·c), the product taken in float64 (lanes 0,1 and 2,3 promoted, demoted back)
      f.get(P.finish).if();
      f.get(oTile).set(op);
      cRows((r) => {
        for (let h = 0; h < 2; h++) {
          f.get(cp).v128Load(16 * h).set(av);
          f.get(op);
          f.get(av).f64x2PromoteLowF32x4().get(alpha).f64x2Mul().f32x4DemoteF64x2Zero();
          f.get(av).get(av).i8x16Shuffle(lanes32(2, 3, 2, 3)).f64x2PromoteLowF32x4().get(alpha).f64x2Mul().f32x4DemoteF64x2Zero();
          f.i8x16Shuffle(lanes32(0, 1, 4, 5)).v128Store(16 * h);
        }
        if (r < MR - 1) f.get(op).get(P.ldo).i32Add().set(op);
      });
      f.end();
    }
    f.get(it).i32Const(1).i32Add().set(it);
    f.get(aTile).i32Const(MR * ROW).i32Add().set(aTile);
    f.get(cTile).get(P.ldc).i32Const(2).i32Shl().i32Add().set(cTile); // += MR rows
    f.get(oTile).get(P.ldo).i32Const(2).i32Shl().i32Add().set(oTile);
    f.br(0);
    f.end().end();
  }
  f.get(jp).i32Const(1).i32Add().set(jp);
  f.get(bPair).get(P.panel).i32Const(1).i32Shl().i32Add().set(bPair);
  f.get(biasP).i32Const(NR * 4).i32Add().set(biasP);
  f.get(cPair).i32Const(NR * 4).i32Add().set(cPair);
  f.get(oPair).i32Const(NR * 4).i32Add().set(oPair);
  f.br(0);
  f.end().end();
  return f;
}

// transpose(src, lds, dst, panels, k4): src rows [panels·4, k4] (byte stride lds), k4 a multiple of 4
//   -> dst panels [panels][k4][4]: dst[j/4][p][j%4] = src[j][p]   (B [N,K] -> 4-column panels, k-major)
function transposeCode(): Code {
  const P = { src: 0, lds: 1, dst: 2, panels: 3, k4: 4 };
  const f = new Code([I32, I32, I32, I32, I32]);
  const panel = f.local(I32), row = f.local(I32), d = f.local(I32), end = f.local(I32);
  const s = [f.local(I32), f.local(I32), f.local(I32), f.local(I32)];
  const r = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
  const t = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
  f.get(P.src).set(row).get(P.dst).set(d);
  f.i32Const(0).set(panel);
  f.block().loop();
  f.get(panel).get(P.panels).i32GeU().brIf(1);
  f.get(row).set(s[0]);
  for (let i = 1; i < 4; i++) f.get(s[i - 1]).get(P.lds).i32Add().set(s[i]);
  f.get(row).get(P.k4).i32Const(2).i32Shl().i32Add().set(end);
  f.block();
  f.get(s[0]).get(end).i32GeU().brIf(0);
  f.loop();
  for (let i = 0; i < 4; i++) f.get(s[i]).v128Load().set(r[i]);
  // t0 = r0[0] r1[0] r0[1] r1[1], t1 = r0[2] r1[2] r0[3] r1[3], t2/t3 the same for r2, r3
  f.get(r[0]).get(r[1]).i8x16Shuffle(lanes32(0, 4, 1, 5)).set(t[0]);
  f.get(r[0]).get(r[1]).i8x16Shuffle(lanes32(2, 6, 3, 7)).set(t[1]);
  f.get(r[2]).get(r[3]).i8x16Shuffle(lanes32(0, 4, 1, 5)).set(t[2]);
  f.get(r[2]).get(r[3]).i8x16Shuffle(lanes32(2, 6, 3, 7)).set(t[3]);
  // column p+c of the 4 rows
  f.get(d).get(t[0]).get(t[2]).i8x16Shuffle(lanes32(0, 1, 4, 5)).v128Store(0);
  f.get(d).get(t[0]).get(t[2]).i8x16Shuffle(lanes32(2, 3, 6, 7)).v128Store(16);
  f.get(d).get(t[1]).get(t[3]).i8x16Shuffle(lanes32(0, 1, 4, 5)).v128Store(32);
  f.get(d).get(t[1]).get(t[3]).i8x16Shuffle(lanes32(2, 3, 6, 7)).v128Store(48);
  for (let i = 0; i < 4; i++) f.get(s[i]).i32Const(16).i32Add().set(s[i]);
  f.get(d).i32Const(64).i32Add().set(d);
  f.get(s[0]).get(end).i32LtU().brIf(0);
  f.end().end();
  f.get(panel).i32Const(1).i32Add().set(panel);
  f.get(row).get(P.lds).i32Const(2).i32Shl().i32Add().set(row); // += 4 rows
  f.br(0);
  f.end().end();
  return f;
}

// panelize(src, lds, dst, panels, k): src rows [k, panels·4] (byte stride lds)
//   -> dst panels [panels][k][4]: dst[j/4][p][j%4] = src[p][j]   (B [K,N] -> 4-column panels, k-major)
function panelizeCode(): Code {
  const P = { src: 0, lds: 1, dst: 2, panels: 3, k: 4 };
  const f = new Code([I32, I32, I32, I32, I32]);
  const panel = f.local(I32), s = f.local(I32), d = f.local(I32), end = f.local(I32);
  f.get(P.dst).set(d);
  f.i32Const(0).set(panel);
  f.block().loop();
  f.get(panel).get(P.panels).i32GeU().brIf(1);
  f.get(P.src).get(panel).i32Const(4).i32Shl().i32Add().set(s); // column 4·panel of row 0
  f.get(d).get(P.k).i32Const(4).i32Shl().i32Add().set(end);
  f.block();
  f.get(d).get(end).i32GeU().brIf(0);
  f.loop();
  f.get(d).get(s).v128Load().v128Store();
  f.get(s).get(P.lds).i32Add().set(s);
  f.get(d).i32Const(16).i32Add().tee(d).get(end).i32LtU().brIf(0);
  f.end().end();
  f.get(panel).i32Const(1).i32Add().set(panel);
  f.br(0);
  f.end().end();
  return f;
}
