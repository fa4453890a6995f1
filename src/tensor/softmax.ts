// The row softmax of the ts backend (and of the wasm backend where its kernel does not run) is the reference
// loop: it has no faster form in TypeScript. The wasm backend's own is wasm/softmax-kernel.ts.
export { softmaxRows } from "./reference/softmax.js";
