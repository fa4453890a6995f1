/**
 * Writes the hostile-input corpus test/fixtures/bad/ and its expected.json (what each file must fail with):
 *
 *   npx tsx scripts/make-bad-fixtures.ts
 *
 * safetensors/  one file per validation rule, cut from a 2-tensor file of test/fixtures/tiny-conv
 * checkpoints/  folders (config.json + weights) of the ~5 KB micro model (tools/fuzz/seeds.ts): a good one, then
 *               wrong shape, missing / unexpected keys, integer weights, no weights, no config, truncated, ...
 * images/       truncated / corrupt / empty / 1x1 / huge-claiming PNGs and JPEGs, and other formats in disguise
 * configs/      config.json and preprocessor_config.json with wrong types, impossible sizes and unknown values
 * expected.json {path: {via, code, message, why}}: `via` is the entry point the test uses, `code` the expected
 *               PerceiverError code (null: must succeed), `message` a fragment the message must contain; "cli"
 *               lists command lines ({bad}/ and {fixtures}/ are replaced by the folders) with exit code and text.
 *
 * Deterministic: running it twice writes the same bytes.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { zipSync, zlibSync } from "fflate";
import { pngBytes, pngChunks } from "../tools/fuzz/mutate-png.js";
import { MICRO_CONFIG_JSON, microSafetensors, microWeights, twoTensorSafetensors } from "../tools/fuzz/seeds.js";
import { readSafetensors, writeSafetensors, type SafetensorsTensor } from "../src/io/checkpoint/safetensors.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const FIXTURES = join(ROOT, "test", "fixtures");
const OUT = join(FIXTURES, "bad");
rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });

type Via = "safetensors" | "fromPretrained" | "image" | "preprocess" | "config" | "preprocessorConfig" | "torchBin";
interface Expectation {
  via: Via;
  code: string | null;
  message: string;
  why: string;
}
interface CliCase {
  args: string[];
  exit: number;
  message: string;
  /** text that must not appear in the output */
  absent?: string;
  why: string;
}

const expected: Record<string, Expectation> = {};
const cli: CliCase[] = [];

function put(rel: string, bytes: Uint8Array | string, e?: Omit<Expectation, "message"> & { message?: string }): void {
  const p = join(OUT, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, bytes);
  if (e) expected[rel] = { via: e.via, code: e.code, message: e.message ?? "", why: e.why };
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + "\n";
const enc = (s: string) => new TextEncoder().encode(s);

// ---------------------------------------------------------------------------------------------------------------
// safetensors: one file per rule

const base = twoTensorSafetensors(readSafetensors(readFileSync(join(FIXTURES, "tiny-conv", "model.safetensors"))));
const baseFile = readSafetensors(base);
const VEC = "perceiver.input_preprocessor.convnet.batchnorm.weight"; // F32 [8], bytes [0, 32)
const SCALAR = "perceiver.input_preprocessor.convnet.batchnorm.num_batches_tracked"; // I64 [], bytes [32, 40)
const data = base.subarray(baseFile.dataByteOffset); // 40 bytes

/** 8-byte length + header + data; `n` overrides the length prefix. */
function st(header: string | Uint8Array, body: Uint8Array = data, n?: bigint): Uint8Array {
  const h = typeof header === "string" ? enc(header) : header;
  const out = new Uint8Array(8 + h.length + body.length);
  new DataView(out.buffer).setBigUint64(0, n ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(body, 8 + h.length);
  return out;
}
const entry = (dtype: string, shape: string, begin: number | string, end: number | string) =>
  `{"dtype":"${dtype}","shape":${shape},"data_offsets":[${begin},${end}]}`;
const hdr = (vec: string, scalar: string, extra = "") => `{${extra}"${VEC}":${vec},"${SCALAR}":${scalar}}`;
const VEC_OK = entry("F32", "[8]", 0, 32);
const SCALAR_OK = entry("I64", "[]", 32, 40);

const sts: [string, Uint8Array, string, string, string][] = [
  ["base-ok", base, "", "", "the valid 2-tensor file every case below is derived from"],
  ["empty", new Uint8Array(0), "SAFETENSORS_TOO_SMALL", "only 0 bytes", "an empty file"],
  ["too-small", base.slice(0, 5), "SAFETENSORS_TOO_SMALL", "only 5 bytes", "shorter than the 8-byte length prefix"],
  ["header-too-large", st(hdr(VEC_OK, SCALAR_OK), data, 2n ** 40n), "SAFETENSORS_HEADER_TOO_LARGE", "exceeds the limit", "length prefix 2^40, over the 100 MB cap"],
  ["header-beyond-file", st(hdr(VEC_OK, SCALAR_OK), data, 5000n), "SAFETENSORS_HEADER_OUT_OF_BOUNDS", "runs past the end", "length prefix 5000 in a 300-byte file"],
  ["header-not-utf8", st(Uint8Array.from([...enc(`{"${VEC}`), 0xff, 0xfe, ...enc(`":${VEC_OK}}`)])), "SAFETENSORS_HEADER_NOT_UTF8", "not valid UTF-8", "bytes ff fe in a key"],
  ["header-not-json", st(`{"${VEC}":${VEC_OK},`), "SAFETENSORS_HEADER_NOT_JSON", "not valid JSON", "the header stops after a comma"],
  ["header-array", st(`[${VEC_OK},${SCALAR_OK}]`), "SAFETENSORS_HEADER_NOT_OBJECT", "an array", "the header is a JSON array"],
  ["entry-not-object", st(hdr("[1,2]", SCALAR_OK)), "SAFETENSORS_INVALID_ENTRY", "entry is an array", "a tensor entry that is an array"],
  ["missing-field", st(hdr(`{"dtype":"F32","shape":[8]}`, SCALAR_OK)), "SAFETENSORS_INVALID_ENTRY", "missing field \"data_offsets\"", "no data_offsets"],
  ["unknown-dtype", st(hdr(entry("F8_E4M3", "[8]", 0, 32), SCALAR_OK)), "SAFETENSORS_UNKNOWN_DTYPE", "F8_E4M3", "a dtype this reader does not know"],
  ["shape-float", st(hdr(entry("F32", "[2.5]", 0, 32), SCALAR_OK)), "SAFETENSORS_INVALID_SHAPE", "shape[0] is a number (2.5)", "a fractional dimension"],
  ["shape-negative", st(hdr(entry("F32", "[-8]", 0, 32), SCALAR_OK)), "SAFETENSORS_INVALID_SHAPE", "shape[0] is a number (-8)", "a negative dimension"],
  ["shape-2pow60", st(hdr(entry("F32", "[1152921504606846976]", 0, 32), SCALAR_OK)), "SAFETENSORS_INVALID_SHAPE", "beyond 2^53", "a dimension of 2^60"],
  ["shape-string", st(hdr(entry("F32", "[\"8\"]", 0, 32), SCALAR_OK)), "SAFETENSORS_INVALID_SHAPE", "a string", "a dimension written as a string"],
  ["numel-overflow", st(hdr(entry("F32", "[4294967296,4294967296]", 0, 32), SCALAR_OK)), "SAFETENSORS_INVALID_SHAPE", "too large", "2^32 x 2^32 elements (each dimension is safe, the product is not)"],
  ["offsets-reversed", st(hdr(entry("F32", "[8]", 32, 0), SCALAR_OK)), "SAFETENSORS_INVALID_OFFSETS", "end before they begin", "data_offsets [32, 0]"],
  ["offsets-negative", st(hdr(entry("F32", "[8]", -8, 32), SCALAR_OK)), "SAFETENSORS_INVALID_OFFSETS", "data_offsets[0]", "a negative offset"],
  ["offsets-not-at-zero", st(hdr(entry("F32", "[8]", 8, 40), entry("I64", "[]", 40, 48)), new Uint8Array(48)), "SAFETENSORS_INVALID_OFFSETS", "must begin at offset 0", "the data starts at offset 8"],
  ["offsets-overlap", st(hdr(VEC_OK, entry("I64", "[]", 24, 32)), data.subarray(0, 32)), "SAFETENSORS_INVALID_OFFSETS", "overlaps", "the scalar's bytes lie inside the vector's"],
  ["offsets-gap", st(hdr(VEC_OK, entry("I64", "[]", 36, 44)), new Uint8Array(44)), "SAFETENSORS_INVALID_OFFSETS", "gap of 4 bytes", "4 unused bytes between the tensors"],
  ["size-mismatch", st(hdr(entry("F32", "[7]", 0, 32), SCALAR_OK)), "SAFETENSORS_SIZE_MISMATCH", "needs 28 bytes", "shape [7] of F32 over a 32-byte span"],
  ["trailing-bytes", st(hdr(VEC_OK, SCALAR_OK), new Uint8Array([...data, 1, 2, 3, 4])), "SAFETENSORS_TRAILING_BYTES", "4 unexpected bytes", "4 bytes after the last tensor"],
  ["missing-bytes", st(hdr(VEC_OK, SCALAR_OK), data.subarray(0, 36)), "SAFETENSORS_TRUNCATED", "only 36", "the file ends 4 bytes early"],
  ["duplicate-key", st(`{"${VEC}":${VEC_OK},"${SCALAR}":${SCALAR_OK},"${VEC}":${entry("F32", "[8]", 0, 32)}}`), "SAFETENSORS_DUPLICATE_KEY", VEC, "the same tensor name twice (JSON.parse would keep the last)"],
  ["duplicate-key-escaped", st(`{"${VEC}":${VEC_OK},"${SCALAR}":${SCALAR_OK},"${VEC.replace("p", "\\u0070")}":${VEC_OK}}`), "SAFETENSORS_DUPLICATE_KEY", VEC, "the same name spelled with a \\u escape"],
  ["metadata-not-string", st(hdr(VEC_OK, SCALAR_OK, `"__metadata__":{"format":"pt","epoch":3},`)), "SAFETENSORS_INVALID_METADATA", "\"epoch\"", "a metadata value that is a number"],
  ["metadata-array", st(hdr(VEC_OK, SCALAR_OK, `"__metadata__":["pt"],`)), "SAFETENSORS_INVALID_METADATA", "an array", "metadata that is not an object"],
];
for (const [name, bytes, code, message, why] of sts) {
  put(`safetensors/${name}.safetensors`, bytes, { via: "safetensors", code: code || null, message, why });
}

// ---------------------------------------------------------------------------------------------------------------
// checkpoints: folders of the micro model

const CONFIG = MICRO_CONFIG_JSON;
function half(w: Map<string, SafetensorsTensor>): Uint8Array {
  // F16 keeps each folder at ~5 KB; the reader upcasts exactly.
  const f16 = readSafetensors(microSafetensors("F16"));
  const out = new Map<string, SafetensorsTensor>();
  for (const [k, t] of w) out.set(k, f16.has(k) && f16.info(k).shape.join() === t.shape.join() && t.dtype === "F32" ? { dtype: "F16", shape: t.shape, data: f16.getBytes(k) } : t);
  return writeSafetensors(out, { format: "pt" });
}
const weights = () => microWeights();
const LATENTS = "perceiver.embeddings.latents";
const FINAL_BIAS = "perceiver.decoder.decoder.final_layer.bias";
const ckpt = (name: string, files: Record<string, Uint8Array | string>, code: string | null, message: string, why: string) => {
  for (const [f, b] of Object.entries(files)) put(`checkpoints/${name}/${f}`, b);
  expected[`checkpoints/${name}`] = { via: "fromPretrained", code, message, why };
};

// (28x28 inputs, cropped like the real 224/256, keep the command-line cases fast; the Fourier model takes any size)
ckpt("ok", { "config.json": json(CONFIG), "model.safetensors": half(weights()), "preprocessor_config.json": json({ size: { height: 28, width: 28 }, crop_size: { height: 32, width: 32 } }) }, null, "", "the valid micro model (control)");
{
  const w = weights();
  w.set(LATENTS, { dtype: "F32", shape: [3, 4], data: new Float32Array(12) });
  ckpt("wrong-shape", { "config.json": json(CONFIG), "model.safetensors": half(w) }, "CHECKPOINT_SHAPE_MISMATCH", `${LATENTS}: checkpoint [3,4], model expects [2,4]`, "latents [3, 4] where the config says [2, 4]");
}
{
  const w = weights();
  w.delete(FINAL_BIAS);
  ckpt("missing-key", { "config.json": json(CONFIG), "model.safetensors": half(w) }, "CHECKPOINT_MISSING_KEYS", FINAL_BIAS, "no final_layer.bias");
}
{
  const w = weights();
  w.set("perceiver.encoder.self_attends.1.layernorm.weight", { dtype: "F32", shape: [4], data: new Float32Array(4) });
  ckpt("unexpected-key", { "config.json": json(CONFIG), "model.safetensors": half(w) }, "CHECKPOINT_UNEXPECTED_KEYS", "perceiver.encoder.self_attends.1.layernorm.weight", "a second self-attention layer the config does not have");
}
{
  const w = weights();
  w.set(LATENTS, { dtype: "I32", shape: [2, 4], data: new Int32Array(8) });
  ckpt("integer-weights", { "config.json": json(CONFIG), "model.safetensors": half(w) }, "CHECKPOINT_DTYPE", `${LATENTS}: I32`, "latents stored as int32");
}
ckpt("no-weights", { "config.json": json(CONFIG) }, "CHECKPOINT_NOT_FOUND", "neither model.safetensors nor pytorch_model.bin", "a folder with only config.json");
ckpt("no-config", { "model.safetensors": half(weights()) }, "CHECKPOINT_NOT_FOUND", "no config.json next to", "weights without their config");
{
  const full = half(weights());
  ckpt("truncated-weights", { "config.json": json(CONFIG), "model.safetensors": full.slice(0, full.length - 100) }, "SAFETENSORS_TRUNCATED", "file truncated?", "model.safetensors missing its last 100 bytes");
}
ckpt("config-mismatch", { "config.json": json({ ...CONFIG, d_latents: 8, qk_channels: 8 }), "model.safetensors": half(weights()) }, "CHECKPOINT_SHAPE_MISMATCH", "model expects [2,8]", "weights of d_latents 4, config of d_latents 8");
ckpt("escape-labels", { "config.json": json({ ...CONFIG, id2label: { "0": "\u001b]0;pwned\u0007\u001b[2Jcat", "1": "dog" } }), "model.safetensors": half(weights()), "preprocessor_config.json": json({ size: { height: 28, width: 28 }, crop_size: { height: 32, width: 32 } }) }, null, "", "loads; labels with terminal escape sequences are printed escaped");
ckpt("cross-heads-not-dividing", { "config.json": json({ ...CONFIG, qk_channels: null, num_cross_attention_heads: 2 }), "model.safetensors": half(weights()) }, "CONFIG_INVALID", "qk_channels (261) must be divisible by num_heads (2, config field \"num_cross_attention_heads\")", "2 cross-attention heads over the 261 Fourier channels (parses like transformers' defaults do; refused when the weights are laid out)");
ckpt("bad-config", { "config.json": json({ ...CONFIG, num_latents: "two" }), "model.safetensors": half(weights()) }, "CONFIG_INVALID", "\"num_latents\" must be an integer", "num_latents is a string");
ckpt("pickle-forbidden", { "config.json": json(CONFIG), "pytorch_model.bin": readFileSync(join(FIXTURES, "pickle", "os-system-global.bin")) }, "PICKLE_FORBIDDEN_GLOBAL", "forbidden global os.system", "pytorch_model.bin whose pickle calls os.system");
// These load; only classify reads preprocessor_config.json (see the "cli" cases).
ckpt("bad-preprocessor", { "config.json": json(CONFIG), "model.safetensors": half(weights()), "preprocessor_config.json": json({ size: { height: -224, width: 224 } }) }, "CONFIG_INVALID", "preprocessor_config.json: field \"size\"", "fromPretrained and classify refuse its preprocessor_config.json");
ckpt("huge-resize", { "config.json": json(CONFIG), "model.safetensors": half(weights()), "preprocessor_config.json": json({ size: { height: 30000, width: 30000 }, crop_size: { height: 30000, width: 30000 } }) }, null, "", "loads; classify refuses the 30000x30000 input before allocating it");

// ---------------------------------------------------------------------------------------------------------------
// images

const smallPng = new Uint8Array(readFileSync(join(FIXTURES, "images", "small.png"))); // 50x40 RGB
const tinyJpg = new Uint8Array(readFileSync(join(FIXTURES, "images-extra", "tiny420.jpg"))); // 3x5
function withIhdr(png: Uint8Array, edit: (dv: DataView, d: Uint8Array) => void, fixCrc = true): Uint8Array {
  const chunks = pngChunks(png)!;
  const ihdr = chunks[0];
  edit(new DataView(ihdr.data.buffer, ihdr.data.byteOffset, 13), ihdr.data);
  for (const c of chunks) c.rawCrc = c === ihdr && !fixCrc ? 0xdeadbeef : undefined;
  return pngBytes(chunks);
}
/** A PNG from raw filtered scanlines. */
function rawPng(w: number, h: number, colorType: number, scanlines: Uint8Array, interlace = 0): Uint8Array {
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, w);
  dv.setUint32(4, h);
  ihdr.set([8, colorType, 0, 0, interlace], 8);
  return pngBytes([{ type: "IHDR", data: ihdr }, { type: "IDAT", data: zlibSync(scanlines) }, { type: "IEND", data: new Uint8Array(0) }]);
}
/** The JPEG with its first frame header's fields edited. */
function withSof(jpg: Uint8Array, edit: (p: Uint8Array, at: number) => void): Uint8Array {
  const out = jpg.slice();
  for (let i = 2; i + 3 < out.length; ) {
    const m = out[i + 1];
    const len = (out[i + 2] << 8) | out[i + 3];
    if (m === 0xc0 || m === 0xc2) {
      edit(out, i + 4);
      return out;
    }
    i += 2 + len;
  }
  throw new Error("no SOF");
}

/** A file of test/fixtures/formats (scripts/make_format_goldens.py). */
const formatFile = (name: string) => new Uint8Array(readFileSync(join(FIXTURES, "formats", name)));
/** 1x1 GIF: 2-color global table, a graphic control extension, one LZW-coded pixel. */
const gif1x1 = Uint8Array.from([
  ...enc("GIF89a"), 1, 0, 1, 0, 0x80, 0, 0, 255, 255, 255, 0, 0, 0, 0x21, 0xf9, 4, 1, 0, 0, 0, 0,
  0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0, 0x3b,
]);
const gifWith = (edit: (b: Uint8Array) => void) => { const b = gif1x1.slice(); edit(b); return b; };
/** tiny420.jpg with its (first) scan repeated n times before EOI. */
function manyScans(n: number): Uint8Array {
  const sos = (() => { for (let i = 2; ; ) { if (tinyJpg[i + 1] === 0xda) return i; i += 2 + ((tinyJpg[i + 2] << 8) | tinyJpg[i + 3]); } })();
  const scan = tinyJpg.subarray(sos, tinyJpg.length - 2);
  const out = new Uint8Array(sos + n * scan.length + 2);
  out.set(tinyJpg.subarray(0, sos));
  for (let k = 0; k < n; k++) out.set(scan, sos + k * scan.length);
  out.set([0xff, 0xd9], out.length - 2);
  return out;
}

const imgs: [string, Uint8Array, Via, string | null, string, string][] = [
  ["truncated.png", smallPng.slice(0, smallPng.length >> 1), "image", "IMAGE_DECODE", "truncated", "small.png cut in half"],
  ["ihdr-crc.png", withIhdr(smallPng, (_dv, d) => (d[0] ^= 1), false), "image", "IMAGE_DECODE", "IHDR CRC mismatch", "IHDR edited without fixing its CRC"],
  ["huge-claim.png", withIhdr(smallPng, (dv) => { dv.setUint32(0, 100_000); dv.setUint32(4, 100_000); }), "image", "IMAGE_TOO_LARGE", "100000x100000", "a valid IHDR claiming 100000x100000 over a 50x40 image"],
  ["zero-width.png", withIhdr(smallPng, (dv) => dv.setUint32(0, 0)), "image", "IMAGE_EMPTY", "0x40", "IHDR width 0"],
  ["bad-color-type.png", withIhdr(smallPng, (_dv, d) => (d[9] = 5)), "image", "IMAGE_DECODE", "invalid color type 5", "color type 5 does not exist"],
  ["no-idat.png", pngBytes(pngChunks(smallPng)!.filter((c) => c.type !== "IDAT").map((c) => ({ ...c, rawCrc: undefined }))), "image", "IMAGE_DECODE", "no IDAT", "the image data chunks removed"],
  ["idat-garbage.png", pngBytes(pngChunks(smallPng)!.map((c) => ({ type: c.type, data: c.type === "IDAT" ? c.data.map((x, i) => (i < 2 ? x : x ^ 0x5a)) : c.data }))), "image", "IMAGE_DECODE", "corrupt PNG", "IDAT bytes scrambled, CRCs valid"],
  ["short-idat.png", rawPng(8, 8, 2, new Uint8Array(5 * 25)), "image", "IMAGE_DECODE", "inflates to 125 bytes, its IHDR (8x8) needs 200", "8x8 RGB with 5 of its 8 rows of data (pngjs returned uninitialized memory for the rest)"],
  ["interlace-bomb.png", rawPng(1, 1, 2, new Uint8Array(1 << 20), 1), "image", null, "", "a 1x1 interlaced PNG whose data inflates to 1 MiB: decoded from its first bytes, the rest never inflated (Pillow ignores it too)"],
  ["empty.png", new Uint8Array(0), "image", "IMAGE_EMPTY", "0 bytes", "an empty file"],
  ["one-by-one.png", rawPng(1, 1, 2, Uint8Array.from([0, 200, 100, 50])), "preprocess", "IMAGE_EMPTY", "too small", "decodes; the 87.5% center crop of 1 pixel is empty"],
  ["truncated.jpg", tinyJpg.slice(0, tinyJpg.length - 40), "image", "IMAGE_DECODE", "truncated", "tiny420.jpg missing its last 40 bytes"],
  ["no-marker.jpg", (() => { const b = tinyJpg.slice(); b[2 + 2 + ((b[4] << 8) | b[5])] = 0x00; return b; })(), "image", "IMAGE_DECODE", "expected a marker", "the byte after the first segment is not 0xff"],
  ["zero-height.jpg", withSof(tinyJpg, (b, p) => { b[p + 1] = 0; b[p + 2] = 0; }), "image", "IMAGE_EMPTY", "height 0", "frame header height 0"],
  ["huge-claim.jpg", withSof(tinyJpg, (b, p) => b.fill(0xff, p + 1, p + 5)), "image", "IMAGE_TOO_LARGE", "65535x65535", "frame header claiming 65535x65535"],
  ["twelve-bit.jpg", withSof(tinyJpg, (b, p) => (b[p] = 12)), "image", "IMAGE_UNSUPPORTED", "12-bit", "precision 12"],
  ["lossless.jpg", withSof(tinyJpg, (b, p) => (b[p - 3] = 0xc3)), "image", "IMAGE_UNSUPPORTED", "lossless", "SOF3 (lossless)"],
  ["gif-named.png", gif1x1, "image", null, "", "a GIF with a .png name: formats are detected by content"],
  ["huge-claim.gif", gifWith((b) => b.set([0xff, 0xff, 0xff, 0xff], 6)), "image", "IMAGE_TOO_LARGE", "65535x65535", "a GIF screen of 65535x65535"],
  ["truncated.gif", formatFile("palette.gif").slice(0, 400), "image", "IMAGE_DECODE", "GIF is truncated", "palette.gif cut after 400 bytes"],
  ["huge-claim.bmp", (() => { const b = formatFile("rgb24.bmp").slice(); new DataView(b.buffer).setInt32(18, 60000, true); new DataView(b.buffer).setInt32(22, 60000, true); return b; })(), "image", "IMAGE_TOO_LARGE", "60000x60000", "a BMP header claiming 60000x60000"],
  ["truncated.bmp", formatFile("rgb24.bmp").slice(0, 5000), "image", "IMAGE_DECODE", "BMP is truncated", "rgb24.bmp cut after 5000 bytes"],
  ["rle24.bmp", (() => { const b = formatFile("rgb24.bmp").slice(); b[30] = 1; return b; })(), "image", "IMAGE_UNSUPPORTED", "24-bit RLE", "RLE compression on a 24-bit BMP (Pillow refuses it too)"],
  ["rle8-short.bmp", formatFile("rle8.bmp").slice(0, 900), "image", "IMAGE_DECODE", "RLE data ends", "rle8.bmp cut after 900 bytes"],
  ["huge-claim.webp", (() => { const b = formatFile("lossless.webp").slice(); const at = b.indexOf(0x2f, 20); b[at + 1] = 0xff; b[at + 2] = 0xff; b[at + 3] = 0xff; b[at + 4] = (b[at + 4] & 0xf0) | 0x0f; return b; })(), "image", "IMAGE_TOO_LARGE", "16384x16384", "a VP8L header claiming 16384x16384"],
  ["truncated.webp", formatFile("lossy.webp").slice(0, 300), "image", "IMAGE_DECODE", "WebP is truncated", "lossy.webp cut after 300 bytes"],
  ["hollow.jpg", withSof(tinyJpg, (b, p) => { b[p + 1] = 9000 >> 8; b[p + 2] = 9000 & 255; b[p + 3] = 9000 >> 8; b[p + 4] = 9000 & 255; }), "image", "IMAGE_DECODE", "cannot code the", "a small JPEG declaring 9000x9000 (inside the pixel cap): refused before the decoder reserves memory"],
  ["many-scans.jpg", manyScans(300), "image", "IMAGE_UNSUPPORTED", "more than 256 scans", "300 scans: a progressive decoder walks every block once per scan"],
  ["html-page.jpg", enc("<!doctype html><html><body><h1>403 Forbidden</h1></body></html>\n"), "image", "IMAGE_UNSUPPORTED", "text/HTML", "an error page saved as an image"],
];
for (const [name, bytes, via, code, message, why] of imgs) put(`images/${name}`, bytes, { via, code, message, why });

// ---------------------------------------------------------------------------------------------------------------
// configs

const cfgs: [string, string, Via, string, string, string][] = [
  ["not-json.json", `{"d_latents": 4,`, "config", "CONFIG_INVALID", "is not valid JSON", "cut after a comma"],
  ["empty.json", "", "config", "CONFIG_INVALID", "is not valid JSON", "an empty file"],
  ["array.json", "[]\n", "config", "CONFIG_INVALID", "expected a JSON object", "a JSON array"],
  ["d-latents-string.json", json({ ...CONFIG, d_latents: "4" }), "config", "CONFIG_INVALID", "\"d_latents\" must be an integer", "d_latents written as a string"],
  ["num-latents-negative.json", json({ ...CONFIG, num_latents: -2 }), "config", "CONFIG_INVALID", "\"num_latents\" must be at least 1", "a negative size"],
  ["num-latents-float.json", json({ ...CONFIG, num_latents: 2.5 }), "config", "CONFIG_INVALID", "\"num_latents\" must be an integer", "a fractional size"],
  ["num-latents-object.json", json({ ...CONFIG, num_latents: { value: 2 } }), "config", "CONFIG_INVALID", "\"num_latents\" must be an integer", "an object where a size belongs"],
  ["num-blocks-zero.json", json({ ...CONFIG, num_blocks: 0 }), "config", "CONFIG_INVALID", "\"num_blocks\" must be at least 1", "zero blocks"],
  ["num-latents-huge.json", json({ ...CONFIG, num_latents: 1e9 }), "config", "CONFIG_INVALID", "\"num_latents\" is 1000000000, over the limit", "10^9 latents"],
  ["self-heads-not-dividing.json", json({ ...CONFIG, num_self_attention_heads: 3 }), "config", "CONFIG_INVALID", "\"num_self_attention_heads\" (3) must divide d_latents (4)", "3 heads over 4 channels"],
  ["qk-channels-zero.json", json({ ...CONFIG, qk_channels: 0 }), "config", "CONFIG_INVALID", "\"qk_channels\"", "qk_channels 0"],
  ["v-channels-mismatch.json", json({ ...CONFIG, v_channels: 8 }), "config", "CONFIG_INVALID", "\"v_channels\" (8) must equal d_latents (4)", "v_channels 8 with d_latents 4"],
  ["unknown-architecture.json", json({ ...CONFIG, architectures: ["PerceiverForMaskedLM"] }), "config", "CONFIG_UNSUPPORTED", "PerceiverForMaskedLM is not supported", "a Perceiver that is not an image classifier"],
  ["architectures-string.json", json({ ...CONFIG, architectures: "PerceiverForImageClassificationFourier" }), "config", "CONFIG_INVALID", "\"architectures\" must be a list", "a string instead of a list"],
  ["model-type-bert.json", json({ ...CONFIG, model_type: "bert" }), "config", "CONFIG_UNSUPPORTED", "model_type is \"bert\"", "another model family"],
  ["hidden-act-relu.json", json({ ...CONFIG, hidden_act: "relu" }), "config", "CONFIG_UNSUPPORTED", "hidden_act \"relu\"", "an activation that is not implemented"],
  ["use-query-residual-string.json", json({ ...CONFIG, use_query_residual: "yes" }), "config", "CONFIG_INVALID", "\"use_query_residual\" must be a boolean", "\"yes\" for a boolean"],
  ["id2label-vs-num-labels.json", json({ ...CONFIG, num_labels: 5 }), "config", "CONFIG_INVALID", "\"num_labels\" is 5 but id2label has 2 entries", "num_labels disagrees with id2label"],
  ["id2label-gap.json", json({ ...CONFIG, id2label: { "0": "cat", "2": "dog" } }), "config", "CONFIG_INVALID", "\"id2label\" has index 2", "labels 0 and 2, no 1"],
  ["id2label-not-string.json", json({ ...CONFIG, id2label: { "0": "cat", "1": 7 } }), "config", "CONFIG_INVALID", "\"id2label\" entry 1 must be a string", "a label that is a number"],
  ["id2label-bad-key.json", json({ ...CONFIG, id2label: { "0": "cat", "01": "dog" } }), "config", "CONFIG_INVALID", "\"id2label\" has a key \"01\"", "an index written as \"01\""],
  ["weights-too-large.json", json({ ...CONFIG, d_latents: 65536, qk_channels: null, num_self_attends_per_block: 1024 }), "config", "CONFIG_INVALID", "\"num_self_attends_per_block\" makes the model too large", "1024 layers of 65536 channels: 70 TB of weights"],
  ["image-size-too-large.json", json({ ...CONFIG, architectures: ["PerceiverForImageClassificationLearned"], image_size: 65536 }), "config", "CONFIG_INVALID", "\"image_size\" makes the model too large", "learned positions for 65536x65536 pixels"],
  ["preprocessor-not-json.json", "{size: 224}\n", "preprocessorConfig", "CONFIG_INVALID", "is not valid JSON", "unquoted key"],
  ["preprocessor-size-negative.json", json({ size: { height: -224, width: 224 } }), "preprocessorConfig", "CONFIG_INVALID", "field \"size\"", "a negative height"],
  ["preprocessor-std-zero.json", json({ image_std: [0, 0.224, 0.225] }), "preprocessorConfig", "CONFIG_INVALID", "non-zero values", "a zero standard deviation (division by zero)"],
  ["preprocessor-mean-short.json", json({ image_mean: [0.5, 0.5] }), "preprocessorConfig", "CONFIG_INVALID", "field \"image_mean\"", "two channel means for three channels"],
  ["preprocessor-resample-lanczos.json", json({ resample: 1 }), "preprocessorConfig", "CONFIG_UNSUPPORTED", "resample=1 (LANCZOS)", "a resampling filter that is not implemented"],
  ["preprocessor-do-resize-string.json", json({ do_resize: "yes" }), "preprocessorConfig", "CONFIG_INVALID", "field \"do_resize\" must be a boolean", "\"yes\" for a boolean"],
];
for (const [name, text, via, code, message, why] of cfgs) put(`configs/${name}`, text, { via, code, message, why });

// ---------------------------------------------------------------------------------------------------------------
// pytorch_model.bin: 1000 tensors that are 64 MiB stride-0 views of one 4-byte storage (each allowed alone)

function manyViewsPickle(count: number): Uint8Array {
  const b: number[] = [0x80, 2];
  const str = (s: string) => { const e = enc(s); b.push(0x8c, e.length, ...e); };
  const global = (m: string, n: string) => b.push(0x63, ...enc(`${m}\n${n}\n`));
  global("torch._utils", "_rebuild_tensor_v2"); b.push(0x71, 0); // BINPUT 0
  global("collections", "OrderedDict"); b.push(0x71, 1);
  b.push(0x28); str("storage"); global("torch", "FloatStorage"); str("0"); str("cpu"); b.push(0x4b, 1, 0x74, 0x51, 0x71, 2); // pid -> memo 2
  b.push(0x4d, 0x00, 0x10, 0x4d, 0x00, 0x10, 0x86, 0x71, 3); // size (4096, 4096) -> memo 3
  b.push(0x4b, 0, 0x4b, 0, 0x86, 0x71, 4); // stride (0, 0) -> memo 4
  b.push(0x7d, 0x28); // EMPTY_DICT, MARK
  for (let i = 0; i < count; i++) {
    str(`t${i}`);
    b.push(0x68, 0, 0x28, 0x68, 2, 0x4b, 0, 0x68, 3, 0x68, 4, 0x89, 0x68, 1, 0x29, 0x52, 0x74, 0x52); // _rebuild_tensor_v2(*args)
  }
  b.push(0x75, 0x2e); // SETITEMS, STOP
  const opts = { level: 0, mtime: new Date(2000, 0, 1) } as const; // fixed timestamp: deterministic bytes
  return zipSync({ "archive/data.pkl": [Uint8Array.from(b), opts], "archive/data/0": [new Uint8Array(4), opts] });
}
put("pickle/many-views.bin", manyViewsPickle(1000), { via: "torchBin", code: "MEMORY_LIMIT", message: "1000 tensors hold 67108864000 bytes but their storages only 4", why: "1000 broadcast views: 64 GB of tensors over 4 bytes of storage, refused before any is materialized" });

// ---------------------------------------------------------------------------------------------------------------
// the command line

const small = "{fixtures}/images/small.png";
const ok = "{bad}/checkpoints/ok";
cli.push(
  { args: ["classify", small, "--model", ok, "--quiet"], exit: 0, message: "cat", why: "control: the micro model classifies" },
  { args: ["classify", small, "--model", "{bad}/checkpoints/escape-labels", "--quiet", "--top-k", "2"], exit: 0, message: "\\u001b]0;pwned\\u0007", absent: "\u001b", why: "labels from config.json cannot send terminal escapes" },
  { args: ["classify", "{bad}/images/truncated.png", "--model", ok, "--quiet"], exit: 1, message: "truncated.png: PNG is truncated", why: "a truncated image" },
  { args: ["classify", "{bad}/checkpoints/ok", "--model", ok, "--quiet"], exit: 1, message: "holds no image", why: "a directory with no image in it" },
  { args: ["classify", "{bad}/images/no-such.png", "--model", ok, "--quiet"], exit: 1, message: "no such file", why: "a missing image" },
  { args: ["classify", "{bad}/images/one-by-one.png", "--model", ok, "--quiet"], exit: 1, message: "too small", why: "a 1x1 image" },
  { args: ["classify", "{bad}/images/html-page.jpg", "--model", ok, "--quiet"], exit: 1, message: "html-page.jpg: not a PNG, JPEG, WebP, GIF or BMP", why: "an HTML page" },
  { args: ["classify", small, "--model", "{bad}/checkpoints/bad-preprocessor", "--quiet"], exit: 1, message: "preprocessor_config.json: field \"size\"", why: "a nonsense preprocessor_config.json" },
  { args: ["classify", small, "--model", "{bad}/checkpoints/bad-config", "--quiet"], exit: 1, message: "\"num_latents\" must be an integer", why: "a config.json that is valid JSON but nonsense" },
  { args: ["classify", small, "--model", "{bad}/checkpoints/wrong-shape", "--quiet"], exit: 1, message: LATENTS, why: "a checkpoint of the wrong shape" },
  { args: ["classify", small, "--model", "{bad}/checkpoints/pickle-forbidden", "--quiet"], exit: 1, message: "forbidden global os.system", why: "a malicious pytorch_model.bin" },
  { args: ["classify", small, "--model", "{bad}/checkpoints/huge-resize", "--quiet"], exit: 1, message: "--batch-size", why: "an input size whose activations cannot exist" },
  { args: ["classify", small, "--model", "{bad}/safetensors/header-beyond-file.safetensors", "--quiet"], exit: 1, message: "no config.json next to", why: "a lone checkpoint file" },
  { args: ["convert", "{bad}/checkpoints/pickle-forbidden/pytorch_model.bin", "{out}/x.safetensors"], exit: 1, message: "forbidden global os.system", why: "convert refuses a malicious pickle" },
  { args: ["convert", "{bad}/checkpoints/ok/model.safetensors", "{out}/x.safetensors"], exit: 1, message: "not a PyTorch checkpoint", why: "convert given a safetensors file" },
  { args: ["convert", "{bad}/pickle/many-views.bin", "{out}/x.safetensors"], exit: 1, message: "1000 tensors hold 67108864000 bytes", why: "convert of 1000 broadcast views (64 GB from 25 KB)" },
);

const sorted = Object.fromEntries(Object.entries(expected).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
writeFileSync(join(OUT, "expected.json"), JSON.stringify({ files: sorted, cli }, null, 2) + "\n");
console.log(`wrote ${Object.keys(sorted).length} cases and ${cli.length} command lines to ${OUT}`);
