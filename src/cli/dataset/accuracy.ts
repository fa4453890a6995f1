/**
 * Accuracy of `perceiver eval` from its per-image records, and `eval --merge` of shard outputs. The summary is a
 * function of the set of records (one per image, keyed by file), not of their order or of how they were split
 * into files, so merging the shards of a run gives exactly the numbers of the unsharded run.
 */
import { PerceiverError } from "../../errors.js";
import { compareCodeUnits } from "./inputs.js";
import { isErrorRecord, scanJsonl, type JsonRecord } from "./jsonl.js";

/** What one evaluated image contributes. */
export interface EvalOutcome {
  /** true label index */
  label: number;
  /** the predicted indices, best first (at least 5, or all labels) */
  top: number[];
}

/** `--json` of eval: images evaluated, top-1 and top-5 accuracy (fractions; null when n is 0), failed images (sorted). */
export interface EvalSummary {
  n: number;
  top1: number | null;
  top5: number | null;
  failed: string[];
}

/** The eval fields of a successful record, or null when it is not one. */
export function outcomeOf(r: JsonRecord): EvalOutcome | null {
  const t = r.true_label as { index?: unknown } | undefined;
  if (!t || typeof t.index !== "number" || !Array.isArray(r.top_k)) return null;
  const top = (r.top_k as { index?: unknown }[]).map((p) => p?.index);
  if (!top.every((i): i is number => typeof i === "number")) return null;
  return { label: t.index, top };
}

/** Collects outcomes and failures by file; a file's success outranks its failure (a retried image). */
export class EvalTally {
  readonly outcomes = new Map<string, EvalOutcome>();
  readonly failures = new Set<string>();

  add(file: string, outcome: EvalOutcome | null): void {
    if (outcome) {
      this.outcomes.set(file, outcome);
      this.failures.delete(file);
    } else if (!this.outcomes.has(file)) this.failures.add(file);
  }

  summary(): EvalSummary {
    let c1 = 0, c5 = 0;
    for (const { label, top } of this.outcomes.values()) {
      if (top[0] === label) c1++;
      if (top.slice(0, 5).includes(label)) c5++;
    }
    const n = this.outcomes.size;
    return { n, top1: n ? c1 / n : null, top5: n ? c5 / n : null, failed: [...this.failures].sort(compareCodeUnits) };
  }
}

function pct(x: number | null, n: number): string {
  return x === null ? "-" : `${(100 * x).toFixed(2)}% (${Math.round(x * n)}/${n})`;
}

/** The summary in words: "eval: 50000 images, top-1 82.10% (41050/50000), top-5 …, 0 failed". */
export function summaryText(s: EvalSummary): string {
  const failed = s.failed.length ? `, ${s.failed.length} failed (${s.failed.slice(0, 3).join(", ")}${s.failed.length > 3 ? ", …" : ""})` : ", 0 failed";
  return `eval: ${s.n} image${s.n === 1 ? "" : "s"} evaluated, top-1 ${pct(s.top1, s.n)}, top-5 ${pct(s.top5, s.n)}${failed}`;
}

/**
 * `eval --merge`: the records of every file into one tally. A torn last line (a run still going or killed) is
 * left out with a warning (`warn`); a record that is neither an eval result nor a failure is an error.
 */
export async function mergeEvalOutputs(paths: readonly string[], warn: (msg: string) => void): Promise<EvalTally> {
  const tally = new EvalTally();
  for (const path of paths) {
    let scan;
    try {
      scan = await scanJsonl(path, (r, line) => {
        if (isErrorRecord(r)) tally.add(r.file, null);
        else {
          const o = outcomeOf(r);
          if (!o) throw new PerceiverError("INPUT_INVALID", `${path}, line ${line}: not a record of perceiver eval (no true_label and top_k)`);
          tally.add(r.file, o);
        }
        return true;
      });
    } catch (e) {
      if (e instanceof PerceiverError) throw e;
      throw new PerceiverError("INPUT_INVALID", `cannot read ${path}: ${(e as Error).message}`, { cause: e });
    }
    if (scan.validBytes < scan.size) warn(`${path}: the last ${scan.size - scan.validBytes} bytes are a torn record (a run still going, or killed), left out`);
  }
  return tally;
}
