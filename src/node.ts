/** Node-only helpers: files, the Hugging Face hub, and loading by path or repo id. */
export { loadImageFile, loadImageFileSync } from "./io/image/decode-node.js";
export { readSafetensorsFile, writeSafetensorsFile } from "./io/checkpoint/safetensors-node.js";
export { readTorchBinFile } from "./io/checkpoint/torch-bin-node.js";
export { hfHubDownload, hubFileExists, resolveCacheDir, type HubOptions, type HubProgress } from "./io/hub/hub.js";
export { loadPretrained, resolveModelFiles, readConfigFile, readImageProcessorConfigFile, type LoadOptions, type ModelFiles } from "./perceiver/load.js";
export { downloadModelFiles, DEFAULT_MODEL, SAFETENSORS_COMMIT } from "./io/hub/hub-model.js";
