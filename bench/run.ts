/**
 * npm run bench: perceiver-ts against its peers, every number measured in this run on this machine.
 *  0. First, the cores' ceilings at each thread count (bench/ceiling.ts, a few seconds each): f32x4 multiply-adds
 *     on registers alone and with the GEMM kernel's loads, plain-JavaScript scalar ones, and the ts backend's asm.js
 *     kernel on one block in cache; the targets table quotes them beside the absolute targets.
 *  1. GEMM GFLOP/s on the model's shapes: perceiver-ts (each backend src/tensor/gemm.ts offers) vs tfjs (cpu,
 *     wasm), onnxruntime-web and onnxruntime-node, at each thread count a peer supports.
 *  2. The full model (vision-perceiver-conv, 369 GFLOP/image): load time, seconds per image at batch 1 and 4, peak
 *     RSS; perceiver-ts on weights/full-synthetic, onnxruntime-node/-web on bench/graph_with_ext.onnx with
 *     generated weights, PyTorch (transformers) when importable.
 * Every configuration runs in its own child process (bench/child.ts, bench/pytorch_bench.py): clean peak RSS, and
 * thread pools that are fixed at initialization.
 *  3. Paired rounds (--rounds, default 3): per thread count, a fresh child per engine loads the model and runs
 *     batch 1 once; then each runs one more batch-1 forward, in turn, round after round (the order rotating), so
 *     that every ratio is also taken between runs seconds apart, under the same machine conditions.
 * The Node children run plain `node` on JavaScript that tsc
 * compiles from bench/ and src/ into bench/.build/ at the start of the run (tsconfig.bench.json), as a user of
 * the built package would: under `--import tsx` every child also carried tsx's module loader thread (about 75 MB
 * of RSS on this machine) and its on-the-fly compilation. Markdown on stdout, progress on stderr, every number in
 * bench/results/bench-<date>.json. Options: see --help.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ensureFullCheckpoint } from "../test/helpers/full-model.js";
import type { ChildTask } from "./child.js";
import type { CeilingResult } from "./ceiling.js";
import {
  GEMM_SHAPES, RESULT_MARK, ROUND_MARK, type BatchProtocol, type GemmResult, type ModelResult, type RoundsResult,
} from "./common.js";
import { withSymbolicBatch } from "./onnx-proto.js";
import { ensureOnnxWeights } from "./onnx-weights.js";
import { PEER_GEMM_ENGINES, type PeerGemmEngine } from "./peers-gemm.js";
import type { OnnxModelFiles } from "./peers-model.js";
import { ROUND_LIMIT_S, ROUND_PAUSE_MS, renderReport, type SavedRun } from "./report.js";

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH, "..");
const RESULTS = join(BENCH, "results");
/** Where tsconfig.bench.json compiles bench/ (and the src/ and test/ files it imports) to. */
const BUILD = join(BENCH, ".build");

const HELP = `npm run bench -- [options]
  --quick              GEMM table + full model at batch 1 only, fewer repeats
  --only ours|peers    only perceiver-ts, or only the peers
  --backends ts,wasm   perceiver-ts backends (default: ts,wasm; one that src/tensor/gemm.ts lacks is reported as skipped)
  --threads 1,2        thread counts (default: 1,2)
  --batch 1,4          full-model batch sizes (default: 1,4; by default a batch whose estimate exceeds
                       --batch-budget is skipped, an explicit --batch always runs)
  --batch-budget S     seconds (default: 240)
  --extra-budget S     seconds for the batch-1 runs after the first (default: 45; 10 with --quick)
  --rounds N           paired rounds after the full-model rows (default: 3; 1 with --quick; 0: none): every
                       engine of a thread count runs batch 1 once per round, in turn (configurations slower
                       than ${ROUND_LIMIT_S} s/image sit out)
  --gemm-only | --model-only
  --python PATH        Python for bench/pytorch_bench.py (default: .venv/bin/python if present, else python3)
  --no-pytorch         skip PyTorch
  --report FILE        measure nothing: print the report of a saved run (bench/results/bench-<date>.json) again`;

function list(s: string, name: string): number[] {
  const xs = s.split(",").map((x) => Number(x.trim()));
  if (xs.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`--${name}: expected positive integers like 1,2, got "${s}"`);
  return [...new Set(xs)].sort((a, b) => a - b);
}

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      backends: { type: "string", default: "ts,wasm" },
      threads: { type: "string", default: "1,2" },
      batch: { type: "string" },
      "batch-budget": { type: "string", default: "240" },
      "extra-budget": { type: "string" },
      rounds: { type: "string" },
      "gemm-only": { type: "boolean", default: false },
      "model-only": { type: "boolean", default: false },
      python: { type: "string" },
      "no-pytorch": { type: "boolean", default: false },
      report: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  if (values.only !== undefined && values.only !== "ours" && values.only !== "peers") throw new Error(`--only: expected ours or peers, got "${values.only}"`);
  if (values["extra-budget"] !== undefined && !(Number(values["extra-budget"]) >= 0)) {
    throw new Error(`--extra-budget: expected seconds >= 0, got "${values["extra-budget"]}"`);
  }
  if (values.rounds !== undefined && !/^\d+$/.test(values.rounds)) throw new Error(`--rounds: expected an integer >= 0, got "${values.rounds}"`);
  const batches = values.batch !== undefined ? list(values.batch, "batch") : values.quick ? [1] : [1, 4];
  const protocol: BatchProtocol = {
    extraBudgetS: values["extra-budget"] !== undefined ? Number(values["extra-budget"]) : values.quick ? 10 : 45,
    maxExtra: 3,
    batchBudgetS: values.batch !== undefined ? null : Number(values["batch-budget"]),
  };
  const venv = join(ROOT, ".venv/bin/python");
  return {
    quick: values.quick,
    ours: values.only !== "peers",
    peers: values.only !== "ours",
    backends: values.backends.split(",").map((b) => b.trim()).filter(Boolean),
    threads: list(values.threads, "threads"),
    batches,
    protocol,
    rounds: values.rounds !== undefined ? Number(values.rounds) : values.quick ? 1 : 3,
    gemm: !values["model-only"],
    model: !values["gemm-only"],
    python: values.python ?? (existsSync(venv) ? venv : "python3"),
    pytorch: !values["no-pytorch"],
    report: values.report,
  };
}

/** A child process (bench/child.ts or pytorch_bench.py): its answer, and with `serve` its paired rounds. */
interface Child {
  /** the answer (the RESULT_MARK line), or { error }; without `serve`, once the process has ended */
  result: Promise<Record<string, unknown>>;
  /** one paired round (serve only): "run" -> the ROUND_MARK answer, or { error } (the process is killed after timeoutS) */
  round(timeoutS: number): Promise<{ seconds?: number; error?: string }>;
  /** ends a served process ("exit"; killed if it has not ended within 10 s) */
  close(): Promise<void>;
}

/** Starts a child; it is killed if it has not answered within timeoutS. Its other stdout lines go to stderr. */
function startChild(cmd: string, args: string[], env: Record<string, string>, timeoutS: number, serve = false): Child {
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: [serve ? "pipe" : "ignore", "pipe", "inherit"] });
  let answer: Record<string, unknown> | null = null;
  let settle!: (r: Record<string, unknown>) => void;
  const result = new Promise<Record<string, unknown>>((done) => (settle = done));
  const rounds: ((line: string | null) => void)[] = [];
  let ended = false;
  const ends = new Promise<void>((done) => {
    child.on("close", () => done());
    child.on("error", () => done()); // e.g. the command does not exist: there will be no "close"
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutS * 1000);
  let buffered = "";
  child.stdin?.on("error", () => {}); // a process that already ended: "exit" finds the pipe closed (EPIPE)
  const stdout = child.stdout!; // stdio[1] is "pipe"
  stdout.setEncoding("utf8");
  stdout.on("data", (d: string) => {
    buffered += d;
    for (let i = buffered.indexOf("\n"); i >= 0; i = buffered.indexOf("\n")) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      if (line.startsWith(RESULT_MARK) && answer === null) {
        answer = JSON.parse(line.slice(RESULT_MARK.length)) as Record<string, unknown>;
        if (serve) {
          clearTimeout(timer);
          settle(answer);
        }
      } else if (line.startsWith(ROUND_MARK)) rounds.shift()?.(line.slice(ROUND_MARK.length));
      else if (line) process.stderr.write(`${line}\n`);
    }
  });
  child.on("error", (e) => {
    ended = true;
    clearTimeout(timer);
    for (const r of rounds.splice(0)) r(null);
    settle({ error: `${cmd}: ${e.message}` });
  });
  child.on("close", (code, signal) => {
    ended = true;
    clearTimeout(timer);
    for (const r of rounds.splice(0)) r(null);
    if (answer) settle(answer);
    else settle({ error: signal ? `killed by ${signal}${signal === "SIGKILL" ? ` (timeout ${timeoutS} s?)` : ""}` : `exited with code ${code} without a result` });
  });
  return {
    result,
    round(roundTimeoutS) {
      if (ended || !child.stdin) return Promise.resolve({ error: "the process has ended" });
      return new Promise((done) => {
        const kill = setTimeout(() => child.kill("SIGKILL"), roundTimeoutS * 1000);
        rounds.push((line) => {
          clearTimeout(kill);
          done(line === null ? { error: `the process ended during the run (timeout ${roundTimeoutS.toFixed(0)} s?)` } : JSON.parse(line) as { seconds?: number; error?: string });
        });
        child.stdin!.write("run\n");
      });
    },
    async close() {
      if (!ended && child.stdin) child.stdin.end("exit\n");
      const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await ends;
      clearTimeout(kill);
    },
  };
}

/** Compiles bench/ with tsc into BUILD (about 2 s); throws with tsc's output if it fails. */
function buildChildren(): void {
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  const r = spawnSync(process.execPath, [tsc, "-p", join(ROOT, "tsconfig.bench.json")], { cwd: ROOT, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`tsc -p tsconfig.bench.json failed:\n${r.stdout}${r.stderr}${r.error?.message ?? ""}`);
}

function nodeChild(task: ChildTask, env: Record<string, string>, timeoutS: number, serve = false): Child {
  return startChild(process.execPath, [join(BUILD, "bench", "child.js"), JSON.stringify({ ...task, serve })], env, timeoutS, serve);
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "not installed";
  }
}

async function prepareOnnx(log: (m: string) => void): Promise<OnnxModelFiles> {
  const model = join(RESULTS, "perceiver-conv.onnx");
  await writeFile(model, withSymbolicBatch(new Uint8Array(await readFile(join(BENCH, "graph_with_ext.onnx")))));
  const externalData = await ensureOnnxWeights(model, join(BENCH, "external.json"), log);
  return { model, externalData };
}

async function main(): Promise<void> {
  const o = options();
  if (o.report !== undefined) {
    let saved: SavedRun;
    try {
      saved = JSON.parse(await readFile(o.report, "utf8")) as SavedRun;
    } catch (e) {
      throw new Error(`--report: cannot read ${o.report}: ${(e as Error).message}`);
    }
    if (!Array.isArray(saved?.gemm) || !Array.isArray(saved?.model) || !saved?.machine) {
      throw new Error(`--report: ${o.report} is not a bench result (no gemm, model and machine)`);
    }
    console.log(renderReport(saved, o.report));
    return;
  }
  const started = new Date();
  const log = (m: string): void => {
    process.stderr.write(`[bench ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s] ${m}\n`);
  };
  await mkdir(RESULTS, { recursive: true });
  log("compiling bench/ for the child processes (tsc -p tsconfig.bench.json)");
  buildChildren();
  const machine = {
    cpu: os.cpus()[0]?.model ?? "unknown",
    cores: os.cpus().length,
    totalMemGiB: os.totalmem() / 2 ** 30,
    node: process.version,
    os: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadAvgStart: os.loadavg(),
    loadAvgEnd: [] as number[],
  };
  const versions: Record<string, string> = {};
  for (const p of ["onnxruntime-node", "onnxruntime-web", "@tensorflow/tfjs-core", "@tensorflow/tfjs-backend-cpu", "@tensorflow/tfjs-backend-wasm"]) {
    versions[p] = packageVersion(p);
  }
  const gemm: GemmResult[] = [];
  const model: ModelResult[] = [];
  const rounds: RoundsResult[] = [];
  const ceiling: CeilingResult[] = [];
  /** bytes of the full checkpoint (model.safetensors) when this run used it: the batch-1 RSS ratio's denominator */
  let weightsBytes: number | undefined;
  const file = join(RESULTS, `bench-${started.toISOString().replace(/[:.]/g, "-").slice(0, 19)}.json`);
  /** the run so far, as saved in `file` and as renderReport reads it */
  const snapshot = (): SavedRun => ({
    started: started.toISOString(), durationS: (Date.now() - started.getTime()) / 1000, machine, versions, options: o, weightsBytes,
    gemmShapes: GEMM_SHAPES, gemm, model, rounds, ceiling,
  });
  const save = async (run: SavedRun = snapshot()): Promise<void> => writeFile(file, `${JSON.stringify(run, null, 2)}\n`);
  let loadAvgBefore = os.loadavg();
  const asResult = <T extends GemmResult | ModelResult>(r: Record<string, unknown>, base: Omit<T, "notes">): T =>
    ({ ...("error" in r ? { ...base, notes: [], skipped: `error: ${String(r.error)}` } : r), loadAvgBefore }) as T;

  // 0. the cores' ceilings, all threads at once
  for (const t of o.threads) {
    log(`ceiling probes, ${t} thread(s)`);
    const r = await nodeChild({ task: "ceiling", threads: t }, {}, 300).result;
    ceiling.push("error" in r ? { threads: t, skipped: `error: ${String(r.error)}`, probes: [] } : (r as unknown as CeilingResult));
    await save();
  }

  // 1. GEMM
  if (o.gemm) {
    const configs: { engine: "perceiver-ts" | PeerGemmEngine; backend: string; threads: number }[] = [];
    if (o.ours) for (const b of o.backends) for (const t of o.threads) configs.push({ engine: "perceiver-ts", backend: b, threads: t });
    if (o.peers) for (const e of PEER_GEMM_ENGINES) for (const t of o.threads) configs.push({ engine: e, backend: "", threads: t });
    for (const c of configs) {
      log(`GEMM ${c.engine} ${c.backend} ${c.threads} thread(s)`);
      loadAvgBefore = os.loadavg();
      const r = await nodeChild({ task: "gemm", ...c }, { PERCEIVER_BACKEND: c.backend || "ts", PERCEIVER_THREADS: String(c.threads) }, 900).result;
      gemm.push(asResult<GemmResult>(r, { engine: c.engine, backend: c.backend, threads: c.threads, shapes: [] }));
      await save();
    }
  }

  // 2. full model
  if (o.model) {
    const needCheckpoint = o.ours || (o.peers && o.pytorch);
    const modelDir = needCheckpoint ? await ensureFullCheckpoint(log) : "";
    if (modelDir) weightsBytes = statSync(join(modelDir, "model.safetensors")).size;
    const onnx = o.peers ? await prepareOnnx(log) : { model: "", externalData: [] };
    const timeoutS = 3600;
    /** A full-model child (Node or Python) for one configuration. */
    const modelChild = (engine: string, backend: string, t: number, batches: number[], protocol: BatchProtocol, serve: boolean): Child => {
      if (engine === "pytorch") {
        const args = [
          join(BENCH, "pytorch_bench.py"), "--model-dir", modelDir, "--threads", String(t), "--batch", batches.join(","),
          "--extra-budget", String(protocol.extraBudgetS), "--max-extra", String(protocol.maxExtra),
          ...(protocol.batchBudgetS !== null ? ["--batch-budget", String(protocol.batchBudgetS)] : []),
          ...(serve ? ["--serve"] : []),
        ];
        const env = { HF_HUB_DISABLE_PROGRESS_BARS: "1", TRANSFORMERS_VERBOSITY: "error", OMP_NUM_THREADS: String(t), HF_HUB_OFFLINE: "1" };
        return startChild(o.python, args, env, timeoutS, serve);
      }
      const task: ChildTask = engine === "perceiver-ts"
        ? { task: "model", engine, backend, threads: t, batches, modelDir, onnx, protocol }
        : { task: "model", engine: engine as "onnxruntime-node" | "onnxruntime-web", backend: "", threads: t, batches, modelDir, onnx, protocol };
      const env: Record<string, string> = engine === "perceiver-ts" ? { PERCEIVER_BACKEND: backend, PERCEIVER_THREADS: String(t) } : {};
      return nodeChild(task, env, timeoutS, serve);
    };
    const configs: { engine: string; backend: string; threads: number }[] = [];
    if (o.ours) for (const b of o.backends) for (const t of o.threads) configs.push({ engine: "perceiver-ts", backend: b, threads: t });
    if (o.peers) {
      for (const engine of ["onnxruntime-node", "onnxruntime-web"]) for (const t of o.threads) configs.push({ engine, backend: "", threads: t });
      if (o.pytorch) for (const t of o.threads) configs.push({ engine: "pytorch", backend: "cpu", threads: t });
    }
    for (const c of configs) {
      if (c.engine === "pytorch" && model.some((r) => r.engine === "pytorch" && r.skipped)) continue; // not importable: once is enough
      log(`model ${c.engine}${c.backend && c.engine === "perceiver-ts" ? ` ${c.backend}` : ""} ${c.threads} thread(s)${c.engine === "pytorch" ? ` (${o.python})` : ""}, batch ${o.batches.join(",")}`);
      loadAvgBefore = os.loadavg();
      const r = await modelChild(c.engine, c.backend, c.threads, o.batches, o.protocol, false).result;
      model.push(asResult<ModelResult>(r, { ...c, batches: [] }));
      await save();
    }

    // 3. paired rounds, per thread count: a fresh child per configuration (batch 1 only, one warm-up run), then
    //    each runs batch 1 once per round, in turn. Fresh, because an engine that ran batch 4 may keep its larger
    //    buffers: onnxruntime-web ran batch 1 about 20% slower after its batch 4 (bench of 2026-11-27 07:29).
    const roundProtocol: BatchProtocol = { extraBudgetS: 0, maxExtra: 0, batchBudgetS: null };
    for (const t of o.rounds > 0 ? o.threads : []) {
      const rows = model.filter((r) => r.threads === t && !r.skipped && (r.batches.find((b) => b.batch === 1)?.perImageS ?? Infinity) <= ROUND_LIMIT_S);
      if (rows.length < 2) continue;
      const group: { child: Child; entry: RoundsResult; b1: number }[] = [];
      for (const r of rows) {
        log(`paired rounds, ${t} thread(s): starting ${r.engine} ${r.backend} (load, one warm-up run)`);
        const child = modelChild(r.engine, r.engine === "perceiver-ts" ? r.backend : "", t, [1], roundProtocol, true);
        const answer = asResult<ModelResult>(await child.result, { engine: r.engine, backend: r.backend, threads: t, batches: [] });
        const entry: RoundsResult = { engine: r.engine, backend: r.backend, threads: t, seconds: [], errors: [], loadAvgBefore: [] };
        if (answer.skipped) {
          entry.errors.push(`did not start: ${answer.skipped}`);
          rounds.push(entry);
          await child.close();
          continue;
        }
        group.push({ child, entry, b1: r.batches.find((b) => b.batch === 1)!.perImageS! });
      }
      for (let round = 0; round < o.rounds; round++) {
        for (let i = 0; i < group.length; i++) {
          const g = group[(i + round) % group.length]; // the order rotates: no engine always runs first
          log(`round ${round + 1}/${o.rounds} ${t} thread(s): ${g.entry.engine} ${g.entry.backend}`);
          await new Promise((done) => setTimeout(done, ROUND_PAUSE_MS));
          g.entry.loadAvgBefore.push(os.loadavg()[0]);
          const answer = await g.child.round(60 + 10 * g.b1);
          g.entry.seconds.push(answer.seconds ?? null);
          if (answer.error) g.entry.errors.push(`round ${round + 1}: ${answer.error}`);
          if (answer.seconds !== undefined) process.stderr.write(`    ${answer.seconds.toFixed(2)} s\n`);
        }
      }
      await Promise.all(group.map((g) => g.child.close()));
      rounds.push(...group.map((g) => g.entry));
      await save();
    }
  }

  machine.loadAvgEnd = os.loadavg();
  const run = snapshot();
  await save(run);
  console.log(renderReport(run, file));
}

main().catch((e: unknown) => {
  console.error(`bench: error: ${(e as Error)?.message ?? String(e)}\n${HELP}`);
  process.exit(1);
});
