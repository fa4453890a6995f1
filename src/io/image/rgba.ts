import type { RgbImage } from "./rgb-image.js";

/** RGBA [h, w, 4] -> RGB [h, w, 3], alpha dropped without compositing (Pillow's convert("RGB")). Copies. */
export function rgbaToRgb(rgba: ArrayLike<number>, width: number, height: number): RgbImage {
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let p = 0, q = 0; p < n * 4; p += 4, q += 3) {
    out[q] = rgba[p];
    out[q + 1] = rgba[p + 1];
    out[q + 2] = rgba[p + 2];
  }
  return { width, height, data: out };
}
