/**
 * The CLI's rough edges (#23 item 5): the download bar's units and ETA, a reader that goes away (EPIPE), unknown or
 * malformed options, and output files that already exist.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closestOption, editDistance, parseCommandArgs } from "../src/cli/args.js";
import { downloadFields, downloadProgress, formatDuration, inferenceProgress } from "../src/cli/progress.js";
import { PerceiverError } from "../src/errors.js";
import { ROOT, runCli } from "./helpers/cli.js";
import { fixture } from "./helpers/golden.js";

const TINY = fixture("tiny-conv");
const CAT = fixture("images", "chelsea.png");
const BIN = fixture("pickle", "tiny-conv.pytorch_model.bin");

/** A stream that says it is a terminal and keeps what is written, with escape sequences removed. */
class FakeTty extends Writable {
  isTTY = true;
  columns = 150;
  text = "";
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString().replace(/\x1b(\[[0-9;?]*[A-Za-z]|[78])/g, "\n");
    cb();
  }
  lines(): string[] {
    return this.text.split(/[\r\n]+/).map((l) => l.trim()).filter(Boolean);
  }
}

describe("download progress", () => {
  it("formats durations", () => {
    expect([0, 0.2, 9, 59.5, 60, 185, 3599, 3600, 3720].map(formatDuration)).toEqual(
      ["0s", "1s", "9s", "1m00s", "1m00s", "3m05s", "59m59s", "1h00m", "1h02m"]);
  });

  it("gives done, size and speed in one unit, and the ETA from the recent speed", () => {
    // 1,393,832 bytes at 0.3 MB/s: 0.6 MB done after 2 s, 2.6 s to go
    const f = downloadFields(600_000, 1_393_832, [[0, 0], [1, 300_000], [2, 600_000]]);
    expect(f).toEqual({ done: "0.6", size: "1.4 MB", speed: "0.3 MB/s", remaining: "3s" });
    expect(downloadFields(2.5e9, 3e9, [[10, 2e9], [15, 2.5e9]])).toEqual({ done: "2.5", size: "3.0 GB", speed: "0.1 GB/s", remaining: "5s" });
    expect(downloadFields(5_000, 20_000, [[0, 0]])).toEqual({ done: "5.0", size: "20.0 kB", speed: "…", remaining: "…" });
    expect(downloadFields(3e6, null, [[0, 0], [1, 3e6]])).toEqual({ done: "3.0", size: "? MB", speed: "3.0 MB/s", remaining: "?" });
  });

  it("draws `done / size unit speed ETA` on a terminal, never cli-progress's raw total or its `LL` ETA", () => {
    const tty = new FakeTty();
    let t = 100;
    const bar = downloadProgress(true, { stream: tty, now: () => t });
    const total = 1_393_832;
    for (let b = 0; b <= total; b += 69_691.6) {
      bar.onProgress!({ file: "model.safetensors", downloaded: Math.floor(b), total });
      t += 0.2;
    }
    bar.onProgress!({ file: "model.safetensors", downloaded: total, total });
    bar.stop();
    const lines = tty.lines().filter((l) => l.startsWith("downloading"));
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) {
      expect(l).not.toMatch(/LL|NULL|INF|1393832/);
      expect(l).toMatch(/^downloading model\.safetensors \[[^\]]+\] \d+\.\d \/ 1\.4 MB {2}(…|\d\.\d MB\/s) {2}ETA (…|\d+s)$/);
    }
    expect(lines[lines.length - 1]).toMatch(/1\.4 \/ 1\.4 MB {2}0\.3 MB\/s {2}ETA 0s$/);
  });

  it("the layer bar's ETA is ours too, and a file name with braces is printed as it is", () => {
    const tty = new FakeTty();
    let t = 0;
    const bar = inferenceProgress(true, "{value}-{total}.png", { stream: tty, now: () => t });
    for (let d = 0; d <= 4; d++) {
      bar.onProgress!(d, 28);
      t += 2;
    }
    tty.text = "";
    bar.onProgress!(5, 28);
    bar.stop();
    expect(tty.text).not.toMatch(/LL|NULL/);
    expect(tty.text).toMatch(/\{value\}-\{total\}\.png \[[^\]]+\] layer 5\/28 {2}ETA 46s/);
  });
});

describe("option parsing", () => {
  const options = {
    model: { type: "string" }, "top-k": { type: "string" }, "batch-size": { type: "string" }, json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  } as const;
  const err = (args: string[]) => {
    try {
      parseCommandArgs("classify", args, options);
    } catch (e) {
      expect(e).toBeInstanceOf(PerceiverError);
      expect((e as PerceiverError).code).toBe("USAGE");
      return (e as Error).message;
    }
    throw new Error(`no error for ${args.join(" ")}`);
  };

  it("edit distance and the closest option", () => {
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("", "abc")).toBe(3);
    expect(editDistance("modle", "model")).toBe(1);
    expect(editDistance("ca", "abc")).toBe(3);
    expect(closestOption("topk", Object.keys(options))).toBe("top-k");
    expect(closestOption("batch", Object.keys(options))).toBe("batch-size");
    expect(closestOption("JSON", Object.keys(options))).toBe("json");
    expect(closestOption("zzzzzz", Object.keys(options))).toBeNull();
  });

  it("names the unknown option and the closest valid one, in one line", () => {
    expect(err(["a.png", "--topk", "3"])).toBe("classify: unknown option --topk (did you mean --top-k?) (see perceiver classify --help)");
    expect(err(["--modle", "x"])).toMatch(/unknown option --modle \(did you mean --model\?\)/);
    expect(err(["--zzzzzz"])).toMatch(/unknown option --zzzzzz \(valid options: --model, --top-k, --batch-size, --json, --help\)/);
    expect(err(["-x"])).toMatch(/unknown option -x/);
    expect(err(["--constructor"])).toMatch(/unknown option --constructor/);
    expect(err(["--model"])).toBe("classify: --model needs a value (see perceiver classify --help)");
    expect(err(["--top-k", "--json"])).toMatch(/--top-k needs a value, got --json/);
    expect(err(["--json=yes"])).toMatch(/--json is a switch and takes no value/);
    for (const m of [err(["--topk"]), err(["--model"]), err(["--json=1"])]) expect(m).not.toMatch(/\n/);
  });

  it("parses what is valid, like parseArgs", () => {
    expect(parseCommandArgs("classify", ["a.png", "--top-k", "3", "-h", "--json", "b.png", "--top-k=-1"], options)).toEqual({
      values: { "top-k": "-1", help: true, json: true }, positionals: ["a.png", "b.png"],
    });
    expect(parseCommandArgs("classify", ["--", "--json"], options).positionals).toEqual(["--json"]);
    expect(parseCommandArgs("classify", ["--model", "-"], options).values.model).toBe("-"); // "-" = stdin, a value
  });

  it("every command uses it: exit 2 with one line naming the option and the closest one", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["classify", CAT, "--topk", "3"], /^perceiver: error: classify: unknown option --topk \(did you mean --top-k\?\)/],
      [["embed", CAT, "--jsn"], /^perceiver: error: embed: unknown option --jsn \(did you mean --json\?\)/],
      [["attention-map", CAT, "--colourmap", "jet"], /^perceiver: error: attention-map: unknown option --colourmap \(did you mean --colormap\?\)/],
      [["convert", BIN, "x.safetensors", "--forse"], /^perceiver: error: convert: unknown option --forse \(did you mean --force\?\)/],
      [["eval", CAT, "--label", "x.txt"], /^perceiver: error: eval: unknown option --label \(did you mean --labels\?\)/],
      [["train-head", CAT, "--epoch", "3"], /^perceiver: error: train-head: unknown option --epoch \(did you mean --epochs\?\)/],
      [["classify", CAT, "--model"], /^perceiver: error: classify: --model needs a value/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args)));
    results.forEach((r, i) => {
      expect(r.code, cases[i][0].join(" ")).toBe(2);
      expect(r.stderr.trim().split("\n"), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(cases[i][1]);
    });
  });
});

describe("a reader that goes away (EPIPE)", () => {
  /** Runs the CLI, reads stdout up to its first line, then closes the pipe: like `| head -1`. */
  function firstLineThenClose(args: string[]): Promise<{ code: number | null; signal: string | null; first: string; stderr: string }> {
    const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "src/cli/main.ts"), ...args], {
      cwd: ROOT, env: { ...process.env, HF_HUB_OFFLINE: undefined }, stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "", stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.stdout.on("data", (d) => {
      out += d;
      if (out.includes("\n")) child.stdout.destroy();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    return new Promise((res) => child.on("close", (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, first: out.split("\n")[0], stderr });
    }));
  }

  it("classify --json and embed stop quietly with exit 0", async () => {
    const images = Array.from({ length: 40 }, () => CAT);
    const [c, e] = await Promise.all([
      firstLineThenClose(["classify", ...images, "--model", TINY, "--json", "--quiet"]),
      firstLineThenClose(["embed", ...images, "--model", TINY, "--quiet"]),
    ]);
    for (const r of [c, e]) {
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
    }
    expect(JSON.parse(c.first).file).toBe(CAT);
    expect(e.first).toMatch(/dim \d+/);
  });

  it("through a shell pipe to head -1", async () => {
    const cmd = `set -o pipefail; "${process.execPath}" --import tsx src/cli/main.ts classify ${Array(40).fill(`"${CAT}"`).join(" ")} ` +
      `--model "${TINY}" --json --quiet | head -1`;
    const child = spawn("bash", ["-c", cmd], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "", stderr = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (stderr += d));
    const code = await new Promise((res) => child.on("close", res));
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(out.trim().split("\n")).toHaveLength(1);
  });
});

describe("outputs are not overwritten without --force", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "perceiver-force-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("convert refuses an existing file, keeps it intact, and replaces it with --force", async () => {
    const out = join(dir, "model.safetensors");
    await writeFile(out, "precious");
    const refused = await runCli(["convert", BIN, out]);
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim()).toBe(`perceiver: error: ${out} already exists; use --force to overwrite it`);
    expect(await readFile(out, "utf8")).toBe("precious");
    const forced = await runCli(["convert", BIN, out, "--force", "--quiet"]);
    expect(forced.code, forced.stderr).toBe(0);
    expect((await readFile(out)).subarray(8, 9).toString()).toBe("{"); // a safetensors header now
    expect((await readdir(dir)).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  });

  it("attention-map refuses before loading the model when either output exists", async () => {
    const out = join(dir, "map.png");
    await writeFile(join(dir, "map.latents.png"), "precious");
    const refused = await runCli(["attention-map", CAT, "--model", "./nowhere", "--out", out]);
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim()).toBe(`perceiver: error: ${join(dir, "map.latents.png")} already exists; use --force to overwrite it`);
    const first = await runCli(["attention-map", CAT, "--model", TINY, "--out", join(dir, "new.png"), "--quiet"]);
    expect(first.code, first.stderr).toBe(0);
    const again = await runCli(["attention-map", CAT, "--model", TINY, "--out", join(dir, "new.png"), "--quiet"]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/new\.png already exists; use --force/);
    const forced = await runCli(["attention-map", CAT, "--model", TINY, "--out", out, "--quiet", "--force"]);
    expect(forced.code, forced.stderr).toBe(0);
    expect((await readFile(join(dir, "map.latents.png"))).subarray(1, 4).toString()).toBe("PNG");
    expect((await readdir(dir)).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  });
});
