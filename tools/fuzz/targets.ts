/**
 * Fuzz targets: the public entry points fed with mutants of small valid seeds, each with the checks that make a
 * silently wrong result a failure (sizes, round trips, header vs decoded image).
 *
 *   safetensors  readSafetensors, every tensor materialized, write + read round trip; micro checkpoints are loaded
 *                with fromStateDict and run on an 8x8 image
 *   image        decodeImage (PNG and JPEG seeds), readImageHeader agreement, preprocess to pixel values
 *   config       config.json / preprocessor_config.json text: JSON, parsePerceiverConfig (+ the implied weight
 *                count against expectedWeights and the cap), imageProcessorConfigFromJson
 *   pickle       readTorchBin (zip + restricted unpickler), every tensor materialized
 *
 * Node only (seeds are read from test/fixtures).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PerceiverError } from "../../src/errors.js";
import { applyOrientation } from "../../src/io/image/exif.js";
import { decodeImage, readImageHeader, type RgbImage } from "../../src/io/image/decode.js";
import { DTYPE_SIZE, readSafetensors, writeSafetensors, type SafetensorsTensor } from "../../src/io/checkpoint/safetensors.js";
import { readTorchBin } from "../../src/io/checkpoint/torch-bin.js";
import { DEFAULT_CONFIG_LIMITS, parsePerceiverConfig } from "../../src/perceiver/config.js";
import { imageProcessorConfigFromJson, preprocess } from "../../src/io/image/image-processor.js";
import { estimateForwardMemory, weightCount } from "../../src/perceiver/memory.js";
import { PerceiverForImageClassification } from "../../src/perceiver/model.js";
import { expectedWeights } from "../../src/perceiver/weights.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { invariant } from "./check.js";
import { mutateJpeg } from "./mutate-jpeg.js";
import { mutateJson } from "./mutate-json.js";
import { mutatePng } from "./mutate-png.js";
import { mutateSafetensors } from "./mutate-safetensors.js";
import { mutateZip } from "./mutate-zip.js";
import { referenceDecodePng } from "./png-reference.js";
import { mutate, type Mutator } from "./mutators.js";
import { caseSeed, Prng } from "./prng.js";
import { microConfig, microSafetensors, twoTensorSafetensors } from "./seeds.js";

export const TARGET_NAMES = ["safetensors", "image", "config", "pickle"] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

export interface FuzzTarget {
  readonly name: TargetName;
  readonly seeds: readonly Uint8Array[];
  readonly seedNames: readonly string[];
  /** Format-aware mutators (used for about half of the mutations). */
  readonly structured: readonly Mutator[];
  /** Feed one input to the library: returns, or throws (PerceiverError = rejected, anything else = failure). */
  run(input: Uint8Array): void;
}

/** Images are decoded under this pixel cap in fuzzing (a CRC-valid IHDR can ask for anything). */
export const FUZZ_MAX_PIXELS = 1 << 22;

export function defaultFixturesDir(): string {
  return fileURLToPath(new URL("../../test/fixtures", import.meta.url));
}

const numel = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);

function safetensorsTarget(fixtures: string): FuzzTarget {
  const tiny = readSafetensors(readFileSync(join(fixtures, "tiny-conv", "model.safetensors")));
  const seeds = [twoTensorSafetensors(tiny), microSafetensors("F32"), microSafetensors("F16")];
  const micro = microConfig();
  const pixels = new Tensor(Float32Array.from({ length: 3 * 8 * 8 }, (_, i) => Math.sin(i)), [1, 3, 8, 8]);
  return {
    name: "safetensors",
    seeds,
    seedNames: ["two-tensor (tiny-conv)", "micro F32", "micro F16"],
    structured: [mutateSafetensors],
    run(input) {
      const f = readSafetensors(input, { source: "fuzz.safetensors" });
      const tensors = new Map<string, SafetensorsTensor>();
      for (const name of f.names()) {
        const e = f.entry(name);
        const bytes = f.getBytes(name);
        invariant(bytes.length === e.numel * DTYPE_SIZE[e.dtype], `${name}: ${bytes.length} bytes for ${e.numel} x ${e.dtype}`);
        invariant(e.numel === numel(e.shape), `${name}: numel ${e.numel} != product of [${e.shape}]`);
        invariant(f.getFloat32(name).length === e.numel, `${name}: getFloat32 length`);
        tensors.set(name, { dtype: e.dtype, shape: e.shape, data: bytes });
      }
      // What was accepted must survive a write + read unchanged.
      const again = readSafetensors(writeSafetensors(tensors, { ...f.metadata }));
      invariant(again.names().length === tensors.size, "round trip changed the tensor count");
      for (const [name, t] of tensors) {
        const e = again.entry(name);
        invariant(e.dtype === t.dtype && e.shape.join() === t.shape.join(), `${name}: round trip changed dtype/shape`);
        const a = again.getBytes(name);
        const b = t.data as Uint8Array;
        invariant(a.length === b.length && a.every((x, i) => x === b[i]), `${name}: round trip changed the bytes`);
      }
      if (f.has("perceiver.embeddings.latents")) {
        const model = PerceiverForImageClassification.fromStateDict(micro, f, "fuzz.safetensors");
        const { logits } = model.forwardSync(pixels);
        invariant(logits.shape.join() === "1,2", `logits shape [${logits.shape}]`);
      }
    },
  };
}

/** Fills and drops pooled and unpooled buffers, so that memory handed out uninitialized next holds junk. */
function scribble(): void {
  for (const n of [64, 1000, 4096, 8192, 65536, 1 << 20]) Buffer.allocUnsafe(n).fill(0xa5 ^ (n & 0xff));
}

function imageTarget(fixtures: string): FuzzTarget {
  const names = [
    "images-extra/tiny420.jpg", "images-extra/bilevel.png", "images-extra/palette4_trns.png", "images-extra/gray.jpg",
    "images-extra/progressive.jpg", "images-extra/restart.jpg", "images-extra/h1v2.jpg", "images-extra/adobe_ycc.jpg",
    "images-extra/la.png", "images-extra/gray_trns.png", "images-extra/interlaced.png", "images-extra/cmyk.jpg",
    "images-extra/rgba.png", "images-extra/rgb_trns.png", "images/small.png",
    // EXIF orientation in an APP1 segment, an eXIf chunk, a "Raw profile type exif" text, a compressed XMP iTXt
    "images-extra/orient_6.jpg", "images-extra/orient_7.png", "images-extra/orient_rawprofile3.png", "images-extra/orient_itxt5.png",
    // the other formats and JPEG modes (scripts/make_format_goldens.py)
    "formats/baseline_411.jpg", "formats/progressive_restart_420.jpg", "formats/lossy.webp", "formats/lossless_alpha.webp",
    "formats/lossy_alpha.webp", "formats/interlaced.gif", "formats/transparent.gif", "formats/palette8.bmp",
    "formats/bilevel1.bmp", "formats/rgba32.bmp", "formats/topdown24.bmp", "formats/ycck_420.jpg", "formats/cmyk_progressive.jpg",
    "formats/cmyk_restart.jpg", "formats/animated_offset.webp",
    "formats/rle8.bmp", "formats/rle4.bmp", "formats/rgb565.bmp",
  ];
  const opts = { maxPixels: FUZZ_MAX_PIXELS, source: "fuzz-image" };
  return {
    name: "image",
    seeds: names.map((n) => new Uint8Array(readFileSync(join(fixtures, n)))),
    seedNames: names,
    structured: [mutatePng, mutateJpeg],
    run(input) {
      // Decoding twice, with freed memory scribbled over in between, must give the same outcome: a decoder that
      // reads uninitialized bytes is caught here (or by the reference below).
      const decode = (): RgbImage | PerceiverError => {
        try {
          return decodeImage(input, opts);
        } catch (e) {
          if (e instanceof PerceiverError) return e;
          throw e;
        }
      };
      const first = decode();
      scribble();
      const second = decode();
      if (first instanceof PerceiverError || second instanceof PerceiverError) {
        const what = (x: RgbImage | PerceiverError) => (x instanceof PerceiverError ? x.message : `${x.width}x${x.height} pixels`);
        invariant(first instanceof PerceiverError && second instanceof PerceiverError && first.message === second.message,
          `decoding twice gave different outcomes: ${what(first)} / ${what(second)}`);
        throw first;
      }
      const img = first;
      invariant(img.data.length === img.width * img.height * 3, `decoded ${img.width}x${img.height} with ${img.data.length} bytes`);
      invariant(second.data.every((x, i) => x === img.data[i]), "decoding twice gave different pixels (uninitialized memory?)");
      const h = readImageHeader(input, opts);
      // 8-bit non-interlaced PNGs: the naive reference decoder (turned as the header's orientation says) must agree,
      // pixel for pixel
      if (input[0] === 0x89) {
        const ref = referenceDecodePng(input);
        if (ref !== "unsupported") {
          invariant(!("invalid" in ref), `decoded a PNG the reference decoder refuses (${"invalid" in ref ? ref.invalid : ""})`);
          const r = applyOrientation(ref as RgbImage, h.orientation);
          invariant(r.width === img.width && r.height === img.height && r.data.every((x, i) => x === img.data[i]), "pixels differ from the reference PNG decoder");
        }
      }
      invariant(h.width === img.width && h.height === img.height, `header says ${h.width}x${h.height}, decoded ${img.width}x${img.height}`);
      const px = preprocess(img);
      invariant(px.length === 3 * 224 * 224, `preprocess gave ${px.length} values`);
      for (let i = 0; i < px.length; i++) invariant(Number.isFinite(px[i]), `preprocess gave ${px[i]} at ${i}`);
    },
  };
}

function configTarget(fixtures: string): FuzzTarget {
  const names = ["tiny-conv/config.json", "tiny-fourier/config.json", "tiny-learned/config.json", "tiny-conv-heads/config.json", "images/preprocessor_config.json"];
  return {
    name: "config",
    seeds: names.map((n) => new Uint8Array(readFileSync(join(fixtures, n)))),
    seedNames: names,
    structured: [mutateJson],
    run(input) {
      // What readConfigFile / readImageProcessorConfigFile do with the file's text.
      const text = new TextDecoder().decode(input);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new PerceiverError("CONFIG_INVALID", `fuzz/config.json is not valid JSON: ${(e as Error).message}`);
      }
      const rejected: PerceiverError[] = [];
      const attempt = (f: () => void) => {
        try {
          f();
        } catch (e) {
          if (!(e instanceof PerceiverError)) throw e;
          rejected.push(e);
        }
      };
      attempt(() => {
        const cfg = parsePerceiverConfig(json, "fuzz/config.json");
        let n = 0;
        for (const s of expectedWeights(cfg).values()) n += numel(s);
        invariant(n === weightCount(cfg).total, `weightCount ${weightCount(cfg).total} != expectedWeights ${n}`);
        invariant(4 * n <= DEFAULT_CONFIG_LIMITS.maxWeightBytes, `accepted a config implying ${4 * n} bytes of weights`);
        const est = estimateForwardMemory(cfg, { batch: 1, height: 224, width: 224 });
        invariant(Number.isFinite(est.bytes) && est.bytes > 0, `memory estimate ${est.bytes}`);
      });
      attempt(() => void imageProcessorConfigFromJson(json, "fuzz/preprocessor_config.json"));
      if (rejected.length === 2) throw rejected[0];
    },
  };
}

function pickleTarget(fixtures: string): FuzzTarget {
  const names = ["small.bin", "strided.bin", "strided.p5.bin", "dtypes.bin", "small.big-endian-deflated.bin", "small.zip64.bin", "wrapped.bin"];
  return {
    name: "pickle",
    seeds: names.map((n) => new Uint8Array(readFileSync(join(fixtures, "pickle", n)))),
    seedNames: names.map((n) => `pickle/${n}`),
    structured: [mutateZip],
    run(input) {
      const sd = readTorchBin(input, { source: "fuzz.bin" });
      for (const name of sd.names()) {
        const info = sd.info(name);
        const n = numel(info.shape);
        invariant(sd.getFloat32(name).length === n, `${name}: getFloat32 length != ${n}`);
        invariant(sd.getBytes(name).length === n * DTYPE_SIZE[info.dtype], `${name}: getBytes length`);
        sd.layout(name);
      }
    },
  };
}

/** All targets, seeds read from `fixturesDir` (default: the repository's test/fixtures). */
export function createTargets(fixturesDir = defaultFixturesDir()): Record<TargetName, FuzzTarget> {
  return {
    safetensors: safetensorsTarget(fixturesDir),
    image: imageTarget(fixturesDir),
    config: configTarget(fixturesDir),
    pickle: pickleTarget(fixturesDir),
  };
}

/** Name of the seed input case `index` starts from (without building the case). */
export function caseSeedName(target: FuzzTarget, seed: number, index: number): string {
  return target.seedNames[new Prng(caseSeed(seed, target.name, index)).int(target.seeds.length)];
}

/** Case `index` of a run seeded with `seed`: the same bytes every time, whatever ran before. */
export function makeCase(target: FuzzTarget, seed: number, index: number): { input: Uint8Array; seedName: string } {
  const rng = new Prng(caseSeed(seed, target.name, index));
  const s = rng.int(target.seeds.length); // first draw: see caseSeedName
  // 1 case in 50 is an unmutated seed: the seeds themselves must pass.
  const input = rng.chance(0.02) ? target.seeds[s].slice() : mutate(target.seeds[s], rng, target.seeds, target.structured);
  return { input, seedName: target.seedNames[s] };
}
