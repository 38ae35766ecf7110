"""How long `stylegan project` takes, and how close it gets: a face the model made itself, projected
back (--aligned, the default steps: 300 at 64 px, 150 at 256 px; W+ and W), for the bundled 64 px
model and NVIDIA's 256 px StyleGAN2 configuration (random weights: the time does not depend on them).

    python bench/projection_speed.py [--repeats 3] [--threads 1]

Each run is a fresh process (model built and face rendered first, not timed); the configurations
alternate; medians are printed with the PSNR of the reconstruction against the face.
"""

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ONE_RUN = """
import sys, tempfile, time
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads({threads})
from stylegan import demos, loading, stylegan2
from stylegan.settings import ProjectSettings
if {config!r} == "bundled":
    G = loading.load(None, device="cpu")
else:
    torch.manual_seed(0)
    G = stylegan2.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
                            mapping_kwargs={{"num_layers": 8}}, channel_base=16384, channel_max=512).eval()
    G.requires_grad_(False)
    G.source, G.sha256 = "sg2-256", "0" * 64
photo = tempfile.NamedTemporaryFile(suffix=".png", delete=False).name
demos.generate(G, "17").images[0].save(photo)
start = time.perf_counter()
steps = demos.project_steps(G, ProjectSettings(space={space!r}, aligned=True), photo)
while True:
    try:
        next(steps)
    except StopIteration as finished:
        result = finished.value
        break
print(time.perf_counter() - start, result.psnr)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--configs", nargs="*", default=["bundled", "sg2-256"])
    args = parser.parse_args()
    runs = {(config, space): [] for config in args.configs for space in ("w+", "w")}
    for _ in range(args.repeats):
        for (config, space), times in runs.items():
            code = ONE_RUN.format(root=str(ROOT), config=config, space=space, threads=args.threads)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            times.append([float(v) for v in out.stdout.split()])
    print(f"{args.threads} thread(s); medians of {args.repeats} fresh processes, the default steps")
    for (config, space), times in runs.items():
        print(f"{config:8s} {space:3s} {statistics.median(t for t, _ in times):7.1f} s   "
              f"PSNR {statistics.median(p for _, p in times):5.1f} dB")


if __name__ == "__main__":
    main()
