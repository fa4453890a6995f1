/**
 * Attention maps: the math against a direct recomputation and against PyTorch's attention probabilities (golden),
 * the resize / overlay / grid helpers, the PNG encoder, and the `perceiver attention-map` command on the tiny model.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PerceiverForImageClassification, Tensor } from "../src/index.js";
import { getColormap } from "../src/io/image/colormap.js";
import { decodeImage, type RgbImage } from "../src/io/image/decode.js";
import { loadImageFile } from "../src/io/image/decode-node.js";
import { encodePng, encodeRgbPng } from "../src/io/image/png-encode.js";
import {
  classWeightedMap, decoderWeights, latentMap, normalizeMax, overlay, tileGrid, topLatents, upsampleBilinear,
} from "../src/perceiver/attention-map.js";
import { cropAndResize, preprocessBatch } from "../src/io/image/image-processor.js";
import { defaultOutPath, latentsOutPath } from "../src/cli/attention-map.js";
import { formatRelative } from "../src/perceiver/attention-figure.js";
import { pngText } from "./helpers/png-text.js";
import { runCli } from "./helpers/cli.js";
import { expectClose, fixture, readGolden } from "./helpers/golden.js";

const TINY = fixture("tiny-conv");
const CAT = fixture("..", "..", "samples", "cat.png");
// the golden-test tolerance for attention probabilities, |a-b| <= ATOL + RTOL·|b|
const ATOL = 1e-5;
const RTOL = 1e-4;

/** map[t] = sum_n mean_hd dec[item,hd,0,n] · mean_h enc[item,h,n,t], written out the plain way (float64). */
function referenceClassMap(enc: Tensor, dec: Tensor, item: number): Float64Array {
  const [, H, N, T] = enc.shape;
  const Hd = dec.shape[1];
  const out = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    let s = 0;
    for (let n = 0; n < N; n++) {
      let d = 0;
      for (let h = 0; h < Hd; h++) d += dec.data[((item * Hd + h) * 1 + 0) * N + n];
      let e = 0;
      for (let h = 0; h < H; h++) e += enc.data[((item * H + h) * N + n) * T + t];
      s += (d / Hd) * (e / H);
    }
    out[t] = s;
  }
  return out;
}

function goldenTensor(g: Awaited<ReturnType<typeof readGolden>>, name: string): Tensor {
  return new Tensor(g.getFloat32(name), g.info(name).shape);
}

function luminance(r: number, g: number, b: number): number {
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

for (const name of ["tiny-conv", "tiny-conv-heads"]) {
  describe(`attention maps of ${name}`, async () => {
    const model = await PerceiverForImageClassification.fromPretrained(fixture(name));
    const golden = await readGolden(name, "golden.safetensors");
    const pixels = goldenTensor(golden, "pixel_values"); // [2, 3, 224, 224]
    const out = await model.forward(pixels, { outputAttentions: true });
    const [enc, dec] = out.crossAttentions!;
    const gEnc = goldenTensor(golden, "cross_attentions.0"); // item 0 only: [1, heads, latents, 3025]
    const gDec = goldenTensor(golden, "cross_attentions.1"); // [1, 1, 1, latents]
    const [gh, gw] = model.preprocessor.gridSize(224, 224);

    it("the golden file holds every input token, and the grid is 55x55", () => {
      expect(gEnc.shape[3]).toBe(enc.shape[3]);
      expect([gh, gw]).toEqual([55, 55]);
      expect(gh * gw).toBe(enc.shape[3]);
    });

    it("classWeightedMap equals a direct recomputation, for both batch items", () => {
      for (const item of [0, 1]) {
        const map = classWeightedMap(enc, dec, item);
        expect(map.length).toBe(gh * gw);
        expectClose(`class map item ${item}`, map, referenceClassMap(enc, dec, item), 1e-12, 1e-6);
        // a mixture of probability distributions is one
        expect(Math.abs(map.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-5);
      }
      // the two items really are different images
      const a = classWeightedMap(enc, dec, 0), b = classWeightedMap(enc, dec, 1);
      expect(a.some((v, i) => Math.abs(v - b[i]) > 1e-9)).toBe(true);
    });

    it("classWeightedMap from our attentions matches the one from PyTorch's", () => {
      const ours = classWeightedMap(enc, dec, 0);
      const theirs = classWeightedMap(gEnc, gDec, 0);
      const s = expectClose("class map vs golden", ours, theirs, ATOL, RTOL);
      // the values are ~1/3025, so also hold them to the relative part alone (atol scaled by the token count)
      expectClose("class map vs golden (scaled floor)", ours, theirs, ATOL / gEnc.shape[3], RTOL);
      console.log(`${name}: class-weighted map max |ours - golden| = ${s.maxAbs.toExponential(2)}, max rel ${s.maxRel.toExponential(2)}`);
    });

    it("latentMap is the head average of one latent's row, and matches PyTorch's", () => {
      const [, H, N, T] = enc.shape;
      for (const latent of [0, N - 1]) {
        const m = latentMap(enc, 0, latent);
        const ref = new Float64Array(T);
        for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) ref[t] += enc.data[(h * N + latent) * T + t] / H;
        expectClose(`latent ${latent}`, m, ref, 1e-12, 1e-6);
        expectClose(`latent ${latent} vs golden`, m, latentMap(gEnc, 0, latent), ATOL / T, RTOL);
      }
      expect(() => latentMap(enc, 0, N)).toThrow(/latent .* out of range/);
      expect(() => latentMap(enc, 2, 0)).toThrow(/item 2 is out of range/);
    });

    it("topLatents ranks the decoder weights", () => {
      const w = decoderWeights(dec, 0);
      expectClose("decoder weights vs golden", w, decoderWeights(gDec, 0), ATOL, RTOL);
      const top = topLatents(dec, 0, 5);
      expect(top).toHaveLength(5);
      for (const { latent, weight } of top) expect(weight).toBe(w[latent]);
      for (let i = 1; i < top.length; i++) expect(top[i - 1].weight).toBeGreaterThanOrEqual(top[i].weight);
      const chosen = new Set(top.map((t) => t.latent));
      const cutoff = top[top.length - 1].weight;
      w.forEach((v, i) => { if (!chosen.has(i)) expect(v).toBeLessThanOrEqual(cutoff); });
      expect(topLatents(dec, 0, 10_000)).toHaveLength(w.length);
    });
  });
}

describe("attention-map shape checks", () => {
  const enc = new Tensor(new Float32Array(2 * 3 * 4 * 6).fill(1 / 6), [2, 3, 4, 6]);
  const dec = new Tensor(new Float32Array(2 * 4).fill(0.25), [2, 1, 1, 4]);
  it("rejects mismatched or malformed tensors with a PerceiverError", () => {
    expect(classWeightedMap(enc, dec, 1).every((v) => Math.abs(v - 1 / 6) < 1e-7)).toBe(true);
    expect(() => classWeightedMap(enc, new Tensor(new Float32Array(10), [2, 1, 1, 5]), 0)).toThrow(/does not match/);
    expect(() => classWeightedMap(new Tensor(new Float32Array(6), [1, 6]), dec, 0)).toThrow(/\[B, heads, latents, inputs\]/);
    expect(() => decoderWeights(new Tensor(new Float32Array(8), [2, 1, 2, 2]), 0)).toThrow(/\[B, heads, 1, latents\]/);
    expect(() => topLatents(dec, 0, 0)).toThrow(/positive integer/);
  });
});

describe("upsampleBilinear", () => {
  /** Per output pixel, the half-pixel-center formula written out directly. */
  function reference(map: Float32Array, h: number, w: number, oh: number, ow: number): Float64Array {
    const out = new Float64Array(oh * ow);
    const src = (o: number, n: number, on: number) => Math.min(Math.max(((o + 0.5) * n) / on - 0.5, 0), n - 1);
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        const sy = src(y, h, oh), sx = src(x, w, ow);
        const y0 = Math.floor(sy), x0 = Math.floor(sx);
        const y1 = Math.min(y0 + 1, h - 1), x1 = Math.min(x0 + 1, w - 1);
        const fy = sy - y0, fx = sx - x0;
        const v = (yy: number, xx: number) => map[yy * w + xx];
        out[y * ow + x] = (1 - fy) * ((1 - fx) * v(y0, x0) + fx * v(y0, x1)) + fy * ((1 - fx) * v(y1, x0) + fx * v(y1, x1));
      }
    }
    return out;
  }

  it("follows PyTorch's align_corners=False convention", () => {
    // torch.nn.functional.interpolate(tensor([[0,1],[2,3]]), size=4, mode="bilinear", align_corners=False)
    const up = upsampleBilinear(new Float32Array([0, 1, 2, 3]), 2, 2, 4, 4);
    expect(Array.from(up)).toEqual([0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]);
  });

  it("matches the direct formula, keeps constants and is the identity at the same size", () => {
    let seed = 7;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (const [h, w, oh, ow] of [[7, 5, 23, 31], [55, 55, 224, 224], [9, 9, 4, 4], [1, 3, 2, 7]]) {
      const m = Float32Array.from({ length: h * w }, rand);
      expectClose(`${h}x${w}->${oh}x${ow}`, upsampleBilinear(m, h, w, oh, ow), reference(m, h, w, oh, ow), 1e-6, 1e-6);
      expect(Array.from(upsampleBilinear(m, h, w, h, w))).toEqual(Array.from(m));
    }
    expect(upsampleBilinear(new Float32Array(12).fill(0.3), 3, 4, 10, 9).every((v) => Math.abs(v - 0.3) < 1e-7)).toBe(true);
    expect(() => upsampleBilinear(new Float32Array(5), 2, 3, 4, 4)).toThrow(/2x3 map has 6 values/);
    expect(() => upsampleBilinear(new Float32Array(6), 2, 3, 0, 4)).toThrow(/outH must be a positive integer/);
  });

  it("normalizeMax divides by the maximum", () => {
    expect(Array.from(normalizeMax(new Float32Array([1, 2, 4])))).toEqual([0.25, 0.5, 1]);
    expect(Array.from(normalizeMax(new Float32Array(3)))).toEqual([0, 0, 0]);
    expect(() => normalizeMax(new Float32Array([1, NaN]))).toThrow(/non-finite/);
  });
});

describe("overlay and colormaps", () => {
  const W = 16, H = 4;
  const gray: RgbImage = { width: W, height: H, data: new Uint8Array(W * H * 3).fill(128) };
  // ramp from 0 (left) to 1 (right)
  const ramp = Float32Array.from({ length: W * H }, (_, p) => (p % W) / (W - 1));
  const px = (img: RgbImage, x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

  it("alpha 0 is the image, alpha 1 is the colormap", () => {
    const cm = getColormap("inferno");
    expect(Array.from(overlay(gray, ramp, cm, 0).data)).toEqual(Array.from(gray.data));
    const full = overlay(gray, ramp, cm, 1);
    expect(px(full, 0, 0)).toEqual(Array.from(cm.lut.subarray(0, 3)));
    expect(px(full, W - 1, 2)).toEqual(Array.from(cm.lut.subarray(765, 768)));
  });

  it("where the map is hottest the overlay is warmer", () => {
    const inf = overlay(gray, ramp, getColormap("inferno"), 0.5);
    const [hot, cold] = [px(inf, W - 1, 1), px(inf, 0, 1)];
    expect(luminance(hot[0], hot[1], hot[2])).toBeGreaterThan(luminance(cold[0], cold[1], cold[2]) + 50);
    expect(hot[0]).toBeGreaterThan(cold[0]);
    // inferno's brightness rises along the whole table (that is what makes "hotter" read as "brighter")
    const lut = getColormap("inferno").lut;
    for (let i = 16; i < 256; i += 16) expect(luminance(lut[3 * i], lut[3 * i + 1], lut[3 * i + 2])).toBeGreaterThan(luminance(lut[3 * i - 48], lut[3 * i - 47], lut[3 * i - 46]));
    const jet = overlay(gray, ramp, getColormap("jet"), 0.5);
    const [jh, jc] = [px(jet, W - 1, 0), px(jet, 0, 0)];
    expect(jh[0]).toBeGreaterThan(jh[2]); // hot end red
    expect(jc[2]).toBeGreaterThan(jc[0]); // cold end blue
  });

  it("rejects bad input", () => {
    const cm = getColormap("gray");
    expect(() => overlay(gray, new Float32Array(3), cm, 0.5)).toThrow(/map has 3 values/);
    expect(() => overlay(gray, ramp, cm, 1.5)).toThrow(/alpha/);
    expect(() => overlay(gray, ramp.map((v, i) => (i === 5 ? NaN : v)), cm, 0.5)).toThrow(/NaN at index 5/);
    expect(() => getColormap("viridis")).toThrow(/unknown colormap "viridis"/);
  });
});

describe("tileGrid", () => {
  const tile = (v: number): RgbImage => ({ width: 3, height: 2, data: new Uint8Array(18).fill(v) });
  it("lays tiles row by row with gaps of the background color", () => {
    const g = tileGrid([tile(10), tile(20), tile(30), tile(40), tile(50)], 3, { gap: 1, background: [255, 0, 0] });
    expect([g.width, g.height]).toEqual([3 * 3 + 2, 2 * 2 + 1]);
    const at = (x: number, y: number) => Array.from(g.data.subarray((y * g.width + x) * 3, (y * g.width + x) * 3 + 3));
    expect(at(0, 0)).toEqual([10, 10, 10]);
    expect(at(4, 1)).toEqual([20, 20, 20]);
    expect(at(3, 0)).toEqual([255, 0, 0]); // vertical gap
    expect(at(0, 2)).toEqual([255, 0, 0]); // horizontal gap
    expect(at(8, 0)).toEqual([30, 30, 30]);
    expect(at(0, 3)).toEqual([40, 40, 40]);
    expect(at(4, 4)).toEqual([50, 50, 50]);
    expect(at(9, 4)).toEqual([255, 0, 0]); // empty cell
    expect([tileGrid([tile(1), tile(2)], 5).width]).toEqual([3 * 2 + 2]); // cols clipped to the tile count
  });
  it("rejects tiles of different sizes", () => {
    expect(() => tileGrid([tile(1), { width: 2, height: 2, data: new Uint8Array(12) }], 2)).toThrow(/image 1 is 2x2, image 0 is 3x2/);
    expect(() => tileGrid([], 2)).toThrow(/non-empty/);
  });
});

describe("encodePng", () => {
  let seed = 1;
  const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) >>> 24);
  /** smooth gradients plus noise, so every PNG filter type gets picked somewhere */
  const pixels = (w: number, h: number, ch: number) =>
    Uint8Array.from({ length: w * h * ch }, (_, i) => {
      const p = Math.floor(i / ch), x = p % w, y = Math.floor(p / w);
      return (i % ch === 0 ? x * 7 + y : i % ch === 1 ? y * 5 : (x * y) % 256) % 256 ^ ((p % 11 === 0 ? rand() : 0) & 0x0f);
    });

  it("round-trips RGB and RGBA through pngjs and decodeImage", () => {
    for (const [w, h] of [[1, 1], [7, 3], [37, 19], [224, 5]]) {
      const rgb = pixels(w, h, 3);
      const png = encodeRgbPng({ width: w, height: h, data: rgb });
      expect(Array.from(png.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      const back = decodeImage(png, { source: `${w}x${h}` });
      expect([back.width, back.height]).toEqual([w, h]);
      expect(Buffer.from(back.data).equals(Buffer.from(rgb))).toBe(true);

      const rgba = pixels(w, h, 4);
      const p = PNG.sync.read(Buffer.from(encodePng(rgba, w, h, 4, { level: 9 })));
      expect([p.width, p.height]).toEqual([w, h]);
      expect(Buffer.from(p.data).equals(Buffer.from(rgba))).toBe(true);
    }
  });

  it("rejects inconsistent input", () => {
    expect(() => encodePng(new Uint8Array(11), 2, 2, 3)).toThrow(/needs 12 bytes, got 11/);
    expect(() => encodePng(new Uint8Array(0), 0, 2, 3)).toThrow(/width and height/);
    expect(() => encodePng(new Uint8Array(8), 2, 2, 2 as 3)).toThrow(/channels must be 3/);
    expect(() => encodePng(new Uint8Array(12), 2, 2, 3, { level: 12 as 9 })).toThrow(/level/);
  });
});

describe("perceiver attention-map", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "perceiver-attn-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("output paths", () => {
    expect(defaultOutPath("samples/cat.png")).toBe("cat.attention.png");
    expect(defaultOutPath("/x/y/photo.v2.JPG")).toBe("photo.v2.attention.png");
    expect(latentsOutPath("out/map.png")).toBe("out/map.latents.png");
  });

  it("writes the class-weighted map and the latents grid, equal to the library's pictures, with colour bars and text", async () => {
    const out = join(dir, "cat-map.png");
    const [run, listed] = await Promise.all([
      runCli(["attention-map", CAT, "--model", TINY, "--out", out, "--quiet"]),
      runCli(["attention-map", CAT, "--model", TINY, "--out", join(dir, "listed.png"), "--latents", "3,0,7", "--colormap", "jet", "--scale", "per-map", "--quiet"]),
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(listed.code, listed.stderr).toBe(0);

    // the same computation through the library, in units of uniform attention (x T = 3025 tokens)
    const model = await PerceiverForImageClassification.fromPretrained(TINY);
    const image = await loadImageFile(CAT);
    const crop = cropAndResize(image);
    const { crossAttentions } = await model.forward(preprocessBatch([image]), { outputAttentions: true });
    const [enc, dec] = crossAttentions!;
    const T = 55 * 55;
    const classMap = classWeightedMap(enc, dec, 0);
    const classMax = Math.max(...classMap) * T;
    // colour ∝ attention: 0 at the bottom of the scale, the token map's maximum at the top (the upsampled map, which
    // interpolates between token centres, may stay a little below it)
    const hotMap = upsampleBilinear(classMap, 55, 55, 224, 224).map((v) => v / (classMax / T));

    const mapBytes = new Uint8Array(await readFile(out));
    const map = decodeImage(mapBytes);
    const BAR = 48; // the colour bar strip under a 224-wide picture: 24 font dots of 2 pixels
    expect([map.width, map.height]).toEqual([224, 224 + BAR]);
    const expected = overlay(crop, hotMap, getColormap("inferno"), 0.5);
    // x T then / (max·T) can round a value to the neighbouring colour-table entry (entries differ by at most 6
    // levels, 3 after the 50% blend): a few pixels may differ by that, no more
    let maxDiff = 0, differ = 0;
    for (let i = 0; i < expected.data.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(map.data[i] - expected.data[i]));
      if (map.data[i] !== expected.data[i]) differ++;
    }
    expect(maxDiff, "levels between the PNG and the library's overlay").toBeLessThanOrEqual(3);
    expect(differ).toBeLessThan(0.01 * expected.data.length);
    // the colour bar: inferno's first colour at its left end, its last at the right end
    const at = (img: RgbImage, x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));
    const lut = getColormap("inferno").lut;
    expect(at(map, 6, 224 + 6)).toEqual(Array.from(lut.subarray(0, 3)));
    expect(at(map, 217, 224 + 6)).toEqual(Array.from(lut.subarray(765, 768)));
    // the range is printed, and stored in the PNG's text
    const text = pngText(mapBytes);
    expect(text["Attention range"]).toMatch(/^0 \d+\.\d+ \(x uniform, uniform = 1\/3025\)$/);
    expect(Math.abs(Number(text["Attention range"].split(" ")[1]) - classMax)).toBeLessThanOrEqual(1e-5 * classMax);
    expect(text.Title).toBe("Class-weighted cross-attention");
    expect(text.Source).toBe("cat.png");
    expect(run.stdout).toContain(`colour 0 to ${formatRelative(Number(text["Attention range"].split(" ")[1]))}x uniform, uniform = 1/3025`);

    // where the map is hottest the picture is warmer: undo the 50% blend and compare the heat colors
    let hot = 0, cold = 0;
    hotMap.forEach((v, i) => { if (v > hotMap[hot]) hot = i; if (v < hotMap[cold]) cold = i; });
    const heat = (p: number) => [0, 1, 2].map((c) => 2 * map.data[3 * p + c] - crop.data[3 * p + c]);
    const [h, c] = [heat(hot), heat(cold)];
    expect(hotMap[hot]).toBeGreaterThan(0.99);
    expect(hotMap[hot]).toBeLessThanOrEqual(1);
    expect(luminance(h[0], h[1], h[2])).toBeGreaterThan(luminance(c[0], c[1], c[2]));

    // top 16 (all 16 latents of the tiny model) in a 4x4 grid of 224x224 tiles with 2-pixel gaps, one shared scale
    const gridBytes = new Uint8Array(await readFile(join(dir, "cat-map.latents.png")));
    const grid = decodeImage(gridBytes);
    expect([grid.width, grid.height]).toEqual([4 * 224 + 3 * 2, 4 * 224 + 3 * 2 + BAR]);
    const w = decoderWeights(dec, 0);
    const rows = run.stdout.trim().split("\n").filter((l) => /^\s+\d+\s+\d+\s+0\.\d{6}\s+\d+\.?\d*$/.test(l));
    expect(rows).toHaveLength(16);
    const order = topLatents(dec, 0, 16);
    const sharedMax = Math.max(...order.map((o) => Math.max(...latentMap(enc, 0, o.latent))));
    rows.forEach((l, i) => {
      const [, latent, weight, max] = l.trim().split(/\s+/);
      expect(Number(latent)).toBe(order[i].latent);
      expect(weight).toBe(w[order[i].latent].toFixed(6));
      expect(max).toBe(formatRelative(Math.fround(Math.max(...latentMap(enc, 0, order[i].latent)) * T)));
    });
    expect(pngText(gridBytes)["Attention scale"]).toBe("shared");
    // tile 2 (row 0, col 1) below its label: latent order[1]'s map on the shared scale 0..max of all 16
    const tile1 = overlay(crop, upsampleBilinear(latentMap(enc, 0, order[1].latent), 55, 55, 224, 224).map((v) => v / sharedMax), getColormap("inferno"), 0.5);
    for (const [x, y] of [[100, 100], [223, 223], [0, 200], [150, 30]]) {
      const d = at(grid, 226 + x, y).map((v, ch) => Math.abs(v - tile1.data[(y * 224 + x) * 3 + ch]));
      expect(Math.max(...d)).toBeLessThanOrEqual(3);
    }
    expect(run.stdout).toContain(`wrote ${out}`);
    expect(run.stdout).toContain(`wrote ${join(dir, "cat-map.latents.png")}`);

    // --latents 3,0,7 --scale per-map: three tiles, 2 columns x 2 rows, in the order given; tile 0 is latent 3, from
    // its own minimum to its own maximum
    const g3Bytes = new Uint8Array(await readFile(join(dir, "listed.latents.png")));
    const g3 = decodeImage(g3Bytes);
    expect([g3.width, g3.height]).toEqual([2 * 224 + 2, 2 * 224 + 2 + BAR]);
    expect(listed.stdout).toMatch(/\n\s+1\s+3\s+0\.\d+\s+[\d.]+\n\s+2\s+0\s+0\.\d+\s+[\d.]+\n\s+3\s+7\s+0\.\d+\s+[\d.]+/);
    const m3 = upsampleBilinear(latentMap(enc, 0, 3), 55, 55, 224, 224);
    const [lo3, hi3] = [Math.min(...latentMap(enc, 0, 3)), Math.max(...latentMap(enc, 0, 3))];
    const tile3 = overlay(crop, m3.map((v) => (v - lo3) / (hi3 - lo3)), getColormap("jet"), 0.5);
    for (const [x, y] of [[100, 100], [223, 223], [0, 200], [150, 30]]) {
      const d = at(g3, x, y).map((v, ch) => Math.abs(v - tile3.data[(y * 224 + x) * 3 + ch]));
      expect(Math.max(...d)).toBeLessThanOrEqual(3);
    }
    expect(pngText(g3Bytes)["Attention scale"]).toBe("per-map");
    expect(pngText(g3Bytes).Latents).toMatch(/^3:0\.\d+:[\d.]+ 0:0\.\d+:[\d.]+ 7:0\.\d+:[\d.]+ \(latent:decoder weight:max x uniform\)$/);
    // the bottom-right cell is empty (white)
    expect(at(g3, 440, 440)).toEqual([255, 255, 255]);
  });

  it("usage errors exit 2 and input errors 1, with one clear line", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["attention-map", CAT, "--model", TINY, "--latents", "0,99", "--out", join(dir, "x.png")], /--latents 99: out of range, the model has 16 latents \(0\.\.15\)/],
      [["attention-map", CAT, "--latents", "1", "--top", "2"], /--latents or --top, not both/],
      [["attention-map", CAT, "--out", "x.jpg"], /--out must name a \.png file/],
      [["attention-map", CAT, "--latents", "a,b"], /comma-separated latent indices/],
      [["attention-map", CAT, CAT], /exactly one image/],
      [["attention-map", CAT, "--scale", "log"], /--scale must be shared or per-map, got "log"/],
    ];
    // input errors exit 1, and are found before the model is loaded (./nowhere would fail otherwise)
    const inputCases: Array<[string[], RegExp]> = [
      [["attention-map", CAT, "--model", "./nowhere", "--out", join(dir, "no-such-folder", "x.png")], /cannot write .*x\.png: no such folder/],
      [["attention-map", "no-such.png", "--model", "./nowhere", "--out", join(dir, "y.png")], /no-such\.png: no such file/],
    ];
    const results = await Promise.all([...cases, ...inputCases].map(([args]) => runCli(args)));
    results.forEach((r, i) => {
      const [args, message] = i < cases.length ? cases[i] : inputCases[i - cases.length];
      expect(r.code, args.join(" ")).toBe(i < cases.length ? 2 : 1);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    });
  });
});
