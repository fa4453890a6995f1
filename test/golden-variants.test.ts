/**
 * Golden tests of the two sibling ImageNet checkpoints against PyTorch dumps of tiny real-format checkpoints:
 * tiny-fourier (PerceiverForImageClassificationFourier: raw pixels + Fourier features, 224x224 = 50176 tokens x 261)
 * and tiny-learned (PerceiverForImageClassificationLearned: conv 1x1 + learned positions, 32x32 = 1024 tokens x 512).
 * Each runs on the default backend and on the reference loops.
 * Also: the row-chunked attention against the unchunked one.
 */
import { afterAll, describe, expect, it } from "vitest";
import { PerceiverError, PerceiverForImageClassification, Tensor } from "../src/index.js";
import { ATTENTION_CHUNK_ROWS, attentionChunkRows, MultiHeadAttention } from "../src/layers/attention.js";
import { Linear } from "../src/layers/linear.js";
import { LayerBuffers } from "../src/layers/buffers.js";
import { setBackend } from "../src/tensor/gemm.js";
import { expectClose, fixture, readGolden } from "./helpers/golden.js";

// Tolerances (as in golden-tiny): logits vs float64 truth, absolute; intermediates |a-b| <= ATOL + RTOL·|b| vs fp32 torch.
const LOGITS_ATOL = 2e-6;
const ATOL = 1e-5;
const RTOL = 1e-4;

/** Item 0 of a [B, ...] tensor, optionally only its first `rows` rows. */
function item0(t: Tensor, rows?: number): Float32Array {
  const per = t.data.length / t.shape[0];
  const first = t.data.subarray(0, per);
  if (rows === undefined) return first;
  const cols = t.shape[t.shape.length - 1];
  return first.subarray(0, rows * cols);
}

const cases = [
  { name: "tiny-fourier", architecture: "PerceiverForImageClassificationFourier", tokens: 224 * 224, kvDim: 261, withoutPos: 3 },
  { name: "tiny-learned", architecture: "PerceiverForImageClassificationLearned", tokens: 32 * 32, kvDim: 512, withoutPos: 256 },
] as const;

/** The default backend (wasm here), and the reference loops. */
const BACKENDS = ["wasm", "reference"] as const;

afterAll(() => setBackend("wasm"));

for (const backend of BACKENDS) for (const c of cases) {
  describe(`golden ${c.name} (${backend})`, async () => {
    setBackend(backend);
    const model = await PerceiverForImageClassification.fromPretrained(fixture(c.name));
    const golden = await readGolden(c.name, "golden.safetensors");
    const pixels = new Tensor(golden.getFloat32("pixel_values"), golden.info("pixel_values").shape);
    const seen = new Map<string, Tensor>();
    const t0 = performance.now();
    const out = await model.forward(pixels, { outputAttentions: true, onIntermediate: (n, t) => seen.set(n, t) });
    console.log(`${c.name} (${backend}): forward of [${pixels.shape.join(",")}] took ${((performance.now() - t0) / 1000).toFixed(2)} s`);

    it("is the architecture of config.json", () => {
      expect(model.config.architecture).toBe(c.architecture);
      expect(model.preprocessor.numChannels).toBe(c.kvDim);
    });

    it("logits match PyTorch float64 within 2e-6", () => {
      expect(out.logits.shape).toEqual(golden.info("logits_f64").shape);
      const s = expectClose("logits", out.logits.data, golden.getFloat32("logits_f64"), LOGITS_ATOL, 0);
      console.log(`${c.name} (${backend}): max |logits - logits_f64| = ${s.maxAbs.toExponential(2)}`);
    });

    it("emits the preprocessor intermediates with their full shapes and no convnet", () => {
      const batch = pixels.shape[0];
      expect(seen.get("preprocessor")?.shape).toEqual([batch, c.tokens, c.kvDim]);
      expect(seen.get("preprocessor_without_pos")?.shape).toEqual([batch, c.tokens, c.withoutPos]);
      expect(seen.has("convnet")).toBe(false);
      expect(out.crossAttentions?.[0].shape).toEqual([batch, model.config.numCrossAttentionHeads, model.config.numLatents, c.tokens]);
    });

    const names = golden.names().filter((n) => !["pixel_values", "logits", "logits_f64"].includes(n));
    it("dumps the intermediates we check", () => {
      for (const n of ["preprocessor", "preprocessor_without_pos", "cross_attention", "cross_attentions.0", "cross_attentions.1"]) {
        expect(names).toContain(n);
      }
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

    it("encoder attention probabilities match relative to their size (~1/T, far below the 1e-5 floor)", () => {
      // with T = 50176 inputs each probability is ~2e-5, so ATOL alone would accept almost anything
      const [, heads, rows, cols] = golden.info("cross_attentions.0").shape;
      const t = out.crossAttentions![0];
      const actual = new Float32Array(heads * rows * cols);
      for (let r = 0; r < heads * rows; r++) actual.set(t.data.subarray(r * c.tokens, r * c.tokens + cols), r * cols);
      expectClose("cross_attentions.0 (scaled floor)", actual, golden.getFloat32("cross_attentions.0"), ATOL / c.tokens, RTOL);
    });

    if (c.name === "tiny-fourier" && backend === "wasm") {
      it("refuses an image of more than 2^20 pixel tokens instead of running out of memory", async () => {
        const big = new Tensor(new Float32Array(3 * 1025 * 1024), [1, 3, 1025, 1024]);
        const e = await model.forward(big).then(() => null, (err: unknown) => err);
        expect(e).toBeInstanceOf(PerceiverError);
        expect((e as PerceiverError).code).toBe("INPUT_INVALID");
        expect((e as Error).message).toMatch(/1025x1024 image is 1049600 pixel tokens, over the limit of 1048576/);
      });
    }

    if (c.name === "tiny-learned" && backend === "wasm") {
      it("refuses an image whose pixel count differs from image_size² (HF without interpolate_pos_encoding)", async () => {
        const small = new Tensor(new Float32Array(1 * 3 * 30 * 30), [1, 3, 30, 30]);
        const e = await model.forward(small).then(() => null, (err: unknown) => err);
        expect(e).toBeInstanceOf(PerceiverError);
        expect((e as PerceiverError).code).toBe("INPUT_INVALID");
        expect((e as Error).message).toMatch(/30x30 image has 900 pixels .* 32x32 = 1024/);
      });
    }
  });
}

describe("row-chunked attention", () => {
  // deterministic pseudo-random values in [-1, 1)
  let seed = 12345;
  const rand = (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      a[i] = (seed >>> 8) / 2 ** 23 - 1;
    }
    return a;
  };
  const linear = (inF: number, outF: number) => new Linear(rand(inF * outF), rand(outF), inF, outF);

  it("splits only large score matrices", () => {
    expect(attentionChunkRows(512, 512)).toBe(512); // self-attention: [512, 512] in one piece
    expect(attentionChunkRows(512, 3025)).toBe(ATTENTION_CHUNK_ROWS); // conv model's cross-attention
    expect(attentionChunkRows(512, 50176)).toBe(ATTENTION_CHUNK_ROWS); // Fourier / learned models
    expect(attentionChunkRows(16, 50176)).toBe(16);
  });

  for (const [heads, qDim, kvDim, qk, v, out] of [[1, 12, 20, 20, 20, 12], [3, 10, 7, 9, 6, 10]] as const) {
    it(`gives bit-identical outputs and probabilities (${heads} heads, qk ${qk}, v ${v})`, () => {
      const batch = 2, tq = 23, tkv = 37;
      const wq = linear(qDim, qk), wk = linear(kvDim, qk), wv = linear(kvDim, v), wo = linear(v, out);
      const q = rand(batch * tq * qDim);
      const kv = rand(batch * tkv * kvDim);
      const run = (chunkRows: number | undefined, withProbs: boolean) => {
        const att = new MultiHeadAttention({ query: wq, key: wk, value: wv, output: wo, numHeads: heads, chunkRows });
        const o = new Float32Array(batch * tq * out);
        const p = withProbs ? new Float32Array(batch * heads * tq * tkv) : undefined;
        att.forward({ q, kv, batch, tq, tkv, out: o, buffers: new LayerBuffers(), probs: p });
        return { o, p };
      };
      const whole = run(undefined, true);
      // sanity: the probabilities are a softmax over the keys
      for (let r = 0; r < batch * heads * tq; r++) {
        let s = 0;
        for (let j = 0; j < tkv; j++) s += whole.p![r * tkv + j];
        expect(Math.abs(s - 1)).toBeLessThan(1e-5);
      }
      for (const chunk of [1, 4, 7, 22]) {
        const a = run(chunk, true);
        expect(a.o).toEqual(whole.o);
        expect(a.p).toEqual(whole.p);
        expect(run(chunk, false).o).toEqual(whole.o);
      }
    });
  }
});
