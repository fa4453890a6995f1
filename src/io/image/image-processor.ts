/**
 * The Perceiver image processor, PIL flavour: transformers v4 `PerceiverImageProcessor` = v5
 * `PerceiverImageProcessorPil`, bit-exact (docs/numerics.md, "Image preprocessing"). RGB uint8 HWC -> center crop -> PIL bicubic resize (uint8) ->
 * rescale -> normalize -> float32 CHW.
 *
 * Not the v5 default torchvision backend, which resizes in float and differs by a level or two.
 */
import { PerceiverError } from "../../errors.js";
import { assertRgbImage, type RgbImage } from "./decode.js";
import { Tensor } from "../../tensor/tensor.js";
import { resizeBicubicPil } from "./resample.js";

export interface SizeHW {
  height: number;
  width: number;
}

/** Mirrors the HF `preprocessor_config.json` fields (camelCase). */
export interface ImageProcessorConfig {
  doCenterCrop: boolean;
  /** With `size`, sets the crop fraction: crop = int(size / cropSize * min(H, W)) per axis. */
  cropSize: SizeHW;
  doResize: boolean;
  size: SizeHW;
  /** PIL resampling filter id; only 3 (BICUBIC) is implemented. */
  resample: number;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: readonly [number, number, number];
  imageStd: readonly [number, number, number];
}

/** PIL.Image.Resampling ids as stored in preprocessor_config.json. */
export const PIL_RESAMPLE_NAMES: Readonly<Record<number, string>> = Object.freeze({
  0: "NEAREST",
  1: "LANCZOS",
  2: "BILINEAR",
  3: "BICUBIC",
  4: "BOX",
  5: "HAMMING",
});

/** deepmind/vision-perceiver-conv's preprocessor_config.json plus the class defaults (do_rescale, 1/255). */
export const defaultImageProcessorConfig: Readonly<ImageProcessorConfig> = Object.freeze({
  doCenterCrop: true,
  cropSize: Object.freeze({ height: 256, width: 256 }),
  doResize: true,
  size: Object.freeze({ height: 224, width: 224 }),
  resample: 3,
  doRescale: true,
  rescaleFactor: 1 / 255,
  doNormalize: true,
  imageMean: Object.freeze([0.485, 0.456, 0.406] as const),
  imageStd: Object.freeze([0.229, 0.224, 0.225] as const),
});

// ---------------------------------------------------------------------------------------------------------------
// Config

/**
 * Reads an HF `preprocessor_config.json` object. Missing keys take the defaults, unknown keys are ignored,
 * wrong types throw CONFIG_INVALID naming the field, valid-but-unimplemented settings throw CONFIG_UNSUPPORTED.
 */
export function imageProcessorConfigFromJson(json: unknown, source = "preprocessor_config.json"): ImageProcessorConfig {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new PerceiverError("CONFIG_INVALID", `${source}: expected a JSON object`);
  }
  const o = json as Record<string, unknown>;
  const d = defaultImageProcessorConfig;
  const has = (k: string) => o[k] !== undefined && o[k] !== null;
  const bool = (k: string, def: boolean): boolean => {
    if (o[k] === undefined) return def;
    if (typeof o[k] !== "boolean") throw invalid(source, k, "a boolean", o[k]);
    return o[k];
  };
  const num = (k: string, def: number): number => {
    if (!has(k)) return def;
    const v = o[k];
    if (typeof v !== "number" || !Number.isFinite(v)) throw invalid(source, k, "a finite number", v);
    return v;
  };
  const resample = num("resample", d.resample);
  if (!Number.isInteger(resample) || !(resample in PIL_RESAMPLE_NAMES)) {
    throw invalid(source, "resample", "a PIL filter id 0..5", o.resample);
  }
  const cfg: ImageProcessorConfig = {
    doCenterCrop: bool("do_center_crop", d.doCenterCrop),
    cropSize: has("crop_size") ? sizeDict(o.crop_size, "crop_size", source) : { ...d.cropSize },
    doResize: bool("do_resize", d.doResize),
    size: has("size") ? sizeDict(o.size, "size", source) : { ...d.size },
    resample,
    doRescale: bool("do_rescale", d.doRescale),
    rescaleFactor: num("rescale_factor", d.rescaleFactor),
    doNormalize: bool("do_normalize", d.doNormalize),
    imageMean: has("image_mean") ? triple(o.image_mean, "image_mean", source) : d.imageMean,
    imageStd: has("image_std") ? triple(o.image_std, "image_std", source) : d.imageStd,
  };
  validateImageProcessorConfig(cfg, source);
  return cfg;
}

/** Checks a config built by hand (types, positive sizes, non-zero std) and what this implementation supports. */
export function validateImageProcessorConfig(cfg: ImageProcessorConfig, source = "image processor config"): void {
  if (cfg === null || typeof cfg !== "object") throw new PerceiverError("CONFIG_INVALID", `${source}: expected an object`);
  for (const k of ["doCenterCrop", "doResize", "doRescale", "doNormalize"] as const) {
    if (typeof cfg[k] !== "boolean") throw invalid(source, k, "a boolean", cfg[k]);
  }
  for (const k of ["cropSize", "size"] as const) {
    const s = cfg[k];
    if (s === null || typeof s !== "object" || !isPositiveInt(s.height) || !isPositiveInt(s.width)) {
      throw invalid(source, k, "{height, width} with positive integers", s);
    }
  }
  if (typeof cfg.rescaleFactor !== "number" || !Number.isFinite(cfg.rescaleFactor)) {
    throw invalid(source, "rescaleFactor", "a finite number", cfg.rescaleFactor);
  }
  for (const k of ["imageMean", "imageStd"] as const) {
    const v = cfg[k];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === "number" && Number.isFinite(x))) {
      throw invalid(source, k, "3 finite numbers (R, G, B)", v);
    }
  }
  if (cfg.imageStd.some((x) => Math.fround(x) === 0)) throw invalid(source, "imageStd", "non-zero values", cfg.imageStd);
  if (cfg.doResize && cfg.resample !== 3) {
    const name = PIL_RESAMPLE_NAMES[cfg.resample] ?? String(cfg.resample);
    throw new PerceiverError("CONFIG_UNSUPPORTED", `${source}: resample=${cfg.resample} (${name}) is not implemented; only 3 (BICUBIC)`);
  }
}

function invalid(source: string, field: string, expected: string, got: unknown): PerceiverError {
  let shown: string;
  try {
    shown = JSON.stringify(got) ?? String(got);
  } catch {
    shown = String(got);
  }
  return new PerceiverError("CONFIG_INVALID", `${source}: field "${field}" must be ${expected}, got ${shown.slice(0, 80)}`);
}

function isPositiveInt(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x > 0;
}

/** transformers `get_size_dict`: an int (square), [h, w], or {height, width}. {shortest_edge,...} is not usable here. */
function sizeDict(v: unknown, field: string, source: string): SizeHW {
  if (isPositiveInt(v)) return { height: v, width: v };
  if (Array.isArray(v) && v.length === 2 && isPositiveInt(v[0]) && isPositiveInt(v[1])) return { height: v[0], width: v[1] };
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    const s = v as Record<string, unknown>;
    if ("height" in s || "width" in s) {
      if (isPositiveInt(s.height) && isPositiveInt(s.width)) return { height: s.height, width: s.width };
      throw invalid(source, field, "{height, width} with positive integers", v);
    }
    const keys = Object.keys(s).join(", ");
    if (Object.keys(s).some((k) => /^(shortest_edge|longest_edge|max_height|max_width)$/.test(k))) {
      throw new PerceiverError(
        "CONFIG_UNSUPPORTED",
        `${source}: "${field}" {${keys}} is not supported: the Perceiver processor needs {height, width}`,
      );
    }
  }
  throw invalid(source, field, "a positive integer, [height, width] or {height, width}", v);
}

function triple(v: unknown, field: string, source: string): [number, number, number] {
  if (typeof v === "number" && Number.isFinite(v)) return [v, v, v];
  if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === "number" && Number.isFinite(x))) {
    return [v[0], v[1], v[2]];
  }
  throw invalid(source, field, "a number or 3 numbers (R, G, B)", v);
}

function resolve(cfg: Partial<ImageProcessorConfig> | undefined): ImageProcessorConfig {
  const full = { ...defaultImageProcessorConfig, ...(cfg ?? {}) } as ImageProcessorConfig;
  validateImageProcessorConfig(full);
  return full;
}

// ---------------------------------------------------------------------------------------------------------------
// Pipeline

export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/**
 * PerceiverImageProcessor.center_crop: crop = int(size / cropSize * min(H, W)) per axis (truncation; 0.875 * m for
 * the hub config), top = (H - crop) // 2, left = (W - crop) // 2.
 */
export function centerCropBox(h: number, w: number, cfg?: Partial<ImageProcessorConfig>): CropBox {
  const c = resolve(cfg);
  if (!isPositiveInt(h) || !isPositiveInt(w)) {
    throw new PerceiverError("INPUT_INVALID", `centerCropBox: image size must be positive integers, got ${h}x${w}`);
  }
  const m = Math.min(h, w);
  const ch = Math.trunc((c.size.height / c.cropSize.height) * m);
  const cw = Math.trunc((c.size.width / c.cropSize.width) * m);
  if (ch === 0 || cw === 0) {
    throw new PerceiverError("IMAGE_EMPTY", `center crop of a ${w}x${h} image is empty (${cw}x${ch}): the image is too small`);
  }
  if (ch > h || cw > w) {
    // transformers zero-pads here, and its versions disagree on where the padding goes.
    throw new PerceiverError(
      "CONFIG_UNSUPPORTED",
      `center crop ${cw}x${ch} is larger than the ${w}x${h} image (size > crop_size needs padding, not implemented)`,
    );
  }
  return { top: Math.floor((h - ch) / 2), left: Math.floor((w - cw) / 2), height: ch, width: cw };
}

/** Copies the window [top, top+h) x [left, left+w) of an RGB image. */
export function cropRgb(img: RgbImage, top: number, left: number, h: number, w: number): RgbImage {
  assertRgbImage(img, "cropRgb");
  const ints = [top, left, h, w].every((x) => Number.isSafeInteger(x));
  if (!ints || top < 0 || left < 0 || h < 1 || w < 1 || top + h > img.height || left + w > img.width) {
    throw new PerceiverError(
      "INPUT_INVALID",
      `cropRgb: window top=${top} left=${left} ${w}x${h} is not inside the ${img.width}x${img.height} image`,
    );
  }
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const s = ((top + y) * img.width + left) * 3;
    out.set(img.data.subarray(s, s + w * 3), y * w * 3);
  }
  return { width: w, height: h, data: out };
}

/** The uint8 part of the pipeline: center crop then PIL bicubic resize. img [H,W,3] -> [size.height, size.width, 3]. */
export function cropAndResize(img: RgbImage, cfg?: Partial<ImageProcessorConfig>): RgbImage {
  const c = resolve(cfg);
  assertRgbImage(img, "cropAndResize");
  let cur = img;
  if (c.doCenterCrop) {
    const box = centerCropBox(img.height, img.width, c);
    cur = cropRgb(img, box.top, box.left, box.height, box.width);
  }
  if (c.doResize) cur = resizeBicubicPil(cur, c.size.width, c.size.height);
  return cur;
}

/**
 * Per-channel lookup table of the float32 value of every uint8 level: [3, 256].
 * rescale r = f32(double(x) * factor) (numpy astype(float64) * scale, astype(float32));
 * normalize n = f32(f32(r - f32(mean)) / f32(std)) (float32 numpy ops; JS double then fround is exact here).
 */
export function valueTable(cfg: ImageProcessorConfig): Float32Array {
  const lut = new Float32Array(3 * 256);
  for (let ch = 0; ch < 3; ch++) {
    const mean = Math.fround(cfg.imageMean[ch]);
    const std = Math.fround(cfg.imageStd[ch]);
    for (let x = 0; x < 256; x++) {
      let r = cfg.doRescale ? Math.fround(x * cfg.rescaleFactor) : x;
      if (cfg.doNormalize) r = Math.fround(Math.fround(r - mean) / std);
      lut[ch * 256 + x] = r;
    }
  }
  return lut;
}

/** uint8 HWC -> float32 CHW through the table: img [H,W,3] -> out[offset ...] [3,H,W]. */
function writeChw(img: RgbImage, lut: Float32Array, out: Float32Array, offset: number): void {
  const plane = img.width * img.height;
  const d = img.data;
  for (let ch = 0; ch < 3; ch++) {
    const o = offset + ch * plane;
    const t = ch * 256;
    for (let p = 0; p < plane; p++) out[o + p] = lut[t + d[p * 3 + ch]];
  }
}

/** One image -> float32 CHW [3, size.height, size.width] (pixel_values of a batch of one, without the batch axis). */
export function preprocess(img: RgbImage, cfg?: Partial<ImageProcessorConfig>): Float32Array {
  const c = resolve(cfg);
  const r = cropAndResize(img, c);
  const out = new Float32Array(3 * r.width * r.height);
  writeChw(r, valueTable(c), out, 0);
  return out;
}

/** Images -> pixel_values Tensor [B, 3, H, W]. All images must come out the same size (they do when doResize). */
export function preprocessBatch(images: readonly RgbImage[], cfg?: Partial<ImageProcessorConfig>): Tensor {
  const c = resolve(cfg);
  if (!Array.isArray(images) || images.length === 0) {
    throw new PerceiverError("INPUT_INVALID", "preprocessBatch: expected a non-empty array of images");
  }
  const lut = valueTable(c);
  let out: Float32Array | undefined;
  let H = 0;
  let W = 0;
  images.forEach((img, i) => {
    const r = cropAndResize(img, c);
    if (!out) {
      H = r.height;
      W = r.width;
      out = new Float32Array(images.length * 3 * H * W);
    } else if (r.height !== H || r.width !== W) {
      throw new PerceiverError(
        "SHAPE_MISMATCH",
        `preprocessBatch: image ${i} preprocesses to ${r.width}x${r.height}, image 0 to ${W}x${H} (enable doResize)`,
      );
    }
    writeChw(r, lut, out, i * 3 * H * W);
  });
  return new Tensor(out as Float32Array, [images.length, 3, H, W]);
}
