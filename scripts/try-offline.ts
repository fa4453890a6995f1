/**
 * `npm run try`: every CLI command, with no network, on a checkpoint made here:
 *
 *   npm run try                  the full-size vision-perceiver-conv architecture (48.6M parameters, 195 MB) with
 *                                deterministic synthetic weights, generated into weights/full-synthetic/ (reused)
 *   npm run try -- --tiny        the committed tiny checkpoint test/fixtures/tiny-conv (10 labels; fed 224x224, a 55x55 grid)
 *   npm run try -- --image <f>   another image (default samples/cat.png)
 *
 * It runs `perceiver classify`, `perceiver embed` and `perceiver attention-map` on the image (PNGs into
 * weights/try-offline/) and tells how to open the demo with the same checkpoint. Neither model is trained: the
 * labels they print are MEANINGLESS. They show that every part works, not what the image shows.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ensureFullCheckpoint } from "./synthetic-checkpoint.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "weights/try-offline");

const WARNING = `
  !! THE LABELS ARE MEANINGLESS: this checkpoint has synthetic, untrained weights. It shows every part of
  !! perceiver-ts working offline; it recognises nothing. For real predictions: perceiver classify <image>
  !! (downloads deepmind/vision-perceiver-conv from the hub).`;

function run(title: string, args: string[]): void {
  console.log(`\n$ perceiver ${args.map((a) => (a.includes(" ") ? JSON.stringify(a) : a)).join(" ")}    # ${title}`);
  // the CLI from source, as `npm run perceiver -- ...` runs it; HF_HUB_OFFLINE=1: nothing may touch the network
  const r = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "src/cli/main.ts"), ...args], {
    cwd: ROOT, stdio: "inherit", env: { ...process.env, HF_HUB_OFFLINE: "1" },
  });
  if (r.status !== 0) {
    console.error(`\nperceiver ${args[0]} failed (exit ${r.status ?? r.signal}); see above.`);
    process.exit(1);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { tiny: { type: "boolean", default: false }, image: { type: "string" }, help: { type: "boolean", short: "h", default: false } },
  });
  if (values.help) {
    console.log("Usage: npm run try [-- --tiny] [-- --image <file.png|file.jpg>]\nRuns classify, embed and attention-map offline on a synthetic checkpoint (meaningless labels).");
    return;
  }
  const image = resolve(values.image ?? join(ROOT, "samples/cat.png"));
  if (!existsSync(image)) {
    console.error(`no such image: ${image}`);
    process.exit(2);
  }
  let model: string;
  if (values.tiny) {
    model = join(ROOT, "test/fixtures/tiny-conv");
    console.log(`Model: the committed tiny checkpoint ${relative(ROOT, model)} (10 made-up labels class_0..class_9).`);
  } else {
    console.log("Model: the full-size vision-perceiver-conv architecture with synthetic weights (ImageNet's 1000 label names).");
    model = await ensureFullCheckpoint((m) => console.log(`  ${m}`));
  }
  console.log(WARNING);
  mkdirSync(OUT, { recursive: true });
  const rel = (p: string) => relative(ROOT, p) || ".";
  const out = join(OUT, "attention.png");
  rmSync(out, { force: true }); // a fresh run, not an overwrite of an earlier one
  rmSync(join(OUT, "attention.latents.png"), { force: true });

  run("top-5 labels (meaningless)", ["classify", rel(image), "--model", rel(model)]);
  run("the pooled feature vector", ["embed", rel(image), "--model", rel(model)]);
  run("where the model looks", ["attention-map", rel(image), "--model", rel(model), "--out", rel(out), "--top", "9"]);

  const weights = join(model, "model.safetensors");
  console.log(`
Open the demo with the same checkpoint:
  npm run demo:dev          then open the printed http://localhost:5173/ address, pick the local model
                            files under Model ("Open files") and choose both
                              ${rel(join(model, "config.json"))}
                              ${rel(weights)}
                            then drop any image on the page.
The attention maps are in ${rel(OUT)}/.
${WARNING}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
