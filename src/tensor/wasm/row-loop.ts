/**
 * The row loop of the elementwise kernels (softmax, GELU, layer norm, the row copies of attention-kernel.ts): a
 * row of floats swept 4 at a time (16 bytes, one v128), then one at a time over the last count % 4.
 */
import type { Code } from "./assembler.js";

// Emits: end = start + 4·count, end4 = start + 4·(count & ~3), byte addresses: where the row of `count` floats
//   from `start` ends, and where its whole groups of 4 floats end (all four: i32 locals)
export function emitRowEnds(f: Code, start: number, count: number, end: number, end4: number): void {
  f.get(start).get(count).i32Const(2).i32Shl().i32Add().set(end);
  f.get(start).get(count).i32Const(-4).i32And().i32Const(2).i32Shl().i32Add().set(end4);
}

// Emits: `group` with local q stepping from its current value up to end4, 16 bytes at a time; then `between`;
//   then `tail` with q stepping on up to end, 4 bytes at a time (q advances after each body)
export function emitRowSweep(f: Code, q: number, end4: number, end: number, group: () => void, tail: () => void, between = () => {}): void {
  for (const [stop, body, step] of [[end4, group, 16], [end, tail, 4]] as const) {
    if (step === 4) between();
    f.block().loop();
    f.get(q).get(stop).i32GeU().brIf(1);
    body();
    f.get(q).i32Const(step).i32Add().set(q);
    f.br(0);
    f.end().end();
  }
}
