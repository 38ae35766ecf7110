"""The app under load: N simultaneous visitors for a bounded time, through gradio_client.

    python bench/load_app.py [--users 16] [--minutes 3] [--max-requests 2000]

Starts `python app.py` on 127.0.0.1 with the bundled model, checks one request per endpoint,
then each user sends a mix of the four tabs' requests, one at a time, until the time or the
request budget runs out. Prints requests sent / answered / refused as busy / failed, p50 and
p95 latency per endpoint, the server's resident memory at start, after warm-up (the first
--warmup-seconds of the load: torch's kernel and allocator caches fill with the shapes in
use) and at the end, and whether a fresh request is still answered afterwards. Exits 1 if a
request failed or was lost, memory grew by 10 % or more after warm-up, or the fresh request
failed.
"""

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL = "Offline faces 64 px (bundled)"


def seed_range(start, count):
    return f"{start}-{start + count - 1}"


# endpoint -> (share of requests, arguments given a random source)
REQUESTS = {
    "/generate": (0.4, lambda r: (MODEL, seed_range(r.randint(0, 9999), 4), 0.7, "const", -1, 0, 0, 0)),
    "/style_mix": (0.25, lambda r: (MODEL, f"{r.randint(0, 99)}, {r.randint(0, 99)}", "1, 2, 3", "coarse", 0.7, -1)),
    "/noise": (0.2, lambda r: (MODEL, r.randint(0, 9999), 4, "fine", 1.0, 0.7, -1)),
    "/video": (0.15, lambda r: (MODEL, f"{r.randint(0, 99)}, {r.randint(0, 99)}", 6, 12, "w", "smooth", True, 0.7, -1)),
}


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port, model=MODEL):
    env = dict(os.environ, HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    log = tempfile.TemporaryFile()
    model_args = [] if model is None else ["--model", str(model)]  # None: the app's own default
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), *model_args],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        if server.poll() is not None:
            log.seek(0)
            sys.exit("the app stopped while starting:\n" + log.read().decode(errors="replace")[-3000:])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    sys.exit("the app did not start within 2 minutes")


def call(client, endpoint, args):
    """(outcome, seconds): 'answered', 'busy' (the queue said so) or 'failed'."""
    start = time.perf_counter()
    try:
        client.predict(*args, api_name=endpoint)
        return "answered", time.perf_counter() - start
    except Exception as e:  # gradio_client reports a full queue and app errors as exceptions
        text = str(e).lower()
        return ("busy" if "queue" in text and "full" in text else "failed:" + str(e)[:200]), time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--minutes", type=float, default=3)
    parser.add_argument("--max-requests", type=int, default=2000, help="stop sending after this many in all")
    parser.add_argument("--warmup-seconds", type=float, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from gradio_client import Client

    port = free_port()
    server = start_app(port)
    url = f"http://127.0.0.1:{port}"
    try:
        memory = {"start": rss_mb(server.pid)}
        warm = Client(url, verbose=False)
        rng = random.Random(args.seed)
        for endpoint, (_, make) in REQUESTS.items():
            outcome, _ = call(warm, endpoint, make(rng))
            if outcome != "answered":
                sys.exit(f"warm-up request {endpoint} was not answered: {outcome}")
        memory["after one request each"] = rss_mb(server.pid)

        lock, sent = threading.Lock(), [0]
        results = defaultdict(list)  # endpoint -> [(outcome, seconds)]
        samples = []  # (seconds since start, rss) while the load runs
        stop_at = time.time() + args.minutes * 60

        def user(index):
            client = Client(url, verbose=False)
            r = random.Random(args.seed * 1000 + index)
            endpoints, weights = zip(*[(e, w) for e, (w, _) in REQUESTS.items()])
            while time.time() < stop_at:
                with lock:
                    if sent[0] >= args.max_requests:
                        return
                    sent[0] += 1
                endpoint = r.choices(endpoints, weights)[0]
                outcome = call(client, endpoint, REQUESTS[endpoint][1](r))
                with lock:
                    results[endpoint].append(outcome)

        threads = [threading.Thread(target=user, args=(i,)) for i in range(args.users)]
        began = time.time()
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            samples.append((time.time() - began, rss_mb(server.pid)))
            if "after warm-up" not in memory and samples[-1][0] >= args.warmup_seconds:
                memory["after warm-up"] = samples[-1][1]
            time.sleep(5)
        for t in threads:
            t.join()
        memory.setdefault("after warm-up", samples[-1][1])
        memory["end"] = rss_mb(server.pid)
        fresh, fresh_seconds = call(Client(url, verbose=False), "/generate", REQUESTS["/generate"][1](rng))
    finally:
        server.terminate()
        server.wait(30)

    outcomes = [o for rs in results.values() for o, _ in rs]
    answered = outcomes.count("answered")
    busy = outcomes.count("busy")
    failed = [o for o in outcomes if o.startswith("failed")]
    lost = sent[0] - len(outcomes)
    print(f"{args.users} users for {time.time() - began:.0f} s against {url} ({os.cpu_count()} CPUs)")
    print(f"requests: {sent[0]} sent, {answered} answered, {busy} refused as busy, {len(failed)} failed, {lost} lost")
    print(f"{'endpoint':<12}{'answered':>9}{'p50 s':>8}{'p95 s':>8}")
    for endpoint in REQUESTS:
        times = sorted(s for o, s in results[endpoint] if o == "answered")
        if times:
            p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
            print(f"{endpoint:<12}{len(times):>9}{statistics.median(times):>8.2f}{p95:>8.2f}")
    growth = memory["end"] / memory["after warm-up"] - 1
    print("server memory (RSS, MB): " + ", ".join(f"{k} {v:.0f}" for k, v in memory.items())
          + f"; growth after warm-up {100 * growth:+.1f} %; peak during load {max(m for _, m in samples):.0f}")
    print(f"fresh request afterwards: {fresh} in {fresh_seconds:.2f} s")
    for f in failed[:5]:
        print("  " + f)
    ok = not failed and lost == 0 and growth < 0.10 and fresh == "answered"
    print("targets met" if ok else "TARGETS NOT MET")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
