/**
 * End to end: the full-size synthetic checkpoint served by a local hub on 127.0.0.1, the built CLI
 * (dist/cli/main.js, made by `npm test`'s build step) run as a subprocess on chelsea.png and chelsea.jpg, and its logits compared
 * with PyTorch's float64 logits for the same file (test/fixtures/images/e2e_golden.safetensors).
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, runCli } from "./helpers/cli.js";
import { fakeCommit, startFakeHub, type FakeHub } from "./helpers/fake-hub.js";
import { ensureFullCheckpoint } from "./helpers/full-model.js";
import { expectClose, fixture, readGolden } from "./helpers/golden.js";

// The hub's preprocessor_config.json for deepmind/vision-perceiver-conv (old feature-extractor format, int sizes).
const HUB_PREPROCESSOR_CONFIG = JSON.stringify({
  crop_size: 256, do_center_crop: true, do_normalize: true, do_resize: true, feature_extractor_type: "PerceiverFeatureExtractor",
  image_mean: [0.485, 0.456, 0.406], image_std: [0.229, 0.224, 0.225], resample: 3, size: 224,
});

describe("perceiver classify, end to end at full size", () => {
  let hub: FakeHub;
  let cache: string;
  beforeAll(async () => {
    const dir = await ensureFullCheckpoint((m) => console.log(m));
    cache = await mkdtemp(join(tmpdir(), "perceiver-e2e-cache-"));
    const main = fakeCommit("e2e-main");
    hub = await startFakeHub({
      repos: {
        "deepmind/vision-perceiver-conv": {
          commits: {
            [main]: {
              files: {
                "config.json": await readFile(join(dir, "config.json")),
                "preprocessor_config.json": HUB_PREPROCESSOR_CONFIG,
                "model.safetensors": await readFile(join(dir, "model.safetensors")),
              },
            },
          },
          refs: { main },
        },
      },
    });
  }, 600_000);
  afterAll(async () => {
    await hub?.close();
    if (cache) await rm(cache, { recursive: true, force: true });
  });

  it("downloads the model and matches PyTorch's logits for chelsea.png within 1e-4", async () => {
    expect(existsSync(join(ROOT, "dist/cli/main.js")), "run `npm run build` first (npm test does)").toBe(true);
    const r = await runCli(["classify", fixture("images", "chelsea.png"), "--json", "--logits", "--top-k", "3"], {
      built: true,
      env: { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cache },
      timeoutMs: 900_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    const golden = await readGolden("images", "e2e_golden.safetensors");
    const ref = golden.getFloat32("chelsea_png.full_logits_f64");
    const s = expectClose("chelsea.png logits (CLI)", out.logits, ref, 1e-4, 0);
    console.log(`e2e: max |logits - full_logits_f64| = ${s.maxAbs.toExponential(2)}, ${out.seconds} s per image`);
    const best = Array.from(ref).indexOf(Math.max(...ref));
    expect(out.top_k[0].index).toBe(best);
    expect(out.top_k).toHaveLength(3);
    // the weights came through the CDN redirect into the huggingface_hub cache layout
    const snaps = join(cache, "models--deepmind--vision-perceiver-conv", "snapshots");
    expect(existsSync(snaps)).toBe(true);
  }, 900_000);

  it("matches PyTorch + Pillow's logits for chelsea.jpg within 1e-4 (the JPEG decoded as libjpeg-turbo does)", async () => {
    const r = await runCli(["classify", fixture("images", "chelsea.jpg"), "--json", "--logits", "--top-k", "1"], {
      built: true,
      env: { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cache },
      timeoutMs: 900_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const ref = (await readGolden("images", "e2e_golden.safetensors")).getFloat32("chelsea_jpg.full_logits_f64");
    const s = expectClose("chelsea.jpg logits (CLI)", JSON.parse(r.stdout).logits, ref, 1e-4, 0);
    console.log(`e2e: chelsea.jpg max |logits - full_logits_f64| = ${s.maxAbs.toExponential(2)}`);
  }, 900_000);
});
