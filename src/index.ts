/** perceiver-ts public API. */
export { PerceiverError, isPerceiverError, type PerceiverErrorCode } from "./errors.js";
export { Tensor } from "./tensor/tensor.js";
export { parsePerceiverConfig, type PerceiverConfig } from "./perceiver/config.js";
export { PerceiverForImageClassification, type ForwardOptions, type ForwardOutput } from "./perceiver/model.js";
export { readSafetensors, writeSafetensors, SafetensorsFile, type SafetensorsTensor } from "./io/safetensors.js";
export type { StateDict, Dtype, TensorInfo } from "./io/state-dict.js";
