"""Generator speed on this machine: images per second, ms per image, achieved GFLOP/s, and the roof.

    python bench/benchmark.py [--quick] [--json bench/results.json]

Random weights in NVIDIA's published configurations (speed does not depend on the values).
GFLOP/s counts 2 x the multiply-adds of the convolutions, the resampling filters and the
modulation, from the architecture (printed per configuration); the roof is one large 3x3
convolution through PyTorch, the most this processor gives a convolution. On a shared machine
the roof is measured again right before each configuration, and each row's share is of that
roof. Also printed: the GFLOP/s of plain 3x3 convolutions shaped like the high-resolution
layers (what bounds a configuration), and the peak memory of one 1024 px image, measured in a
fresh process (its peak resident set, VmHWM).
"""

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import stylegan  # noqa: E402
from stylegan import stylegan2, stylegan3  # noqa: E402

CONFIGS = {
    "sg2-256": (stylegan2.Generator, dict(img_resolution=256, channel_base=16384, channel_max=512)),
    "sg2-512": (stylegan2.Generator, dict(img_resolution=512, channel_base=32768, channel_max=512)),
    "sg2-1024": (stylegan2.Generator, dict(img_resolution=1024, channel_base=32768, channel_max=512)),
    # NVIDIA's 256 px StyleGAN3 models were trained with --cbase=16384 (config R doubles base and max).
    "sg3t-256": (stylegan3.Generator, dict(img_resolution=256, channel_base=16384, channel_max=512)),
    "sg3r-256": (stylegan3.Generator, dict(img_resolution=256, channel_base=32768, channel_max=1024, conv_kernel=1,
                                           use_radial_filters=True)),
    # A target of bench/side_by_side.py, not in the table. No 128 px StyleGAN3 was published: the 256 px
    # models' widths. Widths follow the filter cutoffs, so its last layers have half the size and twice
    # the channels of sg3t-256's: nearly the same GFLOP per image (226 against 239).
    "sg3t-128": (stylegan3.Generator, dict(img_resolution=128, channel_base=16384, channel_max=512)),
}
TABLE_CONFIGS = ["sg2-256", "sg2-512", "sg2-1024", "sg3t-256", "sg3r-256"]


def constructor_kwargs(name):
    """(our generator class, its constructor arguments) for a configuration. The arguments have the
    names and meaning of NVIDIA's constructors, so their code can build the same network from them."""
    cls, kwargs = CONFIGS[name]
    mapping = {"num_layers": 8 if cls is stylegan2.Generator else 2}
    return cls, dict(z_dim=512, c_dim=0, w_dim=512, img_channels=3, mapping_kwargs=mapping, **kwargs)


def build(name):
    cls, kwargs = constructor_kwargs(name)
    return cls(**kwargs).eval()


def filter_macs(taps, h, w, c):
    return taps * h * w * c


def count_macs(G):
    """Multiply-adds of one image's synthesis."""
    macs = 0
    if G.family == "stylegan2":
        for block in G.synthesis.blocks:
            r = block.resolution
            for layer in block.conv_layers():
                c_out, c_in = layer.weight.shape[:2]
                if layer.up == 1:
                    macs += r * r * 9 * c_in * c_out
                else:  # transposed convolution on the low-resolution input, then the 4x4 FIR
                    macs += (r // 2) ** 2 * 9 * c_in * c_out + filter_macs(16, r, r, c_out)
            if block.num_torgb:
                macs += r * r * block.torgb.weight.shape[1] * block.torgb.weight.shape[0]
                if r > 4:
                    macs += filter_macs(16, r, r, block.torgb.weight.shape[0])
    else:
        for name in G.synthesis.layer_names:
            layer = getattr(G.synthesis, name)
            c_out, c_in, k, _ = layer.weight.shape
            size_in = int(layer.in_size[0]) + k - 1
            macs += size_in ** 2 * k * k * c_in * c_out
            up, down = layer.up_factor, layer.down_factor
            h_up = size_in * up
            for f, h in ((layer.up_filter, h_up), (layer.down_filter, int(layer.out_size[0]) * down)):
                if f is not None:
                    taps = f.numel() if f.ndim == 2 else 2 * f.numel()
                    macs += filter_macs(taps, h, h, c_out)
    return macs


def call_seconds(fn, repeats, warmup=1):
    """Seconds of each of repeats calls of fn, after warmup untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def timed(fn, repeats, warmup=1):
    return statistics.median(call_seconds(fn, repeats, warmup))


def conv_gflops(batch, channels, size, repeats):
    """GFLOP/s of a plain 3x3 convolution, channels-last (the layout the generators use on CPU)."""
    x = torch.randn(batch, channels, size, size).contiguous(memory_format=torch.channels_last)
    w = torch.randn(channels, channels, 3, 3)
    seconds = timed(lambda: F.conv2d(x, w, padding=1), repeats)
    return 2 * batch * size * size * channels * channels * 9 / seconds / 1e9


def conv_roof(repeats):
    return conv_gflops(8, 256, 64, repeats)


LAYER_SHAPES = [(512, 32), (256, 64), (128, 128), (64, 256), (32, 512)]  # (channels, size) of 1024 px layers
PEAK_MEMORY_CODE = """
import sys, torch
sys.path.insert(0, {bench!r})
import benchmark
if {reuse!r}:
    benchmark.stylegan.reuse_freed_memory()
G = benchmark.build({name!r})
ws = G.mapping(torch.randn(1, G.z_dim), None)
print(benchmark.memory_kib("VmRSS"))
with torch.inference_mode():
    G.synthesis(ws, noise_mode="const")
print(benchmark.memory_kib("VmHWM"))
"""


def memory_kib(field):
    """This process's resident memory (VmRSS) or its peak (VmHWM), from /proc. Not ru_maxrss: a
    child process inherits its parent's maximum through fork and exec."""
    status = Path("/proc/self/status").read_text()
    return int(status.split(field + ":")[1].split()[0])


def peak_memory(name, reuse):
    """(MB resident before synthesis: Python, torch and the model; MB peak with one image), in a fresh process."""
    code = PEAK_MEMORY_CODE.format(bench=str(Path(__file__).resolve().parent), name=name, reuse=reuse)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    before, peak = (int(v) / 1024 for v in out.split())
    return round(before), round(peak)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="*", default=TABLE_CONFIGS, choices=list(CONFIGS))
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="batch 1 and 1 repeat only")
    parser.add_argument("--json", default="bench/results.json")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's malloc as it is, to measure what stylegan.reuse_freed_memory() gains")
    args = parser.parse_args()
    if args.quick:
        args.batches, args.repeats = [1], 1

    torch.set_grad_enabled(False)
    reuse = not args.default_malloc and stylegan.reuse_freed_memory()  # as stylegan.load() does on a CPU
    roof = conv_roof(args.repeats)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"freed memory {'reused' if reuse else 'returned to the system'}")
    print(f"roof: 3x3 convolution, 256 channels, 64x64, batch 8: {roof:.0f} GFLOP/s")
    layer_rates = {f"{c}ch@{s}": round(conv_gflops(1, c, s, args.repeats), 1) for c, s in LAYER_SHAPES}
    print("3x3 convolutions shaped like layers (batch 1, GFLOP/s): "
          + ", ".join(f"{k} {v:.0f}" for k, v in layer_rates.items()) + "\n")
    print(f"{'config':10} {'GFLOP/img':>9} {'batch':>5} {'img/s':>7} {'ms/img':>8} {'GFLOP/s':>8} {'roof':>5} {'of roof':>7}")
    rows = []
    for name in args.configs:
        G = build(name)
        gflop = 2 * count_macs(G) / 1e9
        for batch in args.batches:
            local_roof = conv_roof(args.repeats)
            ws = G.mapping(torch.randn(batch, G.z_dim), None)
            with torch.inference_mode():
                seconds = timed(lambda: G.synthesis(ws, noise_mode="const"), args.repeats)
            per_image = seconds / batch
            row = dict(config=name, batch=batch, gflop_per_image=round(gflop, 2), images_per_s=round(1 / per_image, 3),
                       ms_per_image=round(1000 * per_image, 1), gflops=round(gflop / per_image, 1),
                       roof_gflops=round(local_roof, 1), fraction_of_roof=round(gflop / per_image / local_roof, 3))
            rows.append(row)
            print(f"{name:10} {gflop:9.1f} {batch:5d} {row['images_per_s']:7.2f} {row['ms_per_image']:8.0f} "
                  f"{row['gflops']:8.1f} {local_roof:5.0f} {100 * row['fraction_of_roof']:6.0f}%", flush=True)
    memory = None
    if "sg2-1024" in args.configs:
        before, peak = peak_memory("sg2-1024", reuse)
        memory = dict(config="sg2-1024", batch=1, resident_before_mb=before, peak_mb=peak)
        print(f"\npeak memory, one 1024 px image (fresh process): {peak} MB ({before} MB before synthesis: "
              "Python, torch and the model)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"roof_gflops": round(roof, 1), "torch": torch.__version__,
                                               "threads": torch.get_num_threads(), "freed_memory_reused": reuse,
                                               "layer_conv_gflops": layer_rates,
                                               "peak_memory": memory, "results": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
