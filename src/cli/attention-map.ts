/** `perceiver attention-map <image>`: the cross-attention maps as PNG heat maps over the preprocessed crop. */
import { basename, extname } from "node:path";
import { PerceiverError } from "../errors.js";
import { COLORMAP_NAMES, getColormap } from "../io/image/colormap.js";
import type { RgbImage } from "../io/image/decode.js";
import { loadImageFile } from "../io/image/decode-node.js";
import { topK } from "../perceiver/labels.js";
import { encodeRgbPng } from "../io/image/png-encode.js";
import {
  classWeightedMap, decoderWeights, latentMap, normalizeMax, overlay, tileGrid, topLatents, upsampleBilinear, type LatentWeight,
} from "../perceiver/attention-map.js";
import { DEFAULT_MODEL } from "../io/hub/hub-model.js";
import { cropAndResize, preprocessBatch } from "../io/image/image-processor.js";
import { parseCommandArgs } from "./args.js";
import { COMPUTE_HELP, IMAGE_HELP, MODEL_COMMAND_OPTIONS, applyComputeOptions, loadCliModel, positiveInt } from "./common.js";
import { checkOutputPath, FORCE_HELP, writeOutputFile } from "./output.js";
import { inferenceProgress, progressEnabled } from "./progress.js";

export const ATTENTION_MAP_HELP = `Usage: perceiver attention-map <image> [options]

Draw where the model looks: its cross-attention over the image, as heat maps over the preprocessed crop
(the center crop resized to the model's input size, 224x224 for the ImageNet models).

Writes two PNG files:
  <out>                 the class-weighted map: the decoder query's attention over the latents times each
                        latent's encoder attention over the input tokens, sum_n dec[n] * enc[n, t] (heads
                        averaged), on the token grid (55x55 for the conv model), bilinearly upsampled to the crop
  <out-stem>.latents.png  one tile per chosen latent: that latent's encoder attention map, labelled with its index
Each map is divided by its own maximum for display (so every tile uses the full color range: compare
shapes, not brightness, across tiles), colored, and blended over the crop.

Options:
  --model <repo|folder|file>  hub repo id, local folder or checkpoint file  [default: ${DEFAULT_MODEL}]
  --revision <rev>            hub branch, tag, commit or refs/pr/N          [default: main]
  --out <file.png>            output file   [default: <image-stem>.attention.png in the current folder]
  --latents <i,j,...>         latents to draw in the grid (0-based, comma-separated)
  --top <k>                   or: the k latents the decoder attends to most  [default: 16; all if k > latents]
  --colormap <name>           ${COLORMAP_NAMES.join(" | ").padEnd(46)} [default: inferno]
  --alpha <a>                 heat-map opacity from 0 to 1                   [default: 0.5]
${FORCE_HELP}
${IMAGE_HELP}
${COMPUTE_HELP}
  --quiet                     no progress output on stderr
  --debug                     print stack traces on errors
  -h, --help                  show this help

Prints the files written and, per latent in the grid (row by row), its index and decoder weight.`;

/** Where the class-weighted map goes by default: `<image-stem>.attention.png` in the current folder. */
export function defaultOutPath(image: string): string {
  const name = basename(image);
  const ext = extname(name);
  return `${ext ? name.slice(0, -ext.length) : name}.attention.png`;
}

/** The latents grid file next to `out`: `<out-stem>.latents.png`. */
export function latentsOutPath(out: string): string {
  return `${out.replace(/\.png$/i, "")}.latents.png`;
}

/** "0, 5,17" -> [0, 5, 17] (duplicates dropped, order kept); syntax only, the range is checked once the model is known. */
function parseLatentList(v: string): number[] {
  const parts = v.split(",").map((s) => s.trim());
  if (parts.some((p) => !/^\d{1,9}$/.test(p))) {
    throw new PerceiverError("USAGE", `--latents must be comma-separated latent indices like 0,5,17, got ${JSON.stringify(v)}`);
  }
  return [...new Set(parts.map(Number))];
}

function parseAlpha(v: string | undefined): number {
  if (v === undefined) return 0.5;
  const a = Number(v);
  if (v.trim() === "" || !(a >= 0 && a <= 1)) throw new PerceiverError("USAGE", `--alpha must be a number from 0 to 1, got ${JSON.stringify(v)}`);
  return a;
}

export async function attentionMap(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs("attention-map", argv, {
    ...MODEL_COMMAND_OPTIONS,
    out: { type: "string" },
    latents: { type: "string" },
    top: { type: "string" },
    colormap: { type: "string" },
    alpha: { type: "string" },
    force: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(ATTENTION_MAP_HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new PerceiverError("USAGE", `attention-map: give exactly one image file, got ${positionals.length} (see perceiver attention-map --help)`);
  }
  const [imagePath] = positionals;
  if (values.latents !== undefined && values.top !== undefined) throw new PerceiverError("USAGE", "give --latents or --top, not both");
  const requested = values.latents !== undefined ? parseLatentList(values.latents) : null;
  const topCount = positiveInt("top", values.top, 16, 100_000);
  const colormapName = values.colormap ?? "inferno";
  if (!(COLORMAP_NAMES as readonly string[]).includes(colormapName)) {
    throw new PerceiverError("USAGE", `--colormap must be one of ${COLORMAP_NAMES.join(", ")}, got ${JSON.stringify(colormapName)}`);
  }
  const colormap = getColormap(colormapName);
  const alpha = parseAlpha(values.alpha);
  const out = values.out ?? defaultOutPath(imagePath);
  if (!/\.png$/i.test(out)) throw new PerceiverError("USAGE", `--out must name a .png file, got ${JSON.stringify(out)}`);
  const outLatents = latentsOutPath(out);
  await checkOutputPath(out, values.force);
  await checkOutputPath(outLatents, values.force);
  const showProgress = progressEnabled(values.quiet);
  const image = await loadImageFile(imagePath, { exifOrientation: !values["ignore-exif"] }); // before the model: a bad image fails without a download

  await applyComputeOptions(values);

  const { model, processorConfig, seconds } = await loadCliModel({ model: values.model, revision: values.revision, showProgress });
  const numLatents = model.config.numLatents;
  if (requested) {
    const bad = requested.filter((i) => i >= numLatents);
    if (bad.length) {
      throw new PerceiverError("USAGE", `--latents ${bad.join(",")}: out of range, the model has ${numLatents} latents (0..${numLatents - 1})`);
    }
  }
  if (!values.quiet) console.error(`model loaded in ${seconds.toFixed(1)} s`);

  const crop = cropAndResize(image, processorConfig); // the uint8 picture the model sees
  const pixels = preprocessBatch([image], processorConfig);
  const bar = inferenceProgress(showProgress, imagePath);
  let result;
  try {
    result = await model.forward(pixels, { outputAttentions: true, onProgress: bar.onProgress });
  } finally {
    bar.stop();
  }
  const [enc, dec] = result.crossAttentions!;
  const [gh, gw] = model.preprocessor.gridSize(crop.height, crop.width);
  if (gh * gw !== enc.shape[3]) throw new Error(`internal: token grid ${gh}x${gw} does not match ${enc.shape[3]} attention inputs`);

  // token-grid map -> crop size -> [0, 1] -> colored over the crop
  const picture = (tokenMap: Float32Array) =>
    overlay(crop, normalizeMax(upsampleBilinear(tokenMap, gh, gw, crop.height, crop.width)), colormap, alpha);

  await writeOutputFile(out, encodeRgbPng(picture(classWeightedMap(enc, dec, 0))), values.force);

  let chosen: LatentWeight[];
  if (requested) {
    const w = decoderWeights(dec, 0);
    chosen = requested.map((latent) => ({ latent, weight: w[latent] }));
  } else {
    chosen = topLatents(dec, 0, topCount);
  }
  const cols = Math.ceil(Math.sqrt(chosen.length));
  const tiles = chosen.map(({ latent }) => stampLabel(picture(latentMap(enc, 0, latent)), String(latent)));
  const grid = tileGrid(tiles, cols);
  await writeOutputFile(outLatents, encodeRgbPng(grid), values.force);

  const top1 = topK(result.logits.data, 1, model.config.id2label)[0];
  const rows = Math.ceil(chosen.length / cols);
  console.log(`${imagePath}  (top-1: ${top1.label}, ${top1.score.toFixed(4)})`);
  console.log(`wrote ${out}  (${crop.width}x${crop.height}: class-weighted attention over the ${gh}x${gw} token grid)`);
  console.log(`wrote ${outLatents}  (${grid.width}x${grid.height}: ${chosen.length} latent${chosen.length > 1 ? "s" : ""}, ${rows}x${Math.min(cols, chosen.length)} grid, row by row)`);
  console.log(`   #  latent  decoder weight`);
  chosen.forEach((c, i) => console.log(`  ${String(i + 1).padStart(2)}  ${String(c.latent).padStart(6)}  ${c.weight.toFixed(6)}`));
  return 0;
}

/** 3x5 bitmaps of the digits 0-9, rows top to bottom, 3 bits each (MSB = left). */
const DIGITS = [
  [7, 5, 5, 5, 7], [2, 6, 2, 2, 7], [7, 1, 7, 4, 7], [7, 1, 7, 1, 7], [5, 5, 7, 1, 1],
  [7, 4, 7, 1, 7], [7, 4, 7, 5, 7], [7, 1, 1, 1, 1], [7, 5, 7, 5, 7], [7, 5, 7, 1, 7],
];

/** Writes `text` (digits) in white on a black box in the top-left corner of `img`, in place; returns img. */
function stampLabel(img: RgbImage, text: string): RgbImage {
  const s = Math.max(1, Math.round(img.width / 80)); // pixel size of one font dot: 3 for a 224 crop
  const pad = s;
  const boxW = Math.min(img.width, pad * 2 + text.length * 4 * s - s);
  const boxH = Math.min(img.height, pad * 2 + 5 * s);
  const set = (x: number, y: number, v: number) => {
    if (x < img.width && y < img.height) img.data.fill(v, (y * img.width + x) * 3, (y * img.width + x) * 3 + 3);
  };
  for (let y = 0; y < boxH; y++) for (let x = 0; x < boxW; x++) set(x, y, 0);
  [...text].forEach((ch, k) => {
    const glyph = DIGITS[ch.charCodeAt(0) - 48];
    if (!glyph) return;
    for (let r = 0; r < 5; r++) {
      for (let c = 0; c < 3; c++) {
        if (!((glyph[r] >> (2 - c)) & 1)) continue;
        for (let dy = 0; dy < s; dy++) for (let dx = 0; dx < s; dx++) set(pad + (k * 4 + c) * s + dx, pad + r * s + dy, 255);
      }
    }
  });
  return img;
}
