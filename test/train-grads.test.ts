/**
 * Hand-written backward passes against PyTorch autograd (test/fixtures/train/grads.safetensors, float64 torch on
 * float32 inputs, made by scripts/make_train_goldens.py grads), finite differences, and the fast decoder against
 * the reference one.
 */
import { describe, expect, it } from "vitest";
import { attentionBackwardRef, attentionForwardRef } from "../src/layers/grad/attention-backward.js";
import { geluBackward, geluBackwardRef } from "../src/layers/grad/gelu-backward.js";
import { layerNormBackward, layerNormBackwardRef, layerNormForward } from "../src/layers/grad/layernorm-backward.js";
import { linearBackward, linearBackwardRef, linearForward, linearForwardRef } from "../src/layers/grad/linear-backward.js";
import { softmaxCrossEntropy } from "../src/layers/grad/softmax-cross-entropy.js";
import { AdamW } from "../src/perceiver/train/adamw.js";
import { decoderStepFast, normalizeLatents } from "../src/perceiver/train/decoder-fast.js";
import { DECODER_PARAM_NAMES, decoderParamShapes, zerosLike, type DecoderParams, type DecoderShape } from "../src/perceiver/train/decoder-params.js";
import { decoderStepReference } from "../src/perceiver/train/decoder-reference.js";
import { Rng } from "../src/perceiver/train/rng.js";
import { diffStats, readGolden } from "./helpers/golden.js";

const golden = await readGolden("train", "grads.safetensors");
const get = (n: string) => golden.getFloat32(n).slice();

// the tiny decoder of the golden: D 8, N 5, 3 labels, batch 4, HF layout (1 head, qk = v = D)
const SHAPE: DecoderShape = { numLatents: 5, dLatents: 8, qkChannels: 8, vChannels: 8, numHeads: 1, numLabels: 3, widening: 1 };
const B = 4;
const params = (prefix = "dec.param.") => Object.fromEntries(DECODER_PARAM_NAMES.map((n) => [n, get(prefix + n)])) as DecoderParams;
const latents = () => {
  const z = get("dec.z");
  return Array.from({ length: B }, (_, b) => z.slice(b * 40, (b + 1) * 40));
};
const labels = Array.from(golden.getFloat32("dec.labels"));

/** |a - b| <= atol + rtol·|b| everywhere (reports the worst element) */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number, what: string) {
  const d = diffStats(actual, expected, atol, rtol);
  expect(d.maxRatio, `${what}: worst at ${d.worstIndex}, max abs ${d.maxAbs}`).toBeLessThanOrEqual(1);
}

// Tolerances: float32 arithmetic against float64 torch on the same float32 inputs. The values are O(0.01-1);
// float32 sums over at most 40 terms stay within ~1e-6 relative; atol 2e-6 covers gradients that are ~0.
const ATOL = 2e-6, RTOL = 2e-5;

describe("decoder gradients against PyTorch autograd (tiny HF PerceiverClassificationDecoder)", () => {
  it("the reference decoder: loss, logits and every parameter gradient", () => {
    const g = zerosLike(SHAPE);
    const r = decoderStepReference(params(), SHAPE, latents(), labels, g);
    expectClose(r.logits, get("dec.logits"), ATOL, RTOL, "logits");
    expect(Math.abs(r.loss - get("dec.loss")[0])).toBeLessThan(2e-6);
    for (const n of DECODER_PARAM_NAMES) expectClose(g[n], get(`dec.grad.${n}`), ATOL, RTOL, n);
  });

  it("the fast decoder (no keys/values over the latents): the same gradients", () => {
    const g = zerosLike(SHAPE);
    const r = decoderStepFast(params(), SHAPE, latents().map((z) => normalizeLatents(z, 5, 8)), labels, g);
    expectClose(r.logits, get("dec.logits"), ATOL, RTOL, "logits");
    // the key bias gets no gradient at all (its score term is the same for every latent): torch's is ~1e-17
    for (const n of DECODER_PARAM_NAMES) expectClose(g[n], get(`dec.grad.${n}`), 1e-5, 1e-4, n);
  });

  it("AdamW: two steps match torch.optim.AdamW (decay 0.1 on the Linear weights, lr 0.01)", () => {
    const p = params();
    const opt = new AdamW(SHAPE, { lr: 0.01, weightDecay: 0.1 });
    const g0 = params("dec.grad."), g1 = params("dec.grad1.");
    opt.step(p, g0);
    for (const n of DECODER_PARAM_NAMES) expectClose(p[n], get(`dec.step1.${n}`), 1e-6, 1e-6, `step1 ${n}`);
    opt.step(p, g1);
    for (const n of DECODER_PARAM_NAMES) expectClose(p[n], get(`dec.step2.${n}`), 1e-6, 1e-6, `step2 ${n}`);
  });

  it("finite differences: central differences of the reference loss agree with its gradient", () => {
    // float32 loss: rounding ~1e-7 / (2h) plus truncation O(h²); h = 1e-2 -> abs error well under 1e-3
    const p = params();
    const g = zerosLike(SHAPE);
    decoderStepReference(p, SHAPE, latents(), labels, g);
    const rng = new Rng(5);
    const h = 1e-2;
    let checked = 0;
    for (const n of DECODER_PARAM_NAMES) {
      for (let t = 0; t < 3; t++) {
        const i = rng.below(p[n].length);
        const v = p[n][i];
        p[n][i] = v + h;
        const lp = decoderStepReference(p, SHAPE, latents(), labels, null).loss;
        p[n][i] = v - h;
        const lm = decoderStepReference(p, SHAPE, latents(), labels, null).loss;
        p[n][i] = v;
        const fd = (lp - lm) / (2 * h);
        expect(Math.abs(fd - g[n][i]), `${n}[${i}]: fd ${fd}, analytic ${g[n][i]}`).toBeLessThan(1e-3 + 1e-2 * Math.abs(g[n][i]));
        checked++;
      }
    }
    expect(checked).toBe(3 * DECODER_PARAM_NAMES.length);
  });
});

describe("multi-head cross-attention backward against autograd (HF PerceiverAttention, 2 heads, qk 8, v 6)", () => {
  const P = (n: string) => get(`att.param.${n}`);
  const G = (n: string) => get(`att.grad.${n}`);
  const b = 2, tq = 3, tkv = 4, qDim = 7, kvDim = 5, C = 8, Cv = 6, H = 2;

  it("LN1/LN2 -> projections -> attention -> output dense + query residual: every gradient", () => {
    for (const reference of [true, false]) {
      const lin = reference ? linearForwardRef : linearForward;
      const linB = reference ? linearBackwardRef : linearBackward;
      const lnB = reference ? layerNormBackwardRef : layerNormBackward;
      const hidden = get("att.hidden"), inputs = get("att.inputs"), R = get("att.R");
      const a = new Float32Array(b * tq * qDim), ahat = a.slice(), ar = new Float32Array(b * tq);
      layerNormForward(hidden, P("self.layernorm1.weight"), P("self.layernorm1.bias"), b * tq, qDim, 1e-5, a, ahat, ar);
      const x = new Float32Array(b * tkv * kvDim), xhat = x.slice(), xr = new Float32Array(b * tkv);
      layerNormForward(inputs, P("self.layernorm2.weight"), P("self.layernorm2.bias"), b * tkv, kvDim, 1e-5, x, xhat, xr);
      const q = new Float32Array(b * tq * C), k = new Float32Array(b * tkv * C), v = new Float32Array(b * tkv * Cv);
      lin(a, P("self.query.weight"), P("self.query.bias"), b * tq, qDim, C, q);
      lin(x, P("self.key.weight"), P("self.key.bias"), b * tkv, kvDim, C, k);
      lin(x, P("self.value.weight"), P("self.value.bias"), b * tkv, kvDim, Cv, v);
      const dims = { batch: b, tq, tkv, heads: H, dqk: C / H, dv: Cv / H };
      const ctx = new Float32Array(b * tq * Cv), probs = new Float32Array(b * H * tq * tkv);
      attentionForwardRef(q, k, v, dims, ctx, probs);
      const out = new Float32Array(b * tq * qDim);
      lin(ctx, P("output.dense.weight"), P("output.dense.bias"), b * tq, Cv, qDim, out);
      for (let i = 0; i < out.length; i++) out[i] += hidden[i];
      expectClose(out, get("att.out"), ATOL, RTOL, "out");

      // loss = Σ out ⊙ R: dout = R; the residual passes R to the hidden states unchanged
      const gw = (n: string) => new Float32Array(P(n).length);
      const grads: Record<string, Float32Array> = {};
      for (const n of ["self.layernorm1.weight", "self.layernorm1.bias", "self.layernorm2.weight", "self.layernorm2.bias", "self.query.weight", "self.query.bias", "self.key.weight", "self.key.bias", "self.value.weight", "self.value.bias", "output.dense.weight", "output.dense.bias"]) grads[n] = gw(n);
      const dctx = new Float32Array(ctx.length);
      linB(ctx, P("output.dense.weight"), R, b * tq, Cv, qDim, dctx, grads["output.dense.weight"], grads["output.dense.bias"]);
      const dq = new Float32Array(q.length), dk = new Float32Array(k.length), dv = new Float32Array(v.length);
      attentionBackwardRef(q, k, v, probs, dctx, dims, dq, dk, dv);
      const da = new Float32Array(a.length), dxk = new Float32Array(x.length), dxv = new Float32Array(x.length);
      linB(a, P("self.query.weight"), dq, b * tq, qDim, C, da, grads["self.query.weight"], grads["self.query.bias"]);
      linB(x, P("self.key.weight"), dk, b * tkv, kvDim, C, dxk, grads["self.key.weight"], grads["self.key.bias"]);
      linB(x, P("self.value.weight"), dv, b * tkv, kvDim, Cv, dxv, grads["self.value.weight"], grads["self.value.bias"]);
      for (let i = 0; i < dxk.length; i++) dxk[i] += dxv[i];
      const dh = new Float32Array(hidden.length), di = new Float32Array(inputs.length);
      lnB(da, ahat, ar, P("self.layernorm1.weight"), b * tq, qDim, dh, grads["self.layernorm1.weight"], grads["self.layernorm1.bias"]);
      lnB(dxk, xhat, xr, P("self.layernorm2.weight"), b * tkv, kvDim, di, grads["self.layernorm2.weight"], grads["self.layernorm2.bias"]);
      for (let i = 0; i < dh.length; i++) dh[i] += R[i];
      expectClose(dh, G("hidden"), 1e-5, 1e-4, "d hidden");
      expectClose(di, G("inputs"), 1e-5, 1e-4, "d inputs");
      for (const [n, gr] of Object.entries(grads)) expectClose(gr, G(n), 1e-5, 1e-4, `${reference ? "ref" : "fast"} ${n}`);
    }
  });
});

describe("fast paths against their references on odd shapes", () => {
  const rng = new Rng(11);
  const rand = (n: number, s = 1) => Float32Array.from({ length: n }, () => s * rng.normal());

  it("linear, LayerNorm and GELU backward", () => {
    const m = 5, k = 7, n = 3;
    const x = rand(m * k), w = rand(n * k), dy = rand(m * n);
    const r = { dx: new Float32Array(m * k), dw: new Float32Array(n * k), db: new Float32Array(n) };
    const f = { dx: new Float32Array(m * k), dw: new Float32Array(n * k), db: new Float32Array(n) };
    linearBackwardRef(x, w, dy, m, k, n, r.dx, r.dw, r.db);
    linearBackward(x, w, dy, m, k, n, f.dx, f.dw, f.db);
    for (const key of ["dx", "dw", "db"] as const) expectClose(f[key], r[key], 1e-5, 1e-5, key);

    const rows = 3, dim = 13;
    const xl = rand(rows * dim, 3), gamma = rand(dim), beta = rand(dim), dyl = rand(rows * dim);
    const out = new Float32Array(rows * dim), xhat = out.slice(), rstd = new Float32Array(rows);
    layerNormForward(xl, gamma, beta, rows, dim, 1e-5, out, xhat, rstd);
    const a = [new Float32Array(rows * dim), new Float32Array(dim), new Float32Array(dim)] as const;
    const c = [new Float32Array(rows * dim), new Float32Array(dim), new Float32Array(dim)] as const;
    layerNormBackwardRef(dyl, xhat, rstd, gamma, rows, dim, ...a);
    layerNormBackward(dyl, xhat, rstd, gamma, rows, dim, ...c);
    expectClose(c[0], a[0], 1e-5, 1e-5, "layernorm dx");

    const xg = Float32Array.from({ length: 41 }, (_, i) => -6 + 0.3 * i), dyg = rand(41);
    const g1 = new Float32Array(41), g2 = new Float32Array(41);
    geluBackwardRef(xg, dyg, g1, 41);
    geluBackward(xg, dyg, g2, 41);
    expectClose(g2, g1, 1e-6, 1e-6, "gelu");
  });

  it("GELU and softmax cross-entropy: finite differences", () => {
    // gelu: float64 central differences of 0.5·x·(1+erf(x/√2)) at h = 1e-5
    const xs = Float32Array.from([-3, -1.2, -0.3, 0, 0.4, 1.7, 4]);
    const ones = new Float32Array(xs.length).fill(1), d = new Float32Array(xs.length);
    geluBackwardRef(xs, ones, d, xs.length);
    const erfGelu = (v: number) => 0.5 * v * (1 + erfApprox(v / Math.SQRT2));
    xs.forEach((v, i) => expect(Math.abs((erfGelu(v + 1e-5) - erfGelu(v - 1e-5)) / 2e-5 - d[i])).toBeLessThan(1e-6));

    const logits = rand(2 * 4, 2), dl = new Float32Array(8);
    const y = [3, 1];
    softmaxCrossEntropy(logits, y, 2, 4, dl);
    for (let i = 0; i < 8; i++) {
      const lp = logits.slice(), lm = logits.slice();
      lp[i] += 1e-2;
      lm[i] -= 1e-2;
      const fd = (softmaxCrossEntropy(lp, y, 2, 4, null).loss - softmaxCrossEntropy(lm, y, 2, 4, null).loss) / 2e-2;
      expect(Math.abs(fd - dl[i])).toBeLessThan(1e-4);
    }
  });

  it("the fast decoder matches the reference with 2 heads, qk ≠ v channels, widening 2 and 9 labels", () => {
    const s: DecoderShape = { numLatents: 7, dLatents: 6, qkChannels: 4, vChannels: 10, numHeads: 2, numLabels: 9, widening: 2 };
    const shapes = decoderParamShapes(s);
    const p = Object.fromEntries(DECODER_PARAM_NAMES.map((n) => {
      const len = shapes[n].reduce((x, y) => x * y, 1);
      return [n, n.includes("layernorm") && n.endsWith("weight") ? Float32Array.from(rand(len, 0.3), (v) => 1 + v) : rand(len, 0.5)];
    })) as DecoderParams;
    const z = Array.from({ length: 5 }, () => rand(7 * 6, 2));
    const lab = [0, 8, 3, 3, 5];
    const gr = zerosLike(s), gf = zerosLike(s);
    const r = decoderStepReference(p, s, z, lab, gr);
    const f = decoderStepFast(p, s, z.map((zz) => normalizeLatents(zz, 7, 6)), lab, gf);
    expectClose(f.logits, r.logits, 1e-5, 1e-5, "logits");
    expectClose(f.probs, r.probs, 1e-6, 1e-5, "probs");
    for (const n of DECODER_PARAM_NAMES) expectClose(gf[n], gr[n], 1e-5, 1e-4, n);
  });
});

// erf by its Maclaurin series (|x| < 3.5 here): an independent check of the GELU derivative
function erfApprox(x: number): number {
  let term = x, sum = x;
  for (let n = 1; n < 80; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}
