/**
 * Issue #24's image findings, each rebuilt by a generator (test/helpers/hostile-images.ts), not a committed blob:
 * stale memory in a truncated PNG, a small JPEG or PNG declaring a huge frame, quadratic EXIF joining, uncapped
 * PNG text, 16-bit PNGs, trailing zlib data, too many JPEG scans; and determinism: the same input gives the same
 * bytes or the same error, 100 times.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PerceiverError } from "../src/errors.js";
import { decodeImage } from "../src/io/image/decode.js";
import { ROOT } from "./helpers/cli.js";
import { fixture } from "./helpers/golden.js";
import { createTargets, defaultFixturesDir, makeCase } from "../tools/fuzz/targets.js";
import { HOSTILE, jpegClaiming, pngTrailingZlib, truncatedIdat } from "./helpers/hostile-images.js";

/** The outcome of one decode: the pixels' bytes, or the error's code and message. */
function outcome(bytes: Uint8Array): string {
  try {
    const img = decodeImage(bytes.slice());
    return `${img.width}x${img.height}:${Buffer.from(img.data).toString("base64")}`;
  } catch (e) {
    if (!(e instanceof PerceiverError)) throw e;
    return `${e.code}: ${e.message}`;
  }
}

describe("hostile images end as typed errors (or correct results) within seconds and a few hundred MiB", () => {
  it("every case, in a process with a 512 MiB V8 heap", () => {
    const r = spawnSync(process.execPath, ["--max-old-space-size=512", "--import", "tsx", "test/helpers/hostile-images.ts"], {
      cwd: ROOT, encoding: "utf8", timeout: 240_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { name: string; code?: string; pixels?: number; cpuMs: number; rssMiB: number });
    expect(lines.map((l) => l.name)).toEqual(Object.keys(HOSTILE));
    for (const l of lines) {
      console.log(JSON.stringify(l));
      expect(l.code ?? l.pixels, l.name).toBeDefined();
      expect(l.cpuMs, l.name).toBeLessThan(5000);
      expect(l.rssMiB, l.name).toBeLessThan(400);
    }
    const by = Object.fromEntries(lines.map((l) => [l.name, l]));
    expect(by["jpeg 170 bytes declaring 9000x9000"].code).toBe("IMAGE_DECODE");
    expect(by["png declaring 9000x9000 with 1 KiB of data"].code).toBe("IMAGE_DECODE");
    expect(by["png 100 zTXt chunks of 1 MiB text"].code).toBe("IMAGE_DECODE"); // Pillow: "Too much memory used in text chunks"
    expect(by["png 16-bit RGBA 4000x4000 of zeros"].pixels).toBe(16_000_000); // straight to 8 bits: 48 MB of output
    expect(by["jpeg 64 APP1 EXIF segments (4 MiB)"].pixels).toBe(15);
  }, 300_000);

  it("a JPEG declaring 10000x10000 (100 megapixels) is over Pillow's decompression-bomb limit: IMAGE_TOO_LARGE", () => {
    expect(() => decodeImage(jpegClaiming(10000, 10000))).toThrow(/exceeds maxPixels 89478485/);
  });
});

describe("truncated PNG data: always an error, never stale memory (fuzz seed 20261207 case 5300)", () => {
  it("the fuzzer's case (rebuilt from the image target's first 19 seeds, as they were): one error, 100 times", () => {
    const t = createTargets(defaultFixturesDir()).image;
    const { input, seedName } = makeCase({ ...t, seeds: t.seeds.slice(0, 19), seedNames: t.seedNames.slice(0, 19) }, 20261207, 5300);
    expect(seedName).toBe("images-extra/orient_7.png");
    expect(input.length).toBe(2150);
    const first = outcome(input);
    expect(first).toMatch(/^IMAGE_DECODE: /); // pngjs gave 13 different outcomes in 40 decodes, pixels among them
    for (let i = 0; i < 100; i++) {
      Buffer.allocUnsafe(65536).fill(i); // freed memory holding junk, as the fuzzer's scribble
      expect(outcome(input)).toBe(first);
    }
  });

  const full = outcome(truncatedIdat(1 << 20));
  it("the untruncated file decodes (11x23 once turned upright)", () => expect(full).toMatch(/^11x23:/));
  it("every cut of the zlib data is a typed error, the same one 100 times over", () => {
    const total = readFileSync(fixture("images-extra", "orient_7.png")).length;
    for (let keep = 0; keep < Math.min(total, 300); keep += 7) {
      const bytes = truncatedIdat(keep);
      const first = outcome(bytes);
      if (first === full) continue; // the cut fell after the last row's data: Pillow decodes that too
      expect(first, `keep ${keep}`).toMatch(/^IMAGE_DECODE: /);
      for (let i = 0; i < 100; i++) expect(outcome(bytes)).toBe(first);
    }
  });
});

describe("PNG and JPEG edge rules", () => {
  it("zlib data after the end of the stream is ignored, as Pillow does", () => {
    for (const extra of [1, 2, 100]) {
      const { withExtra, clean } = pngTrailingZlib(extra);
      expect(outcome(withExtra)).toBe(outcome(clean));
    }
  });
  it("a JPEG with more than 256 scans is refused before decoding", () => {
    expect(outcome(new Uint8Array(readFileSync(fixture("bad", "images", "many-scans.jpg"))))).toMatch(/IMAGE_UNSUPPORTED: .*more than 256 scans/);
  });
});

describe("determinism: 100 decodes of each bad-corpus image give identical bytes or identical errors", () => {
  it("test/fixtures/bad/images", () => {
    const dir = fixture("bad", "images");
    for (const name of readdirSync(dir)) {
      const bytes = new Uint8Array(readFileSync(join(dir, name)));
      const first = outcome(bytes);
      for (let i = 0; i < 100; i++) expect(outcome(bytes), name).toBe(first);
    }
  });
});
