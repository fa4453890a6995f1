"""PyTorch CPU reference for `npm run bench`: transformers' PerceiverForImageClassificationConvProcessing on
weights/full-synthetic, same batch protocol as bench/common.ts (timeBatches). Started by bench/run.ts, one process
per thread count; answers with one stdout line: "@@BENCH_RESULT " + JSON (a ModelResult, or one with "skipped").
With --serve it then stays alive for run.ts's paired rounds (bench/common.ts ROUND_MARK): each "run" line on stdin
times one more batch-1 forward and answers "@@BENCH_ROUND " + JSON {"seconds"} (or {"error"}); "exit" or the end
of stdin ends it.

    python3 bench/pytorch_bench.py --model-dir weights/full-synthetic --threads 1 --batch 1,4
"""
import argparse
import json
import resource
import statistics
import sys
import time

MARK = "@@BENCH_RESULT "
ROUND_MARK = "@@BENCH_ROUND "


def rss_mb():
    """Peak RSS in MiB: VmHWM on Linux (ru_maxrss keeps the parent's high-water mark from before exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def answer(obj):
    print(MARK + json.dumps(obj), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model-dir", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", default="1,4")
    p.add_argument("--extra-budget", type=float, default=30.0, help="seconds for extra batch-1 runs")
    p.add_argument("--max-extra", type=int, default=3)
    p.add_argument("--batch-budget", type=float, default=None, help="skip a batch > 1 estimated above this (s)")
    p.add_argument("--serve", action="store_true", help="after the answer, serve paired rounds on stdin")
    a = p.parse_args()
    result = {"engine": "pytorch", "backend": "cpu", "threads": a.threads, "notes": [], "batches": []}
    try:
        import torch
        from transformers import PerceiverForImageClassificationConvProcessing
    except Exception as e:  # noqa: BLE001 - any import failure means "not available here"
        result["skipped"] = f"torch/transformers not importable with {sys.executable}: {e}"
        answer(result)
        return
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    result["backend"] = f"cpu (torch {torch.__version__})"
    result["rssBeforeLoadMB"] = rss_mb()
    t0 = time.perf_counter()
    model = PerceiverForImageClassificationConvProcessing.from_pretrained(a.model_dir).eval()
    result["loadS"] = time.perf_counter() - t0
    result["rssAfterLoadMB"] = rss_mb()
    gen = torch.Generator().manual_seed(7)
    batches = sorted(int(b) for b in a.batch.split(","))
    inputs = {}  # each batch's pixels made when it first runs (not counted in an earlier batch's peak RSS)

    def run(b):
        if b not in inputs:
            inputs[b] = (torch.rand(b, 3, 224, 224, generator=gen) - 0.5) * 4
        with torch.inference_mode():
            logits = model(pixel_values=inputs[b]).logits
        if tuple(logits.shape) != (b, 1000):
            raise RuntimeError(f"pytorch: logits have shape {tuple(logits.shape)}, expected ({b}, 1000)")

    last_batch1 = None  # seconds of the latest batch-1 run
    for b in batches:
        b1 = next((r for r in result["batches"] if r["batch"] == 1 and "skipped" not in r), None)
        if b > 1 and b1 and a.batch_budget is not None and b * b1["perImageS"] > a.batch_budget:
            skipped = f"estimated {b * b1['perImageS']:.0f} s > budget {a.batch_budget:g} s (ask for it with --batch)"
            result["batches"].append({"batch": b, "skipped": skipped, "runsS": [], "perImageS": None, "maxRssMB": rss_mb()})
            continue
        runs = []
        t = time.perf_counter()
        run(b)
        runs.append(time.perf_counter() - t)
        spent = 0.0
        while b == 1 and len(runs) - 1 < a.max_extra and spent + runs[0] <= a.extra_budget:
            t = time.perf_counter()
            run(b)
            runs.append(time.perf_counter() - t)
            spent += runs[-1]
        rep = statistics.median(runs[1:]) if len(runs) > 1 else runs[0]
        entry = {"batch": b, "runsS": runs, "perImageS": rep / b, "maxRssMB": rss_mb()}
        result["batches"].append(entry)
        print(f"    batch {b}: {', '.join(f'{s:.2f}' for s in runs)} s", file=sys.stderr, flush=True)
        if b == 1:
            last_batch1 = runs[-1]
        elif last_batch1 is not None:
            # one more batch-1 run: the larger batch against the batch-1 runs just before and after it
            t = time.perf_counter()
            run(1)
            after = time.perf_counter() - t
            entry["batch1AroundS"] = [last_batch1, after]
            last_batch1 = after
            print(f"    batch 1 again: {after:.2f} s", file=sys.stderr, flush=True)
    result["peakRssMB"] = rss_mb()
    answer(result)
    if a.serve:
        serve(run)


def serve(run):
    for line in sys.stdin:
        command = line.strip()
        if command == "exit":
            return
        if command != "run":
            print(ROUND_MARK + json.dumps({"error": f"unknown command {command!r}"}), flush=True)
            continue
        try:
            t = time.perf_counter()
            run(1)
            print(ROUND_MARK + json.dumps({"seconds": time.perf_counter() - t}), flush=True)
        except Exception as e:  # noqa: BLE001 - reported to run.ts, which notes it
            print(ROUND_MARK + json.dumps({"error": str(e)}), flush=True)


if __name__ == "__main__":
    main()
