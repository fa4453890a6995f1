/**
 * JPEG entropy decoding to quantized DCT coefficients (baseline and progressive Huffman, restart intervals), for
 * the files the WebAssembly decoder does not take (4 components: CMYK, YCCK). Entropy decoding is lossless, so
 * these coefficients are libjpeg's; jpeg-cmyk.ts does the rest as libjpeg-turbo does (islow IDCT, upsampling).
 * The input was checked by scanJpeg first (complete, within limits): here a broken table or code is an error.
 */
import { corrupt, u16be, type Ctx } from "./common.js";

/** natural (row-major) index of the k-th coefficient in zigzag order */
export const ZIGZAG = Int32Array.from([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
  28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61,
  54, 47, 55, 62, 63,
]);

export interface CoefComponent {
  id: number;
  h: number;
  v: number;
  tq: number;
  /** blocks per row / column covering the component's samples (ceil(samples / 8)) */
  bw: number;
  bh: number;
  /** allocated rows/columns of blocks (whole MCUs) */
  bwAlloc: number;
  bhAlloc: number;
  /** 64 coefficients per block, natural order, block (r, c) at (r * bwAlloc + c) * 64 */
  coef: Int16Array;
}

export interface CoefImage {
  width: number;
  height: number;
  maxH: number;
  maxV: number;
  components: CoefComponent[];
  /** quantization tables (natural order) by id */
  qt: Int32Array[];
}

interface Huff {
  /** maxcode[l]: largest code of length l (-1 when none); valptr[l]: index of its first symbol */
  maxcode: Int32Array;
  valptr: Int32Array;
  mincode: Int32Array;
  vals: Uint8Array;
  /** codes of up to 8 bits by their next 8 bits: (length << 8) | symbol, 0 when longer */
  look: Uint16Array;
}

function buildHuff(counts: Uint8Array, vals: Uint8Array): Huff {
  const maxcode = new Int32Array(18).fill(-1), valptr = new Int32Array(17), mincode = new Int32Array(17);
  let code = 0, k = 0;
  for (let l = 1; l <= 16; l++) {
    valptr[l] = k;
    mincode[l] = code;
    code += counts[l - 1];
    k += counts[l - 1];
    maxcode[l] = counts[l - 1] ? code - 1 : -1;
    code <<= 1;
  }
  maxcode[17] = 0x7fffffff;
  const look = new Uint16Array(256);
  for (let l = 1; l <= 8; l++) {
    for (let i = 0; i < counts[l - 1]; i++) {
      const code = mincode[l] + i;
      const sym = vals[valptr[l] + i];
      for (let f = 0; f < 1 << (8 - l); f++) look[(code << (8 - l)) | f] = (l << 8) | sym;
    }
  }
  return { maxcode, valptr, mincode, vals, look };
}

/** Decodes every scan of `b` into coefficient arrays. */
export function decodeCoefficients(b: Uint8Array, ctx: Ctx): CoefImage {
  const bad = (m: string) => corrupt(ctx, "JPEG", m);
  const qt: Int32Array[] = [];
  const dc: Huff[] = [], ac: Huff[] = [];
  let img: CoefImage | null = null;
  let restart = 0;
  let off = 2;
  for (;;) {
    while (b[off] === 0xff && b[off + 1] === 0xff) off++;
    const m = b[off + 1];
    off += 2;
    if (m === 0xd9) break;
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) continue;
    const len = u16be(b, off);
    const p = off + 2, end = off + len;
    if (m === 0xdb) {
      for (let q = p; q < end; ) {
        const pq = b[q] >> 4, tq = b[q] & 15;
        const t = new Int32Array(64);
        for (let k = 0; k < 64; k++) t[ZIGZAG[k]] = pq ? u16be(b, q + 1 + 2 * k) : b[q + 1 + k];
        qt[tq & 3] = t;
        q += 1 + 64 * (pq ? 2 : 1);
      }
    } else if (m === 0xc4) {
      for (let q = p; q < end; ) {
        const tc = b[q] >> 4, th = b[q] & 15;
        const counts = b.subarray(q + 1, q + 17);
        const n = counts.reduce((s, x) => s + x, 0);
        const table = buildHuff(counts, b.subarray(q + 17, q + 17 + n));
        (tc === 0 ? dc : ac)[th & 3] = table;
        q += 17 + n;
      }
    } else if (m === 0xdd) {
      restart = u16be(b, p);
    } else if (m === 0xc0 || m === 0xc1 || m === 0xc2) {
      const height = u16be(b, p + 1), width = u16be(b, p + 3), nc = b[p + 5];
      const raw = Array.from({ length: nc }, (_, i) => ({ id: b[p + 6 + 3 * i], h: b[p + 7 + 3 * i] >> 4, v: b[p + 7 + 3 * i] & 15, tq: b[p + 8 + 3 * i] & 3 }));
      const maxH = Math.max(...raw.map((c) => c.h)), maxV = Math.max(...raw.map((c) => c.v));
      const mcuX = Math.ceil(width / (8 * maxH)), mcuY = Math.ceil(height / (8 * maxV));
      const components = raw.map((c) => {
        const bw = Math.ceil(Math.ceil((width * c.h) / maxH) / 8), bh = Math.ceil(Math.ceil((height * c.v) / maxV) / 8);
        const bwAlloc = mcuX * c.h, bhAlloc = mcuY * c.v;
        return { ...c, bw, bh, bwAlloc, bhAlloc, coef: new Int16Array(bwAlloc * bhAlloc * 64) };
      });
      img = { width, height, maxH, maxV, components, qt };
    } else if (m === 0xda) {
      if (!img) throw bad("scan before the frame header");
      const ns = b[p];
      const sc = Array.from({ length: ns }, (_, i) => {
        const comp = img!.components.find((c) => c.id === b[p + 1 + 2 * i]);
        if (!comp) throw bad(`scan names component ${b[p + 1 + 2 * i]}, not in the frame`);
        return { comp, td: b[p + 2 + 2 * i] >> 4, ta: b[p + 2 + 2 * i] & 15 };
      });
      const q = p + 1 + 2 * ns;
      const ss = b[q], se = b[q + 1], ah = b[q + 2] >> 4, al = b[q + 2] & 15;
      off = decodeScan(b, end, img, sc, { ss, se, ah, al, restart, dc, ac, bad });
      continue;
    }
    off = end;
  }
  if (!img) throw bad("no frame header");
  for (const c of img.components) if (!qt[c.tq]) throw bad(`component ${c.id} uses undefined quantization table ${c.tq}`);
  return img;
}

interface ScanParams {
  ss: number;
  se: number;
  ah: number;
  al: number;
  restart: number;
  dc: Huff[];
  ac: Huff[];
  bad: (m: string) => Error;
}

/** Decodes one scan starting at `start`; returns the offset of the marker that ends it. */
function decodeScan(
  b: Uint8Array,
  start: number,
  img: CoefImage,
  sc: Array<{ comp: CoefComponent; td: number; ta: number }>,
  s: ScanParams,
): number {
  // Bit buffer: `bits` valid bits at the bottom of `acc` (32-bit), the next bit the highest of them. At a marker
  // the reader supplies zero bytes (libjpeg does the same, with a warning); scanJpeg made sure the marker is there.
  let pos = start, acc = 0, bits = 0;
  const fill = () => {
    while (bits <= 24) {
      let x = 0;
      if (pos < b.length && !(b[pos] === 0xff && b[pos + 1] !== 0)) {
        x = b[pos];
        pos += x === 0xff ? 2 : 1;
      }
      acc = (acc << 8) | x;
      bits += 8;
    }
  };
  const receive = (n: number): number => {
    if (n === 0) return 0;
    if (bits < n) fill();
    bits -= n;
    return (acc >>> bits) & ((1 << n) - 1);
  };
  const bit = (): number => receive(1);
  const extend = (v: number, n: number): number => (n === 0 ? 0 : v < 1 << (n - 1) ? v - (1 << n) + 1 : v);
  const decode = (h: Huff | undefined): number => {
    if (!h) throw s.bad("scan uses an undefined Huffman table");
    if (bits < 16) fill();
    const look = h.look[(acc >>> (bits - 8)) & 255];
    if (look !== 0) {
      bits -= look >> 8;
      return look & 255;
    }
    for (let l = 9; l <= 16; l++) {
      const code = (acc >>> (bits - l)) & ((1 << l) - 1);
      if (code <= h.maxcode[l]) {
        bits -= l;
        return h.vals[h.valptr[l] + code - h.mincode[l]];
      }
    }
    throw s.bad("bad Huffman code");
  };
  const pred = new Int32Array(sc.length);
  let eobrun = 0;
  const p1 = 1 << s.al, m1 = -1 << s.al;

  const block = (ci: number, coef: Int16Array, o: number) => {
    const { td, ta } = sc[ci];
    if (s.ss === 0 && s.se === 63 && s.ah === 0 && s.al === 0) {
      const t = decode(s.dc[td]);
      pred[ci] += extend(receive(t), t);
      coef[o] = pred[ci];
      for (let k = 1; k < 64; k++) {
        const rs = decode(s.ac[ta]), r = rs >> 4, n = rs & 15;
        if (n) {
          k += r;
          if (k > 63) break;
          coef[o + ZIGZAG[k]] = extend(receive(n), n);
        } else if (r === 15) k += 15;
        else break;
      }
    } else if (s.ss === 0) {
      if (s.ah === 0) {
        const t = decode(s.dc[td]);
        pred[ci] += extend(receive(t), t);
        coef[o] = pred[ci] * (1 << s.al);
      } else if (bit()) coef[o] |= p1;
    } else if (s.ah === 0) {
      if (eobrun > 0) {
        eobrun--;
        return;
      }
      for (let k = s.ss; k <= s.se; k++) {
        const rs = decode(s.ac[ta]), r = rs >> 4, n = rs & 15;
        if (n) {
          k += r;
          if (k > 63) break;
          coef[o + ZIGZAG[k]] = extend(receive(n), n) * (1 << s.al);
        } else if (r === 15) k += 15;
        else {
          eobrun = (1 << r) - 1;
          if (r) eobrun += receive(r);
          break;
        }
      }
    } else {
      let k = s.ss;
      if (eobrun === 0) {
        for (; k <= s.se; k++) {
          const rs = decode(s.ac[ta]);
          let r = rs >> 4, v = 0;
          const n = rs & 15;
          if (n) v = bit() ? p1 : m1;
          else if (r !== 15) {
            eobrun = 1 << r;
            if (r) eobrun += receive(r);
            break;
          }
          do {
            const z = o + ZIGZAG[k];
            if (coef[z] !== 0) {
              if (bit() && (coef[z] & p1) === 0) coef[z] += coef[z] >= 0 ? p1 : m1;
            } else if (--r < 0) break;
            k++;
          } while (k <= s.se);
          if (v && k <= 63) coef[o + ZIGZAG[k]] = v;
        }
      }
      if (eobrun > 0) {
        for (; k <= s.se; k++) {
          const z = o + ZIGZAG[k];
          if (coef[z] !== 0 && bit() && (coef[z] & p1) === 0) coef[z] += coef[z] >= 0 ? p1 : m1;
        }
        eobrun--;
      }
    }
  };

  const restartSync = () => {
    bits = 0; // the rest of the byte is padding; bytes read ahead were before the marker, which pos still points at
    while (pos + 1 < b.length && !(b[pos] === 0xff && b[pos + 1] >= 0xd0 && b[pos + 1] <= 0xd7)) {
      if (b[pos] === 0xff && b[pos + 1] !== 0) break; // another marker: let the outer loop see it
      pos++;
    }
    if (b[pos] === 0xff && b[pos + 1] >= 0xd0 && b[pos + 1] <= 0xd7) pos += 2;
    pred.fill(0);
    eobrun = 0;
  };

  let mcu = 0;
  if (sc.length === 1) {
    // non-interleaved: the component's own blocks, row by row
    const c = sc[0].comp;
    for (let r = 0; r < c.bh; r++) {
      for (let col = 0; col < c.bw; col++) {
        if (s.restart && mcu > 0 && mcu % s.restart === 0) restartSync();
        block(0, c.coef, (r * c.bwAlloc + col) * 64);
        mcu++;
      }
    }
  } else {
    const mcuX = Math.ceil(img.width / (8 * img.maxH)), mcuY = Math.ceil(img.height / (8 * img.maxV));
    for (let my = 0; my < mcuY; my++) {
      for (let mx = 0; mx < mcuX; mx++) {
        if (s.restart && mcu > 0 && mcu % s.restart === 0) restartSync();
        for (let ci = 0; ci < sc.length; ci++) {
          const c = sc[ci].comp;
          for (let v = 0; v < c.v; v++) {
            for (let h = 0; h < c.h; h++) block(ci, c.coef, ((my * c.v + v) * c.bwAlloc + mx * c.h + h) * 64);
          }
        }
        mcu++;
      }
    }
  }
  // the scan ends at the next marker that is not RSTn
  let q = pos;
  for (;;) {
    q = b.indexOf(0xff, q);
    if (q < 0 || q + 1 >= b.length) return b.length;
    const nb = b[q + 1];
    if (nb === 0x00 || (nb >= 0xd0 && nb <= 0xd7)) q += 2;
    else if (nb === 0xff) q += 1;
    else return q;
  }
}
