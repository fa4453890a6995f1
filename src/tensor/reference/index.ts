/**
 * The reference backend (`setBackend("reference")`, `PERCEIVER_BACKEND=reference`): every tensor operation as a
 * plain textbook loop, on one thread, in this folder. Read these to see what the model computes; the optimized
 * kernels (the ts and wasm backends) are tested against them on odd shapes.
 */
export { add, erf, gelu, relu } from "./activations.js";
export { attention } from "./attention.js";
export { batchNorm2d, conv2d, conv2dOutputSize, maxPool2d, type Conv2dParams } from "./conv.js";
export { linear, matmul, matmulTransB } from "./gemm.js";
export { layerNorm } from "./layernorm.js";
export { softmaxRows } from "./softmax.js";
export { fmaF32, wasmGemmModel } from "./wasm-sum-model.js";
