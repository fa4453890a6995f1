/**
 * The one error type of perceiver-ts. Every problem caused by input (files, configs, images, network)
 * is reported as a PerceiverError with a stable `code`, so callers can branch on it and the CLI can
 * print a one-line message.
 */
export type PerceiverErrorCode =
  // safetensors
  | "SAFETENSORS_TOO_SMALL"
  | "SAFETENSORS_HEADER_TOO_LARGE"
  | "SAFETENSORS_HEADER_OUT_OF_BOUNDS"
  | "SAFETENSORS_HEADER_NOT_UTF8"
  | "SAFETENSORS_HEADER_NOT_JSON"
  | "SAFETENSORS_HEADER_NOT_OBJECT"
  | "SAFETENSORS_INVALID_ENTRY"
  | "SAFETENSORS_UNKNOWN_DTYPE"
  | "SAFETENSORS_INVALID_SHAPE"
  | "SAFETENSORS_INVALID_OFFSETS"
  | "SAFETENSORS_SIZE_MISMATCH"
  | "SAFETENSORS_DUPLICATE_KEY"
  | "SAFETENSORS_INVALID_METADATA"
  | "SAFETENSORS_TRAILING_BYTES"
  | "SAFETENSORS_TRUNCATED"
  | "SAFETENSORS_WRITE"
  // pickle / pytorch_model.bin
  | "PICKLE_INVALID"
  | "PICKLE_FORBIDDEN_GLOBAL"
  | "PICKLE_UNSUPPORTED"
  | "ZIP_INVALID"
  // checkpoints and configs
  | "CHECKPOINT_NOT_FOUND"
  | "CHECKPOINT_MISSING_KEYS"
  | "CHECKPOINT_UNEXPECTED_KEYS"
  | "CHECKPOINT_SHAPE_MISMATCH"
  | "CHECKPOINT_DTYPE"
  | "CONFIG_INVALID"
  | "CONFIG_UNSUPPORTED"
  // tensors and model input
  | "SHAPE_MISMATCH"
  | "INPUT_INVALID"
  | "MEMORY_LIMIT"
  // worker threads (start-up failure, a worker that died or threw)
  | "THREADS"
  // images
  | "IMAGE_DECODE"
  | "IMAGE_UNSUPPORTED"
  | "IMAGE_TOO_LARGE"
  | "IMAGE_EMPTY"
  // hub
  | "HUB_UNAUTHORIZED"
  | "HUB_NOT_FOUND"
  | "HUB_NETWORK"
  | "HUB_TIMEOUT"
  | "HUB_HTTP"
  | "HUB_INTEGRITY"
  | "HUB_OFFLINE_MISS"
  | "HUB_DISK"
  | "HUB_WEIGHTS_PICKLE_ONLY"
  // pipelines: a call after dispose()
  | "DISPOSED"
  // CLI
  | "USAGE";

export class PerceiverError extends Error {
  readonly code: PerceiverErrorCode;
  constructor(code: PerceiverErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PerceiverError";
    this.code = code;
  }
}

export function isPerceiverError(e: unknown): e is PerceiverError {
  return e instanceof PerceiverError;
}
