/**
 * PerceiverConfig, read from a Hugging Face `config.json`. Defaults are those of transformers' PerceiverConfig;
 * unknown keys are ignored; impossible values are rejected with a message naming the field.
 */
import { PerceiverError } from "../errors.js";
import { SUPPORTED_ARCHITECTURES, type ImageClassificationArchitecture, type PerceiverConfig } from "./config-type.js";
import { weightCount } from "./weights.js";

export { SUPPORTED_ARCHITECTURES, type ImageClassificationArchitecture, type PerceiverConfig } from "./config-type.js";

/** Default cap on the weights a config may imply: 8 GiB of float32 (the ImageNet models need 0.2 GB). */
const DEFAULT_MAX_WEIGHT_BYTES = 8 * 2 ** 30;

/** Limits that keep a hostile config from asking for absurd allocations (overridable). */
export interface ConfigLimits {
  /** Largest size field (num_latents, d_latents, qk_channels, image_size, number of labels, ...). */
  maxDim: number;
  /** Largest num_blocks / num_self_attends_per_block. */
  maxLayers: number;
  /** Largest total weight size the config may imply, as float32 bytes (default 8 GiB). */
  maxWeightBytes: number;
}
export const DEFAULT_CONFIG_LIMITS: Readonly<ConfigLimits> = Object.freeze({ maxDim: 65536, maxLayers: 1024, maxWeightBytes: DEFAULT_MAX_WEIGHT_BYTES });

/** The HF PerceiverConfig defaults (transformers/models/perceiver/configuration_perceiver.py). */
const DEFAULTS = {
  num_latents: 256,
  d_latents: 1280,
  d_model: 768,
  num_blocks: 1,
  num_self_attends_per_block: 26,
  num_self_attention_heads: 8,
  num_cross_attention_heads: 8,
  qk_channels: null,
  v_channels: null,
  cross_attention_shape_for_attention: "kv",
  self_attention_widening_factor: 1,
  cross_attention_widening_factor: 1,
  hidden_act: "gelu",
  use_query_residual: true,
  layer_norm_eps: 1e-12,
  image_size: 56,
} as const;

function fail(field: string, msg: string, source: string): never {
  throw new PerceiverError("CONFIG_INVALID", `${source}: "${field}" ${msg}`);
}

function intField(json: Record<string, unknown>, key: keyof typeof DEFAULTS, source: string, limits: ConfigLimits, max = limits.maxDim): number {
  const v = key in json ? json[key] : DEFAULTS[key];
  if (typeof v !== "number" || !Number.isInteger(v)) fail(key, `must be an integer, got ${JSON.stringify(v)}`, source);
  if (v < 1) fail(key, `must be at least 1, got ${v}`, source);
  if (v > max) fail(key, `is ${v}, over the limit of ${max}`, source);
  return v;
}

function optionalIntField(json: Record<string, unknown>, key: "qk_channels" | "v_channels", source: string, limits: ConfigLimits): number | null {
  const v = key in json ? json[key] : null;
  if (v === null || v === undefined) return null;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) fail(key, `must be null or a positive integer, got ${JSON.stringify(v)}`, source);
  if (v > limits.maxDim) fail(key, `is ${v}, over the limit of ${limits.maxDim}`, source);
  return v;
}

export function parsePerceiverConfig(
  json: unknown, source = "config.json", overrides: Partial<ConfigLimits> = {},
): PerceiverConfig {
  const limits: ConfigLimits = { ...DEFAULT_CONFIG_LIMITS, ...overrides };
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new PerceiverError("CONFIG_INVALID", `${source}: expected a JSON object, got ${Array.isArray(json) ? "an array" : String(json)}`);
  }
  const j = json as Record<string, unknown>;

  if (j.model_type !== undefined && j.model_type !== "perceiver") {
    throw new PerceiverError("CONFIG_UNSUPPORTED", `${source}: model_type is ${JSON.stringify(j.model_type)}, expected "perceiver"`);
  }
  const archs = j.architectures ?? ["PerceiverForImageClassificationConvProcessing"];
  if (!Array.isArray(archs) || archs.length !== 1 || typeof archs[0] !== "string") {
    fail("architectures", `must be a list with one class name, got ${JSON.stringify(archs)}`, source);
  }
  const architecture = archs[0] as string;
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(architecture)) {
    throw new PerceiverError(
      "CONFIG_UNSUPPORTED",
      `${source}: architecture ${architecture} is not supported (supported: ${SUPPORTED_ARCHITECTURES.join(", ")})`,
    );
  }

  const cfg: PerceiverConfig = {
    architecture: architecture as ImageClassificationArchitecture,
    numLatents: intField(j, "num_latents", source, limits),
    dLatents: intField(j, "d_latents", source, limits),
    dModel: intField(j, "d_model", source, limits),
    numBlocks: intField(j, "num_blocks", source, limits, limits.maxLayers),
    numSelfAttendsPerBlock: intField(j, "num_self_attends_per_block", source, limits, limits.maxLayers),
    numSelfAttentionHeads: intField(j, "num_self_attention_heads", source, limits),
    numCrossAttentionHeads: intField(j, "num_cross_attention_heads", source, limits),
    qkChannels: optionalIntField(j, "qk_channels", source, limits),
    vChannels: optionalIntField(j, "v_channels", source, limits),
    crossAttentionShapeForAttention: "kv",
    selfAttentionWideningFactor: intField(j, "self_attention_widening_factor", source, limits, 64),
    crossAttentionWideningFactor: intField(j, "cross_attention_widening_factor", source, limits, 64),
    hiddenAct: "gelu",
    useQueryResidual: true,
    layerNormEps: 1e-12,
    imageSize: intField(j, "image_size", source, limits),
    numLabels: 0,
    id2label: {},
  };

  const shape = j.cross_attention_shape_for_attention ?? DEFAULTS.cross_attention_shape_for_attention;
  if (shape !== "kv" && shape !== "q") fail("cross_attention_shape_for_attention", `must be "kv" or "q", got ${JSON.stringify(shape)}`, source);
  cfg.crossAttentionShapeForAttention = shape;

  const act = j.hidden_act ?? DEFAULTS.hidden_act;
  if (act !== "gelu") {
    throw new PerceiverError("CONFIG_UNSUPPORTED", `${source}: hidden_act ${JSON.stringify(act)} is not supported (only "gelu", exact erf)`);
  }
  const res = j.use_query_residual ?? DEFAULTS.use_query_residual;
  if (typeof res !== "boolean") fail("use_query_residual", `must be a boolean, got ${JSON.stringify(res)}`, source);
  cfg.useQueryResidual = res;
  const eps = j.layer_norm_eps ?? DEFAULTS.layer_norm_eps;
  if (typeof eps !== "number" || !(eps > 0)) fail("layer_norm_eps", `must be a positive number, got ${JSON.stringify(eps)}`, source);
  cfg.layerNormEps = eps;

  // Labels: id2label decides num_labels (as in transformers' PretrainedConfig); num_labels alone makes LABEL_i.
  const id2label = j.id2label;
  if (id2label !== undefined && id2label !== null) {
    if (typeof id2label !== "object" || Array.isArray(id2label)) fail("id2label", "must be an object of index -> label", source);
    const entries = Object.entries(id2label as Record<string, unknown>);
    if (entries.length > limits.maxDim) fail("id2label", `has ${entries.length} labels, over the limit of ${limits.maxDim}`, source);
    for (const [k, v] of entries) {
      const idx = Number(k);
      if (!Number.isInteger(idx) || idx < 0 || String(idx) !== k) fail("id2label", `has a key ${JSON.stringify(k)} that is not a non-negative integer`, source);
      if (typeof v !== "string") fail("id2label", `entry ${k} must be a string, got ${JSON.stringify(v)}`, source);
      if (idx >= entries.length) fail("id2label", `has index ${idx} but only ${entries.length} labels (indices must be 0..${entries.length - 1})`, source);
      cfg.id2label[idx] = v;
    }
    cfg.numLabels = entries.length;
    if (j.num_labels !== undefined && j.num_labels !== cfg.numLabels) {
      fail("num_labels", `is ${JSON.stringify(j.num_labels)} but id2label has ${cfg.numLabels} entries`, source);
    }
  } else {
    const n = j.num_labels ?? 2;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > limits.maxDim) fail("num_labels", `must be a positive integer, got ${JSON.stringify(n)}`, source);
    cfg.numLabels = n;
    for (let i = 0; i < n; i++) cfg.id2label[i] = `LABEL_${i}`;
  }
  if (cfg.numLabels < 1) fail("id2label", "is empty", source);

  // Shape rules of PerceiverEncoder / PerceiverSelfAttention.
  const d = cfg.dLatents;
  if (d % cfg.numSelfAttentionHeads !== 0) {
    fail("num_self_attention_heads", `(${cfg.numSelfAttentionHeads}) must divide d_latents (${d})`, source);
  }
  if (d % cfg.numCrossAttentionHeads !== 0) {
    fail("num_cross_attention_heads", `(${cfg.numCrossAttentionHeads}) must divide d_latents (${d})`, source);
  }
  const selfQk = cfg.qkChannels ?? d;
  const selfV = cfg.vChannels ?? selfQk;
  if (selfQk % cfg.numSelfAttentionHeads !== 0) fail("qk_channels", `(${selfQk}) must be divisible by num_self_attention_heads (${cfg.numSelfAttentionHeads})`, source);
  if (selfV % cfg.numSelfAttentionHeads !== 0) fail("v_channels", `(${selfV}) must be divisible by num_self_attention_heads (${cfg.numSelfAttentionHeads})`, source);
  if (selfV !== d) fail("v_channels", `(${selfV}) must equal d_latents (${d}): self-attention adds its output to the latents`, source);

  // The weights the config implies, before any checkpoint is read or buffer allocated.
  const count = weightCount(cfg);
  if (4 * count.total > limits.maxWeightBytes) {
    const big = count.parts.reduce((a, b) => (b.params > a.params ? b : a));
    const gb = (x: number) => `${(x / 2 ** 30).toFixed(1)} GB`;
    fail(big.field,
      `makes the model too large: the config implies ${count.total.toExponential(3)} parameters (${gb(4 * count.total)} as float32), ` +
      `over the limit of ${gb(limits.maxWeightBytes)} (maxWeightBytes); the largest part scales with "${big.field}"`, source);
  }
  return cfg;
}
