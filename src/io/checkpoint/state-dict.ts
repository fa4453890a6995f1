/**
 * What a checkpoint reader gives the model: named tensors with their stored dtype and shape, readable as
 * float32. Both the safetensors reader and the pytorch_model.bin reader implement it.
 */
export type Dtype =
  | "F64" | "F32" | "F16" | "BF16"
  | "I64" | "I32" | "I16" | "I8"
  | "U64" | "U32" | "U16" | "U8"
  | "BOOL";

export interface TensorInfo {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
}

export interface StateDict {
  /** Tensor names in file order. */
  names(): string[];
  has(name: string): boolean;
  /** dtype and shape; throws PerceiverError if the name is absent. */
  info(name: string): TensorInfo;
  /**
   * The tensor's values as float32, row-major. F32 data may be a zero-copy view of the file buffer (treat it as
   * read-only); F16/BF16/F64 and integer dtypes are converted into a new array.
   */
  getFloat32(name: string): Float32Array;
  /** Free-form string metadata (safetensors `__metadata__`), empty when the format has none. */
  readonly metadata: Readonly<Record<string, string>>;
}
