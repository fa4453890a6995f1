import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PerceiverError } from "../src/errors.js";
import { decodeImage, type RgbImage } from "../src/io/image/decode.js";
import {
  centerCropBox,
  cropAndResize,
  cropRgb,
  defaultImageProcessorConfig,
  imageProcessorConfigFromJson,
  preprocess,
  preprocessBatch,
  validateImageProcessorConfig,
  valueTable,
} from "../src/io/image/image-processor.js";
import { bicubicFilter, precomputeCoeffs, resizeBicubicPil, resizeBicubicPilNaive } from "../src/io/image/resample.js";

const IMAGES = join(import.meta.dirname, "fixtures", "images");
const EXTRA = join(import.meta.dirname, "fixtures", "images-extra");
const NAMES = ["chelsea", "coffee", "astronaut", "synthetic", "tall", "small"];

// Tiny safetensors reader (header JSON + offsets) so this file does not depend on src/io/safetensors.ts;
// it can be swapped for readSafetensors.
interface StEntry {
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}
function readSt(path: string): Map<string, StEntry> {
  const b = new Uint8Array(readFileSync(path));
  const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n))) as Record<string, unknown>;
  const out = new Map<string, StEntry>();
  for (const [k, v] of Object.entries(header)) {
    if (k === "__metadata__") continue;
    const e = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
    out.set(k, { dtype: e.dtype, shape: e.shape, bytes: b.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]) });
  }
  return out;
}
function entry(st: Map<string, StEntry>, key: string, dtype: string): StEntry {
  const e = st.get(key);
  if (!e || e.dtype !== dtype) throw new Error(`fixture ${key} missing or not ${dtype}`);
  return e;
}
function rgb(st: Map<string, StEntry>, key: string): RgbImage {
  const e = entry(st, key, "U8");
  return { height: e.shape[0], width: e.shape[1], data: e.bytes.slice() };
}
function f32(st: Map<string, StEntry>, key: string): Float32Array {
  const e = entry(st, key, "F32");
  return new Float32Array(e.bytes.slice().buffer);
}
function countDiff(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}
function maxAbs(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
function expectError(fn: () => unknown, code: string, ...fragments: string[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeInstanceOf(PerceiverError);
  expect((err as PerceiverError).code, (err as Error).message).toBe(code);
  for (const f of fragments) expect((err as Error).message).toContain(f);
}

const golden = readSt(join(IMAGES, "images_golden.safetensors"));
const e2e = readSt(join(IMAGES, "e2e_golden.safetensors"));
const resizeCases = readSt(join(EXTRA, "resize_golden.safetensors"));

describe("PIL pipeline vs images_golden.safetensors", () => {
  for (const name of NAMES) {
    it(`${name}: resized_pil_uint8 exact, pixel_values_pil within 1e-6`, () => {
      const img = rgb(golden, `${name}.rgb`);
      const resized = cropAndResize(img);
      expect([resized.width, resized.height]).toEqual([224, 224]);
      expect(countDiff(resized.data, entry(golden, `${name}.resized_pil_uint8`, "U8").bytes)).toBe(0);
      const pv = preprocess(img);
      expect(pv.length).toBe(3 * 224 * 224);
      expect(maxAbs(pv, f32(golden, `${name}.pixel_values_pil`))).toBeLessThanOrEqual(1e-6);
    });
  }

  it("the torch-backend pixel_values differ from the PIL pipeline by at most 2 uint8 levels (for reference)", () => {
    // transformers 5's default processor resizes in float; GOLDEN_README says <= 2 levels. 2/255/0.224 = 0.035.
    for (const name of NAMES) {
      const d = maxAbs(preprocess(rgb(golden, `${name}.rgb`)), f32(golden, `${name}.pixel_values`));
      expect(d).toBeLessThanOrEqual(0.036);
    }
  });
});

describe("file -> pixel_values (e2e_golden.safetensors)", () => {
  // chelsea_jpg too: the JPEG decoder is libjpeg-turbo's, like Pillow's
  for (const key of ["chelsea_png", "coffee_png", "astronaut_png", "chelsea_jpg"]) {
    it(`${key}: decode + preprocess is exact`, () => {
      const img = decodeImage(new Uint8Array(readFileSync(join(IMAGES, key.replace("_png", ".png").replace("_jpg", ".jpg")))));
      expect(countDiff(cropAndResize(img).data, entry(e2e, `${key}.resized_pil_uint8`, "U8").bytes)).toBe(0);
      expect(maxAbs(preprocess(img), f32(e2e, `${key}.pixel_values_pil`))).toBeLessThanOrEqual(1e-6);
    });
  }

  it("coffee_gray.png through the pipeline is within 2 levels of the torch-backend golden", () => {
    const img = decodeImage(new Uint8Array(readFileSync(join(IMAGES, "coffee_gray.png"))));
    expect(maxAbs(preprocess(img), f32(golden, "coffee_gray.pixel_values"))).toBeLessThanOrEqual(0.036);
  });
});

describe("resizeBicubicPil", () => {
  for (const name of ["up_both", "down_both", "width_only", "height_only", "one_pixel", "wide_down", "same"]) {
    it(`${name}: exact vs Pillow, and the naive twin agrees`, () => {
      const inp = rgb(resizeCases, `${name}.in`);
      const want = rgb(resizeCases, `${name}.out`);
      const got = resizeBicubicPil(inp, want.width, want.height);
      expect([got.width, got.height]).toEqual([want.width, want.height]);
      expect(countDiff(got.data, want.data)).toBe(0);
      expect(countDiff(resizeBicubicPilNaive(inp, want.width, want.height).data, want.data)).toBe(0);
    });
  }

  it("the naive twin agrees on the 224x224 golden crops", () => {
    for (const name of ["small", "tall"]) {
      const img = rgb(golden, `${name}.rgb`);
      const b = centerCropBox(img.height, img.width);
      const crop = cropRgb(img, b.top, b.left, b.height, b.width);
      expect(countDiff(resizeBicubicPilNaive(crop, 224, 224).data, resizeBicubicPil(crop, 224, 224).data)).toBe(0);
    }
  });

  it("same size is a copy, not an alias; bad sizes are refused", () => {
    const img: RgbImage = { width: 2, height: 1, data: new Uint8Array([1, 2, 3, 4, 5, 6]) };
    const out = resizeBicubicPil(img, 2, 1);
    expect(out.data).toEqual(img.data);
    expect(out.data).not.toBe(img.data);
    expectError(() => resizeBicubicPil(img, 0, 5), "INPUT_INVALID");
    expectError(() => resizeBicubicPil({ width: 2, height: 2, data: new Uint8Array(5) }, 3, 3), "INPUT_INVALID", "needs 12 bytes");
  });

  it("coefficients: bicubic kernel values, rows sum to 1 and to ~2^22 in fixed point", () => {
    const k = [0, 1, 2, 0.5, -1.5].map((x) => bicubicFilter(x) + 0); // + 0 folds -0 into 0
    expect(k).toEqual([
      1, 0, 0, 0.5625, -0.0625,
    ]);
    const c = precomputeCoeffs(448, 224); // 2x down: support 4, ksize 9
    expect(c.ksize).toBe(9);
    for (let i = 0; i < 224; i++) {
      let s = 0;
      let si = 0;
      for (let t = 0; t < c.bounds[2 * i + 1]; t++) {
        s += c.weights[i * c.ksize + t];
        si += c.fixed[i * c.ksize + t];
      }
      expect(Math.abs(s - 1)).toBeLessThan(1e-12);
      expect(Math.abs(si - 2 ** 22)).toBeLessThanOrEqual(c.bounds[2 * i + 1]);
    }
  });
});

describe("center crop", () => {
  it("int(224/256 * min) with floor offsets, as in GOLDEN_README", () => {
    expect(centerCropBox(300, 451)).toEqual({ top: 19, left: 94, height: 262, width: 262 });
    expect(centerCropBox(173, 301)).toEqual({ top: 11, left: 75, height: 151, width: 151 });
    expect(centerCropBox(333, 120)).toEqual({ top: 114, left: 7, height: 105, width: 105 });
    for (const m of [2, 3, 7, 100, 255, 256, 257, 258, 1000, 4095]) {
      const b = centerCropBox(m, m + 3);
      expect(b.height).toBe(Math.floor((m * 7) / 8)); // 0.875 * m is exact in double
      expect(b.top).toBe(Math.floor((m - b.height) / 2));
      expect(b.left).toBe(Math.floor((m + 3 - b.width) / 2));
    }
  });

  it("m in {256, 257} crops to 224: the resize is a copy", () => {
    const img: RgbImage = { width: 257, height: 256, data: new Uint8Array(257 * 256 * 3).map((_, i) => (i * 31) & 255) };
    const b = centerCropBox(256, 257);
    expect(b).toEqual({ top: 16, left: 16, height: 224, width: 224 });
    expect(countDiff(cropAndResize(img).data, cropRgb(img, 16, 16, 224, 224).data)).toBe(0);
  });

  it("tiny images: 1x1 has an empty crop (IMAGE_EMPTY); 2x2 works", () => {
    expectError(() => preprocess({ width: 1, height: 1, data: new Uint8Array([1, 2, 3]) }), "IMAGE_EMPTY", "too small");
    const pv = preprocess({ width: 2, height: 2, data: new Uint8Array(12).fill(255) });
    const want = Math.fround(Math.fround(Math.fround(255 * (1 / 255)) - Math.fround(0.485)) / Math.fround(0.229));
    expect(pv[0]).toBe(want);
    expect(pv[224 * 224 - 1]).toBe(want);
  });

  it("cropRgb refuses windows outside the image", () => {
    const img: RgbImage = { width: 3, height: 3, data: new Uint8Array(27) };
    expectError(() => cropRgb(img, 1, 1, 3, 1), "INPUT_INVALID", "not inside");
    expectError(() => cropRgb(img, -1, 0, 1, 1), "INPUT_INVALID");
  });
});

describe("rescale + normalize", () => {
  it("value table = f32(f32(f32(x * (1/255)) - f32(mean)) / f32(std)), close to the real-number formula", () => {
    const lut = valueTable(defaultImageProcessorConfig);
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    for (let c = 0; c < 3; c++) {
      for (let x = 0; x < 256; x++) {
        expect(Math.abs(lut[c * 256 + x] - (x / 255 - mean[c]) / std[c])).toBeLessThan(1e-6);
      }
    }
    const raw = valueTable({ ...defaultImageProcessorConfig, doRescale: false, doNormalize: false });
    expect(raw[255]).toBe(255);
  });

  it("preprocessBatch stacks to [B,3,224,224]; items equal preprocess()", () => {
    const a = rgb(golden, "small.rgb");
    const b = rgb(golden, "tall.rgb");
    const t = preprocessBatch([a, b]);
    expect(t.shape).toEqual([2, 3, 224, 224]);
    expect(maxAbs(t.data.subarray(0, 3 * 224 * 224), preprocess(a))).toBe(0);
    expect(maxAbs(t.data.subarray(3 * 224 * 224), f32(golden, "tall.pixel_values_pil"))).toBeLessThanOrEqual(1e-6);
    expectError(() => preprocessBatch([]), "INPUT_INVALID");
  });

  it("without resize the output has the crop size, and a batch of different sizes is refused", () => {
    const cfg = { doResize: false };
    const a = rgb(golden, "small.rgb"); // 50x40 -> crop 35
    expect(preprocess(a, cfg).length).toBe(3 * 35 * 35);
    expectError(() => preprocessBatch([a, rgb(golden, "tall.rgb")], cfg), "SHAPE_MISMATCH", "enable doResize");
    const noCrop = cropAndResize(a, { doCenterCrop: false, size: { height: 10, width: 20 } });
    expect([noCrop.width, noCrop.height]).toEqual([20, 10]);
  });
});

describe("imageProcessorConfigFromJson", () => {
  it("the fixture preprocessor_config.json equals the defaults", () => {
    const json: unknown = JSON.parse(readFileSync(join(IMAGES, "preprocessor_config.json"), "utf8"));
    expect(imageProcessorConfigFromJson(json)).toEqual(defaultImageProcessorConfig);
  });

  it("the hub form (ints, feature_extractor_type, no do_rescale) and other size forms", () => {
    const hub = {
      crop_size: 256,
      do_center_crop: true,
      do_normalize: true,
      do_resize: true,
      feature_extractor_type: "PerceiverFeatureExtractor",
      image_mean: [0.485, 0.456, 0.406],
      image_std: [0.229, 0.224, 0.225],
      resample: 3,
      size: 224,
    };
    expect(imageProcessorConfigFromJson(hub)).toEqual(defaultImageProcessorConfig);
    const c = imageProcessorConfigFromJson({ size: [100, 120], image_mean: 0.5, do_rescale: false });
    expect(c.size).toEqual({ height: 100, width: 120 });
    expect(c.imageMean).toEqual([0.5, 0.5, 0.5]);
    expect(c.doRescale).toBe(false);
    expect(imageProcessorConfigFromJson({}).cropSize).toEqual({ height: 256, width: 256 });
  });

  it("wrong types -> CONFIG_INVALID naming the field; unsupported settings -> CONFIG_UNSUPPORTED", () => {
    expectError(() => imageProcessorConfigFromJson([1]), "CONFIG_INVALID", "JSON object");
    expectError(() => imageProcessorConfigFromJson({ do_resize: "yes" }), "CONFIG_INVALID", "do_resize");
    expectError(() => imageProcessorConfigFromJson({ size: { height: 224 } }), "CONFIG_INVALID", '"size"');
    expectError(() => imageProcessorConfigFromJson({ size: -3 }), "CONFIG_INVALID", '"size"');
    expectError(() => imageProcessorConfigFromJson({ crop_size: "256" }), "CONFIG_INVALID", "crop_size");
    expectError(() => imageProcessorConfigFromJson({ image_std: [1, 2] }), "CONFIG_INVALID", "image_std");
    expectError(() => imageProcessorConfigFromJson({ image_std: [0.2, 0, 0.2] }), "CONFIG_INVALID", "imageStd");
    expectError(() => imageProcessorConfigFromJson({ rescale_factor: "x" }), "CONFIG_INVALID", "rescale_factor");
    expectError(() => imageProcessorConfigFromJson({ resample: 9 }), "CONFIG_INVALID", "resample");
    expectError(() => imageProcessorConfigFromJson({ size: { shortest_edge: 224 } }), "CONFIG_UNSUPPORTED", "shortest_edge");
    expectError(() => imageProcessorConfigFromJson({ resample: 2 }), "CONFIG_UNSUPPORTED", "BILINEAR");
    expect(imageProcessorConfigFromJson({ resample: 2, do_resize: false }).resample).toBe(2);
    // size > crop_size is a valid config; it only fails at crop time (next test)
    expect(() => validateImageProcessorConfig({ ...defaultImageProcessorConfig, size: { height: 300, width: 300 } })).not.toThrow();
  });

  it("a crop larger than the image (size > crop_size) is refused rather than guessed", () => {
    const img = rgb(golden, "small.rgb");
    expectError(() => preprocess(img, { size: { height: 300, width: 300 } }), "CONFIG_UNSUPPORTED", "padding");
  });
});
