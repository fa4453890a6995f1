/**
 * Worker thread of an isolated fuzz run: builds the targets once, then runs the cases it is sent (target, seed,
 * index) and answers with their outcome. The runner terminates it when a case overruns the time limit.
 */
import { parentPort, workerData } from "node:worker_threads";
import { runCase, type CaseOutcome } from "./check.js";
import { createTargets, makeCase, type TargetName } from "./targets.js";

export interface WorkerRequest {
  target: TargetName;
  seed: number;
  index: number;
}

const port = parentPort;
if (port !== null) {
  const targets = createTargets((workerData as { fixturesDir?: string } | undefined)?.fixturesDir);
  port.on("message", (m: WorkerRequest) => {
    const t = targets[m.target];
    const { input } = makeCase(t, m.seed, m.index);
    const out: CaseOutcome = runCase((x) => t.run(x), input);
    port.postMessage(out);
  });
  port.postMessage("ready");
}
