"""On a machine with an NVIDIA GPU: fidelity, the command-line tasks and speed on CUDA.

    python bench/cuda_check.py --fixtures ../shared/fixtures [--out cuda-check/] [--skip tasks]

1. Fidelity. Every checkpoint fixture (NVIDIA's PyTorch and TensorFlow formats, StyleGAN 2019,
   rosinality) is loaded onto CUDA and run twice: all in fp32, and with the fp16 layers the
   checkpoint asks for (what a CUDA user gets, as NVIDIA's own code does on a GPU). Both are
   compared with the fixtures' CPU fp32 references: fp32 must pass their tolerances (ws 1e-5,
   images 1e-4, relative to max(1, |ref|)); fp16 has no reference, so its error is printed.
2. Tasks. Each command (generate, mix, noise, video, edit, layers, project) on the
   bundled model, once with --device cuda and once with --device cpu, each a fresh process;
   prints the wall time of each and how far the CUDA images are from the CPU ones (levels).
3. Speed. NVIDIA's configurations with random weights (fp16 in the top 4 resolutions and
   conv_clamp 256, as NVIDIA trains them): ms per image and images/s from CUDA events, the
   median of 10 timed calls after 3 warm-ups, fp16 and all-fp32, and peak GPU memory.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import benchmark  # noqa: E402
import stylegan  # noqa: E402

WS_TOLERANCE, IMAGE_TOLERANCE = 1e-5, 1e-4
DEVICE = "cuda"
TASK_DEVICES = ("cuda", "cpu")


def all_fp32(G):
    for module in G.modules():
        if hasattr(module, "use_fp16"):
            module.use_fp16 = False
    return G


def relative_error(ours, ref):
    return float(np.abs(ours.float().cpu().numpy() - ref).max() / max(1.0, np.abs(ref).max()))


def fixture_pairs(fixtures):
    for pattern in ("reference/*.pkl", "stylegan2_tf/*.pkl", "stylegan1/*.pkl", "rosinality/*.pt"):
        for checkpoint in sorted(fixtures.glob(pattern)):
            arrays = checkpoint.with_suffix(".npz")
            if arrays.exists():
                yield checkpoint, arrays
    for checkpoint in sorted((ROOT / "tests" / "fixtures" / "rosinality").glob("*.pt")):
        yield checkpoint, checkpoint.with_suffix(".npz")


def fidelity(fixtures, results):
    print("== fidelity on CUDA against the fixtures' CPU fp32 references", flush=True)
    failed = 0
    for checkpoint, arrays in fixture_pairs(fixtures):
        ref = np.load(arrays)
        row = {"fixture": checkpoint.name}
        for precision in ("fp32", "fp16"):
            G = stylegan.load(checkpoint, device=DEVICE)
            if precision == "fp32":
                all_fp32(G)
            z = torch.from_numpy(ref["z"]).to(DEVICE)
            c = torch.from_numpy(ref["c"]).to(DEVICE) if G.c_dim else None
            with torch.no_grad():
                ws = G.mapping(z, c, truncation_psi=1)
                errors = {
                    "ws": relative_error(ws, ref["ws_psi1"]),
                    "image": relative_error(G.synthesis(torch.from_numpy(ref["ws_psi1"]).to(DEVICE), noise_mode="const"),
                                            ref["img_const_psi1"]),
                    "mixed": relative_error(G.synthesis(torch.from_numpy(ref["ws_mixed"]).to(DEVICE), noise_mode="const"),
                                            ref["img_mixed"]),
                }
            row[precision] = errors
        ok = row["fp32"]["ws"] <= WS_TOLERANCE and max(row["fp32"]["image"], row["fp32"]["mixed"]) <= IMAGE_TOLERANCE
        failed += not ok
        row["fp32_within_tolerance"] = ok
        results.append(row)
        print(f"{checkpoint.name:24s} fp32 ws {row['fp32']['ws']:.1e} image {row['fp32']['image']:.1e} "
              f"mixed {row['fp32']['mixed']:.1e} {'ok' if ok else 'FAIL'} | fp16 ws {row['fp16']['ws']:.1e} "
              f"image {row['fp16']['image']:.1e} mixed {row['fp16']['mixed']:.1e}", flush=True)
    print(f"fp32: {len(results) - failed} of {len(results)} fixtures within tolerance", flush=True)


TASKS = {
    "generate": ["generate", "--seeds", "0-7", "--psi", "0.7", "--out", "{out}/generate.png"],
    "mix": ["mix", "--rows", "1,2,3", "--cols", "4,5,6,7", "--out", "{out}/mix.png"],
    "noise": ["noise", "--seed", "1", "--samples", "8", "--out", "{out}/noise.png"],
    "video": ["video", "--seeds", "1,2,3", "--frames", "30", "--out", "{out}/walk.mp4"],
    "edit": ["edit", "--seed", "1", "--method", "ganspace", "--components", "0", "--strength", "3",
             "--out", "{out}/edit.png"],
    "layers": ["layers", "--seed", "1", "--layer", "4", "--out", "{out}/layers.png"],
    "project": ["project", str(ROOT / "tests" / "photos" / "astronaut.png"), "--steps", "100", "--out", "{out}/me"],
}


def png_levels(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def compare_outputs(cpu, cuda):
    """Per PNG both sides wrote: the largest difference and the share of values more than 2 levels apart."""
    found = {}
    for a in sorted(cpu.rglob("*.png")):
        b = cuda / a.relative_to(cpu)
        if b.exists():
            x, y = png_levels(a), png_levels(b)
            if x.shape == y.shape:
                d = np.abs(x - y)
                found[str(a.relative_to(cpu))] = {"max_levels": int(d.max()), "share_over_2": float((d > 2).mean())}
    return found


def video_frames(path):
    import imageio.v3 as iio
    return iio.imread(path).shape


def tasks(out, results):
    print("== the command-line tasks on the bundled model, CUDA against CPU (each a fresh process)", flush=True)
    for name, args in TASKS.items():
        row = {"task": name}
        for device in TASK_DEVICES:
            folder = out / "tasks" / device / name
            folder.mkdir(parents=True, exist_ok=True)
            argv = [a.format(out=folder) for a in args]
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "stylegan", *argv, "--device", device], cwd=ROOT,
                                  capture_output=True, text=True)
            row[device] = {"seconds": round(time.perf_counter() - started, 2), "status": done.returncode}
            if done.returncode:
                row[device]["stderr"] = done.stderr[-2000:]
            else:
                row[device]["stdout_tail"] = done.stdout[-600:]
        row["compared"] = compare_outputs(out / "tasks" / "cpu" / name, out / "tasks" / "cuda" / name)
        if name == "video" and not row[TASK_DEVICES[0]]["status"]:
            row["video_shape"] = list(video_frames(out / "tasks" / TASK_DEVICES[0] / name / "walk.mp4"))
        results.append(row)
        worst = max((v["max_levels"] for v in row["compared"].values()), default=None)
        times = ", ".join(f"{d} {row[d]['seconds']:.1f} s (status {row[d]['status']})" for d in TASK_DEVICES)
        print(f"{name:10s} {times}, {len(row['compared'])} PNGs compared, largest difference {worst} levels",
              flush=True)
        for device in TASK_DEVICES:
            if row[device]["status"]:
                print(f"  {device} stderr: {row[device]['stderr'][-600:]}", flush=True)


SPEED_CONFIGS = ["sg2-256", "sg2-1024", "sg3t-256", "sg3r-256"]


def build_as_trained(name):
    cls, kwargs = benchmark.CONFIGS[name]
    mapping = {"num_layers": 8 if name.startswith("sg2") else 2}
    torch.manual_seed(0)
    return cls(z_dim=512, c_dim=0, w_dim=512, img_channels=3, mapping_kwargs=mapping, num_fp16_res=4,
               conv_clamp=256, **kwargs).eval().to(DEVICE)


def cuda_ms(fn, warmup=3, repeats=10):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def speed(results, batches):
    print(f"== speed on {torch.cuda.get_device_name()}: z -> image, noise const, random weights", flush=True)
    for name in SPEED_CONFIGS:
        for precision in ("fp16", "fp32"):
            G = build_as_trained(name)
            if precision == "fp32":
                all_fp32(G)
            for batch in batches:
                z = torch.randn(batch, 512, device=DEVICE)
                torch.cuda.reset_peak_memory_stats()
                with torch.inference_mode():
                    ms = cuda_ms(lambda: G(z, None, truncation_psi=0.7, noise_mode="const"))
                peak = torch.cuda.max_memory_allocated() / 2 ** 30
                row = {"config": name, "precision": precision, "batch": batch, "ms_per_call": ms,
                       "ms_per_image": ms / batch, "images_per_s": 1000 * batch / ms, "peak_gib": peak}
                results.append(row)
                print(f"{name:9s} {precision} batch {batch:3d}: {ms / batch:8.2f} ms/image, "
                      f"{1000 * batch / ms:8.1f} images/s, peak {peak:.2f} GiB", flush=True)
            G = None  # the next configuration's memory
            torch.cuda.empty_cache()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", type=Path, required=True, help="the checkpoint fixtures folder")
    parser.add_argument("--out", type=Path, default=Path("cuda-check"))
    parser.add_argument("--skip", nargs="*", default=[], choices=["fidelity", "tasks", "speed"])
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 8, 32])
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this check needs an NVIDIA GPU.")
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    for section, run in (("fidelity", lambda r: fidelity(args.fixtures, r)),
                         ("speed", lambda r: speed(r, args.batches)),
                         ("tasks", lambda r: tasks(args.out, r))):
        if section in args.skip:
            continue
        results[section] = []
        try:
            run(results[section])
        except Exception as error:  # one section failing should not hide the others' figures
            results[section].append({"error": repr(error)})
            print(f"{section} stopped: {error!r}", flush=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
