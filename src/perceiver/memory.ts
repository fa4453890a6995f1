/**
 * Memory a forward pass implies, computed before anything is allocated: the activation bytes of one forward pass
 * (the CLI and model.forward refuse a batch that clearly cannot fit in the memory that is available). The weight
 * count is weights.ts weightCount (re-exported here).
 *
 * Browser-safe: no Node import; the free memory is read through `process.getBuiltinModule("node:os")` when it
 * exists (Node >= 20.16), else it is unknown and only the hard limits apply.
 */
import { PerceiverError } from "../errors.js";
import { attentionChunkRows } from "../layers/attention.js";
import { conv2dOutputSize } from "../tensor/conv.js";
import type { PerceiverConfig } from "./config-type.js";
import { CONV_KERNEL, CONV_OUT_CHANNELS } from "./preprocessor-conv.js";
import { LEARNED_PROJECT_POS_DIM } from "./preprocessor-learned.js";
import { layerShapes } from "./shapes.js";

export { weightCount, type WeightCount } from "./weights.js";

/** Most elements of one typed array in V8 (Node 20: 2^32); a bigger buffer cannot exist at all. */
const MAX_TYPED_ARRAY_LENGTH = 2 ** 32;

/** The fields of config.json the estimates depend on (a PerceiverConfig fits). */
export type MemoryConfig = Pick<
  PerceiverConfig,
  | "architecture" | "numLatents" | "dLatents" | "numBlocks" | "numSelfAttendsPerBlock" | "numSelfAttentionHeads"
  | "numCrossAttentionHeads" | "qkChannels" | "vChannels" | "crossAttentionShapeForAttention"
  | "selfAttentionWideningFactor" | "crossAttentionWideningFactor" | "imageSize" | "numLabels"
>;

/** The input of one forward pass: pixelValues [batch, 3, height, width]. */
export interface ForwardShape {
  batch: number;
  height: number;
  width: number;
  outputAttentions?: boolean;
  outputHiddenStates?: boolean;
}

export interface MemoryEstimate {
  /** Bytes of float32 activations and scratch alive during the pass (weights not included). */
  bytes: number;
  /** Elements of the largest single buffer. */
  largestBuffer: number;
  /** Encoder input tokens per image. */
  tokens: number;
}

/**
 * Activation and scratch memory of model.forward for `shape`, buffer by buffer as the model allocates them: the
 * preprocessor's (its output [B·T, kvDim], layer-normed in place by the cross-attention: the dominant term of the
 * Fourier / learned models), the latents, and the one set of working buffers every layer shares, each as large as
 * its largest use (queries, one item's keys and values, context, MLP hidden, score chunks); plus the attention
 * probabilities and hidden-state snapshots when requested. Counted in float32 elements; the wasm backend's staging
 * memory (~11 MB for the ImageNet models on one thread, ~16 MB on two) and the runtime's own are not included.
 */
export function estimateForwardMemory(cfg: MemoryConfig, shape: ForwardShape): MemoryEstimate {
  const { batch: B, height: H, width: W } = shape;
  const N = cfg.numLatents;
  const D = cfg.dLatents;
  const shapes = layerShapes(cfg, false);
  const kv = shapes.kvDim;
  let largest = 0;
  let total = 0;
  const buf = (n: number) => {
    total += n;
    if (n > largest) largest = n;
  };
  buf(B * 3 * H * W); // pixelValues

  let T: number;
  switch (cfg.architecture) {
    case "PerceiverForImageClassificationConvProcessing": {
      const ch = conv2dOutputSize(H, CONV_KERNEL, 3, 3, 2);
      const cw = conv2dOutputSize(W, CONV_KERNEL, 3, 3, 2);
      T = Math.max(0, Math.floor((ch - 3) / 2) + 1) * Math.max(0, Math.floor((cw - 3) / 2) + 1);
      const conv = CONV_OUT_CHANNELS * Math.max(0, ch) * Math.max(0, cw);
      if (conv > T * kv) buf(conv); // else the conv output lives in the inputs' rows
      buf(CONV_OUT_CHANNELS * T); // pooled
      break;
    }
    case "PerceiverForImageClassificationFourier":
      T = H * W;
      break;
    case "PerceiverForImageClassificationLearned":
      T = H * W;
      buf(T * LEARNED_PROJECT_POS_DIM); // projected positions (kept)
      break;
  }
  buf(B * T * kv); // preprocessor output (layer-normed in place by the cross-attention)
  buf(B * N * D); // latents z

  // the layers' shared working buffers, each sized by its largest use (encoder cross-attention, self-attention,
  // decoder cross-attention: one query per image against the N latents, which it layer-norms in place)
  const c = { qk: shapes.encoderCross.qkChannels, v: shapes.encoderCross.vChannels };
  const qk = shapes.encoderSelf.qkChannels;
  const v = shapes.encoderSelf.vChannels;
  buf(B * N * D); // LayerBuffers.normed
  buf(B * N * D); // LayerBuffers.attnOut
  // the queries, then the MLP hidden activations (one buffer)
  buf(B * N * Math.max(c.qk, qk, D, D * Math.max(cfg.crossAttentionWideningFactor, cfg.selfAttentionWideningFactor)));
  buf(Math.max(T * c.qk, N * qk, N * D)); // LayerBuffers.keys (one image)
  buf(Math.max(T * c.v, N * v, N * D)); // LayerBuffers.values (one image)
  buf(B * N * Math.max(c.v, v)); // LayerBuffers.context
  if (shape.outputAttentions) buf(B * cfg.numCrossAttentionHeads * N * T);
  buf(Math.max(attentionChunkRows(N, T) * T, attentionChunkRows(N, N) * N)); // LayerBuffers.scores
  if (shape.outputHiddenStates) buf((1 + cfg.numBlocks * cfg.numSelfAttendsPerBlock) * B * N * D);

  // decoder: the query, logits, attention
  buf(6 * B * D + N + B * cfg.numLabels);
  if (shape.outputAttentions) buf(B * N);
  return { bytes: 4 * total, largestBuffer: largest, tokens: T };
}

interface NodeProcessLike {
  getBuiltinModule?: (id: string) => unknown;
  constrainedMemory?: () => number | undefined;
  memoryUsage?: { rss?: () => number };
}

/**
 * Memory this process can still use, in bytes: the system's available memory (os.freemem, MemAvailable on Linux),
 * lowered to what a cgroup limit leaves. null when unknown (browsers, old Node).
 */
export function availableMemoryBytes(): number | null {
  const proc = (globalThis as { process?: NodeProcessLike }).process;
  const os = proc?.getBuiltinModule?.("node:os") as { freemem?: () => number } | undefined;
  const free = os?.freemem?.();
  if (typeof free !== "number" || !(free > 0)) return null;
  let avail = free;
  const limit = proc?.constrainedMemory?.();
  const rss = proc?.memoryUsage?.rss?.();
  if (typeof limit === "number" && limit > 0 && limit < 2 ** 50 && typeof rss === "number") {
    avail = Math.min(avail, Math.max(0, limit - rss));
  }
  return avail;
}

const gb = (bytes: number) => `${(bytes / 2 ** 30).toFixed(bytes < 2 ** 30 ? 2 : 1)} GB`;

export interface MemoryCheckOptions {
  /** Bytes available; default availableMemoryBytes(); null skips the comparison (the hard limits still apply). */
  availableBytes?: number | null;
  /** Names the caller in the message (default "forward"). */
  where?: string;
  /** Appended to the message, e.g. "use a smaller --batch-size". */
  hint?: string;
}

/**
 * Refuses a forward pass that cannot fit: one buffer over the typed-array limit (it could not even be created), or
 * activations over the available memory. Throws MEMORY_LIMIT; returns the estimate otherwise.
 */
export function checkForwardMemory(cfg: MemoryConfig, shape: ForwardShape, opts: MemoryCheckOptions = {}): MemoryEstimate {
  const where = opts.where ?? "forward";
  const hint = opts.hint ? `; ${opts.hint}` : "";
  for (const [k, x] of Object.entries({ batch: shape.batch, height: shape.height, width: shape.width })) {
    if (!Number.isSafeInteger(x) || x < 1) throw new PerceiverError("INPUT_INVALID", `${where}: ${k} must be a positive integer, got ${String(x)}`);
  }
  const est = estimateForwardMemory(cfg, shape);
  const what = `a batch of ${shape.batch} image${shape.batch === 1 ? "" : "s"} of ${shape.height}x${shape.width} (${est.tokens} input tokens each)`;
  if (est.largestBuffer > MAX_TYPED_ARRAY_LENGTH) {
    throw new PerceiverError(
      "MEMORY_LIMIT",
      `${where}: ${what} needs a buffer of ${est.largestBuffer} floats, over the ${MAX_TYPED_ARRAY_LENGTH} a typed array can hold${hint}`,
    );
  }
  const avail = opts.availableBytes === undefined ? availableMemoryBytes() : opts.availableBytes;
  if (avail !== null && est.bytes > avail) {
    throw new PerceiverError(
      "MEMORY_LIMIT",
      `${where}: ${what} needs about ${gb(est.bytes)} of activations, but only ${gb(avail)} of memory is available${hint}`,
    );
  }
  return est;
}
