"""onnxruntime's CPU speed against ours on the same generator: synthesis, ws -> image, constant noise.

    python bench/onnx_speed.py [--models bundled,sg2-256,sg3t-256] [--rounds 5] [--batch 1] [--threads 2]

The parent process writes each model once (the bundled model as it is; the others with seeded
random weights in NVIDIA's configurations, see benchmark.py) as .safetensors and as .onnx
(`stylegan.export.export_onnx`, synthesis only) into a temporary folder. Every measurement is
then a fresh process for one side and one model: it loads its file, runs two calls to warm up,
times --calls calls and reports their median in ms per image. Rounds alternate the sides
(torch, onnxruntime, torch, ...) so that changes in the machine's load fall on both. Printed
per model: each side's median over the rounds, its range, and the ratio onnxruntime / torch.
Needs onnx and onnxruntime (pip install .[onnx]).
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def prepare(name, folder):
    """(.safetensors, .onnx) of one model."""
    import torch
    import stylegan
    from stylegan.export import export_onnx
    if name == "bundled":
        G = stylegan.load(device="cpu")
    else:
        from benchmark import build
        torch.manual_seed(0)
        G = build(name).requires_grad_(False)
    weights, graph = folder / f"{name}.safetensors", folder / f"{name}.onnx"
    stylegan.save_safetensors(G, weights)
    export_onnx(G, graph, synthesis_only=True)
    return weights, graph


def worker(args):
    """One side, one model: ms per image of each timed call, as JSON on stdout."""
    import numpy as np
    if args.worker == "torch":
        import torch
        import stylegan
        torch.set_num_threads(args.threads)
        G = stylegan.load(args.weights, device="cpu")  # also tunes malloc, as every load on a CPU does
        ws = torch.randn([args.batch, G.num_ws, G.w_dim], generator=torch.Generator().manual_seed(1))

        def call():
            with torch.no_grad():
                G.synthesis(ws, noise_mode="const")
    else:
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(args.graph, options, providers=["CPUExecutionProvider"])
        shape = session.get_inputs()[0].shape
        ws = np.random.RandomState(1).randn(args.batch, *shape[1:]).astype(np.float32)

        def call():
            session.run(["image"], {"ws": ws})
    for _ in range(2):
        call()
    times = []
    for _ in range(args.calls):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000 / args.batch)
    print(json.dumps(times))


def measure(side, weights, graph, args):
    command = [sys.executable, __file__, "--worker", side, "--weights", str(weights), "--graph", str(graph),
               "--batch", str(args.batch), "--threads", str(args.threads), "--calls", str(args.calls)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return statistics.median(json.loads(result.stdout.strip().splitlines()[-1]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bundled,sg2-256,sg3t-256")
    parser.add_argument("--rounds", type=int, default=5, help="processes per side and model")
    parser.add_argument("--calls", type=int, default=5, help="timed calls per process")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", choices=["torch", "onnxruntime"], help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--graph", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    print(f"batch {args.batch}, {args.threads} threads, {args.rounds} rounds of {args.calls} calls per side")
    print(f"{'model':10} {'torch ms/image':>24} {'onnxruntime ms/image':>24} {'onnxruntime / torch':>20}")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            weights, graph = prepare(name, Path(folder))
            runs = {"torch": [], "onnxruntime": []}
            for _ in range(args.rounds):
                for side in runs:
                    runs[side].append(measure(side, weights, graph, args))
            shown = {side: f"{statistics.median(t):8.1f} ({min(t):.1f}-{max(t):.1f})" for side, t in runs.items()}
            ratio = statistics.median(runs["onnxruntime"]) / statistics.median(runs["torch"])
            print(f"{name:10} {shown['torch']:>24} {shown['onnxruntime']:>24} {ratio:20.2f}", flush=True)


if __name__ == "__main__":
    main()
