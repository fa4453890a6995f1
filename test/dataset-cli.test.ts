/**
 * classify, embed and eval on a generated dataset, as subprocesses: class folders named by label, synset and
 * --label-map, a corrupt image and a non-image; shards, merge, resume after SIGKILL, globs, --files-from -,
 * --features-out, no progress bar off a terminal. The runs are started together where they are independent.
 */
import { spawn, spawnSync } from "node:child_process";
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSafetensorsFile } from "../src/io/checkpoint/safetensors-node.js";
import { loadImageFile } from "../src/io/image/decode-node.js";
import { preprocessBatch } from "../src/io/image/image-processor.js";
import { PerceiverForImageClassification } from "../src/index.js";
import { IMAGENET_1K_SYNSETS } from "../src/perceiver/imagenet-synsets.js";
import { ROOT, type CliResult } from "./helpers/cli.js";
import { makeImage, makeTinyImagenetModel } from "./helpers/dataset.js";

/** The CLI as a subprocess, with stdin text, and a hook to kill it mid-run. */
function cli(args: string[], opts: { stdin?: string; killWhen?: () => Promise<boolean> } = {}): Promise<CliResult & { killed: boolean }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "src/cli/main.ts"), ...args], {
      cwd: ROOT, env: { ...process.env, PERCEIVER_THREADS: "1", HF_HUB_OFFLINE: "1" }, stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "", stderr = "", killed = false;
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.stdin.end(opts.stdin ?? "");
    const timer = setTimeout(() => child.kill("SIGKILL"), 180_000);
    let poll: NodeJS.Timeout | undefined;
    if (opts.killWhen) {
      const check = async () => {
        if (await opts.killWhen!()) {
          killed = child.kill("SIGKILL");
        } else poll = setTimeout(check, 20);
      };
      poll = setTimeout(check, 20);
    }
    child.on("error", rej);
    child.on("close", (code) => {
      clearTimeout(timer);
      clearTimeout(poll);
      res({ code, stdout, stderr, killed });
    });
  });
}

const lines = async (p: string) => (await readFile(p, "utf8").catch(() => "")).split("\n").filter((l) => l !== "");
const records = async (p: string) => (await lines(p)).map((l) => JSON.parse(l));

let dir: string, model: string, root: string, labelMap: string;
/** the dataset's images (sorted as the CLI walks them) and the expected summary */
let images: string[];
let broken: string;
/** "relative/path label" lines for every image but broken.png, the label as a name, a synset or an index */
let flatLabels: string;
let expected: { n: number; top1: number; top5: number; failed: string[] };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "perceiver-dscli-"));
  model = await makeTinyImagenetModel(join(dir, "model"));
  root = join(dir, "data");
  const lib = await PerceiverForImageClassification.fromPretrained(model);
  const id2label = lib.config.id2label;
  // 12 images; image i gets a true label that the model ranks first (i%3 == 0), fourth (1), or outside the top 5 (2)
  const made: { file: string; label: number }[] = [];
  const mapLines: string[] = [];
  for (let i = 0; i < 12; i++) {
    const bytes = makeImage(100 + i, 40 + 3 * i, 36 + 2 * i, i % 4 === 3 ? "jpeg" : "png");
    const tmp = join(dir, `tmp-${i}`);
    await writeFile(tmp, bytes);
    const { logits } = await lib.forward(preprocessBatch([await loadImageFile(tmp)]));
    const order = Array.from(logits.data.keys()).sort((a, b) => logits.data[b] - logits.data[a]);
    const label = i % 3 === 0 ? order[0] : i % 3 === 1 ? order[3] : order[500];
    // the folder: the exact label (unless two classes share it), the synset, or a name mapped by --label-map
    const style = i % 3 === 2 || id2label[label] === "crane" ? "map" : i % 2 === 0 ? "name" : "synset";
    const folder = style === "name" ? id2label[label] : style === "synset" ? IMAGENET_1K_SYNSETS[label] : `mapped-${i}`;
    if (style === "map") mapLines.push(`${folder}\t${i % 2 ? IMAGENET_1K_SYNSETS[label] : label}`);
    const file = join(root, folder, `img-${String(i).padStart(2, "0")}.${i % 4 === 3 ? "jpg" : "png"}`);
    await mkdir(join(root, folder), { recursive: true });
    await writeFile(file, bytes);
    made.push({ file, label });
  }
  broken = join(root, IMAGENET_1K_SYNSETS[1], "broken.png");
  await mkdir(join(root, IMAGENET_1K_SYNSETS[1]), { recursive: true });
  await writeFile(broken, makeImage(7, 30, 30).subarray(0, 60)); // a truncated PNG
  await writeFile(join(root, "README.txt"), "not an image: skipped by the walk");
  await writeFile(join(root, IMAGENET_1K_SYNSETS[1], "notes.txt"), "not an image either");
  flatLabels = join(dir, "flat-labels.txt");
  await writeFile(flatLabels, made.map(({ file, label }, i) => {
    const text = i % 3 === 0 && id2label[label] !== "crane" ? id2label[label] : i % 3 === 1 ? IMAGENET_1K_SYNSETS[label] : String(label);
    const rel = file.slice(root.length + 1);
    return `${rel}${i % 2 || rel.includes(" ") ? "\t" : " "}${text}\n`; // a path with spaces needs the tab
  }).join(""));
  labelMap = join(dir, "label-map.txt");
  await writeFile(labelMap, `${mapLines.join("\n")}\n`);
  images = [...made.map((m) => m.file), broken].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const n = made.length;
  expected = { n, top1: made.filter((_, i) => i % 3 === 0).length / n, top5: made.filter((_, i) => i % 3 !== 2).length / n, failed: [broken] };
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("perceiver eval, classify and embed on a folder", () => {
  it("eval: summary, records, shards that merge to the unsharded run, no bar off a terminal", async () => {
    const out = (name: string) => join(dir, name);
    const common = ["--model", model, "--label-map", labelMap, "--json", "--batch-size", "3"];
    const [full, ...shards] = await Promise.all([
      cli(["eval", root, ...common, "--out", out("full.jsonl")]),
      ...[0, 1, 2].map((i) => cli(["eval", root, ...common, "--out", out(`s${i}.jsonl`), "--shard", `${i}/3`])),
    ]);
    expect(full.code, full.stderr).toBe(1); // the broken image
    expect(JSON.parse(full.stdout)).toEqual(expected);
    const recs = await records(out("full.jsonl"));
    expect(recs.map((r) => r.file)).toEqual(images);
    const bad = recs.find((r) => r.file === broken);
    expect(bad).toEqual({ file: broken, error: { code: "IMAGE_DECODE", message: expect.stringContaining("broken.png") } });
    for (const r of recs.filter((r) => r !== bad)) {
      expect(Object.keys(r)).toEqual(["file", "true_label", "seconds", "batch", "top_k"]);
      expect(r.top_k).toHaveLength(5);
    }
    // off a terminal: no bar, but the summary line
    expect(full.stderr).not.toMatch(/\r|ETA|█|░/);
    expect(full.stderr).toMatch(/eval: 13 images in [\d.]+ s \([\d.]+ images\/s, batch size 3\), 12 ok, 1 failed/);
    // every matcher was used: exact label, synset id, --label-map
    const m = /class folders: (\d+) by label, (\d+) by synset id, (\d+) by --label-map/.exec(full.stderr);
    expect(m?.slice(1).map(Number).every((k) => k > 0), full.stderr).toBe(true);

    // shards: disjoint and complete; merged, the same summary
    const parts = await Promise.all([0, 1, 2].map((i) => records(out(`s${i}.jsonl`))));
    expect(parts.flat().map((r) => r.file).sort()).toEqual(images);
    expect(parts.every((p) => p.length >= 4)).toBe(true);
    shards.forEach((s) => expect(s.code === 0 || s.code === 1, s.stderr).toBe(true));
    const [merged, mergedText, exists] = await Promise.all([
      cli(["eval", "--merge", out("s0.jsonl"), out("s1.jsonl"), out("s2.jsonl"), "--json"]),
      cli(["eval", "--merge", out("s2.jsonl"), out("s0.jsonl"), out("s1.jsonl")]),
      cli(["eval", root, ...common, "--out", out("full.jsonl")]),
    ]);
    expect(merged.stdout).toBe(full.stdout);
    expect(merged.code).toBe(1);
    expect(mergedText.stdout.trim()).toBe(
      `eval: 12 images evaluated, top-1 ${(100 * expected.top1).toFixed(2)}% (4/12), top-5 ${(100 * expected.top5).toFixed(2)}% (8/12), 1 failed (${broken})`,
    );
    expect(exists.code).toBe(2);
    expect(exists.stderr).toMatch(/full\.jsonl exists .*--resume continues it, --force replaces it/);
  }, 300_000);

  it("classify: glob, --files-from -, text with the batch share; embed --out and --features-out; paths checked before the model; eval --labels", async () => {
    const pngs = images.filter((f) => f.endsWith(".png") && f !== broken);
    const jpgs = images.filter((f) => f.endsWith(".jpg"));
    const feats = join(dir, "features.safetensors");
    const [text, emb, missing, flat] = await Promise.all([
      cli(["classify", `${root}/*/*.png`, "--files-from", "-", "--model", model, "--batch-size", "2", "--top-k", "1"], { stdin: `${jpgs.join("\n")}\n${pngs[0]}\n` }),
      cli(["embed", root, "--model", model, "--out", join(dir, "emb.jsonl"), "--features-out", feats, "--batch-size", "2"]),
      cli(["classify", join(dir, "nope.png"), "--model", "someone/not-downloaded"]),
      cli(["eval", root, "--model", model, "--labels", flatLabels, "--json", "--out", join(dir, "flat.jsonl")]),
    ]);
    // flat layout: the same true labels from a --labels file; broken.png has no line, so it fails undecoded
    expect(flat.code).toBe(1);
    expect(JSON.parse(flat.stdout)).toEqual(expected);
    expect((await records(join(dir, "flat.jsonl"))).find((r) => r.file === broken)?.error.code).toBe("LABEL_MISSING");
    expect(text.code).toBe(1); // the glob takes broken.png
    const named = text.stdout.split("\n").filter((l) => l.startsWith("/"));
    // the glob's files sorted (broken.png fails: on stderr), then the list's files not taken already
    expect(named.map((l) => l.slice(0, l.indexOf("  ")))).toEqual([...pngs, ...jpgs]);
    for (const l of named) expect(l).toMatch(/ \(\d+\.\d\d s\/image, batch of 2\)$|\(\d+\.\d\d s\)$/);
    expect(text.stderr).toMatch(/perceiver: error: .*broken\.png/);

    expect(emb.code).toBe(1);
    const recs = (await records(join(dir, "emb.jsonl"))).filter((r) => !r.error);
    expect(recs).toHaveLength(12);
    const st = await readSafetensorsFile(feats);
    expect(st.info("pooled")).toMatchObject({ dtype: "F32", shape: [12, 64] });
    expect(JSON.parse(st.metadata.files)).toEqual(recs.map((r) => r.file));
    const pooled = st.getFloat32("pooled");
    recs.forEach((r, i) => expect(Array.from(pooled.subarray(i * 64, (i + 1) * 64))).toEqual(r.pooled));

    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\.png: no such file/); // not the hub's offline error: checked first
  }, 300_000);

  it("resume after SIGKILL loses nothing and repeats nothing; the bar shows on a terminal", async () => {
    // images large enough (decoding dominates) that the run is still going after its first records
    const big = join(dir, "big");
    await mkdir(big);
    for (let i = 0; i < 10; i++) await writeFile(join(big, `p${i}.jpg`), makeImage(500 + i, 1200, 900, "jpeg"));
    const out = join(dir, "killed.jsonl");
    const args = ["classify", big, "--model", model, "--out", out, "--batch-size", "1", "--decode-workers", "0"];
    const hasScript = spawnSync("script", ["--version"]).status === 0;
    const tty = join(dir, "tty.jsonl");
    const [killed, onTty] = await Promise.all([
      cli(args, { killWhen: async () => (await lines(out)).length >= 2 }),
      hasScript
        ? new Promise<string>((res) => {
          const cmd = [process.execPath, "--import", "tsx", join(ROOT, "src/cli/main.ts"), "classify", root, "--model", model, "--out", tty]
            .map((a) => `'${a}'`).join(" ");
          const c = spawn("script", ["-qfec", cmd, "/dev/null"], { cwd: ROOT, env: { ...process.env, PERCEIVER_THREADS: "1" } });
          let text = "";
          c.stdout.on("data", (d) => (text += d));
          c.on("close", () => res(text));
        })
        : Promise.resolve(null),
    ]);
    expect(killed.killed).toBe(true);
    const before = await readFile(out, "utf8");
    const kept = before.split("\n").filter((l) => l !== "");
    expect(kept.length).toBeGreaterThanOrEqual(2);
    expect(kept.length).toBeLessThan(10); // killed mid-run
    await appendFile(out, `{"file":"${join(big, "p9.jpg")}","seconds":0.1,"top_`); // as if killed inside a write
    const resumed = await cli([...args, "--resume"]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(new RegExp(`resuming: ${kept.length} done, ${10 - kept.length} to do; cut a torn last line`));
    const after = await readFile(out, "utf8");
    expect(after.startsWith(before.endsWith("\n") ? before : before.slice(0, before.lastIndexOf("\n") + 1))).toBe(true);
    const files = (await records(out)).map((r) => r.file);
    expect(files.sort()).toEqual(Array.from({ length: 10 }, (_, i) => join(big, `p${i}.jpg`)));
    // the bar: done/total, images/s and ETA, on a terminal only (the other runs above had none)
    if (onTty !== null) {
      expect(onTty).toMatch(/classify \[.*\] \d+\/13 images \| [\d.]+ images\/s \| ETA/);
      expect(onTty).toMatch(/13\/13 images/);
    }
  }, 300_000);
});
