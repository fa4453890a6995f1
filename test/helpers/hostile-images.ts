/**
 * Generators of the hostile images of issue #24 (small files that used to cost gigabytes, minutes or stale
 * memory), built from the repository's own fixtures, and a runner that decodes each one and reports its outcome,
 * time and the process's peak RSS. test/image-limits.test.ts runs this file as a script under a 512 MiB heap:
 *   node --max-old-space-size=512 --import tsx test/helpers/hostile-images.ts
 * prints one JSON line per case: {name, bytes, code and message | pixels, ms (wall), cpuMs, rssMiB (peak so far)}.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Zlib, zlibSync } from "fflate";
import { pngBytes, pngChunks } from "../../tools/fuzz/mutate-png.js";
import { decodeImage } from "../../src/io/image/decode.js";
import { PerceiverError } from "../../src/errors.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures");
const file = (...p: string[]) => new Uint8Array(readFileSync(join(FIXTURES, ...p)));

function chunk(type: string, data: Uint8Array) {
  return { type, data };
}
function ihdr(w: number, h: number, depth: number, colorType: number, interlace = 0): Uint8Array {
  const d = new Uint8Array(13);
  const v = new DataView(d.buffer);
  v.setUint32(0, w);
  v.setUint32(4, h);
  d.set([depth, colorType, 0, 0, interlace], 8);
  return d;
}
/** zlib stream of `n` zero bytes, compressed piece by piece (no n-byte buffer). */
function zlibZeros(n: number): Uint8Array {
  const parts: Uint8Array[] = [];
  const z = new Zlib({ level: 9 }, (c) => parts.push(c));
  const piece = new Uint8Array(1 << 20);
  for (let left = n; left > 0; left -= piece.length) z.push(left > piece.length ? piece : piece.subarray(0, left), left <= piece.length);
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
}
function png(w: number, h: number, depth: number, colorType: number, idat: Uint8Array, extra: Array<{ type: string; data: Uint8Array }> = []) {
  return pngBytes([chunk("IHDR", ihdr(w, h, depth, colorType)), ...extra, chunk("IDAT", idat), chunk("IEND", new Uint8Array(0))]);
}

/** A small JPEG (3x5, 4:2:0) with its frame header set to w x h. */
export function jpegClaiming(w: number, h: number): Uint8Array {
  const b = file("images-extra", "tiny420.jpg").slice();
  for (let i = 2; ; ) {
    if (b[i + 1] === 0xc0 || b[i + 1] === 0xc2) {
      b.set([h >> 8, h & 255, w >> 8, w & 255], i + 5);
      return b;
    }
    i += 2 + ((b[i + 2] << 8) | b[i + 3]);
  }
}

/** tiny420.jpg with `n` APP1 EXIF segments of 65533 bytes after SOI (each used to copy all the ones before it). */
export function jpegManyExif(n: number): Uint8Array {
  const base = file("images-extra", "tiny420.jpg");
  const seg = new Uint8Array(65535 + 2);
  seg.set([0xff, 0xe1, 0xff, 0xff, 0x45, 0x78, 0x69, 0x66, 0, 0, 0x4d, 0x4d, 0, 42, 0, 0, 0, 8]);
  const out = new Uint8Array(base.length + n * seg.length);
  out.set(base.subarray(0, 2));
  for (let k = 0; k < n; k++) out.set(seg, 2 + k * seg.length);
  out.set(base.subarray(2), 2 + n * seg.length);
  return out;
}

/** A 1x1 PNG with `n` zTXt XMP chunks of 1 MiB of text each (about 1 KiB compressed). */
export function pngTextFlood(n: number): Uint8Array {
  const key = new TextEncoder().encode("XML:com.adobe.xmp\0\0");
  const z = zlibSync(new Uint8Array(1 << 20).fill(0x20), { level: 9 });
  const data = new Uint8Array(key.length + z.length);
  data.set(key);
  data.set(z, key.length);
  return png(1, 1, 8, 2, zlibSync(new Uint8Array(4)), Array.from({ length: n }, () => chunk("zTXt", data)));
}

/** A w x h 16-bit RGBA PNG of zeros: 8 bytes a pixel inflated, about 1/1000 of that compressed. */
export function png16Zeros(w: number, h: number): Uint8Array {
  return png(w, h, 16, 6, zlibZeros(h * (1 + 8 * w)));
}

/** A PNG whose zlib stream is followed by `extra` bytes inside the IDAT (Pillow decodes it). */
export function pngTrailingZlib(extra: number): { withExtra: Uint8Array; clean: Uint8Array } {
  const raw = new Uint8Array(5 * (1 + 3 * 4)).map((_, i) => (i % 13 === 0 ? 0 : (i * 37) & 255));
  const z = zlibSync(raw);
  const padded = new Uint8Array(z.length + extra).fill(0x5a);
  padded.set(z);
  return { withExtra: png(4, 5, 8, 2, padded), clean: png(4, 5, 8, 2, z) };
}

/** orient_7.png (11x23) with its zlib data cut to `keep` bytes (CRCs valid): the fuzzer's stale-memory case. */
export function truncatedIdat(keep: number): Uint8Array {
  const chunks = pngChunks(file("images-extra", "orient_7.png"))!;
  return pngBytes(chunks.map((c) => (c.type === "IDAT" ? { type: "IDAT", data: c.data.subarray(0, keep) } : { type: c.type, data: c.data })));
}

export const HOSTILE: Record<string, () => Uint8Array> = {
  "jpeg 170 bytes declaring 9000x9000": () => jpegClaiming(9000, 9000),
  "jpeg 64 APP1 EXIF segments (4 MiB)": () => jpegManyExif(64),
  "png 100 zTXt chunks of 1 MiB text": () => pngTextFlood(100),
  "png 16-bit RGBA 4000x4000 of zeros": () => png16Zeros(4000, 4000),
  "png declaring 9000x9000 with 1 KiB of data": () => png(9000, 9000, 8, 2, zlibSync(new Uint8Array(1 << 20))),
};

function run(): void {
  for (const [name, make] of Object.entries(HOSTILE)) {
    const bytes = make();
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    let outcome: Record<string, unknown>;
    try {
      const img = decodeImage(bytes, { source: name });
      outcome = { pixels: img.width * img.height };
    } catch (e) {
      if (!(e instanceof PerceiverError)) throw e;
      outcome = { code: e.code, message: e.message };
    }
    const ms = Math.round(performance.now() - t0);
    const cpu = process.cpuUsage(c0);
    const cpuMs = Math.round((cpu.user + cpu.system) / 1000);
    console.log(JSON.stringify({ name, bytes: bytes.length, ...outcome, ms, cpuMs, rssMiB: Math.round(process.resourceUsage().maxRSS / 1024) }));
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) run();
