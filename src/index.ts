/**
 * perceiver-ts public API (browser-safe: no Node built-ins are imported from here; `fromPretrained` and `pipeline`
 * load their Node-only helpers on demand, behind runtime checks). Node helpers for files and the hub are in
 * `perceiver-ts/node`.
 */
export { PerceiverError, isPerceiverError, type PerceiverErrorCode } from "./errors.js";
export { Tensor } from "./tensor/tensor.js";
export { parsePerceiverConfig, type PerceiverConfig } from "./perceiver/config.js";
export { PerceiverForImageClassification, type ForwardOptions, type ForwardOutput } from "./perceiver/model.js";
export {
  preprocess, preprocessBatch, imageProcessorConfigFromJson, defaultImageProcessorConfig, type ImageProcessorConfig,
} from "./io/image/image-processor.js";
export {
  decodeImage, decodeImageAsync, initImageDecoders, fromPixels, readImageHeader, sniffImageFormat, DEFAULT_MAX_PIXELS,
  type RgbImage, type DecodeImageOptions, type ImageFormat, type ImageHeader, type WasmSource,
} from "./io/image/decode.js";
export { readSafetensors, writeSafetensors, SafetensorsFile, type SafetensorsTensor } from "./io/checkpoint/safetensors.js";
export { readTorchBin, TorchStateDict } from "./io/checkpoint/torch-bin.js";
export { topK, softmax, type Prediction } from "./perceiver/labels.js";
export { IMAGENET_1K_SYNSETS, imagenetClassOfSynset } from "./perceiver/imagenet-synsets.js";
export type { StateDict, Dtype, TensorInfo } from "./io/checkpoint/state-dict.js";
export {
  setBackend, getBackend, setThreads, getThreads, threadsFallbackReason, type GemmBackend,
} from "./tensor/gemm.js";
export {
  classWeightedMap, latentMap, decoderWeights, topLatents, normalizeMax, upsampleBilinear, overlay, tileGrid,
} from "./perceiver/attention-map.js";
export { relativeToUniform, displayRange, scaleToRange, type DisplayRange } from "./perceiver/attention-map.js";
export {
  classWeightedFigure, latentGridFigure, colorBar, labelTile, formatRelative, TILE_SCALES, type TileScale, type Figure, type LatentTile,
} from "./perceiver/attention-figure.js";
export { encodePng, encodeRgbPng } from "./io/image/png-encode.js";
export { getColormap, COLORMAP_NAMES, type Colormap } from "./io/image/colormap.js";
export { checkForwardMemory, estimateForwardMemory } from "./perceiver/memory.js";
export type { Preprocessor } from "./perceiver/preprocessor.js";
export {
  pipeline, PIPELINE_TASKS, type PipelineTask, type PipelineOptions, type ImageClassificationPipeline, type ImageFeatureExtractionPipeline,
  type Pipeline, type ClassifyOptions, type FeatureExtractionOptions, type ImageClassificationResult, type ModelSpec,
} from "./pipeline/pipeline.js";
export { loadImageInput, type ImageInput, type ImageInputOptions } from "./pipeline/inputs.js";
export type { LoadOptions, NamedBlob, ProgressInfo, ProgressCallback } from "./perceiver/pretrained.js";
export { DEFAULT_MODEL, SAFETENSORS_COMMIT } from "./io/hub/default-model.js";
export {
  trainDecoder, evaluateDecoder, TRAIN_DEFAULTS, type TrainExample, type TrainOptions, type TrainResult, type TrainProgress, type EpochStats,
} from "./perceiver/train/train.js";
export { HeadStateDict, headConfigJson, headCheckpointTensors, decoderTensors } from "./perceiver/train/checkpoint.js";
export { decoderShape, type DecoderParams, type DecoderShape } from "./perceiver/train/decoder-params.js";
