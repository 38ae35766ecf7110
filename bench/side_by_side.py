"""Our generator against NVIDIA's reference code, side by side on this machine, same weights, same computation.

    python bench/side_by_side.py --reference PATH [--configs sg2-1024-b1,sg2-256-b4,sg3t-128-b1]
        [--rounds 5] [--threads 1,all] [--calls 3] [--json out.json] [--quick]

PATH is a clone of https://github.com/NVlabs/stylegan3 that you make yourself; this repository
contains none of NVIDIA's code (its licence is non-commercial), the bench only runs it.

A configuration is NAME-bBATCH, NAME one of bench/benchmark.py's CONFIGS (NVIDIA's published
architectures; sg3t-128 has the widths of their 256 px StyleGAN3 models). For each:

1. A fresh process imports NVIDIA's code from PATH, builds their generator with a fixed torch
   seed, shifts every bias and noise strength by seeded random amounts (so that these weights
   matter to the comparison below), sets w_avg and, for StyleGAN3, each layer's input magnitude
   with NVIDIA's own running-average updates (update_emas) over one pass, so that truncation is
   towards the average w and activations keep their scale. It pickles {'G_ema': G} into a
   temporary folder, as NVIDIA's training loop writes a snapshot (module source embedded), and
   saves its image of the seeds 0..BATCH-1 (noise 'const', --psi).
2. A fresh process loads that file with stylegan.load (which reads the weights and never runs the
   embedded source), makes the same image and prints the largest difference; a configuration
   whose images differ by more than 1e-4 x max(1, max |image|) is not timed.
3. For each thread count: the roof (benchmark.py's large 3x3 convolution) in a fresh process, then
   --rounds rounds of one fresh process per side. Each sets OMP_NUM_THREADS, MKL_NUM_THREADS and
   torch.set_num_threads, loads the same file (NVIDIA's side with pickle, which runs the embedded
   source, as their tools do), makes --warmup calls, then times --calls calls of G(z) -> image and
   reports their median. Rounds alternate which side goes first.

Both sides run under torch.no_grad(). NVIDIA's gen_images.py does not, but the networks in their
snapshots have requires_grad off, so autograd records nothing there either; no_grad only spares
the bookkeeping a network with gradients on would pay. stylegan.load also tunes glibc's malloc to
reuse freed memory (part of our package, so part of "ours"); --tune-reference-malloc gives the
reference process the same tuning, to see how much of the difference that is.
"""

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEEDS = ("besides torch and numpy, NVIDIA's generator code needs requests, scipy (StyleGAN3), packaging, and "
         "distutils, which Python 3.12 dropped and setuptools brings back: pip install requests scipy packaging "
         "setuptools")
DEFAULT_CONFIGS = "sg2-1024-b1,sg2-256-b4,sg3t-128-b1"
QUICK_CONFIGS = "sg2-256-b1,sg3t-128-b1"
RELATIVE_TOLERANCE = 1e-4  # "the same image" of the checkpoint fixtures (shared/fixtures/README.md)


class BenchError(Exception):
    """A one-sentence reason the bench cannot go on."""


def check_reference(path):
    """The clone's path, or a BenchError saying why PATH is not one."""
    clone = Path(path).expanduser().resolve()
    wanted = ["training/networks_stylegan2.py", "training/networks_stylegan3.py", "torch_utils/persistence.py"]
    missing = [name for name in wanted if not (clone / name).is_file()]
    if missing:
        raise BenchError(f"--reference {path} is not a clone of NVlabs/stylegan3 (it has no {missing[0]}); "
                         "make one with `git clone https://github.com/NVlabs/stylegan3` and pass its folder.")
    return clone


def parse_configs(text):
    """[(NAME, BATCH)] from 'NAME-bBATCH,...', checked against benchmark.py's CONFIGS."""
    import benchmark
    configs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, batch = item.rpartition("-b")
        if name not in benchmark.CONFIGS or not batch.isdigit() or int(batch) < 1:
            raise BenchError(f"unknown configuration {item!r}: give NAME-bBATCH with NAME one of "
                             f"{', '.join(benchmark.CONFIGS)} (for example sg2-256-b4).")
        configs.append((name, int(batch)))
    return configs


def parse_threads(text):
    """Thread counts from '1,all'; 'all' is the CPUs this process may run on."""
    available = len(os.sched_getaffinity(0))
    counts = []
    for part in (part.strip() for part in text.split(",")):
        if part != "all" and not (part.isdigit() and int(part) > 0):
            raise BenchError(f"--threads {text}: give thread counts and 'all', separated by commas (like 1,all).")
        count = available if part == "all" else int(part)
        if count not in counts:
            counts.append(count)
    return counts


def machine():
    """What the numbers were measured on."""
    import torch
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    return {"cpu": models[0] if models else "unknown", "logical_cpus": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)), "torch": torch.__version__, "python": sys.version.split()[0]}


# ---- worker side: each of these runs in a fresh process ----

def set_threads(threads):
    import torch
    torch.set_num_threads(threads)


def latents(batch, z_dim):
    """z for the seeds 0..batch-1, by NVIDIA's convention (np.random.RandomState(seed).randn)."""
    import numpy as np
    import torch
    return torch.from_numpy(np.stack([np.random.RandomState(seed).randn(z_dim) for seed in range(batch)])).float()


def import_reference(clone):
    """NVIDIA's two network modules from the clone, or a BenchError naming what is missing."""
    sys.path.insert(0, str(clone))
    try:
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            # Their ops import parse_version from pkg_resources, which setuptools 81 removed; it is
            # packaging's version parser, so that is what they get.
            import packaging.version
            sys.modules["pkg_resources"] = types.SimpleNamespace(parse_version=packaging.version.parse)
        from training import networks_stylegan2, networks_stylegan3
    except ImportError as e:
        raise BenchError(f"importing NVIDIA's code from {clone} failed ({e}); {NEEDS}.") from None
    return {"stylegan2": networks_stylegan2, "stylegan3": networks_stylegan3}


def prepare(args):
    """Reference side: build, set the weights, pickle them; save the reference image."""
    import numpy as np
    import torch
    set_threads(args.threads)
    spec = json.loads(args.spec)
    networks = import_reference(Path(args.reference))
    torch.manual_seed(args.seed)
    G = networks[spec["family"]].Generator(**spec["kwargs"]).eval().requires_grad_(False)
    for name, value in G.named_parameters():
        if name.endswith(("bias", "noise_strength")):
            value.add_(0.1 * torch.randn_like(value))
    with torch.no_grad():
        # NVIDIA's running averages, each set from one pass (decay 0) instead of a training run.
        beta = G.mapping.w_avg_beta
        G.mapping.w_avg_beta = 0.0
        G.mapping(torch.randn(1024, G.z_dim), None, update_emas=True)
        G.mapping.w_avg_beta = beta
        layers = [m for m in G.synthesis.modules() if hasattr(m, "magnitude_ema_beta")]
        betas = [layer.magnitude_ema_beta for layer in layers]
        for layer in layers:
            layer.magnitude_ema_beta = 0.0
        if layers:
            G.synthesis(G.mapping(torch.randn(1, G.z_dim), None), update_emas=True)
        for layer, layer_beta in zip(layers, betas):
            layer.magnitude_ema_beta = layer_beta
        z = latents(args.batch, G.z_dim)
        image = G(z, torch.zeros([args.batch, G.c_dim]), truncation_psi=args.psi, noise_mode="const")
    folder = Path(args.folder)
    with open(folder / "network.pkl", "wb") as f:
        pickle.dump({"G_ema": G}, f)
    np.save(folder / "reference.npy", image.numpy())
    return {"image_std": float(image.std()), "image_min": float(image.min()), "image_max": float(image.max())}


def check(args):
    """Our side: the same image from the pickled network, against the reference's; and our GFLOP count."""
    import numpy as np
    import torch
    import benchmark
    import stylegan
    set_threads(args.threads)
    G = stylegan.load(args.network, device="cpu")
    with torch.no_grad():
        image = G(latents(args.batch, G.z_dim), None, truncation_psi=args.psi, noise_mode="const").numpy()
    reference = np.load(Path(args.folder) / "reference.npy")
    if image.shape != reference.shape:
        return {"ok": False, "shapes": [list(image.shape), list(reference.shape)]}
    difference = float(np.abs(image - reference).max())
    scale = max(1.0, float(np.abs(reference).max()))
    return {"ok": difference <= RELATIVE_TOLERANCE * scale, "max_abs_diff": difference, "max_abs_reference": scale,
            "tolerance": RELATIVE_TOLERANCE * scale, "gflop_per_image": 2 * benchmark.count_macs(G) / 1e9}


def measure(args):
    """One side: load the network, warm up, time --calls calls of z -> image."""
    import torch
    set_threads(args.threads)
    start = time.perf_counter()
    if args.worker == "ours":
        import stylegan
        G = stylegan.load(args.network, device="cpu")
        c = None
    else:
        import_reference(Path(args.reference))
        if args.tune_reference_malloc:
            sys.path.insert(0, str(ROOT))
            import stylegan
            stylegan.reuse_freed_memory()
        with open(args.network, "rb") as f:
            # Plain pickle, as legacy.load_network_pkl does underneath (that function also wants a
            # 'G' and a 'D'); it runs the embedded module source, which is NVIDIA's own code.
            G = pickle.load(f)["G_ema"]
        c = torch.zeros([args.batch, G.c_dim])
    load_seconds = time.perf_counter() - start
    z = latents(args.batch, G.z_dim)

    def generate():
        with torch.no_grad():
            G(z, c, truncation_psi=args.psi, noise_mode="const")
    import benchmark
    times = [1000 * seconds for seconds in benchmark.call_seconds(generate, args.calls, args.warmup)]
    return {"times_ms": times, "load_s": load_seconds, "threads": torch.get_num_threads()}


def roof(args):
    """benchmark.py's roof: GFLOP/s of one large 3x3 convolution."""
    import benchmark
    set_threads(args.threads)
    return {"roof_gflops": benchmark.conv_roof(3)}


WORKERS = {"prepare": prepare, "check": check, "ours": measure, "reference": measure, "roof": roof}


def run_worker(args):
    try:
        result = WORKERS[args.worker](args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


# ---- parent side ----

def spawn(worker, threads, args, **options):
    """Run this script as WORKER in a fresh process with THREADS threads; its JSON result."""
    command = [sys.executable, __file__, "--worker", worker, "--threads", str(threads), "--reference",
               str(args.reference), "--psi", str(args.psi), "--warmup", str(args.warmup), "--calls", str(args.calls)]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    if args.tune_reference_malloc:
        command.append("--tune-reference-malloc")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if result.returncode == 2 and result.stderr.startswith("error: "):
        raise BenchError(result.stderr.strip().removeprefix("error: "))
    if result.returncode != 0:
        raise RuntimeError(f"the {worker} process failed:\n{result.stderr[-3000:]}")
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "process_s": seconds}  # process_s: to plan runs


def loadavg():
    return [round(v, 2) for v in os.getloadavg()]


def compare(name, batch, threads, args, folder, gflop):
    """Roof, then --rounds alternating rounds at one thread count: the row's raw numbers and summary."""
    roof_gflops = spawn("roof", threads, args)["roof_gflops"]
    print(f"  {threads} thread{'s' * (threads > 1)}: roof {roof_gflops:.0f} GFLOP/s (fresh process), "
          f"load average {loadavg()[0]:.2f}")
    print(f"  {'round':>5} {'first':>9} {'ours ms/img':>12} {'reference ms/img':>17} {'reference/ours':>15}")
    rounds = []
    for r in range(args.rounds):
        order = ("ours", "reference") if r % 2 == 0 else ("reference", "ours")
        sides = {}
        for side in order:
            sides[side] = spawn(side, threads, args, network=folder / "network.pkl", batch=batch)
            sides[side]["loadavg"] = loadavg()
            sides[side]["ms_per_image"] = statistics.median(sides[side]["times_ms"]) / batch
        ratio = sides["reference"]["ms_per_image"] / sides["ours"]["ms_per_image"]
        rounds.append({"first": order[0], **sides, "ratio": ratio})
        print(f"  {r + 1:5d} {order[0]:>9} {sides['ours']['ms_per_image']:12,.0f} "
              f"{sides['reference']['ms_per_image']:17,.0f} {ratio:15.2f}", flush=True)
    ours = statistics.median(r["ours"]["ms_per_image"] for r in rounds)
    reference = statistics.median(r["reference"]["ms_per_image"] for r in rounds)
    ratios = [r["ratio"] for r in rounds]
    row = {"config": f"{name}-b{batch}", "threads": threads, "roof_gflops": roof_gflops, "rounds": rounds,
           "ours_ms_per_image": ours, "reference_ms_per_image": reference, "ratio_median": statistics.median(ratios),
           "ratio_min": min(ratios), "ratio_max": max(ratios), "ours_gflops": gflop / (ours / 1000)}
    row["ours_fraction_of_roof"] = row["ours_gflops"] / roof_gflops
    print(f"  {'median':>5} {'':>9} {ours:12,.0f} {reference:17,.0f} {row['ratio_median']:15.2f} "
          f"({row['ratio_min']:.2f}-{row['ratio_max']:.2f}); ours {row['ours_gflops']:.0f} GFLOP/s, "
          f"{100 * row['ours_fraction_of_roof']:.0f} % of the roof\n", flush=True)
    return row


def run_config(name, batch, args, thread_counts):
    """Prepare, check and compare one configuration; its JSON record."""
    import benchmark
    cls, kwargs = benchmark.constructor_kwargs(name)
    spec = {"family": cls.__module__.rsplit(".", 1)[-1], "kwargs": kwargs}  # stylegan2 or stylegan3, as NVIDIA's
    record = {"config": f"{name}-b{batch}", "batch": batch, "constructor_kwargs": kwargs, "loadavg_before": loadavg()}
    with tempfile.TemporaryDirectory(prefix="side-by-side-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        record["reference_image"] = spawn("prepare", max(thread_counts), args, spec=json.dumps(spec), folder=folder,
                                          batch=batch, seed=args.seed)
        record["prepare_s"] = time.perf_counter() - start
        record["check"] = spawn("check", max(thread_counts), args, network=folder / "network.pkl", folder=folder,
                                batch=batch)
        verdict = record["check"]
        if "max_abs_diff" not in verdict:
            print(f"{name}-b{batch}: MISMATCH, image shapes {verdict['shapes']} (ours, reference); not timed\n")
            return record
        print(f"{name}-b{batch}: {verdict['gflop_per_image']:.1f} GFLOP/image; same image as the reference: "
              f"max |ours - reference| {verdict['max_abs_diff']:.2e} (tolerance {verdict['tolerance']:.1e}, reference "
              f"image std {record['reference_image']['image_std']:.2f}); prepared in {record['prepare_s']:.0f} s")
        if not verdict["ok"]:
            print("  MISMATCH: not the same computation, not timed\n")
            return record
        record["rows"] = [compare(name, batch, threads, args, folder, verdict["gflop_per_image"])
                          for threads in thread_counts]
    record["loadavg_after"] = loadavg()
    return record


def summary(records):
    """A Markdown table of the medians."""
    lines = ["| model | batch | threads | ours ms / image | reference ms / image | reference / ours (min-max) | "
             "ours GFLOP/s | of roof |", "|---|---|---|---|---|---|---|---|"]
    for record in records:
        for row in record.get("rows", []):
            lines.append(f"| {record['config'].rpartition('-b')[0]} | {record['batch']} | {row['threads']} | "
                         f"{row['ours_ms_per_image']:,.0f} | {row['reference_ms_per_image']:,.0f} | "
                         f"{row['ratio_median']:.2f} ({row['ratio_min']:.2f}-{row['ratio_max']:.2f}) | "
                         f"{row['ours_gflops']:.0f} | {100 * row['ours_fraction_of_roof']:.0f} % |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="a clone of https://github.com/NVlabs/stylegan3")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"NAME-bBATCH,... (default {DEFAULT_CONFIGS})")
    parser.add_argument("--rounds", type=int, default=5, help="fresh processes per side and thread count")
    parser.add_argument("--threads", default="1,all", help="thread counts; 'all' = the CPUs this process may use")
    parser.add_argument("--calls", type=int, default=3, help="timed calls per process (their median counts)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per process before those")
    parser.add_argument("--psi", type=float, default=0.7, help="truncation psi, both sides")
    parser.add_argument("--seed", type=int, default=0, help="torch seed of the reference's random weights")
    parser.add_argument("--tune-reference-malloc", action="store_true",
                        help="give the reference process the malloc tuning that stylegan.load gives ours")
    parser.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK_CONFIGS}, 1 round, 1 warm-up, 1 call")
    parser.add_argument("--json", help="write every raw number here")
    parser.add_argument("--worker", choices=list(WORKERS), help=argparse.SUPPRESS)
    for hidden in ("--spec", "--folder", "--network"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "bench"))
    if args.worker:
        sys.path.insert(1, str(ROOT))
        args.threads = int(args.threads)
        return run_worker(args)
    if args.quick:
        args.configs, args.rounds, args.warmup, args.calls = QUICK_CONFIGS, 1, 1, 1
    try:
        args.reference = check_reference(args.reference)
        sys.path.insert(1, str(ROOT))
        configs = parse_configs(args.configs)
        thread_counts = parse_threads(args.threads)
        about = {"machine": machine(), "loadavg_before": loadavg(), "reference": str(args.reference),
                 "settings": {k: v for k, v in vars(args).items() if k in ("configs", "rounds", "threads", "calls",
                                                                           "warmup", "psi", "seed",
                                                                           "tune_reference_malloc")}}
        print(f"{about['machine']['cpu']}, {about['machine']['usable_cpus']} usable CPUs, torch "
              f"{about['machine']['torch']}; load average {about['loadavg_before']}")
        print(f"{args.rounds} round(s) per thread count, each side {args.warmup} warm-up + {args.calls} timed "
              f"call(s) per fresh process, psi {args.psi}, noise const, no_grad on both sides"
              f"{', reference malloc tuned like ours' if args.tune_reference_malloc else ''}\n")
        records = [run_config(name, batch, args, thread_counts) for name, batch in configs]
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    about["loadavg_after"] = loadavg()
    print(summary(records))
    print(f"\nload average before {about['loadavg_before']}, after {about['loadavg_after']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({**about, "configs": records}, indent=1) + "\n")
    return 0 if all("rows" in record for record in records) else 1


if __name__ == "__main__":
    sys.exit(main())
