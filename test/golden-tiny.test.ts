/**
 * Golden tests against PyTorch dumps of the tiny real-format checkpoints (test/fixtures/tiny-conv*):
 * logits vs PyTorch's float64 run, and every dumped intermediate vs PyTorch fp32, so a failure names the layer.
 * Each checkpoint runs on every backend and thread count: the reference loops (one thread), and the TypeScript
 * kernels and the wasm kernel, each on 1 and on 2 threads (with every product split across the threads, since the
 * tiny model's products are under the usual thresholds; the test checks that splits happened).
 */
import { afterAll, describe, expect, it } from "vitest";
import { PerceiverForImageClassification, Tensor } from "../src/index.js";
import { getBackend, getThreads, setBackend, setThreads } from "../src/tensor/gemm.js";
import { setTsSplitThreshold, tsSplitProducts } from "../src/tensor/gemm-ts.js";
import { setWasmSplitThreshold, wasmSplitBlocks } from "../src/tensor/wasm/runtime.js";
import { expectClose, fixture, readGolden } from "./helpers/golden.js";

interface Mode { label: string; backend: "ts" | "wasm" | "reference"; threads: number }
const MODES: Mode[] = [
  { label: "reference", backend: "reference", threads: 1 },
  { label: "wasm, 2 threads", backend: "wasm", threads: 2 },
  { label: "wasm, 1 thread", backend: "wasm", threads: 1 },
  { label: "ts, 2 threads", backend: "ts", threads: 2 },
  { label: "ts, 1 thread", backend: "ts", threads: 1 },
];
const DEFAULT_SPLIT = setWasmSplitThreshold(0);
setWasmSplitThreshold(DEFAULT_SPLIT);
const DEFAULT_TS_SPLIT = setTsSplitThreshold(0);
setTsSplitThreshold(DEFAULT_TS_SPLIT);
/** Products (ts) or blocks (wasm) run on the threads so far. */
const splitCount = () => wasmSplitBlocks() + tsSplitProducts();

async function useMode(mode: Mode): Promise<void> {
  setBackend(mode.backend);
  await setThreads(mode.threads);
  setWasmSplitThreshold(mode.threads > 1 ? 0 : DEFAULT_SPLIT);
  setTsSplitThreshold(mode.threads > 1 ? 0 : DEFAULT_TS_SPLIT);
  expect(getBackend()).toBe(mode.backend);
  expect(getThreads()).toBe(mode.threads);
}

afterAll(async () => {
  setWasmSplitThreshold(DEFAULT_SPLIT);
  setTsSplitThreshold(DEFAULT_TS_SPLIT);
  setBackend("ts");
  await setThreads(1);
  setBackend("wasm");
  await setThreads(1);
});

// Tolerances (from the issue): logits vs float64 truth, absolute; intermediates |a-b| <= ATOL + RTOL·|b| vs fp32 torch.
const LOGITS_ATOL = 2e-6;
const ATOL = 1e-5;
const RTOL = 1e-4;

/** Item 0 of a [B, ...] tensor, optionally only its first `rows` rows of width `cols`. */
function item0(t: Tensor, rows?: number): Float32Array {
  const per = t.data.length / t.shape[0];
  const first = t.data.subarray(0, per);
  if (rows === undefined) return first;
  const cols = t.shape[t.shape.length - 1];
  return first.subarray(0, rows * cols);
}

async function runGolden(name: string, mode: Mode) {
  await useMode(mode);
  const model = await PerceiverForImageClassification.fromPretrained(fixture(name));
  const golden = await readGolden(name, "golden.safetensors");
  const pixels = new Tensor(golden.getFloat32("pixel_values"), golden.info("pixel_values").shape);
  const seen = new Map<string, Tensor>();
  const splitsBefore = splitCount();
  const out = await model.forward(pixels, { outputAttentions: true, onIntermediate: (n, t) => seen.set(n, t) });
  const splits = splitCount() - splitsBefore;
  return { model, golden, out, seen, splits };
}

for (const mode of MODES) for (const name of ["tiny-conv", "tiny-conv-heads"]) {
  describe(`golden ${name} (${mode.label})`, async () => {
    const { model, golden, out, seen, splits } = await runGolden(name, mode);

    it(mode.threads > 1 ? "split its products across the threads" : "ran on one thread", () => {
      if (mode.threads > 1) expect(splits).toBeGreaterThan(0);
      else expect(splits).toBe(0);
    });

    it("logits match PyTorch float64 within 2e-6", () => {
      expect(out.logits.shape).toEqual(golden.info("logits_f64").shape);
      const s = expectClose("logits", out.logits.data, golden.getFloat32("logits_f64"), LOGITS_ATOL, 0);
      console.log(`${name} (${mode.label}): max |logits - logits_f64| = ${s.maxAbs.toExponential(2)}`);
    });

    const names = golden.names().filter((n) => !["pixel_values", "logits", "logits_f64"].includes(n));
    it("dumps the intermediates we check", () => {
      expect(names).toContain("convnet");
      expect(names).toContain("cross_attention");
      expect(names.some((n) => n.startsWith("self_attend_"))).toBe(true);
    });

    for (const key of names) {
      it(`intermediate ${key}`, () => {
        const expected = golden.getFloat32(key);
        const shape = golden.info(key).shape;
        let actual: Float32Array;
        if (key === "cross_attentions.0" || key === "cross_attentions.1") {
          const t = out.crossAttentions![key === "cross_attentions.0" ? 0 : 1];
          // golden keeps item 0 and at most the first 4096 inputs of each row
          const [, heads, rows, cols] = shape;
          const fullCols = t.shape[3];
          actual = new Float32Array(heads * rows * cols);
          for (let r = 0; r < heads * rows; r++) actual.set(t.data.subarray(r * fullCols, r * fullCols + cols), r * cols);
        } else {
          const t = seen.get(key);
          expect(t, `the model did not emit ${key}`).toBeDefined();
          actual = key.startsWith("preprocessor") ? item0(t!, shape[1]) : item0(t!);
        }
        expectClose(key, actual, expected, ATOL, RTOL);
      });
    }

    it("has the config's label names", () => {
      expect(Object.keys(model.config.id2label).length).toBe(model.config.numLabels);
    });
  });
}

describe("tiny-conv in F16 and BF16", () => {
  for (const dt of ["f16", "bf16"]) {
    it(`model.${dt}.safetensors matches golden.${dt}`, async () => {
      const model = await PerceiverForImageClassification.fromPretrained(fixture("tiny-conv", `model.${dt}.safetensors`));
      const golden = await readGolden("tiny-conv", `golden.${dt}.safetensors`);
      const pixelsFile = golden.has("pixel_values") ? golden : await readGolden("tiny-conv", "golden.safetensors");
      const pixels = new Tensor(pixelsFile.getFloat32("pixel_values"), pixelsFile.info("pixel_values").shape);
      const { logits } = await model.forward(pixels);
      const ref = golden.has("logits_f64") ? "logits_f64" : "logits";
      const s = expectClose(`${dt} logits`, logits.data, golden.getFloat32(ref), ATOL, RTOL);
      console.log(`tiny-conv ${dt}: max |logits - ${ref}| = ${s.maxAbs.toExponential(2)}`);
    });
  }
});

describe("extractFeatures", () => {
  it("returns the final latents (= PyTorch's last self-attention output) and their mean", async () => {
    const model = await PerceiverForImageClassification.fromPretrained(fixture("tiny-conv"));
    const golden = await readGolden("tiny-conv", "golden.safetensors");
    const pixels = new Tensor(golden.getFloat32("pixel_values"), golden.info("pixel_values").shape);
    const { latents, pooled } = await model.extractFeatures(pixels);
    const { numLatents: N, dLatents: D, numBlocks, numSelfAttendsPerBlock } = model.config;
    expect(latents.shape).toEqual([2, N, D]);
    expect(pooled.shape).toEqual([2, D]);
    const last = golden.getFloat32(`self_attend_${numSelfAttendsPerBlock - 1}.call${numBlocks - 1}`);
    expectClose("final latents", latents.data.subarray(0, N * D), last, ATOL, RTOL);
    for (let d = 0; d < D; d++) {
      let s = 0;
      for (let n = 0; n < N; n++) s += latents.data[D * N + n * D + d];
      expect(Math.abs(pooled.data[D + d] - s / N)).toBeLessThan(1e-6);
    }
  });
});
