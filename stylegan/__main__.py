"""Command line: python -m stylegan COMMAND ... (see --help)."""

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from . import demos, loading, stylegan1


def describe(G):
    """A few lines about a loaded generator, for people."""
    params = sum(p.numel() for p in G.parameters())
    resolutions = ", ".join(str(r) for r in G.synthesis.ws_resolutions)
    classes = f"{G.c_dim} classes" if G.c_dim else "unconditional"
    cutoff = stylegan1.DEFAULT_TRUNCATION_CUTOFF if G.family == "stylegan1" else G.num_ws
    return "\n".join([
        f"source:      {G.source}",
        f"family:      {G.family}",
        f"resolution:  {G.img_resolution} px, {G.img_channels} channel(s)",
        f"z_dim/w_dim: {G.z_dim} / {G.w_dim}",
        f"num_ws:      {G.num_ws} (resolution of each: {resolutions})",
        f"classes:     {classes}",
        f"truncation:  psi acts on style inputs 0-{min(cutoff, G.num_ws) - 1} unless --cutoff says otherwise",
        f"noise:       {len(G.synthesis.noise_layers)} noise layers" if G.synthesis.has_noise else "noise:       none (no noise inputs)",
        f"parameters:  {params:,}",
        f"sha256:      {G.sha256}",
    ])


def cmd_info(args):
    G = loading.load(args.source, device="cpu")
    print(describe(G))


def cmd_convert(args):
    G = loading.load(args.source, device="cpu")
    try:
        loading.save_safetensors(G, args.out)
    except OSError as e:
        raise UsageError(f"cannot write {args.out}: {e.strerror or e}.") from None
    print(f"wrote {args.out}")


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit status 2."""


OTHER_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def _device(name):
    """Check a --device name before any work: torch's own errors are long tracebacks."""
    if name is None:
        return None
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}: use cpu, cuda or mps.") from None
    mps = getattr(torch.backends, "mps", None)
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": mps is not None and mps.is_available()}
    if not available.get(device.type, True):
        raise UsageError(f"the device {name!r} is not available on this machine.")
    return device


def _load(args):
    return loading.load(args.model, device=_device(args.device))


def _check_folder(folder, out):
    if not folder.exists():
        raise UsageError(f"cannot write {out}: the folder {folder} does not exist.")
    if not folder.is_dir():
        raise UsageError(f"cannot write {out}: {folder} is a file, not a folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {out}: the folder {folder} is not writable.")


def _png_path(out):
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise UsageError(f"{out}: the output must be a .png file.")
    if out.is_dir():
        raise UsageError(f"cannot write {out}: it is a folder.")
    _check_folder(out.parent, out)
    return out


def _save(image, path, recipe, output):
    demos.save_png(image, path, dict(recipe, output=output))
    print(f"wrote {path}")


def _save_folder(folder, files, recipe):
    """files: {name: (image, output)}. All are written to a temporary folder first, then moved in,
    so that an error leaves no half-written set behind."""
    try:
        tmp = Path(tempfile.mkdtemp(prefix="." + folder.name + ".", dir=folder.parent))
    except OSError as e:
        raise UsageError(f"cannot write into {folder}: {e.strerror}.") from None
    try:
        for name, (image, output) in files.items():
            demos.save_png(image, tmp / name, dict(recipe, output=output))
        if folder.exists():
            for name in files:
                os.replace(tmp / name, folder / name)
        else:
            os.rename(tmp, folder)
    except OSError as e:
        raise UsageError(f"cannot write into {folder}: {e.strerror or e}.") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name in files:
        print(f"wrote {folder / name}")


def cmd_generate(args):
    out = Path(args.out)
    to_folder = out.suffix.lower() != ".png"
    if out.suffix.lower() in OTHER_IMAGE_SUFFIXES:
        raise UsageError(f"{out}: images are written as PNG (with their recipe); name a .png file or a folder.")
    if to_folder:
        if out.exists() and not out.is_dir():
            raise UsageError(f"cannot write into {out}: it is a file, not a folder.")
        _check_folder(out.parent, out)
    else:
        _png_path(out)
    G = _load(args)
    result = demos.generate(G, args.seeds, psi=args.psi, truncation_cutoff=args.cutoff, noise_mode=args.noise_mode,
                            noise_seed=args.noise_seed, class_idx=args.class_idx, translate=tuple(args.translate),
                            rotate=args.rotate, max_images=args.max_images)
    if not to_folder:
        _save(result.grid, out, result.recipe, "grid")
        return
    files = {f"seed{seed:04d}.png": (image, f"image:{i}")
             for i, (seed, image) in enumerate(zip(result.recipe["seeds"], result.images))}
    files["grid.png"] = (result.grid, "grid")
    _save_folder(out, files, result.recipe)


def cmd_mix(args):
    out = _png_path(args.out)
    G = _load(args)
    result = demos.style_mix(G, args.rows, args.cols, layers=args.layers, psi=args.psi, truncation_cutoff=args.cutoff,
                             noise_mode=args.noise_mode, noise_seed=args.noise_seed, class_idx=args.class_idx,
                             max_images=args.max_images)
    _save(result.grid, out, result.recipe, "grid")


def cmd_noise(args):
    out = _png_path(args.out)
    strip = out.with_name(out.stem + "-layers.png")
    G = _load(args)
    result = demos.noise_study(G, args.seed, num_samples=args.samples, layers=args.layers, strength=args.strength,
                               psi=args.psi, noise_seed=args.noise_seed, class_idx=args.class_idx,
                               max_images=args.max_images)
    _save(result.grid, out, result.recipe, "grid")
    try:
        _save(result.extras["comparison_grid"], strip, result.recipe, "comparison_grid")
    except demos.DemoError:
        out.unlink(missing_ok=True)  # both or neither
        raise


def cmd_video(args):
    from tqdm import tqdm
    _check_folder(Path(args.out).parent, args.out)
    G = _load(args)
    bars = []  # made at the first progress report, so that bad input prints only its error

    def progress(done, total):
        if not bars:
            bars.append(tqdm(total=total, unit="frame", disable=args.quiet))
        bars[0].update(done - bars[0].n)
    try:
        path, recipe = demos.interpolation_video(
            G, args.seeds, args.out, frames_per_transition=args.frames, fps=args.fps, space=args.space,
            easing=args.easing, loop=not args.no_loop, psi=args.psi, noise_mode=args.noise_mode,
            class_idx=args.class_idx, max_frames=args.max_frames, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    print(f"wrote {path} ({recipe['frames']} frames)")


def cmd_regenerate(args):
    recipe = demos.read_recipe(args.image)
    image_path = Path(args.image)
    out = _png_path(args.out or image_path.with_name(image_path.stem + "-regenerated.png"))
    G = loading.load(args.model or _recipe_source(recipe), device=_device(args.device))
    if recipe.get("model_sha256") and G.sha256 != recipe["model_sha256"]:
        print("warning: this model's sha256 differs from the recipe's; the image may differ.", file=sys.stderr)
    image = demos.run_recipe(G, recipe, max_images=args.max_images)
    _save(image, out, dict(recipe, model=G.source, model_sha256=G.sha256), recipe.get("output", "grid"))


def _recipe_source(recipe):
    source = recipe.get("model")
    return None if source in (None, "bundled") else str(source)


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m stylegan", description="StyleGAN generators from the command line.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="describe a checkpoint",
                       epilog="example: python -m stylegan info hf://owner/repo/network.pkl")
    p.add_argument("source", help="checkpoint: .pkl, .safetensors or hf://owner/repo/file")
    p.set_defaults(run=cmd_info)

    p = sub.add_parser("convert", help="convert a checkpoint to the safe .safetensors format",
                       epilog="example: python -m stylegan convert network.pkl network.safetensors")
    p.add_argument("source", help="checkpoint: .pkl, .safetensors or hf://owner/repo/file")
    p.add_argument("out", help="output .safetensors path")
    p.set_defaults(run=cmd_convert)

    def demo_parser(name, help, example, run):
        p = sub.add_parser(name, help=help, epilog="example: " + example,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--model", help="checkpoint: path, hf://owner/repo/file.pkl or https:// URL (default: the bundled model)")
        p.add_argument("--device", help="cpu, cuda or mps (default: the best available)")
        p.add_argument("--psi", type=float, default=0.7, help="truncation psi in [-2, 2] (default 0.7)")
        p.add_argument("--class", dest="class_idx", type=int, help="class index, for conditional models")
        p.set_defaults(run=run)
        return p

    p = demo_parser("generate", "faces from seeds",
                    "python -m stylegan generate --seeds 0-7,42 --out faces.png\n"
                    "         python -m stylegan generate --seeds 0-3 --out faces/   (seed0000.png ... and grid.png)",
                    cmd_generate)
    p.add_argument("--seeds", default="0-7", help="seeds like '0-7, 42' (default 0-7)")
    p.add_argument("--cutoff", type=int, help="truncate only the first CUTOFF style inputs")
    p.add_argument("--noise-mode", default="const", help="const, random or none")
    p.add_argument("--noise-seed", type=int, default=0, help="seed of random noise")
    p.add_argument("--translate", type=float, nargs=2, default=[0.0, 0.0], metavar=("X", "Y"), help="StyleGAN3 only")
    p.add_argument("--rotate", type=float, default=0.0, help="degrees, StyleGAN3 only")
    p.add_argument("--max-images", type=int, default=demos.MAX_IMAGES, help="refuse more seeds than this")
    p.add_argument("--out", default="faces.png", help="a .png for the grid, or a folder for one PNG per seed")

    p = demo_parser("mix", "style-mixing grid (the StyleGAN paper's Figure 3)",
                    "python -m stylegan mix --rows 1,2,3 --cols 4,5,6,7 --layers coarse --out mixing.png", cmd_mix)
    p.add_argument("--rows", default="1,2,3", help="row seeds: the faces that receive styles")
    p.add_argument("--cols", default="4,5,6,7", help="column seeds: the faces that give styles")
    p.add_argument("--layers", default="coarse", help="coarse, middle, fine, or a range start-stop (stop excluded)")
    p.add_argument("--cutoff", type=int, help="truncate only the first CUTOFF style inputs")
    p.add_argument("--noise-mode", default="const", help="const, random or none")
    p.add_argument("--noise-seed", type=int, default=0, help="seed of random noise")
    p.add_argument("--max-images", type=int, default=demos.MAX_IMAGES, help="refuse more cells than this")
    p.add_argument("--out", default="mixing.png", help="the grid, a .png")

    p = demo_parser("noise", "what the per-layer noise changes (the paper's Figures 4-5)",
                    "python -m stylegan noise --seed 1 --samples 8 --layers fine --out noise.png", cmd_noise)
    p.add_argument("--seed", default="1", help="the one face to study (default 1)")
    p.add_argument("--samples", type=int, default=8, help="noise realisations")
    p.add_argument("--layers", default="all", help="all, coarse, fine, none, or a range start-stop of noise layers")
    p.add_argument("--strength", type=float, default=1.0, help="multiplier of the learned noise strengths")
    p.add_argument("--noise-seed", type=int, default=0, help="seed of the first noise sample; the others follow")
    p.add_argument("--max-images", type=int, default=demos.MAX_IMAGES, help="refuse more samples than this")
    p.add_argument("--out", default="noise.png", help="the samples and heat map; OUT-layers.png gets the comparison")

    p = demo_parser("video", "interpolation video between seeds",
                    "python -m stylegan video --seeds 1,2,3 --frames 30 --space w --out walk.mp4", cmd_video)
    p.add_argument("--seeds", default="1,2,3", help="keyframe seeds")
    p.add_argument("--frames", type=int, default=30, help="frames per transition")
    p.add_argument("--fps", type=float, default=30)
    p.add_argument("--space", default="z", help="z (spherical interpolation) or w (linear)")
    p.add_argument("--easing", default="smooth", help="linear or smooth")
    p.add_argument("--no-loop", action="store_true", help="end on the last seed instead of returning to the first")
    p.add_argument("--noise-mode", default="const", help="const, random or none")
    p.add_argument("--max-frames", type=int, default=demos.MAX_FRAMES, help="refuse longer videos")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", default="walk.mp4", help=".mp4 (H.264) or .gif")

    p = sub.add_parser("regenerate", help="rebuild an image from the recipe in its PNG",
                       epilog="example: python -m stylegan regenerate faces.png --out again.png")
    p.add_argument("image", help="a PNG written by this tool")
    p.add_argument("--model", help="use this checkpoint instead of the one the recipe names")
    p.add_argument("--device", help="cpu, cuda or mps (default: the best available)")
    p.add_argument("--max-images", type=int, default=demos.MAX_IMAGES,
                   help="refuse recipes with more images than this (raise it for images made with --max-images)")
    p.add_argument("--out", help="default: IMAGE-regenerated.png")
    p.set_defaults(run=cmd_regenerate)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (UsageError, loading.LoadError, demos.DemoError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
