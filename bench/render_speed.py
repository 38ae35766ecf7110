"""Throughput of stylegan render with 1 and 2 workers, on a local Ray.

    python bench/render_speed.py --seeds 1024 --rounds 3 [--model sg2-256 | --model PATH]

The model: the bundled one by default; a checkpoint; or one of bench/benchmark.py's configurations
(NVIDIA's architectures) with random weights, saved to a temporary file for the workers to load.

Each round renders the same seeds into a fresh folder with 1 worker on 1 core, then with 2 workers
on 2 cores (interleaved, so that a change in the machine's load hits both alike): the whole run,
Ray and this process included, is kept to those cores (its CPU affinity, which the local Ray
inherits and sizes itself by), so that each worker has one core and one torch thread in both. Two numbers per run: the whole run's
wall time (Ray's start, the workers loading the model, the manifest) and the steady rate, images
per second from the first image written to the last. Prints medians and the 2-to-1 ratio.

Memory: each worker reports the peak of its resident memory while it rendered, above what it held
once the model was loaded (Linux's VmHWM, reset after the load, less the pages of Ray's shared
object store it wrote its results into; render.GeneratorWorker), printed
beside the planner's peak for one batch (planner.estimate_memory: a batch's finished images and the
activations of its pass), which is what a worker holds at a time.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchmark  # noqa: E402
import torch  # noqa: E402

import stylegan  # noqa: E402
from stylegan import loading  # noqa: E402
from stylegan.planner import estimate_memory  # noqa: E402
from stylegan.render import RenderSettings, render  # noqa: E402

MB = 2 ** 20


def one_run(seeds, workers, batch, model):
    marks = []

    def progress(done, total):
        marks.append((time.monotonic(), done))
    with tempfile.TemporaryDirectory() as folder:
        started = time.monotonic()
        result = render(RenderSettings(seeds=f"0-{seeds - 1}", batch_size=batch), Path(folder) / "faces",
                        source=model, workers=workers, progress=progress)
        wall = time.monotonic() - started
    written = [(t, done) for t, done in marks if done > 0]
    (t0, n0), (t1, n1) = written[0], written[-1]
    return wall, (n1 - n0) / (t1 - t0) if t1 > t0 else float("nan"), result["batch_size"], result["peak_growth"]


def memory_lines(G, batch, peak_growth):
    """One line per worker: its peak growth beside the planned peak of its batch, and the verdict."""
    planned = estimate_memory(G, batch, batch)
    lines = []
    for worker, growth in sorted(peak_growth.items()):
        if growth < 0:
            lines.append(f"  worker {worker}: peak growth unknown (no /proc/self/clear_refs); planned peak of a "
                         f"batch of {batch}: {planned / MB:.1f} MB")
            continue
        verdict = "within the plan" if growth <= planned else f"OVER the plan by {(growth - planned) / MB:.1f} MB"
        lines.append(f"  worker {worker}: peak +{growth / MB:.1f} MB above the loaded model, planned peak of a "
                     f"batch of {batch}: {planned / MB:.1f} MB ({growth / planned:.0%}): {verdict}")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=1024, help="faces per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=None, help="default: planned, as stylegan render plans it")
    parser.add_argument("--model", help="a checkpoint, or a configuration of bench/benchmark.py with random weights "
                                        "(default: the bundled model)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.model in benchmark.CONFIGS:
            path = Path(folder) / f"{args.model}.safetensors"
            torch.manual_seed(0)
            stylegan.save_safetensors(benchmark.build(args.model), path)
            args.model = str(path)
        measure(args)


def measure(args):
    all_cores = sorted(os.sched_getaffinity(0))
    cores = len(all_cores)
    if cores < 2:
        sys.exit("This bench compares 1 and 2 workers on a core each: it needs at least 2 cores.")
    print(f"{args.seeds} faces per run of {args.model or 'the bundled model'}, {cores} cores, "
          f"load average before: {os.getloadavg()[0]:.1f}")
    G = loading.load(args.model, device="cpu")  # as render loads it: for the planner
    results, within = {1: [], 2: []}, []
    for r in range(args.rounds):
        for workers in (1, 2):
            os.sched_setaffinity(0, all_cores[:workers])
            try:
                wall, rate, batch, peak_growth = one_run(args.seeds, workers, args.batch, args.model)
            finally:
                os.sched_setaffinity(0, all_cores)
            results[workers].append((wall, rate))
            print(f"round {r + 1}, {workers} worker(s) on {workers} core(s): {wall:.1f} s in all, {rate:.1f} images/s steady "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)
            print("\n".join(memory_lines(G, batch, peak_growth)), flush=True)
            within += [0 <= growth <= estimate_memory(G, batch, batch) for growth in peak_growth.values()]
    medians = {w: (statistics.median(x[0] for x in runs), statistics.median(x[1] for x in runs))
               for w, runs in results.items()}
    for workers, (wall, rate) in medians.items():
        print(f"median, {workers} worker(s) on {workers} core(s): {wall:.1f} s in all, {rate:.1f} images/s steady")
    print(f"2 workers / 1 worker, steady rate: {medians[2][1] / medians[1][1]:.2f}x (the target: at least 1.6x)")
    print(f"workers within their batch's planned peak: {sum(within)} of {len(within)}")


if __name__ == "__main__":
    main()
