/**
 * The fuzzer as CI runs it: several fixed seeds (each finds different cases; a fixed list keeps CI reproducible),
 * every target, cases in a worker thread with a 512 MiB heap, and per-case budgets of 2 s and 512 MiB of peak RSS
 * growth. Run the whole process under `node --max-old-space-size=512` too:
 *
 *   node --max-old-space-size=512 --import tsx tools/fuzz/ci.ts [--cases-per-seed N] [--target T[,T...]]
 *
 * Prints each failure with its replay command; exit code 1 when any case failed.
 */
import { parseArgs } from "node:util";
import { runFuzz } from "./runner.js";
import { CI_SEEDS } from "./ci-seeds.js";
import { TARGET_NAMES, type TargetName } from "./targets.js";

const { values } = parseArgs({ options: { "cases-per-seed": { type: "string", default: "4000" }, target: { type: "string", default: "all" } } });
const targets = (values.target === "all" ? [...TARGET_NAMES] : values.target.split(",")) as TargetName[];
if (!targets.every((t) => (TARGET_NAMES as readonly string[]).includes(t))) {
  console.error(`fuzz ci: unknown target in ${JSON.stringify(values.target)} (targets: ${TARGET_NAMES.join(", ")})`);
  process.exit(2);
}
const cases = Number(values["cases-per-seed"]);
let failures = 0;
for (const seed of CI_SEEDS) {
  const report = await runFuzz({
    seed, cases, targets, isolate: true, timeLimitMs: 2000, memoryLimitBytes: 512 * 2 ** 20, heapLimitMb: 512,
    onFailure: (f) => console.error(`FAIL ${f.target} seed ${f.seed} case ${f.caseIndex} [${f.kind}] from ${f.seedName}: ${f.message}\n  replay: ${f.replay}`),
  });
  failures += report.failures.length;
  console.log(`fuzz ci: seed ${seed}: ${cases} cases over ${targets.join(", ")}, ${report.failures.length} failures in ${report.seconds.toFixed(1)} s`);
}
process.exitCode = failures === 0 ? 0 : 1;
