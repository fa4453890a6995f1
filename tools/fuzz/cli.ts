/**
 * The mutation fuzzer (tools/fuzz) from the command line:
 *
 *   npm run fuzz -- --cases 100000 [--seed S] [--target safetensors|image|config|pickle|all] [--case N]
 *                   [--time-limit MS] [--memory-limit MIB] [--heap-limit MIB] [--in-process] [--save DIR] [--json]
 *
 * Without --seed a fresh random seed is drawn and printed first, so exploratory runs keep finding new cases and
 * every failure can be replayed. Budgets per case: --time-limit (default 2000 ms), --memory-limit (growth of the
 * process's peak RSS, default 1024 MiB) and --heap-limit (the worker's V8 heap, default 512 MiB); a case over one of
 * them is a failure.
 *
 * Cases are split evenly over the targets and run in a worker thread that is terminated when one overruns the time
 * limit (--in-process: on this thread, faster, hangs not interruptible). A failure prints the target, seed and case
 * index and the command that replays it; --save writes each failing input to DIR. Exit code 1 when any case failed.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runFuzz, type FuzzFailure } from "./runner.js";
import { createTargets, makeCase, TARGET_NAMES, type TargetName } from "./targets.js";

function usage(msg: string): never {
  console.error(`fuzz: ${msg}\nusage: npm run fuzz -- --cases N [--seed S] [--target ${TARGET_NAMES.join("|")}|all] [--case N] [--time-limit MS] [--memory-limit MIB] [--heap-limit MIB] [--in-process] [--save DIR] [--json]`);
  process.exit(2);
}

function int(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) usage(`--${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return Number(v);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      cases: { type: "string" },
      seed: { type: "string" },
      target: { type: "string", default: "all" },
      case: { type: "string" },
      "time-limit": { type: "string" },
      "memory-limit": { type: "string" },
      "heap-limit": { type: "string" },
      "in-process": { type: "boolean", default: false },
      save: { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const targets: TargetName[] = values.target === "all" ? [...TARGET_NAMES] : [values.target as TargetName];
  if (!targets.every((t) => (TARGET_NAMES as readonly string[]).includes(t))) usage(`unknown target ${JSON.stringify(values.target)}`);
  const fresh = values.seed === undefined;
  const seed = int("seed", values.seed, Math.floor(Math.random() * 2 ** 32)) >>> 0;
  // always on stderr, --json included: a fresh seed is the only way to replay what this run finds
  if (fresh) console.error(`fuzz: fresh seed ${seed} (replay with --seed ${seed})`);
  const cases = int("cases", values.cases, 10_000);
  const caseIndex = values.case === undefined ? undefined : int("case", values.case, 0);
  const save = values.save;
  const fixtures = save ? createTargets() : null;

  const log = (s: string) => {
    if (!values.json) console.error(s);
  };
  log(`fuzz: seed ${seed}, ${caseIndex !== undefined ? `case ${caseIndex}` : `${cases} cases`} over ${targets.join(", ")}` +
    `${values["in-process"] ? " (in process)" : " (worker thread)"}`);
  const onFailure = (f: FuzzFailure) => {
    console.error(`FAIL ${f.target} seed ${f.seed} case ${f.caseIndex} [${f.kind}] from ${f.seedName}: ${f.message}\n  replay: ${f.replay}`);
    if (save && fixtures) {
      mkdirSync(save, { recursive: true });
      const file = join(save, `${f.target}-${f.seed}-${f.caseIndex}.bin`);
      writeFileSync(file, makeCase(fixtures[f.target], f.seed, f.caseIndex).input);
      console.error(`  input: ${file}`);
    }
  };
  const report = await runFuzz({
    seed, cases, targets, caseIndex, onFailure,
    timeLimitMs: int("time-limit", values["time-limit"], 2000),
    memoryLimitBytes: int("memory-limit", values["memory-limit"], 1024) * 2 ** 20,
    heapLimitMb: int("heap-limit", values["heap-limit"], 512),
    isolate: !values["in-process"],
    onProgress: (t, done, total) => log(`  ${t}: ${done}/${total}`),
  });
  if (values.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    for (const [t, s] of Object.entries(report.perTarget)) {
      const codes = Object.entries(s.codes).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(", ");
      console.log(`${t.padEnd(12)} ${String(s.cases).padStart(7)} cases  ${String(s.ok).padStart(6)} ok  ${String(s.rejected).padStart(7)} rejected  ` +
        `${s.failures} failures  ${s.seconds.toFixed(1)} s  (slowest ${s.maxCaseMs.toFixed(0)} ms)\n${" ".repeat(13)}${codes}`);
    }
    console.log(`seed ${report.seed}: ${report.failures.length} failures in ${report.seconds.toFixed(1)} s, peak RSS growth ${(report.peakRssGrowthBytes / 2 ** 20).toFixed(0)} MiB`);
  }
  return report.failures.length === 0 ? 0 : 1;
}

main().then((code) => {
  process.exitCode = code;
}, (e) => {
  console.error(e);
  process.exitCode = 1;
});
