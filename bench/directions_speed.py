"""How long finding directions takes: SeFa (all layers) and GANSpace (10 000 mapped samples), for the
bundled model and NVIDIA's 1024 px StyleGAN2 configuration (random weights: the time does not depend
on their values).

    python bench/directions_speed.py [--repeats 5] [--threads 1]

Each measurement runs in a fresh process (nothing cached, the model built first and not timed);
the configurations alternate, and the medians are printed.
"""

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ONE_RUN = """
import sys, time
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads({threads})
from stylegan import directions, loading, stylegan2
if {config!r} == "bundled":
    G = loading.load(None, device="cpu")
else:
    G = stylegan2.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3,
                            mapping_kwargs={{"num_layers": 8}}, channel_base=32768, channel_max=512).eval()
start = time.perf_counter()
directions.sefa(G, (0, G.num_ws))
first = time.perf_counter()
directions.sefa(G, (0, G.num_ws - 1))  # another range: not cached, linear algebra already loaded
second = time.perf_counter()
directions.ganspace(G)
print(first - start, second - first, time.perf_counter() - second)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch
    print(f"{args.threads} thread(s), torch {torch.__version__}")
    times = {config: ([], [], []) for config in ("bundled", "sg2-1024")}
    for _ in range(args.repeats):
        for config, runs in times.items():
            out = subprocess.run([sys.executable, "-c", ONE_RUN.format(root=str(ROOT), config=config, threads=args.threads)],
                                 capture_output=True, text=True, check=True).stdout.split()
            for run, value in zip(runs, out):
                run.append(float(value))
    print(f"medians of {args.repeats} fresh processes; SeFa's first call in a process also loads the linear algebra")
    for config, (first, again, ganspace) in times.items():
        print(f"{config:9s} SeFa {statistics.median(again) * 1000:7.1f} ms (first call {statistics.median(first):.2f} s)"
              f"   GANSpace {statistics.median(ganspace):6.2f} s")


if __name__ == "__main__":
    main()
