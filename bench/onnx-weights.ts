/**
 * The external weights of bench/graph_with_ext.onnx, generated at bench time from bench/external.json (which lists
 * every external initializer: name, dims, data_type, location, offset, length, and weights_file_size).
 * Values are random with a sane scale so activations stay finite: uniform ±0.02 for weights and biases, LayerNorm
 * weights ~1, BatchNorm running variances positive ~1. Only timing is measured, never accuracy.
 */
import { open, readFile, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";

interface ExternalTensor {
  name: string;
  dims: number[];
  data_type: number;
  location: string;
  offset: string;
  length: string;
}

interface ExternalManifest {
  weights_file_size: number;
  tensors: ExternalTensor[];
}

/** Deterministic uniform [-1, 1) (xorshift32). */
function uniform(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = (seed | 0) || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = (s >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

/** Values for one initializer, chosen by its name. */
function values(t: ExternalTensor, n: number, seed: number): Float32Array {
  const u = uniform(n, seed);
  const name = t.name.toLowerCase();
  const isNormScale = /norm\d*\.weight$/.test(name); // layernorm, layernorm1, batchnorm ... scales
  const isVar = /running_var$/.test(name);
  for (let i = 0; i < n; i++) {
    if (isNormScale) u[i] = 1 + 0.02 * u[i];
    else if (isVar) u[i] = 1 + 0.1 * Math.abs(u[i]);
    else u[i] = 0.02 * u[i];
  }
  return u;
}

/**
 * Writes the external data files next to `modelPath` (at each tensor's `location`), unless a file of the expected
 * size is already there. Returns the data files (absolute path + the `location` string the model refers to).
 */
export async function ensureOnnxWeights(
  modelPath: string, manifestPath: string, log: (msg: string) => void = () => {},
): Promise<{ location: string; path: string }[]> {
  const manifest = JSON.parse(await readFile(manifestPath, "utf8")) as ExternalManifest;
  if (!Array.isArray(manifest.tensors) || typeof manifest.weights_file_size !== "number") {
    throw new Error(`${manifestPath}: expected { weights_file_size: number, tensors: [...] }`);
  }
  const byLocation = new Map<string, ExternalTensor[]>();
  for (const t of manifest.tensors) {
    if (t.data_type !== 1) throw new Error(`${manifestPath}: tensor ${t.name} has data_type ${t.data_type}; only 1 (FLOAT) is generated`);
    const n = t.dims.reduce((p, d) => p * d, 1);
    if (Number(t.length) !== 4 * n) throw new Error(`${manifestPath}: tensor ${t.name}: length ${t.length} != 4 * ${n} elements`);
    byLocation.set(t.location, [...(byLocation.get(t.location) ?? []), t]);
  }
  const dir = dirname(resolve(modelPath));
  const files: { location: string; path: string }[] = [];
  for (const [location, tensors] of byLocation) {
    const path = join(dir, location);
    const size = byLocation.size === 1
      ? manifest.weights_file_size
      : Math.max(...tensors.map((t) => Number(t.offset) + Number(t.length)));
    files.push({ location, path });
    try {
      if ((await stat(path)).size === size) continue;
    } catch { /* missing: generate */ }
    log(`generating ${path} (${(size / 2 ** 20).toFixed(0)} MB of random weights for ${tensors.length} tensors)`);
    const fh = await open(path, "w");
    try {
      await fh.truncate(size);
      let seed = 1;
      for (const t of tensors) {
        const n = Number(t.length) / 4;
        const v = values(t, n, 0x9e3779b9 ^ seed++);
        await fh.write(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), 0, v.byteLength, Number(t.offset));
      }
    } finally {
      await fh.close();
    }
  }
  return files;
}
