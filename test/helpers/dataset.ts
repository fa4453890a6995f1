/** Generated images and a 1000-class variant of the tiny model, for the dataset tests. */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import jpegJs from "jpeg-js";
import { readSafetensorsFile, writeSafetensorsFile } from "../../src/io/checkpoint/safetensors-node.js";
import type { SafetensorsTensor } from "../../src/io/checkpoint/safetensors.js";
import { encodeRgbPng } from "../../src/io/image/png-encode.js";
import { fixture } from "./golden.js";

/** A deterministic pseudo-random generator (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A w x h RGB picture of smooth stripes and blobs that differs with `seed` (PNG or JPEG bytes). */
export function makeImage(seed: number, w: number, h: number, format: "png" | "jpeg" = "png"): Uint8Array {
  const r = rng(seed);
  const [fx, fy, p, q] = [r() * 0.2 + 0.01, r() * 0.2 + 0.01, r() * 6, r() * 255];
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      rgb[o] = 127 + 127 * Math.sin(fx * x + p);
      rgb[o + 1] = 127 + 127 * Math.sin(fy * y + p * 2);
      rgb[o + 2] = (q + x * y * 0.01) % 256;
    }
  }
  if (format === "png") return encodeRgbPng({ width: w, height: h, data: rgb });
  const rgba = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) rgba.set(rgb.subarray(i * 3, i * 3 + 3), i * 4);
  return new Uint8Array(jpegJs.encode({ width: w, height: h, data: rgba }, 85).data);
}

/**
 * The tiny conv model with a 1000-class head (random final layer, ImageNet-1k's id2label) in `dir`, so that
 * ImageNet synset folders and label names can be tested on a fast model. Returns `dir`.
 */
export async function makeTinyImagenetModel(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const src = await readSafetensorsFile(fixture("tiny-conv", "model.safetensors"));
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const name of src.names()) {
    const info = src.info(name);
    tensors[name] = { dtype: info.dtype, shape: info.shape, data: new Uint8Array(src.getBytes(name)) };
  }
  const D = src.info("perceiver.decoder.decoder.final_layer.weight").shape[1];
  const r = rng(1234);
  const weight = Float32Array.from({ length: 1000 * D }, () => (r() - 0.5) * 8);
  const bias = new Float32Array(1000);
  tensors["perceiver.decoder.decoder.final_layer.weight"] = { dtype: "F32", shape: [1000, D], data: weight };
  tensors["perceiver.decoder.decoder.final_layer.bias"] = { dtype: "F32", shape: [1000], data: bias };
  await writeSafetensorsFile(join(dir, "model.safetensors"), tensors);
  const config = JSON.parse(await readFile(fixture("tiny-conv", "config.json"), "utf8"));
  const id2label = JSON.parse(await readFile(fixture("imagenet-1k-id2label.json"), "utf8")) as Record<string, string>;
  config.id2label = id2label;
  config.label2id = Object.fromEntries(Object.entries(id2label).map(([k, v]) => [v, Number(k)]));
  await writeFile(join(dir, "config.json"), JSON.stringify(config, null, 2));
  return dir;
}
