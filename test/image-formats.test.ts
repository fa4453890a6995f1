/**
 * Every format decodeImage reads against Pillow 12 (scripts/make_format_goldens.py, test/fixtures/formats/):
 * the decoded RGB (exif_transpose + convert("RGB")), transformers' pixel values computed from it, and the tiny
 * model's logits on them. Formats are detected by content: each file is also decoded under a misleading name.
 */
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { PerceiverForImageClassification } from "../src/index.js";
import { decodeImage, decodeImageAsync, readImageHeader } from "../src/io/image/decode.js";
import { preprocessBatch } from "../src/io/image/image-processor.js";
import { diffStats, fixture, readGolden } from "./helpers/golden.js";

const DIR = fixture("formats");
const FILES = readdirSync(DIR).filter((f) => !f.endsWith(".safetensors")).sort();
/** The tiny model's processor in the goldens: the 224/256 crop fraction at its 56x56 input size. */
const TINY = { size: { height: 56, width: 56 }, cropSize: { height: 64, width: 64 } };
/** Files allowed to differ from Pillow, by how many levels: none. */
const NEAR: Record<string, number> = {};
const FORMAT: Record<string, string> = { jpg: "jpeg", webp: "webp", gif: "gif", bmp: "bmp" };

describe("image formats vs Pillow 12 (decoded RGB, pixel values, tiny-model logits)", async () => {
  const golden = await readGolden("formats", "formats_golden.safetensors");
  const model = await PerceiverForImageClassification.fromPretrained(fixture("tiny-conv"));

  it("covers every JPEG mode, WebP, GIF and BMP kind the issue lists", () => {
    expect(FILES.length).toBeGreaterThanOrEqual(24);
    for (const k of ["baseline_444", "baseline_422", "baseline_420", "baseline_411", "baseline_440", "progressive_440", "progressive_420", "gray", "cmyk_adobe", "cmyk_progressive", "cmyk_restart", "cmyk_sub420", "ycck_adobe", "ycck_420", "ycck_progressive", "restart_420", "orient6"]) {
      expect(FILES).toContain(`${k}.jpg`);
    }
    for (const k of ["lossy.webp", "lossless.webp", "lossy_alpha.webp", "animated_offset.webp", "palette.gif", "transparent.gif", "rgb24.bmp", "rgba32.bmp", "palette8.bmp", "bilevel1.bmp", "topdown24.bmp", "rgb555.bmp", "rgb565.bmp", "rle8.bmp", "rle4.bmp", "gray_ramp8.bmp"]) {
      expect(FILES).toContain(k);
    }
  });

  for (const name of FILES) {
    it(`${name}: ${NEAR[name] ? `within ${NEAR[name]} levels of` : "pixel-identical to"} Pillow; pixel values and logits match`, async () => {
      const bytes = new Uint8Array(readFileSync(`${DIR}/${name}`));
      const e = golden.entry(`${name}.rgb`);
      const [h, w] = e.shape;
      const ref = golden.getBytes(`${name}.rgb`);
      expect(readImageHeader(bytes).format).toBe(FORMAT[name.split(".").pop() as string]);
      const img = await decodeImageAsync(bytes, { source: "misnamed.png" });
      expect([img.width, img.height]).toEqual([w, h]);
      const s = diffStats(img.data, ref);
      expect(s.maxAbs).toBeLessThanOrEqual(NEAR[name] ?? 0);
      const px = preprocessBatch([img], TINY);
      const pv = diffStats(px.data, golden.getFloat32(`${name}.pixel_values`));
      expect(pv.maxAbs).toBeLessThanOrEqual(NEAR[name] ? 0.1 : 1e-6);
      const logits = (await model.forward(px)).logits.data;
      expect(diffStats(logits, golden.getFloat32(`${name}.logits`)).maxAbs).toBeLessThanOrEqual(NEAR[name] ? 1e-2 : 1e-4);
    });
  }

  it("decoding is deterministic: 100 decodes of each file give identical bytes", () => {
    for (const name of FILES) {
      const bytes = new Uint8Array(readFileSync(`${DIR}/${name}`));
      const first = decodeImage(bytes.slice());
      for (let i = 0; i < 99; i++) expect(Buffer.compare(decodeImage(bytes.slice()).data, first.data), name).toBe(0);
    }
  });
});
