/** The dataset pieces in-process: input expansion, shards, the JSONL file and --resume repair, true labels, the tally. */
import { appendFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EvalTally } from "../src/cli/dataset/accuracy.js";
import { DecodePool } from "../src/cli/dataset/decode-pool.js";
import { runDataset } from "../src/cli/dataset/run.js";
import { PerceiverError } from "../src/errors.js";
import { expandInputs } from "../src/cli/dataset/inputs.js";
import { checkOutputFile, JsonlWriter, repairForResume, scanJsonl } from "../src/cli/dataset/jsonl.js";
import { parseShard, shardFiles } from "../src/cli/dataset/shard.js";
import { resolveLabel, trueLabels } from "../src/cli/dataset/true-labels.js";
import { IMAGENET_1K_SYNSETS } from "../src/perceiver/imagenet-synsets.js";
import { makeImage, rng } from "./helpers/dataset.js";
import { fixture } from "./helpers/golden.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "perceiver-ds-"));
  // d/b/2.png d/b/1.JPG d/a/x.png d/a/deep/y.jpeg d/a/noext (PNG bytes) d/a/notes.txt d/.hidden/z.png d/a/.dot.png
  for (const p of ["d/b", "d/a/deep", "d/.hidden", "e"]) await mkdir(join(dir, p), { recursive: true });
  const png = makeImage(1, 8, 8);
  for (const p of ["d/b/2.png", "d/b/1.JPG", "d/a/x.png", "d/a/deep/y.jpeg", "d/a/noext", "d/.hidden/z.png", "d/a/.dot.png"]) await writeFile(join(dir, p), png);
  await writeFile(join(dir, "d/a/notes.txt"), "not an image");
  await symlink(join(dir, "d"), join(dir, "d/a/loop")); // a link cycle: walked once
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("expandInputs", () => {
  it("walks directories (images by extension or content, sorted, no dot files), keeps argument order, dedups", async () => {
    const d = join(dir, "d");
    const files = await expandInputs([d, join(dir, "d/b/2.png")], { command: "t" });
    expect(files).toEqual(["d/a/deep/y.jpeg", "d/a/noext", "d/a/x.png", "d/b/1.JPG", "d/b/2.png"].map((p) => join(dir, p)));
  });

  it("expands globs (sorted), reads --files-from (a file or stdin), and names what is wrong", async () => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      expect(await expandInputs(["d/*/*.png", "d/**/*.jpeg"], { command: "t" })).toEqual(["d/a/x.png", "d/b/2.png", "d/a/deep/y.jpeg"]);
      await writeFile("list.txt", "d/b/2.png\r\n\nd/a\n");
      // d/a/loop links to d: walking d/a follows it into d/b, and stops at d/a (walked already)
      expect(await expandInputs([], { command: "t", filesFrom: "list.txt" })).toEqual(
        ["d/b/2.png", "d/a/deep/y.jpeg", "d/a/loop/b/1.JPG", "d/a/loop/b/2.png", "d/a/noext", "d/a/x.png"],
      );
      const stdin = Readable.from([Buffer.from("d/a/x.png\nd/b/1.JPG\n")]);
      expect(await expandInputs(["d/b/2.png"], { command: "t", filesFrom: "-", stdin })).toEqual(["d/b/2.png", "d/a/x.png", "d/b/1.JPG"]);
      await expect(expandInputs(["d/nope.png"], { command: "t" })).rejects.toThrow(/d\/nope\.png: no such file/);
      await expect(expandInputs(["d/*.gif"], { command: "t" })).rejects.toThrow(/d\/\*\.gif: the pattern matches no file/);
      await expect(expandInputs(["e"], { command: "t" })).rejects.toThrow(/e: the directory holds no image \(PNG, JPEG, WebP, GIF or BMP\)/);
      await writeFile("bad-list.txt", "d/a/x.png\nmissing.png\n");
      await expect(expandInputs([], { command: "t", filesFrom: "bad-list.txt" })).rejects.toThrow(/bad-list\.txt.*missing\.png/);
      await expect(expandInputs([], { command: "t" })).rejects.toMatchObject({ code: "USAGE" });
    } finally {
      process.chdir(cwd);
    }
  });
});

describe("shards", () => {
  it("are disjoint, complete, balanced and independent of the input order", () => {
    const r = rng(7);
    for (const n of [0, 1, 5, 17, 100]) {
      const files = Array.from({ length: n }, (_, i) => `img/${String(Math.floor(r() * 1e6)).padStart(6, "0")}-${i}.png`);
      const shuffled = [...files].sort(() => r() - 0.5);
      for (const count of [1, 2, 3, 7]) {
        const parts = Array.from({ length: count }, (_, index) => shardFiles(files, { index, count }));
        expect(parts.flat().sort()).toEqual([...files].sort());
        expect(new Set(parts.flat()).size).toBe(n);
        const sizes = parts.map((p) => p.length);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        // the same files in another order: each shard holds the same set
        parts.forEach((p, index) => expect(new Set(shardFiles(shuffled, { index, count }))).toEqual(new Set(p)));
        // within a shard, the input order
        parts.forEach((p) => expect(p).toEqual(files.filter((f) => p.includes(f))));
      }
    }
  });

  it("--shard I/N and auto from Kubernetes or SLURM", () => {
    expect(parseShard(undefined, undefined)).toBeNull();
    expect(parseShard("2/5", undefined)).toEqual({ index: 2, count: 5 });
    expect(parseShard("auto", "4", { JOB_COMPLETION_INDEX: "3" })).toEqual({ index: 3, count: 4 });
    expect(parseShard("auto", undefined, { SLURM_ARRAY_TASK_ID: "6", SLURM_ARRAY_TASK_MIN: "1", SLURM_ARRAY_TASK_COUNT: "8" })).toEqual({ index: 5, count: 8 });
    expect(parseShard("auto", "3", { SLURM_ARRAY_TASK_ID: "0" })).toEqual({ index: 0, count: 3 });
    for (const [spec, shards, env, re] of [
      ["5/5", undefined, {}, /index must be from 0 to 4/],
      ["1/0", undefined, {}, /count must be from 1/],
      ["x", undefined, {}, /I\/N/],
      ["auto", undefined, { JOB_COMPLETION_INDEX: "1" }, /needs --shards N/],
      ["auto", undefined, { SLURM_ARRAY_TASK_ID: "1" }, /SLURM_ARRAY_TASK_COUNT is not set/],
      ["auto", "2", { SLURM_ARRAY_TASK_ID: "1", SLURM_ARRAY_TASK_COUNT: "3" }, /disagrees/],
      ["auto", undefined, {}, /neither JOB_COMPLETION_INDEX/],
      [undefined, "3", {}, /--shards N goes with --shard auto/],
    ] as const) {
      expect(() => parseShard(spec, shards, env as NodeJS.ProcessEnv), `${spec} ${shards}`).toThrow(re);
    }
  });
});

describe("the JSONL file", () => {
  it("a torn last line is cut, failed and repeated records are dropped, a bad middle line stops --resume", async () => {
    const path = join(dir, "out.jsonl");
    const w = JsonlWriter.open(path, false);
    w.write({ file: "a", top_k: [] });
    w.write({ file: "b", error: { code: "IMAGE_DECODE", message: "bad" } });
    w.write({ file: "c", top_k: [], text: "ü\n\"" });
    w.close();
    const clean = await readFile(path, "utf8");
    await appendFile(path, '{"file":"d","top_k":[{"ind');
    const keepOk = (r: { file: string; error?: unknown }) => r.error === undefined;
    // torn tail only: truncated in place
    const p2 = join(dir, "out2.jsonl");
    await writeFile(p2, `${clean.split("\n").filter((l) => !l.includes('"b"')).join("\n")}{"file":"d"`);
    expect(await repairForResume(p2, () => true)).toEqual({ tornBytes: 11, dropped: 0 });
    expect(await readFile(p2, "utf8")).toBe(clean.split("\n").filter((l) => !l.includes('"b"')).join("\n"));
    // torn tail and a failed record: rewritten
    const r = await repairForResume(path, keepOk);
    expect(r.dropped).toBe(1);
    expect(r.tornBytes).toBeGreaterThan(0);
    const lines = (await readFile(path, "utf8")).split("\n");
    expect(lines.pop()).toBe("");
    expect(lines.map((l) => JSON.parse(l).file)).toEqual(["a", "c"]);
    expect(JSON.parse(lines[1]).text).toBe("ü\n\"");
    // a bad line that is not the last
    await writeFile(p2, '{"file":"a"}\nnot json\n{"file":"b"}\n');
    await expect(scanJsonl(p2, () => true)).rejects.toThrow(/line 2: not JSON/);
    // a complete but garbled last line (power loss) counts as torn
    await writeFile(p2, '{"file":"a"}\n\u0000\u0000\n');
    expect((await scanJsonl(p2, () => true)).validBytes).toBe(13);
  });
});

describe("output files", () => {
  it("are checked before the run: no silent overwrite, a missing directory named", async () => {
    const flag = "--out";
    const existing = join(dir, "d/a/x.png");
    await expect(checkOutputFile(existing, { flag })).rejects.toThrow(/exists \(\d+ bytes\): --resume continues it, --force replaces it/);
    expect(await checkOutputFile(existing, { flag, force: true })).toBe(true);
    expect(await checkOutputFile(existing, { flag, resume: true })).toBe(true);
    expect(await checkOutputFile(join(dir, "new.jsonl"), { flag })).toBe(false);
    await expect(checkOutputFile(join(dir, "no-dir/out.jsonl"), { flag })).rejects.toThrow(/no-dir: no such directory/);
    await expect(checkOutputFile(join(dir, "d"), { flag })).rejects.toThrow(/not a regular file/);
  });
});

describe("true labels", () => {
  const imagenet = { numLabels: 1000, id2label: JSON.parse("{}") as Record<number, string> };
  beforeAll(async () => {
    Object.assign(imagenet.id2label, JSON.parse(await readFile(fixture("imagenet-1k-id2label.json"), "utf8")));
  });

  it("the shipped synset list has 1000 distinct ids in class order", () => {
    expect(IMAGENET_1K_SYNSETS).toHaveLength(1000);
    expect(new Set(IMAGENET_1K_SYNSETS).size).toBe(1000);
    expect(IMAGENET_1K_SYNSETS[281]).toBe("n02123045"); // tabby, tabby cat
    expect(IMAGENET_1K_SYNSETS[0]).toBe("n01440764"); // tench
  });

  it("a label is a name, a synset (1000-class models), or an index", () => {
    expect(resolveLabel("tabby, tabby cat", imagenet)).toBe(281);
    expect(resolveLabel("n02123045", imagenet)).toBe(281);
    expect(resolveLabel("281", imagenet)).toBe(281);
    expect(resolveLabel("281", imagenet, { allowIndex: false })).toBeUndefined();
    expect(resolveLabel("1000", imagenet)).toBeUndefined();
    expect(resolveLabel("tabby", imagenet)).toBeUndefined();
    expect(resolveLabel("crane", imagenet)).toBeUndefined(); // two classes (134, 517) share the name
    expect(resolveLabel(IMAGENET_1K_SYNSETS[517], imagenet)).toBe(517);
    const ten = { numLabels: 10, id2label: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [i, `class_${i}`])) };
    expect(resolveLabel("n01440764", ten)).toBeUndefined(); // synsets only for ImageNet-1k heads
    expect(resolveLabel("class_3", ten)).toBe(3);
  });

  it("ImageFolder by exact label, synset and --label-map; flat with --labels", async () => {
    const root = join(dir, "root");
    const files = [
      "tabby, tabby cat/1.png", "tabby, tabby cat/sub/2.png", "n01440764/3.png", "kitty/4.png", "fish/5.png", "loose.png",
    ].map((p) => join(root, p));
    const map = join(dir, "map.txt");
    await writeFile(map, "# folder label\nkitty\tn02123045\nfish 0\n");
    const t = await trueLabels(files, [root], imagenet, { labelMapFile: map });
    expect([...t.labels.values()]).toEqual([281, 281, 0, 281, 0]);
    expect(t.matched).toEqual({ byMap: 2, byName: 1, bySynset: 1 });
    expect(t.missing.get(join(root, "loose.png"))?.message).toMatch(/not in a class folder/);
    const json = join(dir, "map.json");
    await writeFile(json, JSON.stringify({ kitty: "tabby, tabby cat", fish: 1 }));
    expect([...(await trueLabels(files.slice(3, 5), [root], imagenet, { labelMapFile: json })).labels.values()]).toEqual([281, 1]);
    await expect(trueLabels([join(root, "dogz/1.png")], [root], imagenet, {})).rejects.toThrow(/class folder \("dogz"\) match no label/);
    // flat: "path label" lines, the label a name (spaces and commas included), a synset or an index
    const labels = join(dir, "labels.txt");
    await writeFile(labels, "a.png tabby, tabby cat\nsub/b.png\tn01440764\n./c.png 7\n");
    const flat = await trueLabels(["a.png", "sub/b.png", "c.png", "d.png"].map((p) => join(root, p)), [root], imagenet, { labelsFile: labels });
    expect([...flat.labels.values()]).toEqual([281, 0, 7]);
    expect(flat.missing.get(join(root, "d.png"))?.message).toMatch(/no line for d\.png/);
    await writeFile(labels, "a.png tabby\n");
    await expect(trueLabels([join(root, "a.png")], [root], imagenet, { labelsFile: labels })).rejects.toThrow(/"tabby"\) name no class/);
  });

  it("the summary depends on the set of records only; a retried success replaces a failure", () => {
    const records: [string, { label: number; top: number[] } | null][] = [
      ["a", { label: 1, top: [1, 2, 3, 4, 5] }], ["b", { label: 5, top: [1, 2, 3, 4, 5] }], ["c", null],
      ["d", { label: 9, top: [1, 2, 3, 4, 5, 9] }], ["e", null], ["e", { label: 0, top: [0] }],
    ];
    const one = new EvalTally();
    records.forEach(([f, o]) => one.add(f, o));
    const two = new EvalTally();
    [...records].reverse().forEach(([f, o]) => two.add(f, o));
    expect(one.summary()).toEqual({ n: 4, top1: 0.5, top5: 0.75, failed: ["c"] });
    expect(two.summary()).toEqual(one.summary());
  });
});

describe("decode workers", () => {
  it("give the same pixels as decoding on the main thread, and failures as values", async () => {
    const files = [join(dir, "d/a/x.png"), join(dir, "d/a/notes.txt"), join(dir, "d/b/2.png"), join(dir, "missing.png")];
    const opts = { processorConfig: {}, exifOrientation: true };
    const pool = DecodePool.create({ workers: 2, ...opts });
    const inline = DecodePool.create({ workers: 0, ...opts });
    try {
      const [a, b] = await Promise.all([Promise.all(files.map((f) => pool.decode(f))), Promise.all(files.map((f) => inline.decode(f)))]);
      expect(a).toEqual(b);
      expect(a.map((d) => ("error" in d ? d.error.code : `${d.height}x${d.width}`))).toEqual(["224x224", "IMAGE_UNSUPPORTED", "224x224", "INPUT_INVALID"]);
    } finally {
      await pool.close();
      await inline.close();
    }
  });
});

describe("the dataset loop", () => {
  it("batches in list order, records failures in place, splits a batch at a size change, survives a failed forward", async () => {
    const sizes = [[8, 8], [8, 8], [8, 8], [8, 8], [9, 7], [9, 7], [8, 8], [8, 8]];
    const files: string[] = [];
    for (const [i, [w, h]] of sizes.entries()) {
      const f = join(dir, `loop-${i}.png`);
      await writeFile(f, makeImage(i, w, h));
      files.push(f);
    }
    files.splice(2, 0, join(dir, "d/a/notes.txt")); // not an image: fails in place
    const pool = DecodePool.create({ workers: 0, processorConfig: { doResize: false, doCenterCrop: false }, exifOrientation: true });
    const batches: string[][] = [];
    const emitted: { file: string; error?: { code: string } }[] = [];
    const r = await runDataset({
      files, pool, batchSize: 3,
      prefail: new Map([[files[1], { code: "LABEL_MISSING", message: "no label" }]]),
      async compute(pixels, batch) {
        expect(pixels.shape[0]).toBe(batch.length);
        batches.push(batch.map((f) => f.slice(dir.length + 1)));
        if (batch.some((f) => f.endsWith("loop-4.png"))) throw new PerceiverError("MEMORY_LIMIT", "too big");
        return batch.map((file) => ({ file, shape: pixels.shape }));
      },
      emit: (rec) => void emitted.push(rec as never),
    });
    expect(emitted.map((e) => e.file)).toEqual(files);
    expect(emitted.map((e) => e.error?.code ?? "ok")).toEqual(["ok", "LABEL_MISSING", "IMAGE_UNSUPPORTED", "ok", "ok", "MEMORY_LIMIT", "MEMORY_LIMIT", "ok", "ok"]);
    // 8x8: images 0, 2, 3 (1 has no label, notes.txt fails); the 9x7 pair, closed by the 8x8 image after it; the last two
    expect(batches).toEqual([["loop-0.png", "loop-2.png", "loop-3.png"], ["loop-4.png", "loop-5.png"], ["loop-6.png", "loop-7.png"]]);
    expect(r).toMatchObject({ ok: 5, failed: 4 });
  });
});
