/**
 * `--shard I/N`: the part I (0-based) of N of an image list, so that N processes or machines split a dataset with
 * no coordination. The list is sorted (code units) and image k of the sorted list goes to shard k mod N: the
 * parts are disjoint, together they are the whole list, their sizes differ by at most one, and the class folders
 * of an ImageFolder are spread over all shards. Each shard processes its images in the order of the input list.
 *
 * `--shard auto` reads the index from the scheduler: JOB_COMPLETION_INDEX (a Kubernetes Indexed Job; the count
 * from --shards N, which Kubernetes does not export) or SLURM_ARRAY_TASK_ID (a SLURM job array; minus
 * SLURM_ARRAY_TASK_MIN, so --array=1-8 works too; the count from SLURM_ARRAY_TASK_COUNT, else --shards N).
 */
import { PerceiverError } from "../../errors.js";
import { compareCodeUnits } from "./inputs.js";

export interface Shard {
  index: number;
  count: number;
}

const MAX_SHARDS = 1_000_000;

function intOf(v: string | undefined): number | undefined {
  return v !== undefined && /^\d+$/.test(v.trim()) ? Number(v.trim()) : undefined;
}

function checked(index: number, count: number, where: string): Shard {
  if (!Number.isSafeInteger(count) || count < 1 || count > MAX_SHARDS) {
    throw new PerceiverError("USAGE", `${where}: the shard count must be from 1 to ${MAX_SHARDS}, got ${count}`);
  }
  if (!Number.isSafeInteger(index) || index < 0 || index >= count) {
    throw new PerceiverError("USAGE", `${where}: the shard index must be from 0 to ${count - 1} (0-based), got ${index}`);
  }
  return { index, count };
}

/** `--shard` / `--shards` (and the environment for `auto`) -> the shard, or null without --shard. */
export function parseShard(spec: string | undefined, shards: string | undefined, env: NodeJS.ProcessEnv = process.env): Shard | null {
  if (spec === undefined) {
    if (shards !== undefined) throw new PerceiverError("USAGE", "--shards N goes with --shard auto");
    return null;
  }
  const count = shards === undefined ? undefined : intOf(shards);
  if (shards !== undefined && count === undefined) throw new PerceiverError("USAGE", `--shards must be a positive integer, got ${JSON.stringify(shards)}`);
  if (spec !== "auto") {
    const m = /^(\d+)\/(\d+)$/.exec(spec);
    if (!m) throw new PerceiverError("USAGE", `--shard must be I/N (0-based, e.g. 0/4) or auto, got ${JSON.stringify(spec)}`);
    if (count !== undefined && count !== Number(m[2])) throw new PerceiverError("USAGE", `--shard ${spec} and --shards ${shards} disagree`);
    return checked(Number(m[1]), Number(m[2]), "--shard");
  }
  const k8s = intOf(env.JOB_COMPLETION_INDEX);
  if (k8s !== undefined) {
    if (count === undefined) throw new PerceiverError("USAGE", "--shard auto in a Kubernetes Indexed Job needs --shards N (the Job's completions)");
    return checked(k8s, count, "--shard auto (JOB_COMPLETION_INDEX)");
  }
  const slurm = intOf(env.SLURM_ARRAY_TASK_ID);
  if (slurm !== undefined) {
    const min = intOf(env.SLURM_ARRAY_TASK_MIN) ?? 0;
    const slurmCount = intOf(env.SLURM_ARRAY_TASK_COUNT);
    if (slurmCount !== undefined && count !== undefined && slurmCount !== count) {
      throw new PerceiverError("USAGE", `--shards ${count} disagrees with SLURM_ARRAY_TASK_COUNT=${slurmCount}`);
    }
    const n = count ?? slurmCount;
    if (n === undefined) throw new PerceiverError("USAGE", "--shard auto: SLURM_ARRAY_TASK_COUNT is not set; give --shards N");
    return checked(slurm - min, n, "--shard auto (SLURM_ARRAY_TASK_ID)");
  }
  throw new PerceiverError("USAGE", "--shard auto: neither JOB_COMPLETION_INDEX (Kubernetes) nor SLURM_ARRAY_TASK_ID (SLURM) is set; use --shard I/N");
}

/** The images of `shard`, in the order of `files` (see the file comment). */
export function shardFiles(files: readonly string[], shard: Shard | null): string[] {
  if (shard === null || shard.count === 1) return [...files];
  const sorted = [...files].sort(compareCodeUnits);
  const mine = new Set(sorted.filter((_, k) => k % shard.count === shard.index));
  return files.filter((f) => mine.has(f));
}
