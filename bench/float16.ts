/**
 * F16/BF16 -> F32 upcast speed on 10M values: `@petamoriken/float16`'s getFloat16 (DataView) vs the 65536-entry
 * lookup table in src/io/float16.ts, and for BF16 the shift trick vs a DataView loop.
 * Run: npx tsx bench/float16.ts
 */
import { getFloat16 } from "@petamoriken/float16";
import { bf16ToF32, f16ToF32, f16ToF32Naive } from "../src/io/checkpoint/float16.js";

const N = 10_000_000;
const bits = new Uint16Array(N);
let s = 12345;
for (let i = 0; i < N; i++) {
  s = (Math.imul(s, 1103515245) + 12345) >>> 0;
  bits[i] = s >>> 16;
}
const dv = new DataView(bits.buffer);
const out = new Float32Array(N);

/** Best of `rounds` timed runs after one warm-up run. */
function time(name: string, fn: () => void, rounds = 3): number {
  fn();
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, performance.now() - t0);
  }
  console.log(`${name.padEnd(40)} ${best.toFixed(1).padStart(7)} ms  (${((N / best) * 1e-3).toFixed(0)} M values/s)`);
  return best;
}

time("f16 getFloat16 (@petamoriken/float16)", () => {
  for (let i = 0; i < N; i++) out[i] = getFloat16(dv, 2 * i, true);
}, 1); // slow: one timed run
time("f16 naive arithmetic", () => {
  out.set(f16ToF32Naive(bits));
});
time("f16 lookup table", () => {
  f16ToF32(bits, out);
});
time("bf16 DataView getUint16 << 16 -> setUint32", () => {
  const o = new DataView(out.buffer);
  for (let i = 0; i < N; i++) o.setUint32(4 * i, dv.getUint16(2 * i, true) << 16, true);
});
time("bf16 shift via Uint32Array view", () => {
  bf16ToF32(bits, out);
});

// sanity: the table agrees with getFloat16 on every bit pattern
const all = new Uint16Array(65536).map((_, i) => i);
const t = f16ToF32(all);
const adv = new DataView(all.buffer);
for (let i = 0; i < 65536; i++) {
  const a = t[i], b = Math.fround(getFloat16(adv, 2 * i, true));
  if (!(Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)))) throw new Error(`mismatch at ${i}: ${a} vs ${b}`);
}
console.log("table == getFloat16 on all 65536 patterns");
