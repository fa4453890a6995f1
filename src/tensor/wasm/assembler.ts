/**
 * A tiny WebAssembly assembler: just enough of the binary format (https://webassembly.github.io/spec/core/binary/)
 * to emit the GEMM kernels of `gemm-kernel.ts` from TypeScript at run time, with no external compiler and no
 * committed .wasm file.
 *
 * `Code` builds one function body instruction by instruction (each method appends the opcode and its immediates;
 * the operand stack is the caller's business, as in a .wat file written in folded-free form), and `wasmModule`
 * wraps functions into a module that imports one linear memory `env.memory`. Only the opcodes the kernels use are
 * here; SIMD opcodes are the 0xfd prefix followed by a LEB128 index.
 */

/** Value types. */
export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof F64 | typeof V128;

/** Block type of a block/loop/if without results. */
const EMPTY = 0x40;

/** Unsigned LEB128 of a non-negative integer below 2^32. */
export function uleb(n: number): number[] {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`uleb: ${n} is not a u32`);
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of an integer in [-2^31, 2^31). */
export function sleb(n: number): number[] {
  if (!Number.isInteger(n) || n < -0x80000000 || n > 0x7fffffff) throw new RangeError(`sleb: ${n} is not an i32`);
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7; // arithmetic shift keeps the sign
    const done = (n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

/** A UTF-8 name with its length prefix. */
function name(s: string): number[] {
  const bytes = Array.from(new TextEncoder().encode(s));
  return [...uleb(bytes.length), ...bytes];
}

/** A vector: count, then the items' bytes. */
function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

/** log2 of a natural alignment in bytes (memarg's first immediate). */
function alignLog2(bytes: number): number {
  return bytes === 1 ? 0 : bytes === 2 ? 1 : bytes === 4 ? 2 : bytes === 8 ? 3 : 4;
}

/** 32-bit lanes -> the 16 byte indices of i8x16.shuffle (lanes 4..7 pick from the second operand). */
export function lanes32(...l: number[]): number[] {
  return l.flatMap((x) => [4 * x, 4 * x + 1, 4 * x + 2, 4 * x + 3]);
}

/** One function body under construction. Locals 0..params-1 are the parameters. */
export class Code {
  readonly bytes: number[] = [];
  private readonly localTypes: ValType[] = [];

  constructor(readonly params: readonly ValType[], readonly results: readonly ValType[] = []) {}

  /** Declares a new local and returns its index. */
  local(type: ValType): number {
    this.localTypes.push(type);
    return this.params.length + this.localTypes.length - 1;
  }

  private op(...b: number[]): this {
    for (const x of b) this.bytes.push(x);
    return this;
  }

  private simd(index: number, ...imm: number[]): this {
    return this.op(0xfd, ...uleb(index), ...imm);
  }

  private memarg(bytes: number, offset: number): number[] {
    return [...uleb(alignLog2(bytes)), ...uleb(offset)];
  }

  // control
  block(): this { return this.op(0x02, EMPTY); }
  loop(): this { return this.op(0x03, EMPTY); }
  if(): this { return this.op(0x04, EMPTY); }
  else(): this { return this.op(0x05); }
  end(): this { return this.op(0x0b); }
  /** Branch to the `depth`-th enclosing block/loop (0 = innermost). */
  br(depth: number): this { return this.op(0x0c, ...uleb(depth)); }
  brIf(depth: number): this { return this.op(0x0d, ...uleb(depth)); }
  return(): this { return this.op(0x0f); }
  call(func: number): this { return this.op(0x10, ...uleb(func)); }
  drop(): this { return this.op(0x1a); }
  /** (a, b, cond) -> cond ? a : b */
  select(): this { return this.op(0x1b); }

  // variables
  get(i: number): this { return this.op(0x20, ...uleb(i)); }
  set(i: number): this { return this.op(0x21, ...uleb(i)); }
  tee(i: number): this { return this.op(0x22, ...uleb(i)); }

  // memory (offset: constant byte offset added to the address operand)
  i32Load(offset = 0): this { return this.op(0x28, ...this.memarg(4, offset)); }
  f32Load(offset = 0): this { return this.op(0x2a, ...this.memarg(4, offset)); }
  f32Store(offset = 0): this { return this.op(0x38, ...this.memarg(4, offset)); }
  memorySize(): this { return this.op(0x3f, 0x00); }
  memoryGrow(): this { return this.op(0x40, 0x00); }

  // i32
  i32Const(v: number): this { return this.op(0x41, ...sleb(v)); }
  i32Eqz(): this { return this.op(0x45); }
  i32LtU(): this { return this.op(0x49); }
  i32GeU(): this { return this.op(0x4f); }
  i32LeU(): this { return this.op(0x4d); }
  i32Add(): this { return this.op(0x6a); }
  i32Mul(): this { return this.op(0x6c); }
  i32Shl(): this { return this.op(0x74); }
  i32ShrU(): this { return this.op(0x76); }

  i32Sub(): this { return this.op(0x6b); }
  i32And(): this { return this.op(0x71); }

  // f32 / f64 scalars
  f32Const(v: number): this {
    const b = new Uint8Array(new Float32Array([v]).buffer);
    return this.op(0x43, ...b);
  }
  f64Const(v: number): this {
    const b = new Uint8Array(new Float64Array([v]).buffer);
    return this.op(0x44, ...b);
  }
  f64Load(offset = 0): this { return this.op(0x2b, ...this.memarg(8, offset)); }
  i32LtS(): this { return this.op(0x48); }
  f32Eq(): this { return this.op(0x5b); }
  f64Ge(): this { return this.op(0x66); }
  f64Abs(): this { return this.op(0x99); }
  f64Copysign(): this { return this.op(0xa6); }
  f64ConvertI32S(): this { return this.op(0xb7); }
  /** saturating f64 -> i32 (NaN -> 0) */
  i32TruncSatF64S(): this { return this.op(0xfc, 0x02); }
  f32Max(): this { return this.op(0x97); }
  f32Add(): this { return this.op(0x92); }
  f64Add(): this { return this.op(0xa0); }
  f64Sub(): this { return this.op(0xa1); }
  f64Mul(): this { return this.op(0xa2); }
  f64Div(): this { return this.op(0xa3); }
  f64Sqrt(): this { return this.op(0x9f); }
  f32DemoteF64(): this { return this.op(0xb6); }
  f64PromoteF32(): this { return this.op(0xbb); }

  // SIMD (0xfd prefix)
  v128Load(offset = 0): this { return this.simd(0x00, ...this.memarg(16, offset)); }
  v128Load32Splat(offset = 0): this { return this.simd(0x09, ...this.memarg(4, offset)); }
  v128Store(offset = 0): this { return this.simd(0x0b, ...this.memarg(16, offset)); }
  /** one float64 at the address into both lanes */
  v128Load64Splat(offset = 0): this { return this.simd(0x0a, ...this.memarg(8, offset)); }
  /** (address, v128) -> the v128 with 64-bit lane `lane` loaded from the address */
  v128Load64Lane(offset: number, lane: number): this { return this.simd(0x57, ...this.memarg(8, offset), lane); }
  /** 16 lane indices into the concatenation of the two operands (bytes 0..31). */
  i8x16Shuffle(lanes: readonly number[]): this {
    if (lanes.length !== 16) throw new RangeError("i8x16.shuffle takes 16 lane indices");
    return this.simd(0x0d, ...lanes);
  }
  /** v128.const from two float64 lanes */
  f64x2Const(a: number, b: number = a): this {
    return this.simd(0x0c, ...new Uint8Array(new Float64Array([a, b]).buffer));
  }
  /** v128.const from four float32 lanes */
  f32x4Const(v: number): this {
    return this.simd(0x0c, ...new Uint8Array(new Float32Array([v, v, v, v]).buffer));
  }
  /** v128.const from four int32 lanes */
  i32x4Const(v: number): this {
    return this.simd(0x0c, ...new Uint8Array(new Int32Array([v, v, v, v]).buffer));
  }
  f32x4ExtractLane(lane: number): this { return this.simd(0x1f, lane); }
  f64x2ExtractLane(lane: number): this { return this.simd(0x21, lane); }
  i32x4ExtractLane(lane: number): this { return this.simd(0x1b, lane); }
  f32x4Max(): this { return this.simd(0xe9); }
  /** pseudo-max: a < b ? b : a per lane (one maxps on x86, where f32x4.max needs a NaN-exact sequence) */
  f32x4Pmax(): this { return this.simd(0xeb); }
  f32x4Sub(): this { return this.simd(0xe5); }
  f32x4Nearest(): this { return this.simd(0x6a); }
  /** a < b per lane -> all-ones / all-zeros lanes (false where either is NaN) */
  f32x4Lt(): this { return this.simd(0x43); }
  /** four f32 lanes -> i32 lanes (saturating) */
  i32x4TruncSatF32x4S(): this { return this.simd(0xf8); }
  i32x4Add(): this { return this.simd(0xae); }
  i32x4MinS(): this { return this.simd(0xb6); }
  /** two f64 lanes -> i32 lanes 0, 1 (truncated, saturating, NaN -> 0); lanes 2, 3 zero */
  i32x4TruncSatF64x2SZero(): this { return this.simd(0xfc); }
  /** i32 lanes 0, 1 -> two f64 lanes (exact) */
  f64x2ConvertLowI32x4S(): this { return this.simd(0xfe); }
  f64x2Abs(): this { return this.simd(0xec); }
  /** a >= b per lane -> all-ones / all-zeros lanes (false where either is NaN) */
  f64x2Ge(): this { return this.simd(0x4c); }
  /** (a, b, mask) -> a where mask bits are set, b elsewhere */
  v128Bitselect(): this { return this.simd(0x52); }
  /** (v128, i32 shift) -> v128 */
  i32x4Shl(): this { return this.simd(0xab); }
  /** a & ~b */
  v128AndNot(): this { return this.simd(0x4f); }
  f32x4Splat(): this { return this.simd(0x13); }
  f64x2Splat(): this { return this.simd(0x14); }
  f32x4Add(): this { return this.simd(0xe4); }
  f32x4Mul(): this { return this.simd(0xe6); }
  f64x2Add(): this { return this.simd(0xf0); }
  f64x2Sub(): this { return this.simd(0xf1); }
  f64x2Mul(): this { return this.simd(0xf2); }
  f32x4DemoteF64x2Zero(): this { return this.simd(0x5e); }
  f64x2PromoteLowF32x4(): this { return this.simd(0x5f); }
  /** Relaxed SIMD: a·b + c, fused or not depending on the engine (may be missing: validate first). */
  f32x4RelaxedMadd(): this { return this.simd(0x105); }

  /** The function body: local declarations, instructions, `end`. */
  body(): number[] {
    const groups: number[][] = [];
    for (let i = 0; i < this.localTypes.length; ) {
      let j = i;
      while (j < this.localTypes.length && this.localTypes[j] === this.localTypes[i]) j++;
      groups.push([...uleb(j - i), this.localTypes[i]]);
      i = j;
    }
    const b = [...vec(groups), ...this.bytes, 0x0b];
    return [...uleb(b.length), ...b];
  }
}

export interface ModuleSpec {
  /** Minimum pages (64 KiB) of the imported memory `env.memory`. */
  memoryMinPages: number;
  /** Shared memory (threads): `env.memory` must then be a shared WebAssembly.Memory with this maximum (pages). */
  sharedMaxPages?: number;
  /** Exported functions, in index order. */
  functions: { name: string; code: Code }[];
}

/** Limits of the memory import: 0x00 min (unshared, no maximum) or 0x03 min max (shared). */
function memoryLimits(spec: ModuleSpec): number[] {
  if (spec.sharedMaxPages === undefined) return [0x00, ...uleb(spec.memoryMinPages)];
  return [0x03, ...uleb(spec.memoryMinPages), ...uleb(spec.sharedMaxPages)];
}

/** A module importing memory `env.memory` and exporting the given functions. */
export function wasmModule(spec: ModuleSpec): Uint8Array<ArrayBuffer> {
  const section = (id: number, content: number[]): number[] => [id, ...uleb(content.length), ...content];
  const sig = (c: Code) => [0x60, ...vec(c.params.map((t) => [t])), ...vec(c.results.map((t) => [t]))];
  const fns = spec.functions;
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, vec(fns.map((f) => sig(f.code)))), // one type per function (duplicates are allowed)
    ...section(2, vec([[...name("env"), ...name("memory"), 0x02, ...memoryLimits(spec)]])),
    ...section(3, vec(fns.map((_, i) => uleb(i)))),
    ...section(7, vec(fns.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(fns.map((f) => f.code.body()))),
  ];
  return new Uint8Array(bytes);
}
