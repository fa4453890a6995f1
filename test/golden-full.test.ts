/**
 * Full-size golden test: the real deepmind/vision-perceiver-conv architecture (48.6M parameters) with synthetic
 * weights regenerated bit-exactly from the manifest into weights/full-synthetic/model.safetensors, loaded through
 * fromPretrained, both golden inputs in one batch, on the default backend with 2 threads; then item 0 alone on
 * 1 thread, which must give bit-identical logits (threads split products by columns, batches are row-independent).
 * The TypeScript backend is run on this test by hand (PERCEIVER_BACKEND=ts: about 4 minutes here).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { PerceiverForImageClassification, Tensor, getBackend, getThreads, setThreads } from "../src/index.js";
import { MODEL_GFLOP } from "../bench/report.js";
import { ensureFullCheckpoint } from "./helpers/full-model.js";
import { expectClose, readGolden } from "./helpers/golden.js";
import type { ForwardOutput } from "../src/index.js";
import type { SafetensorsFile } from "../src/io/checkpoint/safetensors.js";

const LOGITS_ATOL = 1e-4; // vs PyTorch float64 (the bound; PyTorch fp32 itself is 1.3e-6 off)
const ATOL = 1e-5;
const RTOL = 1e-4;
// After all 48 self-attention applications the fp32 reference itself drifts: PyTorch fp32's self_attend_5.call7 is
// 4.2e-5 from PyTorch float64 (scripts/make_f64_goldens.py). Against fp32 that activation gets atol 1e-4, and it is
// also checked against the float64 run (golden_f64.safetensors) with the standard 1e-5 + 1e-4·|b|.
const DEEP_ATOL: Record<string, number> = { "self_attend_5.call7": 1e-4 };
const CHECKED = ["convnet", "preprocessor", "preprocessor_without_pos", "cross_attention", "self_attend_5.call0", "self_attend_5.call7"];

describe("full-size vision-perceiver-conv (synthetic weights)", () => {
  let golden: SafetensorsFile;
  let out: ForwardOutput;
  let model: PerceiverForImageClassification;
  const seen = new Map<string, Float32Array>();
  let seconds = 0;
  let threads = 0;

  beforeAll(async () => {
    const dir = await ensureFullCheckpoint((m) => console.log(m));
    const t0 = performance.now();
    model = await PerceiverForImageClassification.fromPretrained(dir);
    console.log(`full model loaded in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    golden = await readGolden("full", "golden.safetensors");
    const pixels = new Tensor(golden.getFloat32("pixel_values"), golden.info("pixel_values").shape);
    await setThreads(2);
    threads = getThreads();
    const t1 = performance.now();
    out = await model.forward(pixels, {
      outputAttentions: true,
      onIntermediate: (name, t) => {
        if (CHECKED.includes(name)) seen.set(name, t.data.slice(0, t.data.length / t.shape[0])); // item 0
      },
    });
    seconds = (performance.now() - t1) / 1000;
    console.log(`full-size forward, batch 2, ${getBackend()} backend, ${threads} thread(s): ${seconds.toFixed(1)} s (${((2 * MODEL_GFLOP) / seconds).toFixed(1)} GFLOP/s)`);
  }, 1_800_000);

  it("logits match PyTorch float64 within 1e-4", () => {
    const ref = golden.getFloat32("logits_f64");
    const s = expectClose("logits", out.logits.data, ref, LOGITS_ATOL, 0);
    const fp32 = expectClose("torch fp32 logits", golden.getFloat32("logits"), ref, LOGITS_ATOL, 0);
    console.log(`full: max |logits - logits_f64| = ${s.maxAbs.toExponential(2)} (PyTorch fp32: ${fp32.maxAbs.toExponential(2)})`);
    expect(out.logits.shape).toEqual([2, 1000]);
  });

  for (const key of CHECKED) {
    it(`intermediate ${key}`, () => {
      const expected = golden.getFloat32(key);
      const actual = seen.get(key)!;
      expect(actual, `model did not emit ${key}`).toBeDefined();
      expectClose(key, actual.subarray(0, expected.length), expected, DEEP_ATOL[key] ?? ATOL, RTOL);
    });
  }

  it("self_attend_5.call7 (after all 48 layers) matches PyTorch float64 within 1e-5 + 1e-4·|b|", async () => {
    const f64 = await readGolden("full", "golden_f64.safetensors");
    const s = expectClose("self_attend_5.call7 vs float64", seen.get("self_attend_5.call7")!, f64.getFloat32("self_attend_5.call7_f64"), ATOL, RTOL);
    console.log(`full: max |self_attend_5.call7 - float64| = ${s.maxAbs.toExponential(2)}`);
  });

  it("encoder cross-attention probabilities (first 64 latents, golden rounded through f16)", () => {
    const expected = golden.getFloat32("cross_attentions.0");
    const [, heads, rows, cols] = golden.info("cross_attentions.0").shape;
    const t = out.crossAttentions![0];
    const actual = new Float32Array(heads * rows * cols);
    for (let r = 0; r < heads * rows; r++) actual.set(t.data.subarray(r * t.shape[3], r * t.shape[3] + cols), r * cols);
    // f16 rounding: relative 2^-11, plus the f16 subnormal spacing 2^-24 for tiny probabilities
    expectClose("cross_attentions.0", actual, expected, 2 ** -24 + ATOL * 0.1, 2 ** -11 + RTOL);
  });

  it("item 0 alone on 1 thread gives bit-identical logits to the 2-thread batch", async () => {
    expect(threads).toBe(2);
    const pixels = new Tensor(golden.getFloat32("pixel_values").slice(0, 3 * 224 * 224), [1, 3, 224, 224]);
    await setThreads(1);
    const t0 = performance.now();
    const single = await model.forward(pixels);
    console.log(`full-size forward, batch 1, 1 thread: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    let diffs = 0;
    for (let i = 0; i < 1000; i++) if (!Object.is(single.logits.data[i], out.logits.data[i])) diffs++;
    expect(diffs).toBe(0);
  }, 600_000);
});
