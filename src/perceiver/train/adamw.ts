/**
 * AdamW, step for step as torch.optim.AdamW (decoupled weight decay, bias-corrected moments):
 *   θ ← θ·(1 - lr·λ)                       (only for parameters with decay: isDecayed)
 *   m ← β1·m + (1-β1)·g,   v ← β2·v + (1-β2)·g²
 *   θ ← θ - (lr / (1-β1ᵗ)) · m / (√v / √(1-β2ᵗ) + ε)
 */
import { DECODER_PARAM_NAMES, isDecayed, zerosLike, type DecoderParams, type DecoderShape } from "./decoder-params.js";

export interface AdamWOptions {
  lr: number;
  weightDecay: number;
  beta1?: number; // default 0.9
  beta2?: number; // default 0.999
  eps?: number; // default 1e-8
}

export class AdamW {
  private readonly m: DecoderParams;
  private readonly v: DecoderParams;
  private t = 0;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;

  constructor(shape: DecoderShape, readonly options: AdamWOptions) {
    this.m = zerosLike(shape);
    this.v = zerosLike(shape);
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
  }

  /** One update of every parameter from its gradient; lr may differ per step (a schedule). */
  step(params: DecoderParams, grads: DecoderParams, lr = this.options.lr): void {
    this.t++;
    const { beta1: b1, beta2: b2, eps } = this;
    const bc1 = 1 - b1 ** this.t;
    const bc2sqrt = Math.sqrt(1 - b2 ** this.t);
    const stepSize = lr / bc1;
    const c1 = 1 - b1, c2 = 1 - b2, invBc2 = 1 / bc2sqrt;
    for (const name of DECODER_PARAM_NAMES) {
      const p = params[name], g = grads[name], m = this.m[name], v = this.v[name];
      const decay = isDecayed(name) ? 1 - lr * this.options.weightDecay : 1;
      for (let i = 0, n = p.length; i < n; i++) {
        const gi = g[i];
        const mi = b1 * m[i] + c1 * gi;
        const vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        // torch: denom = √v/√(1-β2ᵗ) + ε (the moments as stored, in float32)
        p[i] = p[i] * decay - (stepSize * Math.fround(mi)) / (Math.sqrt(Math.fround(vi)) * invBc2 + eps);
      }
    }
  }
}
