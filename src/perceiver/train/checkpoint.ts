/**
 * A trained head as a Hugging Face checkpoint (browser-safe: builds the config object and the tensors; writing
 * files is the caller's). The config is the base config with id2label/label2id from the class names; the weights
 * are the base checkpoint's encoder tensors, byte for byte in their stored dtype, plus the new decoder in F32.
 */
import { PerceiverError } from "../../errors.js";
import type { SafetensorsTensor } from "../../io/checkpoint/safetensors.js";
import type { Dtype, StateDict, TensorInfo } from "../../io/checkpoint/state-dict.js";
import { DECODER_PARAM_NAMES, DECODER_PREFIX, decoderParamShapes, type DecoderParams, type DecoderShape } from "./decoder-params.js";

/** config.json of the trained model: the base config (as parsed JSON) with the new labels. */
export function headConfigJson(baseConfig: Record<string, unknown>, classNames: readonly string[]): Record<string, unknown> {
  if (new Set(classNames).size !== classNames.length) throw new PerceiverError("INPUT_INVALID", "class names must be distinct");
  const out: Record<string, unknown> = { ...baseConfig };
  out.id2label = Object.fromEntries(classNames.map((n, i) => [String(i), n]));
  out.label2id = Object.fromEntries(classNames.map((n, i) => [n, i]));
  // transformers derives num_labels from id2label; a stale explicit value would contradict it
  if ("num_labels" in out) out.num_labels = classNames.length;
  return out;
}

/** The decoder's tensors under their full state-dict names. */
export function decoderTensors(params: DecoderParams, shape: DecoderShape): Map<string, SafetensorsTensor> {
  const shapes = decoderParamShapes(shape);
  const m = new Map<string, SafetensorsTensor>();
  for (const n of DECODER_PARAM_NAMES) m.set(DECODER_PREFIX + n, { dtype: "F32", shape: shapes[n], data: params[n] });
  return m;
}

interface RawBytes {
  getBytes(name: string): Uint8Array;
}
const hasBytes = (sd: StateDict): sd is StateDict & RawBytes => typeof (sd as Partial<RawBytes>).getBytes === "function";

/** Every tensor of the trained checkpoint: base minus its decoder, plus the new decoder (for writeSafetensors). */
export function headCheckpointTensors(base: StateDict, params: DecoderParams, shape: DecoderShape): Map<string, SafetensorsTensor> {
  const out = new Map<string, SafetensorsTensor>();
  for (const name of base.names()) {
    if (name.startsWith(DECODER_PREFIX)) continue;
    const info = base.info(name);
    // the stored bytes unchanged (F16/BF16 checkpoints stay so); readers without raw access give float32
    if (hasBytes(base)) out.set(name, { dtype: info.dtype, shape: [...info.shape], data: base.getBytes(name) });
    else out.set(name, { dtype: "F32", shape: [...info.shape], data: base.getFloat32(name) });
  }
  for (const [n, t] of decoderTensors(params, shape)) out.set(n, t);
  return out;
}

/** A StateDict view of the base checkpoint with its decoder replaced (to build the trained model in memory). */
export class HeadStateDict implements StateDict {
  readonly metadata: Readonly<Record<string, string>> = {};
  private readonly decoder: Map<string, SafetensorsTensor>;

  constructor(private readonly base: StateDict, params: DecoderParams, shape: DecoderShape) {
    this.decoder = decoderTensors(params, shape);
  }

  names(): string[] {
    return [...this.base.names().filter((n) => !n.startsWith(DECODER_PREFIX)), ...this.decoder.keys()];
  }

  has(name: string): boolean {
    return this.decoder.has(name) || (!name.startsWith(DECODER_PREFIX) && this.base.has(name));
  }

  info(name: string): TensorInfo {
    const t = this.decoder.get(name);
    if (t) return { dtype: t.dtype as Dtype, shape: t.shape };
    if (name.startsWith(DECODER_PREFIX)) throw new PerceiverError("CHECKPOINT_MISSING_KEYS", `no tensor ${name}`);
    return this.base.info(name);
  }

  getFloat32(name: string): Float32Array {
    const t = this.decoder.get(name);
    if (t) return t.data as Float32Array;
    if (name.startsWith(DECODER_PREFIX)) throw new PerceiverError("CHECKPOINT_MISSING_KEYS", `no tensor ${name}`);
    return this.base.getFloat32(name);
  }
}
