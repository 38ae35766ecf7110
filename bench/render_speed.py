"""Throughput of stylegan render with 1 and 2 workers on the bundled model, on a local Ray.

    python bench/render_speed.py --seeds 1024 --rounds 3

Each round renders the same seeds into a fresh folder with --workers 1, then with 2 (interleaved,
so that a change in the machine's load hits both alike). Two numbers per run: the whole run's
wall time (Ray's start, the workers loading the model, the manifest) and the steady rate, images
per second from the first image written to the last. Prints medians and the 2-to-1 ratio.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stylegan.render import RenderSettings, render  # noqa: E402


def one_run(seeds, workers, batch):
    marks = []

    def progress(done, total):
        marks.append((time.monotonic(), done))
    with tempfile.TemporaryDirectory() as folder:
        started = time.monotonic()
        render(RenderSettings(seeds=f"0-{seeds - 1}", batch_size=batch), Path(folder) / "faces", workers=workers,
               progress=progress)
        wall = time.monotonic() - started
    written = [(t, done) for t, done in marks if done > 0]
    (t0, n0), (t1, n1) = written[0], written[-1]
    return wall, (n1 - n0) / (t1 - t0) if t1 > t0 else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=1024, help="faces per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=None, help="default: planned, as stylegan render plans it")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(f"{args.seeds} faces per run, {cores} cores, load average before: {os.getloadavg()[0]:.1f}")
    results = {1: [], 2: []}
    for r in range(args.rounds):
        for workers in (1, 2):
            wall, rate = one_run(args.seeds, workers, args.batch)
            results[workers].append((wall, rate))
            print(f"round {r + 1}, {workers} worker(s): {wall:.1f} s in all, {rate:.1f} images/s steady "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    medians = {w: (statistics.median(x[0] for x in runs), statistics.median(x[1] for x in runs))
               for w, runs in results.items()}
    for workers, (wall, rate) in medians.items():
        print(f"median, {workers} worker(s): {wall:.1f} s in all, {rate:.1f} images/s steady")
    print(f"2 workers / 1 worker, steady rate: {medians[2][1] / medians[1][1]:.2f}x")


if __name__ == "__main__":
    main()
