"""Render many faces on Ray: seeds in, PNGs (or WebDataset shards) and a Parquet manifest out.

    render(RenderSettings(seeds="0-99999", psi=0.7), "faces/")  # a local Ray, one worker per core
    render(settings, "faces/", address="auto")                  # an existing cluster

A Ray Data pipeline: the seeds still to do, in blocks -> generator actors that load the model
once and return PNG bytes -> this process, which writes every file beside its final name and
renames it into place, then records it in the manifest. Only this process writes, so the folder
may live on the head node alone and a killed run leaves only whole files, each either in the
manifest or rendered again. Ray is imported here, when a render starts, never with the package.

    render_video(VideoSettings(seeds=(1, 2, 3)), "walk.mp4")    # a video's frames on Ray, one encoder here

The same generator actors (loaded once, fed blocks of work) make a long video's frames: this
process walks the latent path as demos.interpolation_video does, sends the frames' ws out in
whole passes, and feeds the frames, returned in order, to the one encoder of a video made here.
"""

import io
import json
import logging
import os
import re
import secrets
import socket
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from .settings import (BATCH, CLASS, CUTOFF, MAX_FRAMES, MAX_IMAGES, MAX_SEED, NOISE_MODE, NOISE_SEED, PSI,
                       GenerateSettings, Settings, SettingsError, _choice, _seed_int, _whole, is_whole, setting)

MAX_RENDER_SEEDS = 10_000_000
INSTALL_RAY = 'Rendering needs Ray, an optional extra: pip install ".[scale]" (or pip install "ray[data]").'
SETTINGS_FILE = "render.json"
MANIFEST = "manifest.parquet"
PARTS = "manifest"  # the folder of manifest parts a run writes as it goes, compacted when it ends
OBJECT_STORE_BYTES = 256 * 2 ** 20  # a local Ray's shared memory: a few batches of PNGs in flight need little
MAX_BLOCKS = 1000  # pieces the seeds are cut into at most: enough to share out; Ray takes 45 s to take in 10 000
BLOCK_BYTES = 4 * 2 ** 20  # Ray Data's blocks of finished PNGs
FLUSH_SECONDS = 5  # manifest rows of finished PNGs wait at most this long before they are recorded
TEMPORARY = re.compile(r"\..+\.[0-9a-f]{16}\.(png|tar|parquet|json)")  # outputs.temporary_beside's names


# ----------------------------------------------------------------------------- settings

def parse_seed_ranges(value):
    """'0-99999, 200000' (or an int, or a list of ints) -> the same seeds as short canonical text:
    ranges sorted and merged, each seed once. Up to MAX_RENDER_SEEDS seeds, never listed one by one."""
    if is_whole(value):
        value = str(value)
    elif isinstance(value, (list, tuple)) and value and all(is_whole(v) for v in value):
        value = ", ".join(map(str, value))
    if not isinstance(value, str):
        raise SettingsError(f"{value!r} is not a list of seeds: write them like '0-99999'.")
    ranges = []
    for item in value.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        m = re.fullmatch(r"([0-9]+)(?:\s*(?:-|\.\.)\s*([0-9]+))?", item)
        if not m:
            raise SettingsError(f"{item!r} is not a seed: seeds are whole numbers from 0 to {MAX_SEED}, like "
                                "'0-99999'.")
        lo = _seed_int(m.group(1))
        hi = _seed_int(m.group(2)) if m.group(2) else lo
        if lo > hi:
            raise SettingsError(f"The seed range {item!r} runs backwards; write it as {hi}-{lo}.")
        if hi > MAX_SEED:
            raise SettingsError(f"Seed {hi} is out of range: seeds go from 0 to {MAX_SEED}.")
        ranges.append([lo, hi + 1])
    if not ranges:
        raise SettingsError("No seeds given: write them like '0-99999'.")
    merged = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    count = sum(hi - lo for lo, hi in merged)
    if count > MAX_RENDER_SEEDS:
        raise SettingsError(f"{count} seeds asked for; a render makes at most {MAX_RENDER_SEEDS:,} at once.")
    return ", ".join(f"{lo}-{hi - 1}" if hi - lo > 1 else str(lo) for lo, hi in merged)


@dataclass(frozen=True)
class RenderSettings(Settings):
    """Many faces from seeds, written to a folder (stylegan.render)."""
    kind: ClassVar[str] = "render"
    tab: ClassVar[str] = "render"

    seeds: str = setting("0-99", f"seeds, like 0-99999 (at most {MAX_RENDER_SEEDS:,}; repeats count once)",
                         parse_seed_ranges, kind="seeds")
    psi: float = setting(0.7, **PSI)
    truncation_cutoff: int = setting(None, **CUTOFF)
    noise_mode: str = setting("const", **NOISE_MODE)
    noise_seed: int = setting(0, **NOISE_SEED)
    class_idx: int = setting(None, **CLASS)
    batch_size: int = setting(None, **dict(BATCH, flag="--batch"))
    format: str = setting("png", "png (one file per seed) or webdataset (tar shards of PNG + JSON recipe)",
                          _choice("Format", ("png", "webdataset")), kind="choice", choices=("png", "webdataset"))
    shard_size: int = setting(1000, "images per WebDataset shard", _whole("The shard size", 1, 100_000), kind="int")

    def all_seeds(self):
        """Every seed, sorted, as int64 (80 MB for ten million)."""
        parts = [np.arange(int(a), int(b or a) + 1, dtype=np.int64)
                 for a, _, b in (r.partition("-") for r in self.seeds.split(", "))]
        return np.concatenate(parts)

    def image_count(self):
        # What the planner sizes a batch for: a render holds one batch per worker at a time, so it
        # is planned as a full generate request is, and renders its pixels (see render()).
        return min(len(self.all_seeds()), MAX_IMAGES)

    def image_recipe(self, G, batch_size):
        """The recipe each image carries, less its seed: a generate recipe, so that `stylegan
        regenerate` rebuilds any rendered image."""
        one = GenerateSettings(seeds=(0,), psi=self.psi, truncation_cutoff=self.truncation_cutoff,
                               noise_mode=self.noise_mode, noise_seed=self.noise_seed, class_idx=self.class_idx,
                               batch_size=batch_size)
        return one.to_recipe(G, output="image:0")


# ----------------------------------------------------------------------------- the generator actor

def png_bytes(image, recipe):
    """A PNG with its recipe in a text chunk, as outputs.save_png writes it, as bytes."""
    from PIL import PngImagePlugin
    from .outputs import RECIPE_KEY
    info = PngImagePlugin.PngInfo()
    info.add_text(RECIPE_KEY, json.dumps(recipe))
    info.add_text("Software", "stylegan-demo")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


class GeneratorWorker:
    """One per Ray worker: loads the model once; subclasses turn batches into outputs."""

    def __init__(self, source, sha256, threads, device):
        import torch
        from . import demos, loading  # noqa: F401 (demos: the workers' code, imported before memory is measured)
        torch.set_num_threads(threads)  # workers share the cores: each keeps to its own share
        # An error meant for people goes back as data with every batch: Ray passes a worker's
        # exceptions on only as text, so this process could not tell them from bugs.
        self.error = ""
        try:
            self.G = loading.load(source, device=device)
        except loading.LoadError as e:
            self.error = f"On a Ray node: {e}"
            return
        if self.G.sha256 != sha256:
            self.error = (f"The model {self.G.source} on a Ray node differs from this machine's (sha256 "
                          f"{self.G.sha256[:12]}... against {sha256[:12]}...): give every node the same file.")
        self.loaded_rss, _, self.loaded_shared = resident_bytes()
        self.peak_was_reset = reset_peak_rss()  # from here on, the peak is what rendering adds to the model

    def memory_columns(self, n):
        """This worker's process id and its peak resident memory above what it held once the model
        was loaded (bytes; -1 where the system cannot say), for each of n rows. Not counted: the
        pages of Ray's object store that this worker wrote its results into. The store is shared
        memory, mapped into every worker, so those pages show in each one's resident size; they are
        the store's, bounded by its own size (OBJECT_STORE_BYTES for a local Ray)."""
        _, peak, shared = resident_bytes()
        known = peak is not None and self.peak_was_reset
        growth = peak - self.loaded_rss - (shared - self.loaded_shared) if known else -1
        return {"worker": np.full(n, os.getpid(), dtype=np.int64), "peak_growth": np.full(n, growth, dtype=np.int64)}


def resident_bytes():
    """(resident bytes now, peak resident bytes, shared-memory bytes resident now) of this process,
    from Linux's /proc; Nones elsewhere."""
    try:
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f if line.startswith(("VmRSS", "VmHWM", "RssShmem")))
        return tuple(int(fields[name].split()[0]) * 1024 for name in ("VmRSS", "VmHWM", "RssShmem"))
    except (OSError, KeyError, ValueError):
        return None, None, None


def reset_peak_rss():
    """Make this process's peak resident size its present one (Linux 4.0 and newer), so that the peak
    measures what comes after. False where that fails: the growth is then unknown, not overstated."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Renderer(GeneratorWorker):
    """Turns batches of seeds into PNG bytes (with each one's recipe)."""

    def __init__(self, source, sha256, settings, batch_size, recipe, threads, device):
        super().__init__(source, sha256, threads, device)
        self.s, self.batch_size, self.recipe = RenderSettings.from_recipe(settings), batch_size, recipe

    def __call__(self, batch):
        import torch
        if self.error:
            return {"seed": batch["data"], "png": np.full(len(batch["data"]), b"", dtype=object),
                    "error": np.full(len(batch["data"]), self.error, dtype=object)}
        from .demos import seeds_to_ws, synthesize, to_pil
        seeds = [int(seed) for seed in batch["data"]]
        s, n = self.s, len(seeds)
        ws = seeds_to_ws(self.G, seeds, s.psi, s.truncation_cutoff, s.class_idx)
        # Every pass holds exactly batch_size images (a short batch is padded with copies of its
        # last w): the last bit of a pixel can depend on the batch size, never on the neighbours.
        ws = torch.cat([ws, ws[-1:].expand(self.batch_size - n, *ws.shape[1:])])
        images = to_pil(synthesize(self.G, ws, self.batch_size, noise_mode=s.noise_mode,
                                   noise_seed=s.noise_seed)[:n])
        pngs = [png_bytes(image, dict(self.recipe, seeds=[seed])) for seed, image in zip(seeds, images)]
        return {"seed": np.asarray(seeds, dtype=np.int64), "png": np.asarray(pngs, dtype=object),
                "error": np.full(n, "", dtype=object), **self.memory_columns(n)}


class FrameRenderer(GeneratorWorker):
    """Turns a video's frames' ws, one pass at a time, into frames ([H, W, 3] uint8)."""

    def __init__(self, source, sha256, batch_size, noise_mode, threads, device):
        super().__init__(source, sha256, threads, device)
        self.batch_size, self.noise_mode = batch_size, noise_mode

    def __call__(self, batch):
        import torch
        n = len(batch["data"])
        if self.error:
            return {"frames": np.zeros((n, 1, 1, 3), dtype=np.uint8), "error": np.full(n, self.error, dtype=object)}
        from .demos import frame_arrays, model_device, synthesize
        # One pass of the video made in one process (demos.video_frames): its frames, batch_size of
        # them (fewer in the last), with the same noise seed, so that the pixels are the same.
        assert n <= self.batch_size, "a batch of frames larger than a pass"
        ws = torch.tensor(batch["data"], device=model_device(self.G))
        frames = synthesize(self.G, ws, self.batch_size, noise_mode=self.noise_mode, noise_seed=0)
        return {"frames": np.stack(frame_arrays(frames)), "error": np.full(n, "", dtype=object)}


# ----------------------------------------------------------------------------- files and the manifest

def write_bytes(path, data):
    """data into path, all or nothing: written beside it, then renamed into place."""
    from .outputs import write_beside

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    write_beside(path, write)


class Shard:
    """A WebDataset tar being written beside its final name; it appears only when complete."""

    def __init__(self, path):
        from .outputs import temporary_beside
        self.path, self.tmp = path, temporary_beside(path)
        self.tar = tarfile.open(self.tmp, "w", format=tarfile.USTAR_FORMAT)

    def add(self, name, data):
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644  # mtime 0: the same samples make the same bytes
        try:
            self.tar.addfile(info, io.BytesIO(data))
        except OSError as e:
            self.discard()
            raise SettingsError(f"Cannot write {self.path}: {e.strerror or e}.") from None

    def close(self):
        try:
            self.tar.close()
            os.replace(self.tmp, self.path)
        except OSError as e:
            self.discard()
            raise SettingsError(f"Cannot write {self.path}: {e.strerror or e}.") from None

    def discard(self):
        try:
            self.tar.close()
        except OSError:
            pass
        Path(self.tmp).unlink(missing_ok=True)


def manifest_schema():
    import pyarrow as pa
    return pa.schema([("seed", pa.int64()), ("psi", pa.float64()), ("truncation_cutoff", pa.int64()),
                      ("class_idx", pa.int64()), ("noise_mode", pa.string()), ("noise_seed", pa.int64()),
                      ("model_sha256", pa.string()), ("file", pa.string()), ("shard", pa.string()),
                      ("recipe", pa.string())])


class Manifest:
    """One row per finished image. A run appends parts (out/manifest/part-*.parquet), each written
    only after its files are in place; compact() folds them into out/manifest.parquet."""

    def __init__(self, out, seeds):
        self.out, self.seeds = out, seeds  # seeds: the run's, sorted
        self.done = np.zeros(len(seeds), dtype=bool)  # by position in seeds
        self.shards = set()
        self.rows = []
        self.flushed_at = time.monotonic()
        import pyarrow.parquet as pq
        for path in self.files():
            table = pq.read_table(path, columns=["seed", "shard"])
            self.done[np.searchsorted(seeds, table["seed"].to_numpy())] = True
            self.shards.update(name for name in table["shard"].unique().to_pylist() if name)

    def files(self):
        whole = [self.out / MANIFEST] if (self.out / MANIFEST).exists() else []
        return whole + sorted((self.out / PARTS).glob("part-*.parquet"))

    def add(self, row):
        self.rows.append(row)

    def flush(self):
        if not self.rows:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq
        (self.out / PARTS).mkdir(exist_ok=True)
        table = pa.Table.from_pylist(self.rows, schema=manifest_schema())
        buffer = pa.BufferOutputStream()
        pq.write_table(table, buffer)
        write_bytes(self.out / PARTS / f"part-{time.time_ns()}-{secrets.token_hex(4)}.parquet",
                    buffer.getvalue().to_pybytes())
        self.done[np.searchsorted(self.seeds, table["seed"].to_numpy())] = True
        self.rows = []
        self.flushed_at = time.monotonic()

    def compact(self):
        """All rows in out/manifest.parquet, each seed once; read and written a slice at a time, so
        ten million rows need no more memory than a few thousand."""
        parts = self.files()[1:] if (self.out / MANIFEST).exists() else self.files()
        if not parts:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq
        from .outputs import write_beside
        seen = np.zeros(len(self.seeds), dtype=bool)

        def write(tmp):
            with pq.ParquetWriter(tmp, manifest_schema()) as writer:
                for path in self.files():
                    for batch in pq.ParquetFile(path).iter_batches(batch_size=65536):
                        where = np.searchsorted(self.seeds, batch["seed"].to_numpy())
                        # A kill between the rename and the parts' removal leaves rows twice.
                        keep = ~seen[where]
                        seen[where] = True
                        writer.write_batch(batch.filter(pa.array(keep)))
        write_beside(self.out / MANIFEST, write)
        for path in parts:
            path.unlink()
        (self.out / PARTS).rmdir()


def _check_folder(out, run):
    """out made ready for this run: created, or holding this very run (its render.json), whose
    resolved batch size it returns; cleared of temporary files a killed run left."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SettingsError(f"Cannot render into {out}: it is a file, not a folder.")
    if not out.parent.is_dir():
        raise SettingsError(f"Cannot render into {out}: the folder {out.parent} does not exist.")
    try:
        out.mkdir(exist_ok=True)
    except OSError as e:
        raise SettingsError(f"Cannot render into {out}: {e.strerror or e}.") from None
    stored = None
    if (out / SETTINGS_FILE).exists():
        try:
            stored = json.loads((out / SETTINGS_FILE).read_text())
            given = stored["settings"]
        except (OSError, ValueError, KeyError, TypeError):
            raise SettingsError(f"{out / SETTINGS_FILE} is damaged: render into another folder.") from None
        for key, value in run.items():
            if key != "model" and given.get(key) != value:
                what = "another model" if key == "model_sha256" else f"{key} {given.get(key)!r}, not {value!r}"
                raise SettingsError(f"{out} holds a render made with {what}: rerun it with the same arguments, "
                                    "or render into another folder.")
    for folder in (out, out / PARTS):
        for path in folder.glob(".*") if folder.is_dir() else ():
            if TEMPORARY.fullmatch(path.name):
                path.unlink(missing_ok=True)
    return None if stored is None else stored.get("batch_size")


# ----------------------------------------------------------------------------- Ray

def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError:
        raise SettingsError(INSTALL_RAY) from None
    return ray


def ray_for(address, workers):
    """Ray, imported, and the address it is to run at (None: a local Ray of our own, which "local"
    names too), after the checks that need nothing started: the worker count, Ray's presence, and
    whether anything answers at the address."""
    if workers is not None and (not is_whole(workers) or workers < 1):
        raise SettingsError(f"Workers {workers!r} must be a whole number of at least 1.")
    ray = import_ray()
    address = None if address == "local" else address
    if address is not None:
        probe(address)
    return ray, address


def probe(address):
    """Refuse at once an address where nothing answers: ray.init would wait for it for ever."""
    target = address
    if address == "auto":  # the cluster Ray itself would find (RAY_ADDRESS, then the last one started here)
        try:
            from ray._private.services import canonicalize_bootstrap_address
            target = canonicalize_bootstrap_address("auto")
        except Exception:  # private to Ray: if it moved, ray.init finds the address itself
            target = None
        if target is None:
            return
    m = re.fullmatch(r"(?:ray://)?\[?([^\[\]]+?)\]?:([0-9]{1,5})", target)
    if not m:
        raise SettingsError(f"{address!r} is not a Ray address: write local, auto, HOST:PORT or ray://HOST:PORT.")
    try:
        socket.create_connection((m.group(1), int(m.group(2))), timeout=10).close()
    except OSError as e:
        raise SettingsError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}.") from None


def connect(ray, address):
    """A local Ray of our own (address None) or an existing cluster, its workers' output not relayed."""
    if address is None:
        # address="local": a fresh instance even if another one runs here, sized to this machine;
        # no dashboard and a small object store, so that Ray takes little from the generators.
        # Errors only: its warnings are about clusters (authentication tokens) that this one is not.
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        ray.init(address="local", num_cpus=cores, include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES,
                 logging_level=logging.ERROR, log_to_driver=False)
        return
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError, OSError) as e:
        raise SettingsError(f"cannot reach the Ray cluster at {address}: {str(e).splitlines()[0]}") from None


def shut_down(ray, stream):
    """Ray Data's stream of batches (if one was started), then Ray itself."""
    if stream is not None:
        # Stops Ray Data's executor now: left running past ray.shutdown(), its threads reach for a
        # worker that is gone, and Ray then ends the process with status 1 (seen after a full disk).
        stream.close()  # the generator of Ray Data's batches: closing it shuts its executor down
    ray.shutdown()


@dataclass(frozen=True)
class WorkerPlan:
    count: int  # generator actors
    threads: int  # torch threads of each (CPU workers share the cores)
    resources: dict  # what Ray sets aside for each: num_cpus or num_gpus
    device: str  # where each loads the model
    gpu: bool


def plan_workers(ray, workers, device):
    """The generator actors on the connected Ray: one per GPU where it has GPUs (or device is "cuda"),
    else one per core, unless workers says how many."""
    resources = ray.cluster_resources()
    cpus, gpus = resources.get("CPU", 1), int(resources.get("GPU", 0))
    gpu = device == "cuda" or (device is None and gpus > 0)
    if gpu and not gpus:
        raise SettingsError("The Ray cluster has no GPUs: leave out --device, or use --device cpu.")
    count = workers or (gpus if gpu else int(cpus))
    threads = max(1, int(cpus) // count)
    return WorkerPlan(count, threads, dict(num_gpus=1) if gpu else dict(num_cpus=min(threads, cpus / count)),
                      "cuda" if gpu else (device or "cpu"), gpu)


def gpu_batch(G):
    """A GPU computes any number of images at once: as many as the planner's memory budget holds."""
    from .planner import DEFAULT_BUDGET, bytes_per_finished_image, bytes_per_image_in_flight, bytes_per_pass
    per_image = bytes_per_finished_image(G) + bytes_per_image_in_flight(G)
    return int(max(1, min(MAX_IMAGES, (DEFAULT_BUDGET - bytes_per_pass(G)) // per_image)))


def pipeline(ray, blocks, batch, plan, worker_class, worker_args):
    """Ray Data: blocks of work that the workers take in turn, in batches of batch rows -> the
    generator actors (worker_class, made with worker_args) -> their outputs' batches, in order."""
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its notes on progress bars and deprecations
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ours shows images/s
    context.execution_options.preserve_order = True  # shards and videos fill in order; one held at a time
    # A worker hands on what it made about every batch, not once per block of seeds: steady
    # progress, and a killed run loses little.
    context.target_max_block_size = BLOCK_BYTES
    dataset = ray.data.from_numpy(blocks).map_batches(
        worker_class, batch_size=batch, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=min(plan.count, len(blocks))),
        fn_constructor_kwargs=dict(worker_args, threads=plan.threads, device=plan.device), **plan.resources)
    return iter(dataset.iter_batches(batch_size=None, batch_format="numpy"))  # a generator: closed when done


# ----------------------------------------------------------------------------- the task

def render(settings, out, source=None, address=None, workers=None, device=None, progress=None):
    """Render settings.seeds into the folder out; see the module's docstring. Resumes a run killed
    before it finished; refuses a folder holding another run. progress(done, total) is called as
    images are written. Returns {"rendered": n, "skipped": n, "seconds": s, "batch_size": n,
    "peak_growth": {worker process id: its peak resident bytes above what it held with the model
    loaded, -1 where unknown}}.

    Pixels: each image equals what `stylegan generate` makes for its seed in a pass of exactly the
    same batch size (in render.json and each image's recipe), computed with one torch thread if the
    worker had one, with several if it had several (the two round a few values differently)."""
    from . import loading
    ray, address = ray_for(address, workers)  # before anything is written
    s = settings
    G = loading.load(source, device="cpu")  # for its sha256, the checks and the batch plan
    planned = s.resolve(G)
    out = Path(out)
    run = s.to_recipe(G)
    stored_batch = _check_folder(out, run)
    seeds = s.all_seeds()
    manifest = Manifest(out, seeds)
    shard_of = (np.arange(len(seeds)) // s.shard_size) if s.format == "webdataset" else None
    if shard_of is not None:
        done_shards = np.array([int(name[6:12]) for name in manifest.shards], dtype=np.int64)
        todo = ~np.isin(shard_of, done_shards)
    else:
        todo = ~manifest.done
    total, skipped = len(seeds), int(len(seeds) - todo.sum())
    started = time.monotonic()
    if not todo.any():
        manifest.compact()
        return {"rendered": 0, "skipped": skipped, "seconds": 0.0, "batch_size": stored_batch, "peak_growth": {}}

    connect(ray, address)
    stream, peak_growth = None, {}
    try:
        plan = plan_workers(ray, workers, device)
        batch = stored_batch or s.batch_size or (gpu_batch(G) if plan.gpu else planned.batch_size)
        if stored_batch is None:
            write_bytes(out / SETTINGS_FILE, json.dumps({"settings": run, "batch_size": batch}, indent=1).encode())
        recipe = s.image_recipe(G, batch)
        if progress:
            progress(skipped, total)
        # The seeds still to do, in blocks of a batch (of more past MAX_BLOCKS).
        blocks = np.array_split(seeds[todo], min(-(-int(todo.sum()) // batch), MAX_BLOCKS))
        stream = pipeline(ray, blocks, batch, plan, Renderer, dict(
            source=source, sha256=G.sha256, settings=run, batch_size=batch, recipe=recipe))
        rendered = write_all(noting_memory(stream, peak_growth), out, s, seeds, todo, shard_of, manifest, recipe,
                             G.sha256, lambda n: progress and progress(skipped + n, total))
    finally:
        shut_down(ray, stream)
    manifest.compact()
    return {"rendered": rendered, "skipped": skipped, "seconds": time.monotonic() - started, "batch_size": batch,
            "peak_growth": peak_growth}


def noting_memory(stream, peak_growth):
    """The stream's batches, passed on; the largest peak growth each worker reported kept in
    peak_growth, by its process id."""
    for batch in stream:
        if "worker" in batch:  # not in a batch that carries an error
            for worker in np.unique(batch["worker"]).tolist():
                growth = int(batch["peak_growth"][batch["worker"] == worker].max())
                peak_growth[worker] = max(growth, peak_growth.get(worker, growth))
        yield batch


def write_all(stream, out, s, seeds, todo, shard_of, manifest, recipe, sha256, progress):
    """Write what the workers return; record each file in the manifest once it is in place."""
    width = max(4, len(str(int(seeds[-1]))))
    base = dict(psi=s.psi, truncation_cutoff=s.truncation_cutoff, class_idx=s.class_idx, noise_mode=s.noise_mode,
                noise_seed=s.noise_seed, model_sha256=sha256)
    shard, pending, rendered = None, [], 0  # pending: the open shard's rows
    positions = np.flatnonzero(todo)  # where each seed still to do sits in seeds
    try:
        for batch in stream:
            if batch["error"][0]:
                raise SettingsError(batch["error"][0])
            for seed, data in zip(batch["seed"].tolist(), batch["png"]):
                key = f"seed{seed:0{width}d}"
                row = dict(base, seed=seed, file=key + ".png", shard=None,
                           recipe=json.dumps(dict(recipe, seeds=[seed])))
                if shard_of is None:
                    write_bytes(out / row["file"], data)
                    manifest.add(row)
                else:
                    assert seed == seeds[positions[rendered]], "Ray returned the seeds out of order"
                    k = int(shard_of[positions[rendered]])
                    if shard is None:
                        shard = Shard(out / f"shard-{k:06d}.tar")
                    shard.add(key + ".png", data)
                    shard.add(key + ".json", row["recipe"].encode())
                    pending.append(dict(row, shard=shard.path.name))
                    last = rendered + 1 == len(positions) or shard_of[positions[rendered + 1]] != k
                    if last:
                        shard.close()
                        shard = None
                        for done in pending:
                            manifest.add(done)
                        pending = []
                        manifest.flush()
                rendered += 1
            if time.monotonic() - manifest.flushed_at > FLUSH_SECONDS:
                manifest.flush()
            progress(rendered)
    finally:
        if shard is not None:
            shard.discard()
        try:
            manifest.flush()  # the files already in place; if this fails too, they are rendered again
        except SettingsError:
            pass
    return rendered


# ----------------------------------------------------------------------------- a long video's frames

def render_video(settings, out_path, source=None, address=None, workers=None, device=None, progress=None,
                 max_frames=MAX_FRAMES):
    """demos.interpolation_video with its frames rendered on Ray: settings (a VideoSettings) walked
    here as there, the frames' ws sent to generator actors in whole passes, the frames taken back
    in order by that video's one encoder, here. The file appears only when complete. progress(done,
    total) is called as frames are encoded. Returns (path, recipe): the recipe of the video made in
    one process, which this one is.

    Pixels: on CPU workers, each frame equals that video's (the same batch size, in the recipe) made
    on the CPU with as many torch threads as each worker had (cores // workers; one thread and
    several round a few values differently, as in render)."""
    import torch
    from . import demos, loading
    ray, address = ray_for(address, workers)  # before anything is written
    G = loading.load(source, device="cpu")  # the path is walked here, on the CPU, as in one process
    s, latents = demos.video_walk(G, settings, out_path, max_frames)
    total, batch = s.frame_count(), s.batch_size
    ws = torch.cat([w for _, w in latents]).numpy()
    # Blocks of whole passes (the last one shorter), taken batch frames at a time: every batch a
    # worker gets is one of the passes the video made in one process makes.
    passes = -(-total // batch)
    blocks = [ws[group[0] * batch:(group[-1] + 1) * batch]
              for group in np.array_split(np.arange(passes), min(passes, MAX_BLOCKS))]
    recipe = s.to_recipe(G, frames=total)
    connect(ray, address)
    stream = None
    try:
        plan = plan_workers(ray, workers, device)
        stream = pipeline(ray, blocks, batch, plan, FrameRenderer, dict(
            source=source, sha256=G.sha256, batch_size=batch, noise_mode=s.noise_mode))
        return demos.run_steps(demos.encode_video_steps(frame_batches(stream, total), total, out_path, s.fps, recipe),
                               progress)
    finally:
        shut_down(ray, stream)


def frame_batches(stream, total):
    """The workers' batches of frames as the encoder takes them: (frames done, frames); a worker's
    error raised as its sentence."""
    done = 0
    for batch in stream:
        if batch["error"][0]:
            raise SettingsError(batch["error"][0])
        done += len(batch["frames"])
        yield done, list(batch["frames"])
    assert done == total, f"Ray returned {done} frames of {total}"
