/**
 * JPEG -> RGB in TypeScript, step by step as libjpeg-turbo 3 and Pillow do it, for the files the WebAssembly
 * decoder does not give exactly: four components (CMYK, YCCK: that build has no CMYK output) and 4:4:0
 * (vertical-only subsampling: that build's older h1v2 upsampling differs by a level or two).
 *  1. coefficients (jpeg-entropy.ts), dequantized, through libjpeg's accurate integer IDCT (jidctint.c islow);
 *  2. subsampled components upsampled as libjpeg-turbo does by default (jdsample.c, "fancy" triangle filters);
 *  3. three components: YCbCr -> RGB (jdcolor.c, fixed point), unless libjpeg's guess says RGB;
 *     four: YCCK -> CMYK (jdcolor.c ycck_cmyk_convert) when the Adobe transform is not 0, then Pillow reads the
 *     samples as "CMYK;I" (Adobe's inverted polarity) and convert("RGB") applies Convert.c cmyk2rgb:
 *     nk = 255 - k, r = nk - MULDIV255(c, nk), with MULDIV255(a, b) = ((t >> 8) + t) >> 8, t = a * b + 128.
 */
import type { Ctx } from "./common.js";
import { decodeCoefficients, type CoefComponent } from "./jpeg-entropy.js";
import type { JpegInfo } from "./jpeg-scan.js";
import type { RgbImage } from "./rgb-image.js";

/** True when this TypeScript path, not the WebAssembly decoder, must decode the file (see the header). */
export function needsPlanes(info: JpegInfo): boolean {
  if (info.components.length === 4) return true;
  const maxH = Math.max(...info.components.map((c) => c.h)), maxV = Math.max(...info.components.map((c) => c.v));
  return info.components.some((c) => maxH / c.h === 1 && maxV / c.v === 2);
}

/** libjpeg's colorspace guess for 3-component files (jdapimin.c default_decompress_parms). */
function isYcc(info: JpegInfo): boolean {
  if (info.jfif) return true;
  if (info.adobeTransform >= 0) return info.adobeTransform !== 0; // Adobe transform 0 = RGB, else YCbCr
  const [a, b, c] = info.components.map((x) => x.id);
  return !(a === 82 && b === 71 && c === 66); // 'R','G','B' ids mean RGB; anything else is assumed YCbCr
}

export function decodeJpegPlanes(b: Uint8Array, info: JpegInfo, ctx: Ctx): RgbImage {
  const img = decodeCoefficients(b, ctx);
  const W = img.width, H = img.height;
  // 1. each component's samples [bhAlloc * 8, bwAlloc * 8]
  const planes = img.components.map((c) => idctPlane(c, img.qt[c.tq]));
  // 2. to full size
  const full = img.components.map((c, i) => upsample(planes[i], c, img.maxH, img.maxV, W, H));
  const out = new Uint8Array(W * H * 3);
  const t = yccTables();
  if (full.length === 1) {
    for (let i = 0; i < W * H; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = full[0][i];
    return { width: W, height: H, data: out };
  }
  if (full.length === 3) {
    const [p0, p1, p2] = full;
    const ycc = isYcc(info);
    for (let i = 0; i < W * H; i++) {
      if (!ycc) {
        out[3 * i] = p0[i]; out[3 * i + 1] = p1[i]; out[3 * i + 2] = p2[i];
        continue;
      }
      const y = p0[i], cb = p1[i], cr = p2[i];
      out[3 * i] = clamp255(y + t.crR[cr]);
      out[3 * i + 1] = clamp255(y + ((t.cbG[cb] + t.crG[cr]) >> 16));
      out[3 * i + 2] = clamp255(y + t.cbB[cb]);
    }
    return { width: W, height: H, data: out };
  }
  const ycck = info.adobeTransform !== 0;
  const [p0, p1, p2, p3] = full;
  for (let i = 0; i < W * H; i++) {
    let c = p0[i], m = p1[i], y = p2[i];
    if (ycck) {
      const Y = p0[i], cb = p1[i], cr = p2[i];
      c = clamp255(255 - (Y + t.crR[cr]));
      m = clamp255(255 - (Y + ((t.cbG[cb] + t.crG[cr]) >> 16)));
      y = clamp255(255 - (Y + t.cbB[cb]));
    }
    // Pillow's CMYK;I: every sample inverted
    c = 255 - c; m = 255 - m; y = 255 - y;
    const nk = p3[i]; // 255 - (255 - K)
    out[3 * i] = clamp255(nk - muldiv255(c, nk));
    out[3 * i + 1] = clamp255(nk - muldiv255(m, nk));
    out[3 * i + 2] = clamp255(nk - muldiv255(y, nk));
  }
  return { width: W, height: H, data: out };
}

function muldiv255(a: number, b: number): number {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

function clamp255(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

// jidctint.c constants: FIX(x) = round(x * 2^13)
const CONST_BITS = 13, PASS1_BITS = 2;
const F0_298 = 2446, F0_390 = 3196, F0_541 = 4433, F0_765 = 6270, F0_899 = 7373, F1_175 = 9633, F1_501 = 12299,
  F1_847 = 15137, F1_961 = 16069, F2_053 = 16819, F2_562 = 20995, F3_072 = 25172;

/**
 * DESCALE(x, n) = (x + 2^(n-1)) >> n on libjpeg's 64-bit JLONG; here on doubles (products reach 2^46, exact):
 * n = CONST_BITS - PASS1_BITS after the column pass, CONST_BITS + PASS1_BITS + 3 after the row pass.
 */
function descale1(x: number): number {
  return Math.floor((x + 1024) / 2048);
}
function descale2(x: number): number {
  return Math.floor((x + 131072) / 262144);
}

/** libjpeg's post-IDCT range limit: x wrapped to [-512, 511] (its table is indexed by x & 1023), + 128, clamped. */
function rangeLimit(x: number): number {
  const v = ((x + 512) & 1023) - 512 + 128;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * One component's blocks -> samples [bhAlloc*8, bwAlloc*8] through jpeg_idct_islow: a column pass into a work
 * array scaled by 2^PASS1_BITS, then a row pass, each with the LLM butterfly in 13-bit fixed point.
 */
function idctPlane(c: CoefComponent, q: Int32Array): Uint8Array {
  const stride = c.bwAlloc * 8;
  const out = new Uint8Array(stride * c.bhAlloc * 8);
  const ws = new Int32Array(64);
  for (let br = 0; br < c.bhAlloc; br++) {
    for (let bc = 0; bc < c.bwAlloc; bc++) {
      const o = (br * c.bwAlloc + bc) * 64;
      const k = c.coef;
      for (let col = 0; col < 8; col++) {
        const i0 = o + col;
        if (k[i0 + 8] === 0 && k[i0 + 16] === 0 && k[i0 + 24] === 0 && k[i0 + 32] === 0 && k[i0 + 40] === 0 && k[i0 + 48] === 0 && k[i0 + 56] === 0) {
          // AC terms all zero: the column is its DC, scaled (what the full butterfly gives too)
          const dc = k[i0] * q[col] * (1 << PASS1_BITS);
          for (let r = 0; r < 8; r++) ws[col + 8 * r] = dc;
          continue;
        }
        let z2 = k[i0 + 16] * q[col + 16], z3 = k[i0 + 48] * q[col + 48];
        let z1 = (z2 + z3) * F0_541;
        let tmp2 = z1 + z3 * -F1_847;
        let tmp3 = z1 + z2 * F0_765;
        z2 = k[i0] * q[col]; z3 = k[i0 + 32] * q[col + 32];
        let tmp0 = (z2 + z3) * (1 << CONST_BITS);
        let tmp1 = (z2 - z3) * (1 << CONST_BITS);
        const tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
        tmp0 = k[i0 + 56] * q[col + 56]; tmp1 = k[i0 + 40] * q[col + 40]; tmp2 = k[i0 + 24] * q[col + 24]; tmp3 = k[i0 + 8] * q[col + 8];
        z1 = tmp0 + tmp3; z2 = tmp1 + tmp2; z3 = tmp0 + tmp2; let z4 = tmp1 + tmp3;
        const z5 = (z3 + z4) * F1_175;
        tmp0 *= F0_298; tmp1 *= F2_053; tmp2 *= F3_072; tmp3 *= F1_501;
        z1 *= -F0_899; z2 *= -F2_562; z3 *= -F1_961; z4 *= -F0_390;
        z3 += z5; z4 += z5;
        tmp0 += z1 + z3; tmp1 += z2 + z4; tmp2 += z2 + z3; tmp3 += z1 + z4;
        ws[col] = descale1(tmp10 + tmp3); ws[col + 56] = descale1(tmp10 - tmp3);
        ws[col + 8] = descale1(tmp11 + tmp2); ws[col + 48] = descale1(tmp11 - tmp2);
        ws[col + 16] = descale1(tmp12 + tmp1); ws[col + 40] = descale1(tmp12 - tmp1);
        ws[col + 24] = descale1(tmp13 + tmp0); ws[col + 32] = descale1(tmp13 - tmp0);
      }
      for (let row = 0; row < 8; row++) {
        const r8 = row * 8;
        let z2 = ws[r8 + 2], z3 = ws[r8 + 6];
        let z1 = (z2 + z3) * F0_541;
        let tmp2 = z1 + z3 * -F1_847;
        let tmp3 = z1 + z2 * F0_765;
        let tmp0 = (ws[r8] + ws[r8 + 4]) * (1 << CONST_BITS);
        let tmp1 = (ws[r8] - ws[r8 + 4]) * (1 << CONST_BITS);
        const tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
        tmp0 = ws[r8 + 7]; tmp1 = ws[r8 + 5]; tmp2 = ws[r8 + 3]; tmp3 = ws[r8 + 1];
        z1 = tmp0 + tmp3; z2 = tmp1 + tmp2; z3 = tmp0 + tmp2; let z4 = tmp1 + tmp3;
        const z5 = (z3 + z4) * F1_175;
        tmp0 *= F0_298; tmp1 *= F2_053; tmp2 *= F3_072; tmp3 *= F1_501;
        z1 *= -F0_899; z2 *= -F2_562; z3 *= -F1_961; z4 *= -F0_390;
        z3 += z5; z4 += z5;
        tmp0 += z1 + z3; tmp1 += z2 + z4; tmp2 += z2 + z3; tmp3 += z1 + z4;
        const p = (br * 8 + row) * stride + bc * 8;
        out[p] = rangeLimit(descale2(tmp10 + tmp3)); out[p + 7] = rangeLimit(descale2(tmp10 - tmp3));
        out[p + 1] = rangeLimit(descale2(tmp11 + tmp2)); out[p + 6] = rangeLimit(descale2(tmp11 - tmp2));
        out[p + 2] = rangeLimit(descale2(tmp12 + tmp1)); out[p + 5] = rangeLimit(descale2(tmp12 - tmp1));
        out[p + 3] = rangeLimit(descale2(tmp13 + tmp0)); out[p + 4] = rangeLimit(descale2(tmp13 - tmp0));
      }
    }
  }
  return out;
}

/** Component samples (stride bwAlloc*8) -> a W x H plane, upsampled as libjpeg-turbo does by default. */
function upsample(plane: Uint8Array, c: CoefComponent, maxH: number, maxV: number, W: number, H: number): Uint8Array {
  const stride = c.bwAlloc * 8;
  const rh = maxH / c.h, rv = maxV / c.v;
  const full = new Uint8Array(W * H);
  if (rh === 1 && rv === 1) {
    for (let y = 0; y < H; y++) full.set(plane.subarray(y * stride, y * stride + W), y * W);
    return full;
  }
  const dw = Math.ceil((W * c.h) / maxH), dh = Math.ceil((H * c.v) / maxV);
  const ds = new Uint8Array(dw * dh);
  for (let y = 0; y < dh; y++) ds.set(plane.subarray(y * stride, y * stride + dw), y * dw);
  if ((rh === 1 || rh === 2) && (rv === 1 || rv === 2)) {
    upsampleFancy(ds, dw, dh, rh, rv, full, W, H);
  } else {
    // int_upsample: each sample replicated rh x rv times
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) full[y * W + x] = ds[Math.floor(y / rv) * dw + Math.floor(x / rh)];
  }
  return full;
}

let yccCache: { crR: Int32Array; cbB: Int32Array; crG: Int32Array; cbG: Int32Array } | undefined;

/** jdcolor.c build_ycc_rgb_table: SCALEBITS 16, FIX(x) = (int)(x * 65536 + 0.5). */
function yccTables() {
  if (!yccCache) {
    const FIX = (x: number) => Math.trunc(x * 65536 + 0.5);
    const HALF = 1 << 15;
    const crR = new Int32Array(256);
    const cbB = new Int32Array(256);
    const crG = new Int32Array(256);
    const cbG = new Int32Array(256);
    for (let i = 0; i < 256; i++) {
      const x = i - 128;
      crR[i] = (FIX(1.402) * x + HALF) >> 16;
      cbB[i] = (FIX(1.772) * x + HALF) >> 16;
      crG[i] = -FIX(0.71414) * x;
      cbG[i] = -FIX(0.34414) * x + HALF;
    }
    yccCache = { crR, cbB, crG, cbG };
  }
  return yccCache;
}

/**
 * libjpeg-turbo's default upsampling of one component, ds [dh, dw] -> out [H, W] (extra columns/rows dropped):
 * h2v1 / h2v2 fancy (triangle filter, alternating rounding bias) when dw > 2, else box replication;
 * h1v2 fancy always. Rows above the first / below the last are copies of them (jdmainct.c context rows).
 */
function upsampleFancy(
  ds: Uint8Array,
  dw: number,
  dh: number,
  rh: number,
  rv: number,
  out: Uint8Array,
  W: number,
  H: number,
): void {
  const row = new Uint8Array(dw * rh);
  const fancyH = rh === 2 && dw > 2;
  for (let iy = 0; iy < dh; iy++) {
    for (let v = 0; v < rv; v++) {
      const oy = iy * rv + v;
      if (oy >= H) break;
      const r0 = iy * dw;
      // Vertical neighbour: row above for the first output row of the pair, below for the second.
      const r1 = rv === 2 ? (v === 0 ? Math.max(iy - 1, 0) : Math.min(iy + 1, dh - 1)) * dw : r0;
      if (rh === 2 && rv === 2 && fancyH) {
        // h2v2_fancy_upsample
        let th = ds[r0] * 3 + ds[r1];
        let nx = ds[r0 + 1] * 3 + ds[r1 + 1];
        let o = 0;
        row[o++] = (th * 4 + 8) >> 4;
        row[o++] = (th * 3 + nx + 7) >> 4;
        let la = th;
        th = nx;
        for (let x = 2; x < dw; x++) {
          nx = ds[r0 + x] * 3 + ds[r1 + x];
          row[o++] = (th * 3 + la + 8) >> 4;
          row[o++] = (th * 3 + nx + 7) >> 4;
          la = th;
          th = nx;
        }
        row[o++] = (th * 3 + la + 8) >> 4;
        row[o++] = (th * 4 + 7) >> 4;
      } else if (rh === 2 && rv === 1 && fancyH) {
        // h2v1_fancy_upsample
        let o = 0;
        row[o++] = ds[r0];
        row[o++] = (ds[r0] * 3 + ds[r0 + 1] + 2) >> 2;
        for (let x = 1; x < dw - 1; x++) {
          const c = ds[r0 + x] * 3;
          row[o++] = (c + ds[r0 + x - 1] + 1) >> 2;
          row[o++] = (c + ds[r0 + x + 1] + 2) >> 2;
        }
        row[o++] = (ds[r0 + dw - 1] * 3 + ds[r0 + dw - 2] + 1) >> 2;
        row[o++] = ds[r0 + dw - 1];
      } else if (rh === 1 && rv === 2) {
        // h1v2_fancy_upsample (bias 1 for the upper row of the pair, 2 for the lower)
        const bias = v === 0 ? 1 : 2;
        for (let x = 0; x < dw; x++) row[x] = (ds[r0 + x] * 3 + ds[r1 + x] + bias) >> 2;
      } else {
        // h2v1_upsample / h2v2_upsample (dw <= 2): replicate
        for (let x = 0; x < dw; x++) {
          row[2 * x] = ds[r0 + x];
          row[2 * x + 1] = ds[r0 + x];
        }
      }
      out.set(row.subarray(0, W), oy * W);
    }
  }
}
