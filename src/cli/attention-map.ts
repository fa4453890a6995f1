/** `perceiver attention-map <image>`: the cross-attention maps as PNG heat maps over the preprocessed crop. */
import { basename, extname } from "node:path";
import { PerceiverError } from "../errors.js";
import { COLORMAP_NAMES, getColormap } from "../io/image/colormap.js";
import { loadImageFile } from "../io/image/decode-node.js";
import { topK } from "../perceiver/labels.js";
import { encodeRgbPng } from "../io/image/png-encode.js";
import { classWeightedFigure, formatRelative, latentGridFigure, TILE_SCALES, type TileScale } from "../perceiver/attention-figure.js";
import { classWeightedMap, decoderWeights, latentMap, topLatents, type LatentWeight } from "../perceiver/attention-map.js";
import { DEFAULT_MODEL } from "../io/hub/hub-model.js";
import { cropAndResize, preprocessBatch } from "../io/image/image-processor.js";
import { parseCommandArgs } from "./args.js";
import { COMPUTE_HELP, IMAGE_HELP, MODEL_COMMAND_OPTIONS, applyComputeOptions, loadCliModel, positiveInt, printable } from "./common.js";
import { checkOutputPath, FORCE_HELP, writeOutputFile } from "./output.js";
import { inferenceProgress, progressEnabled } from "./progress.js";

export const ATTENTION_MAP_HELP = `Usage: perceiver attention-map <image> [options]

Draw where the model looks: its cross-attention over the image, as heat maps over the preprocessed crop
(the center crop resized to the model's input size, 224x224 for the ImageNet models).

Writes two PNG files, each with a colour bar underneath and its range in PNG text chunks:
  <out>                 the class-weighted map: the decoder query's attention over the latents times each
                        latent's encoder attention over the input tokens, sum_n dec[n] * enc[n, t] (heads
                        averaged), on the token grid (55x55 for the conv model), bilinearly upsampled to the crop
  <out-stem>.latents.png  one tile per chosen latent: that latent's encoder attention map, labelled with its
                        index and the decoder's weight on it ("LATENT 12  DEC 0.0831")
Colours are in units of uniform attention: 1 = every token got the same share (1/3025 on a 55x55 grid),
10 = ten times its share. Each colour bar runs from 0 to the largest value shown and marks 1. The tiles
share one scale by default, so brighter means more concentrated; --scale per-map gives each tile its own
(from its minimum to its maximum, written in its label) to show the shape of flat maps.

Options:
  --model <repo|folder|file>  hub repo id, local folder or checkpoint file  [default: ${DEFAULT_MODEL}]
  --revision <rev>            hub branch, tag, commit or refs/pr/N          [default: main]
  --out <file.png>            output file   [default: <image-stem>.attention.png in the current folder]
  --latents <i,j,...>         latents to draw in the grid (0-based, comma-separated)
  --top <k>                   or: the k latents the decoder attends to most  [default: 16; all if k > latents]
  --colormap <name>           ${COLORMAP_NAMES.join(" | ").padEnd(46)} [default: inferno]
  --alpha <a>                 heat-map opacity from 0 to 1                   [default: 0.5]
  --scale <shared|per-map>    colour scale of the latent tiles               [default: shared]
${FORCE_HELP}
${IMAGE_HELP}
${COMPUTE_HELP}
  --quiet                     no progress output on stderr
  --debug                     print stack traces on errors
  -h, --help                  show this help

Prints the files written and, per latent in the grid (row by row), its index, decoder weight and maximum\n(in units of uniform attention).`;

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
    scale: { type: "string" },
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
  const scaleMode = (values.scale ?? "shared") as TileScale;
  if (!TILE_SCALES.includes(scaleMode)) throw new PerceiverError("USAGE", `--scale must be shared or per-map, got ${JSON.stringify(values.scale)}`);
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
  const T = enc.shape[3];
  if (gh * gw !== T) throw new Error(`internal: token grid ${gh}x${gw} does not match ${T} attention inputs`);
  const figureOptions = { crop, gridHeight: gh, gridWidth: gw, colormap, alpha };
  const source = { Source: printable(basename(imagePath)) };

  const classFigure = classWeightedFigure(classWeightedMap(enc, dec, 0), figureOptions);
  await writeOutputFile(out, encodeRgbPng(classFigure.image, { text: { ...classFigure.text, ...source } }), values.force);

  let chosen: LatentWeight[];
  if (requested) {
    const w = decoderWeights(dec, 0);
    chosen = requested.map((latent) => ({ latent, weight: w[latent] }));
  } else {
    chosen = topLatents(dec, 0, topCount);
  }
  const cols = Math.ceil(Math.sqrt(chosen.length));
  const grid = latentGridFigure(chosen.map((c) => ({ ...c, map: latentMap(enc, 0, c.latent) })), cols, scaleMode, figureOptions);
  await writeOutputFile(outLatents, encodeRgbPng(grid.image, { text: { ...grid.text, ...source } }), values.force);

  const top1 = topK(result.logits.data, 1, model.config.id2label)[0];
  const rows = Math.ceil(chosen.length / cols);
  const hi = (r: { hi: number }) => formatRelative(r.hi);
  console.log(`${imagePath}  (top-1: ${printable(top1.label)}, ${top1.score.toFixed(4)})`);
  console.log(`wrote ${out}  (${crop.width}x${crop.height}: class-weighted attention over the ${gh}x${gw} token grid; colour 0 to ${hi(classFigure.range)}x uniform, uniform = 1/${T})`);
  console.log(
    `wrote ${outLatents}  (${chosen.length} latent${chosen.length > 1 ? "s" : ""}, ${rows}x${Math.min(cols, chosen.length)} grid, row by row; ` +
    (scaleMode === "shared" ? `one colour scale, 0 to ${hi(grid.range)}x uniform)` : "each tile from its own min to its own max)"),
  );
  console.log(`   #  latent  decoder weight  max x uniform`);
  chosen.forEach((c, i) => console.log(`  ${String(i + 1).padStart(2)}  ${String(c.latent).padStart(6)}  ${c.weight.toFixed(6).padStart(14)}  ${formatRelative(grid.maxima[i]).padStart(13)}`));
  return 0;
}
