/**
 * Draws the conv model's forward pass as an SVG, every box and shape computed from a config.json (by default
 * test/fixtures/full/config.json, which is deepmind/vision-perceiver-conv's), and writes the FLOP table of
 * docs/walkthrough.md (between its `<!-- flops:begin -->` and `<!-- flops:end -->` lines) from
 * src/perceiver/flops.ts, so neither can drift from the code: test/docs.test.ts renders both again and compares.
 *
 *   npx tsx scripts/make-diagram.ts            # writes docs/images/conv-model.svg and the table
 *   npx tsx scripts/make-diagram.ts --check    # exits 1 if either is out of date
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parsePerceiverConfig, type PerceiverConfig } from "../src/perceiver/config.js";
import { flopBudget } from "../src/perceiver/flops.js";
import { ConvPreprocessor, CONV_KERNEL, CONV_OUT_CHANNELS } from "../src/perceiver/preprocessor-conv.js";
import { conv2dOutputSize } from "../src/tensor/conv.js";
import { layerShapes } from "../src/perceiver/shapes.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const DIAGRAM_PATH = join(ROOT, "docs", "images", "conv-model.svg");
export const DIAGRAM_CONFIG = join(ROOT, "test", "fixtures", "full", "config.json");

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const shape = (dims: number[]) => `[${dims.join(", ")}]`;
const gflop = (f: number) => (f >= 1e9 ? `${(f / 1e9).toFixed(1)} GFLOP` : `${(f / 1e6).toFixed(0)} MFLOP`);

interface Box {
  title: string;
  detail: string;
  /** FLOPs of the stage, shown at the right */
  flops?: number;
  /** the shape on the arrow that leaves the box */
  out: string;
  /** a second input drawn beside the box (the latent array, the output query) */
  side?: string;
  tint: string;
}

/** The boxes of the conv model's forward pass, top to bottom, for an image of size x size. */
export function convModelBoxes(cfg: PerceiverConfig, size = 224): { input: string; boxes: Box[]; totalFlops: number } {
  if (cfg.architecture !== "PerceiverForImageClassificationConvProcessing") throw new Error(`make-diagram: draws the conv model, got ${cfg.architecture}`);
  const s = layerShapes(cfg);
  const b = flopBudget(cfg, size, size);
  const pad = ConvPreprocessor.PAD;
  const conv = conv2dOutputSize(size, CONV_KERNEL, pad, Math.floor(CONV_KERNEL / 2), 2);
  const [gh, gw] = ConvPreprocessor.prototype.gridSize(size, size);
  const T = gh * gw;
  const fourier = s.kvDim - CONV_OUT_CHANNELS;
  const N = cfg.numLatents;
  const D = cfg.dLatents;
  const stage = (name: string) => b.stages.find((x) => x.stage === name)!.flops;
  const heads = (n: number) => `${n} head${n === 1 ? "" : "s"}`;
  return {
    input: `pixel_values ${shape([1, 3, size, size])}`,
    totalFlops: b.total,
    boxes: [
      { title: `conv ${CONV_KERNEL}x${CONV_KERNEL} stride 2 (pad ${pad}), BatchNorm, ReLU`, detail: "input_preprocessor.convnet", flops: stage("preprocessor"), out: shape([1, CONV_OUT_CHANNELS, conv, conv]), tint: "#dbeafe" },
      { title: "maxpool 3x3 stride 2", detail: "no padding", out: shape([1, CONV_OUT_CHANNELS, gh, gw]), tint: "#dbeafe" },
      { title: `flatten: one token per cell of the ${gh}x${gw} grid`, detail: `${T} tokens of ${CONV_OUT_CHANNELS} channels`, out: shape([T, CONV_OUT_CHANNELS]), tint: "#dbeafe" },
      { title: `concat ${fourier} Fourier position features`, detail: "the byte array: kv_dim channels per token", out: `byte array ${shape([T, s.kvDim])}`, tint: "#dbeafe" },
      { title: `cross-attention (${heads(s.encoderCross.numHeads)}) + MLP`, detail: "latents ask (Q), byte array answers (K, V)", flops: stage("encoder cross-attention"), side: `latent array ${shape([N, D])}`, out: `latents ${shape([N, D])}`, tint: "#fde68a" },
      { title: `latent transformer: ${cfg.numSelfAttendsPerBlock} self-attention layers (${heads(s.encoderSelf.numHeads)}) + MLP`, detail: `applied ${cfg.numBlocks} times with the same weights (${cfg.numBlocks * cfg.numSelfAttendsPerBlock} applications)`, flops: stage("latent transformer"), out: `latents ${shape([N, D])}`, tint: "#fde68a" },
      { title: `decoder cross-attention (${heads(s.decoderCross.numHeads)}) + MLP`, detail: "one trainable output query reads the latents", flops: stage("decoder"), side: `output query ${shape([1, D])}`, out: shape([1, D]), tint: "#bbf7d0" },
      { title: `classifier: linear ${D} -> ${cfg.numLabels}`, detail: "decoder.final_layer", flops: stage("classifier"), out: `logits ${shape([1, cfg.numLabels])}`, tint: "#bbf7d0" },
    ],
  };
}

/** The SVG text (deterministic: same config, same bytes). */
export function renderDiagram(cfg: PerceiverConfig, size = 224): string {
  const { input, boxes, totalFlops } = convModelBoxes(cfg, size);
  const W = 900;
  const boxX = 40;
  const boxW = 470;
  const boxH = 46;
  const arrow = 34;
  const flopX = 880;
  const lines: string[] = [];
  let y = 56;
  const text = (x: number, ty: number, s: string, attrs = "") => lines.push(`  <text x="${x}" y="${ty}"${attrs}>${esc(s)}</text>`);
  const arrowDown = (y0: number, label: string) => {
    const cx = boxX + boxW / 2;
    lines.push(`  <line x1="${cx}" y1="${y0}" x2="${cx}" y2="${y0 + arrow - 6}" class="arrow"/>`);
    lines.push(`  <polygon points="${cx - 5},${y0 + arrow - 7} ${cx + 5},${y0 + arrow - 7} ${cx},${y0 + arrow}" class="head"/>`);
    text(cx + 12, y0 + arrow / 2 + 5, label, ` class="shape"`);
  };

  text(W / 2, 28, `vision-perceiver-conv: one ${size}x${size} image, ${(totalFlops / 1e9).toFixed(1)} GFLOP`, ` class="heading" text-anchor="middle"`);
  text(flopX, 48, "FLOPs", ` class="dim" text-anchor="end"`);
  text(boxX + boxW / 2, y + 14, input, ` class="shape" text-anchor="middle"`);
  y += 22;
  let label = "";
  for (const b of boxes) {
    arrowDown(y, label); // the shape that flows into this box
    y += arrow;
    lines.push(`  <rect x="${boxX}" y="${y}" width="${boxW}" height="${boxH}" rx="6" fill="${b.tint}" class="box"/>`);
    text(boxX + 12, y + 20, b.title, ` class="title"`);
    text(boxX + 12, y + 37, b.detail, ` class="dim"`);
    if (b.flops !== undefined) text(flopX, y + 28, gflop(b.flops), ` class="flops" text-anchor="end"`);
    if (b.side) {
      const sx = boxX + boxW + 18;
      lines.push(`  <line x1="${sx + 14}" y1="${y + 23}" x2="${boxX + boxW + 6}" y2="${y + 23}" class="arrow"/>`);
      lines.push(`  <polygon points="${boxX + boxW + 7},${y + 18} ${boxX + boxW + 7},${y + 28} ${boxX + boxW},${y + 23}" class="head"/>`);
      text(sx + 18, y + 27, b.side, ` class="shape"`);
    }
    y += boxH;
    label = b.out;
  }
  arrowDown(y, "");
  y += arrow;
  text(boxX + boxW / 2, y + 16, label, ` class="shape" text-anchor="middle"`);
  const height = y + 34;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="13">`,
    "  <style>",
    "    .box { stroke: #475569; stroke-width: 1; }",
    "    .title { font-weight: bold; fill: #0f172a; }",
    "    .dim { fill: #475569; font-size: 11px; }",
    "    .shape { font-family: Menlo, Consolas, monospace; fill: #9a3412; font-size: 12px; }",
    "    .flops { font-family: Menlo, Consolas, monospace; fill: #1e3a8a; }",
    "    .heading { font-weight: bold; font-size: 15px; }",
    "    .arrow { stroke: #334155; stroke-width: 1.5; }",
    "    .head { fill: #334155; }",
    "  </style>",
    `  <rect width="${W}" height="${height}" fill="#ffffff"/>`,
    ...lines,
    "</svg>",
    "",
  ].join("\n");
}

export const WALKTHROUGH_PATH = join(ROOT, "docs", "walkthrough.md");
const BEGIN = "<!-- flops:begin (scripts/make-diagram.ts writes this table) -->";
const END = "<!-- flops:end -->";

const fmtG = (f: number) => (f / 1e9).toFixed(3);

/** The walkthrough's FLOP table: every product of one image, stage by stage, from flopBudget. */
export function flopTable(cfg: PerceiverConfig, size = 224): string {
  const b = flopBudget(cfg, size, size);
  const rows = ["| stage | product | M x N x K | times | GFLOP |", "| --- | --- | --- | --: | --: |"];
  for (const st of b.stages) {
    for (const t of st.terms) rows.push(`| ${st.stage} | ${t.op} | ${t.m} x ${t.n} x ${t.k} | ${t.count} | ${fmtG(t.flops)} |`);
    rows.push(`| **${st.stage}** | | | | **${fmtG(st.flops)}** (${((100 * st.flops) / b.total).toFixed(1)}%) |`);
  }
  rows.push(`| **total** | | | | **${fmtG(b.total)}** |`);
  return rows.join("\n");
}

/** `text` with the block between the markers replaced by `table` (throws when the markers are missing). */
export function withFlopTable(text: string, table: string): string {
  const a = text.indexOf(BEGIN);
  const z = text.indexOf(END);
  if (a < 0 || z < a) throw new Error(`make-diagram: docs/walkthrough.md lacks the ${BEGIN} ... ${END} lines`);
  return `${text.slice(0, a + BEGIN.length)}\n${table}\n${text.slice(z)}`;
}

export function loadDiagramConfig(path = DIAGRAM_CONFIG): PerceiverConfig {
  return parsePerceiverConfig(JSON.parse(readFileSync(path, "utf8")), path);
}

export function renderFromConfigFile(path = DIAGRAM_CONFIG): string {
  return renderDiagram(loadDiagramConfig(path));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const cfg = loadDiagramConfig();
  const walkthrough = readFileSync(WALKTHROUGH_PATH, "utf8");
  const outputs: [string, string][] = [
    [DIAGRAM_PATH, renderDiagram(cfg)],
    [WALKTHROUGH_PATH, withFlopTable(walkthrough, flopTable(cfg))],
  ];
  let stale = 0;
  for (const [path, text] of outputs) {
    let old = "";
    try {
      old = readFileSync(path, "utf8");
    } catch {
      // missing counts as out of date
    }
    if (old === text) continue;
    stale++;
    if (process.argv.includes("--check")) console.error(`${path} is out of date: run npx tsx scripts/make-diagram.ts`);
    else {
      writeFileSync(path, text);
      console.log(`wrote ${path}`);
    }
  }
  if (process.argv.includes("--check") && stale) process.exit(1);
}
