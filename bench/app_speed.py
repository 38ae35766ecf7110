"""The demos' speed as people meet it, with a 256 px StyleGAN2 (FFHQ configuration, random weights).

    python bench/app_speed.py [--json bench/app_speed.json] [--starts 3] [--bundled-only]

- time from starting `python app.py` (the bundled model) to its server answering and to the first
  faces, `--starts` times, each in a fresh process: the first start after a reboot or an install
  reads torch and Gradio from disk, later ones from the system's file cache;
- time from starting `python app.py --model MODEL.safetensors` to the first image returned by its
  /generate endpoint (one seed), and the time of a second image (the model now warm);
- the interpolation video's frames per second (rendering and MP4 encoding), batches of 1, 4 and 8.
Wall-clock times from one run each; on a shared machine repeat and compare.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import benchmark  # noqa: E402
from load_app import free_port, start_app  # noqa: E402
from stylegan import demos, loading  # noqa: E402


def app_first_faces(model="Offline faces 64 px (bundled)"):
    """Seconds from starting app.py (no --model) to its server answering and to its first 8 faces."""
    from gradio_client import Client

    port = free_port()
    start = time.perf_counter()
    server = start_app(port, None)
    try:
        ready = time.perf_counter() - start
        Client(f"http://127.0.0.1:{port}/", verbose=False).predict(model=model, seeds="0-7", api_name="/generate")
        return ready, time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=30)


def app_first_image(model_path):
    """Seconds from starting app.py to its server listening, to the first image, and for a second image."""
    from gradio_client import Client

    port = free_port()
    start = time.perf_counter()
    server = start_app(port, model_path)
    try:
        ready = time.perf_counter() - start
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        client.predict(str(model_path), "1", 0.7, "const", -1, 0, 0, 0, api_name="/generate")
        first = time.perf_counter() - start
        t = time.perf_counter()
        client.predict(str(model_path), "2", 0.7, "const", -1, 0, 0, 0, api_name="/generate")
        second = time.perf_counter() - t
    finally:
        server.terminate()
        server.wait(timeout=30)
    return ready, first, second


def video_fps(G, out_dir, batch_size, frames_per_transition=8, seeds=(1, 2, 3)):
    path = Path(out_dir) / f"walk-{batch_size}.mp4"
    start = time.perf_counter()
    _, recipe = demos.interpolation_video(G, list(seeds), path, frames_per_transition=frames_per_transition,
                                          batch_size=batch_size)
    return recipe["frames"] / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="bench/app_speed.json")
    parser.add_argument("--starts", type=int, default=3, help="fresh starts of app.py with the bundled model")
    parser.add_argument("--bundled-only", action="store_true", help="skip the 256 px model")
    args = parser.parse_args()
    starts = [app_first_faces() for _ in range(args.starts)]
    for k, (ready, faces) in enumerate(starts, 1):
        print(f"start {k}: python app.py answering after {ready:.1f} s, first 8 faces after {faces:.1f} s")
    if args.bundled_only:
        return
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        model_path = Path(tmp) / "sg2-256-random.safetensors"
        loading.save_safetensors(benchmark.build("sg2-256"), model_path)
        ready, first, second = app_first_image(model_path)
        print(f"app.py with a 256 px StyleGAN2: server answering after {ready:.1f} s, first image after {first:.1f} s; "
              f"a second image takes {second:.2f} s")
        G = loading.load(str(model_path), device="cpu")
        video_fps(G, tmp, 4, frames_per_transition=2)  # warm-up
        rates = {b: video_fps(G, tmp, b) for b in (1, 4, 8)}
        print("interpolation video at 256 px (render + encode), frames per second: "
              + ", ".join(f"batch {b}: {r:.1f}" for b, r in rates.items()))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "app_starts_bundled_s": [[round(r, 2), round(f, 2)] for r, f in starts],
            "app_server_ready_s": round(ready, 2), "app_first_image_s": round(first, 2),
            "app_second_image_s": round(second, 3), "video_fps_256": {str(b): round(r, 2) for b, r in rates.items()},
        }, indent=1) + "\n")


if __name__ == "__main__":
    main()
