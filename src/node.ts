/** Node-only helpers: files, the Hugging Face hub, and loading by path or repo id. */
export { loadImageFile, loadImageFileSync } from "./io/image-node.js";
export { readSafetensorsFile, writeSafetensorsFile } from "./io/safetensors-node.js";
export { readTorchBinFile } from "./io/torch-bin-node.js";
export { hfHubDownload, hubFileExists, resolveCacheDir, type HubOptions, type HubProgress } from "./io/hub.js";
export { loadPretrained, resolveModelFiles, readConfigFile, readImageProcessorConfigFile, type LoadOptions, type ModelFiles } from "./perceiver/load.js";
export { downloadModelFiles, DEFAULT_MODEL, SAFETENSORS_COMMIT } from "./perceiver/hub-model.js";
