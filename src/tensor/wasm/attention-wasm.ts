/**
 * Multi-head attention in wasm memory (the kernels of attention-kernel.ts), for the wasm backend's attentionHeads.
 */
import type { AttentionLayout } from "../attention-args.js";
import { copyBlock } from "../layout.js";
import type { Job } from "../threads.js";
import { ALPHA_AT, ATTEND_ROWS, PARAM, PARAM_BYTES } from "./attention-kernel.js";
import { A_STRIDE, KC, NR } from "./gemm-kernel.js";
import { ATTEND, CONST_BYTES, PANELIZE, TRANSPOSE, loadWasm, reserve, roundUp, runJobs } from "./runtime.js";

/**
 * Most keys attentionWasm takes; longer inputs take the per-head products, whose score chunks keep memory bounded.
 * (Its working set grows with the keys: the conv model's cross-attention, 3025 keys of 322 channels, would need
 * 16 MB of wasm memory against 10.5 MB for the self-attention, for a small part of the work.)
 */
export const ATTENTION_MAX_KEYS = 2048;

/**
 * q [M, heads·dqk], k [N, heads·dqk], v [N, heads·dv] -> out [M, heads·dv] (offsets and strides: AttentionArgs):
 *   per head h (its column block of q, k, v and out), out_h = softmax(alpha·q_h·k_hᵀ over each row)·v_h
 * All in wasm memory (attention-kernel.ts): Q, K and V are staged once; the keys and values of each head are cut
 * into panels (one job per head); then each job runs `attend` on its heads (a group of heads per job, each job
 * with its own working blocks), and the context is copied out once. Bit-identical to gemmWasm's scores with the
 * softmax epilogue followed by its P·V product, head by head (the same sums in the same order).
 * Returns false (having written nothing) when N > ATTENTION_MAX_KEYS, when threads outnumber the heads (the
 * per-head products split each product across the threads instead), the memory cannot grow, or the module is
 * refused: the caller then runs the per-head products.
 */
export function attentionWasm(x: AttentionLayout): boolean {
  const { m, n, heads, dqk, dv, q, qOff, ldq, k, kOff, ldk, v, vOff, ldv, out, oOff, ldo, alpha } = x;
  if (m === 0 || heads === 0 || dv === 0) return true;
  if (n === 0 || dqk === 0 || n > ATTENTION_MAX_KEYS) return false;
  const w = loadWasm();
  if (w === null || (w.pool !== null && heads < w.pool.threads)) return false;
  const qkW = heads * dqk, vW = heads * dv; // floats per staged row of Q and K, of V and the context
  const nPad = roundUp(n, NR), kp = roundUp(dqk, 4), dvPad = roundUp(dv, NR);
  const chunksQ = Math.max(1, Math.ceil(dqk / KC)), kcsQ = Math.ceil(dqk / chunksQ);
  const chunksP = Math.max(1, Math.ceil(n / KC)), kcsP = Math.ceil(n / chunksP);
  const aChunk = ATTEND_ROWS * A_STRIDE * 4;
  // row strides (bytes) of the scores' C and result blocks, and of P·V's: each product's two share one
  const ldc = (nPad + 4) * 4, ldr = ldc, ldc2 = (dvPad + 4) * 4, ldr2 = ldc2;
  // jobs: every head on one thread; with a pool, up to two jobs per thread (each job's heads share its blocks)
  const jobs = w.pool === null ? 1 : Math.min(heads, 2 * w.pool.threads);
  // byte layout (16-byte aligned regions): parameter blocks, zeros, Q, K (+ zero rows to nPad, + 4 floats the
  // last head's transpose may read), V (+ NR floats its panelize may read), key and value panels per head, then
  // the context and each job's working blocks (in the space of K and V when they fit, see below)
  const al = (x: number) => roundUp(x, 64);
  const paramB = CONST_BYTES;
  const zerosB = al(paramB + heads * PARAM_BYTES);
  const zeroBytes = Math.max(nPad, dvPad, KC) * 4;
  const qB = al(zerosB + zeroBytes);
  const kB = al(qB + m * qkW * 4);
  const vB = al(kB + (nPad * qkW + 4) * 4);
  const kpB = al(vB + (n * vW + NR) * 4);
  const kpBytes = nPad * kp * 4;
  const vpB = al(kpB + heads * kpBytes);
  const vpBytes = dvPad * n * 4;
  const work = { aQ: 0, c: 0, r: 0, aP: 0, c2: 0, r2: 0 };
  let workBytes = 0;
  for (const [name, bytes] of [
    ["aQ", chunksQ * aChunk], ["c", ATTEND_ROWS * ldc], ["r", ATTEND_ROWS * ldr], ["aP", chunksP * aChunk],
    ["c2", ATTEND_ROWS * ldc2], ["r2", ATTEND_ROWS * ldr2],
  ] as const) {
    work[name] = workBytes;
    workBytes = al(workBytes + bytes);
  }
  // the context, then the jobs' working blocks, go where the staged K and V rows were (dead once cut into panels,
  // before any attend job runs) as far as they fit, else after the panels: for the self-attention 10.5 MB of wasm
  // memory instead of 14 on one thread (context and blocks both fit), 16 instead of 18 on two (the context)
  const panelsEnd = al(vpB + heads * vpBytes);
  const ctxB = al(m * vW * 4) <= kpB - kB ? kB : panelsEnd;
  const afterCtx = al(ctxB + m * vW * 4);
  const workB = ctxB === kB && afterCtx + jobs * workBytes <= kpB ? afterCtx : Math.max(panelsEnd, afterCtx);
  if (!reserve(w, Math.max(panelsEnd, workB + jobs * workBytes))) return false;
  const f = w.f32;
  const i32 = new Int32Array(w.memory.buffer);
  const f64 = w.f64;

  // stage Q, K, V (rows of heads·dqk or heads·dv floats) and the zeros
  f.fill(0, zerosB >> 2, (zerosB + zeroBytes) >> 2);
  copyBlock(q, qOff, ldq, f, qB >> 2, qkW, m, qkW);
  copyBlock(k, kOff, ldk, f, kB >> 2, qkW, n, qkW);
  f.fill(0, (kB >> 2) + n * qkW, (kB >> 2) + nPad * qkW + 4);
  copyBlock(v, vOff, ldv, f, vB >> 2, vW, n, vW);
  f.fill(0, (vB >> 2) + n * vW, (vB >> 2) + n * vW + NR);

  // panels of each head's keys (transpose) and values (panelize): one round of 2·heads jobs
  const panelJobs: Job[] = [];
  for (let h = 0; h < heads; h++) {
    panelJobs.push({ fn: TRANSPOSE, args: [kB + h * dqk * 4, qkW * 4, kpB + h * kpBytes, nPad / 4, kp] });
    panelJobs.push({ fn: PANELIZE, args: [vB + h * dv * 4, vW * 4, vpB + h * vpBytes, dvPad / 4, n] });
  }
  runJobs(w, panelJobs, 2 * m * n * (dqk + dv) * heads);

  // parameter blocks, grouped by job (job j takes heads j, j + jobs, ...)
  const attendJobs: Job[] = [];
  let block = 0;
  for (let j = 0; j < jobs; j++) {
    const first = block;
    for (let h = j; h < heads; h += jobs, block++) {
      const p = (paramB + block * PARAM_BYTES) >> 2;
      const wb = workB + j * workBytes;
      const fields: Record<keyof typeof PARAM, number> = {
        q: qB + h * dqk * 4, ldq: qkW * 4, kp: kpB + h * kpBytes, kpPanel: kp * 16, vp: vpB + h * vpBytes,
        vpPanel: n * 16, m, n, dqk, dv, out: ctxB + h * dv * 4, ldo: vW * 4,
        aQ: wb + work.aQ, c: wb + work.c, r: wb + work.r, aP: wb + work.aP, c2: wb + work.c2, r2: wb + work.r2,
        zeros: zerosB, pairsS: nPad / NR, pairsV: dvPad / NR, ldc, ldr, ldc2, ldr2, kcsQ, kcsP, aChunk,
      };
      for (const key of Object.keys(PARAM) as (keyof typeof PARAM)[]) i32[p + PARAM[key]] = fields[key];
      f64[(paramB + block * PARAM_BYTES + ALPHA_AT) >> 3] = alpha;
    }
    attendJobs.push({ fn: ATTEND, args: [paramB + first * PARAM_BYTES, block - first] });
  }
  runJobs(w, attendJobs, 2 * m * n * (dqk + dv) * heads);

  // the context out
  const ctxF = ctxB >> 2;
  copyBlock(f, ctxF, vW, out, oOff, ldo, m, vW);
  return true;
}
