/**
 * train-head's cache of final latents: one small safetensors file per image ("latents" [N, D] F32, metadata
 * "file"), in a folder keyed by everything that changes the latents (model files, image processor, EXIF
 * handling). An image's file is named by a hash of its path, size and modification time, written atomically
 * (temporary file, then rename): a killed run keeps every finished image, and a changed image is recomputed.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { readSafetensors } from "../io/checkpoint/safetensors.js";
import { writeSafetensorsFile } from "../io/checkpoint/safetensors-node.js";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

export class LatentCache {
  private constructor(readonly dir: string, readonly numLatents: number, readonly dLatents: number) {}

  /** The cache folder under `outDir` for this model identity (any JSON-able description of it). */
  static async open(outDir: string, identity: Record<string, unknown>, numLatents: number, dLatents: number): Promise<LatentCache> {
    const text = JSON.stringify(identity);
    const dir = join(outDir, "latents-cache", sha(text).slice(0, 16));
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "identity.json"), `${JSON.stringify(identity, null, 2)}\n`);
    return new LatentCache(dir, numLatents, dLatents);
  }

  private async fileFor(imagePath: string): Promise<string> {
    const st = await stat(imagePath);
    return join(this.dir, `${sha(`${resolve(imagePath)}\0${st.size}\0${st.mtimeMs}`).slice(0, 24)}.safetensors`);
  }

  /** The cached latents [N·D] of an image, or null (absent, unreadable or the wrong shape: then recomputed). */
  async get(imagePath: string): Promise<Float32Array | null> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(await this.fileFor(imagePath));
    } catch {
      return null;
    }
    try {
      const f = readSafetensors(bytes);
      const info = f.info("latents");
      if (info.dtype !== "F32" || info.shape[0] !== this.numLatents || info.shape[1] !== this.dLatents) return null;
      return f.getFloat32("latents").slice();
    } catch {
      return null;
    }
  }

  async put(imagePath: string, relPath: string, latents: Float32Array): Promise<void> {
    await writeSafetensorsFile(await this.fileFor(imagePath), { latents: { dtype: "F32", shape: [this.numLatents, this.dLatents], data: latents } }, { file: relPath });
  }

  /** The cache file of an image (for scripts that read the cache, e.g. the PyTorch recipe). */
  async pathOf(imagePath: string): Promise<string> {
    return this.fileFor(imagePath);
  }
}
