/**
 * npx tsx bench/folder.ts: images/s on a folder of generated photos, two ways in the same process, same model:
 *  - "one at a time": read, decode, preprocess, forward, one image after the other on the main thread (what
 *    `perceiver classify a.jpg b.jpg ...` did before datasets: nothing overlaps);
 *  - "folder": the dataset loop of classify/embed/eval (src/cli/dataset/run.ts): decode workers prepare the next
 *    images while the forward pass runs, batches of --batch-size.
 * Rounds alternate the two (A B A B ...) so that both see the same machine conditions; the table gives each
 * round and the ratio of the medians. The default model is the tiny checkpoint (test/fixtures/tiny-conv), where
 * decoding is most of the work; `--model weights/full-synthetic` (see bench/README.md) or a hub id measures the
 * full-size model, where the forward pass dominates (slow on 2 cores: use fewer --images).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { DecodePool, defaultDecodeWorkers } from "../src/cli/dataset/decode-pool.js";
import { runDataset } from "../src/cli/dataset/run.js";
import { loadImageFile } from "../src/io/image/decode-node.js";
import { preprocessBatch } from "../src/io/image/image-processor.js";
import { loadFromFiles, readImageProcessorConfigFile, resolveModelFiles } from "../src/perceiver/load.js";
import { setThreads } from "../src/tensor/gemm.js";
import { makeImage } from "../test/helpers/dataset.js";

const HELP = `npx tsx bench/folder.ts [options]
  --model <dir|file|repo>   model (default: test/fixtures/tiny-conv)
  --images N                photos in the folder (default 32)
  --size WxH                photo size (default 500x375, a typical ImageNet photo), JPEG quality 85
  --batch-size N            the folder run's batch size (default 4)
  --decode-workers N        the folder run's decode workers (default: cores - 1, from 1 to 4)
  --threads N               forward-pass threads (default: all cores)
  --rounds N                A/B rounds (default 2)`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: "string", default: resolve(import.meta.dirname, "../test/fixtures/tiny-conv") },
      images: { type: "string", default: "32" },
      size: { type: "string", default: "500x375" },
      "batch-size": { type: "string", default: "4" },
      "decode-workers": { type: "string" },
      threads: { type: "string" },
      rounds: { type: "string", default: "2" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) return void console.log(HELP);
  const n = Number(values.images), batchSize = Number(values["batch-size"]), rounds = Number(values.rounds);
  const [w, h] = values.size.split("x").map(Number);
  const workers = values["decode-workers"] === undefined ? defaultDecodeWorkers() : Number(values["decode-workers"]);
  if (values.threads) await setThreads(Number(values.threads));

  const dir = await mkdtemp(join(os.tmpdir(), "perceiver-bench-folder-"));
  try {
    const files: string[] = [];
    for (let i = 0; i < n; i++) {
      const f = join(dir, `photo-${String(i).padStart(3, "0")}.jpg`);
      await writeFile(f, makeImage(i, w, h, "jpeg"));
      files.push(f);
    }
    const modelFiles = await resolveModelFiles(values.model, {});
    const processorConfig = await readImageProcessorConfigFile(modelFiles.preprocessorConfigPath);
    const model = await loadFromFiles(modelFiles);
    await model.forward(preprocessBatch([await loadImageFile(files[0])], processorConfig)); // warm-up: threads, wasm

    const oneAtATime = async () => {
      const t = performance.now();
      for (const f of files) await model.forward(preprocessBatch([await loadImageFile(f)], processorConfig));
      return n / ((performance.now() - t) / 1000);
    };
    // the pool starts once, outside the timings (the CLI starts it once per run), warmed by one decode
    const pool = DecodePool.create({ workers, processorConfig, exifOrientation: true });
    await pool.decode(files[0]);
    const folder = async () => {
      let ok = 0;
      const t = performance.now();
      await runDataset({
        files, pool, batchSize,
        compute: async (pixels, batch) => {
          await model.forward(pixels);
          return batch.map((file) => ({ file }));
        },
        emit: (r) => void (r.error === undefined && ok++),
      });
      if (ok !== n) throw new Error(`folder run: ${n - ok} images failed`);
      return n / ((performance.now() - t) / 1000);
    };

    const a: number[] = [], b: number[] = [];
    console.error(`${n} photos ${w}x${h}, model ${values.model}, ${rounds} rounds, load average ${os.loadavg().map((x) => x.toFixed(1)).join(" ")}`);
    for (let r = 0; r < rounds; r++) {
      a.push(await oneAtATime());
      b.push(await folder());
      console.error(`round ${r + 1}: one at a time ${a[r].toFixed(2)} images/s, folder ${b[r].toFixed(2)} images/s`);
    }
    console.log(`| run | images/s per round | median |`);
    console.log(`| --- | --- | --- |`);
    console.log(`| one at a time (batch 1, decode on the main thread) | ${a.map((x) => x.toFixed(2)).join(", ")} | ${median(a).toFixed(2)} |`);
    console.log(`| folder (batch ${batchSize}, ${workers} decode worker${workers === 1 ? "" : "s"}) | ${b.map((x) => x.toFixed(2)).join(", ")} | ${median(b).toFixed(2)} |`);
    await pool.close();
    console.log(`\nfolder / one at a time: ${(median(b) / median(a)).toFixed(2)}x (${n} photos ${w}x${h}, ${os.availableParallelism()} cores, load average after: ${os.loadavg()[0].toFixed(1)})`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
