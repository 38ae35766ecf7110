"""Command line: python -m stylegan COMMAND ... (see --help).

Each task's options are its settings fields (stylegan.settings), so names, defaults and help are
written once. Torch is imported only once a command runs: --help answers at once.
"""

import argparse
import os
import sys
from pathlib import Path

from . import settings
from .render import RenderSettings  # settings only: Ray is imported when a render starts
from .settings import SettingsError

catalog = demos = export = loading = outputs = None  # imported by main() after the arguments are parsed


def describe(G):
    """A few lines about a loaded generator, for people."""
    params = sum(p.numel() for p in G.parameters())
    resolutions = ", ".join(str(r) for r in G.synthesis.ws_resolutions)
    classes = f"{G.c_dim} classes" if G.c_dim else "unconditional"
    cutoff = G.default_truncation_cutoff or G.num_ws
    return "\n".join([
        f"source:      {G.source}",
        f"format:      {getattr(G, 'checkpoint_format', 'built in Python')}",
        f"family:      {G.family}",
        f"resolution:  {G.img_resolution} px, {G.img_channels} channel(s)",
        f"z_dim/w_dim: {G.z_dim} / {G.w_dim}",
        f"num_ws:      {G.num_ws} (resolution of each: {resolutions})",
        f"classes:     {classes}",
        f"truncation:  psi acts on style inputs 0-{min(cutoff, G.num_ws) - 1} unless --cutoff says otherwise; "
        f"its centre is {getattr(G, 'truncation_centre', 'w_avg')}",
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


def cmd_export_onnx(args):
    out = Path(args.out)
    if out.suffix.lower() != ".onnx":
        raise UsageError(f"{out}: the output must be an .onnx file.")
    _check_folder(out.parent, out)
    settings.check_psi(args.psi)
    G = loading.load(args.source, device="cpu")
    try:
        inputs = export.export_onnx(G, out, synthesis_only=args.synthesis_only, psi=args.psi, cutoff=args.cutoff,
                                    noise_mode=args.noise)
    except OSError as e:
        raise UsageError(f"cannot write {out}: {e.strerror or e}.") from None
    shapes = "; ".join(f"{name} [{', '.join(map(str, shape))}]" for name, shape in inputs.items())
    print(f"wrote {out} (input {shapes}; output image [batch, {G.img_channels}, {G.img_resolution}, "
          f"{G.img_resolution}])")


def cmd_check_catalog(args):
    checks = catalog.check_catalog(timeout=args.timeout)
    print(catalog.table(checks))
    failed = sum(not check.ok for check in checks)
    print(f"{len(checks) - failed} of {len(checks)} sources are as the catalog says" + (f"; {failed} are not." if failed else "."))
    return 1 if failed else 0


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit status 2."""


OTHER_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def _device(name):
    """Check a --device name before any work: torch's own errors are long tracebacks."""
    if name is None:
        return None
    import torch
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
    outputs.save_png(image, path, dict(recipe, output=output))
    print(f"wrote {path}")


def cmd_generate(args, task):
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
    result = demos.generate(_load(args), task, max_images=args.max_images)
    if not to_folder:
        _save(result.grid, out, result.recipe, "grid")
        _save_w(args, result)
        return
    names = ([f"w{i:04d}.png" for i in range(len(result.images))] if task.w_file else
             [f"seed{seed:04d}.png" for seed in result.recipe["seeds"]])
    files = {name: (image, dict(result.recipe, output=f"image:{i}"))
             for i, (name, image) in enumerate(zip(names, result.images))}
    files["grid.png"] = (result.grid, dict(result.recipe, output="grid"))
    for path in outputs.save_pngs(out, files):
        print(f"wrote {path}")
    _save_w(args, result)


def _save_w(args, result):
    """--save-w: the ws of the faces shown, in NVIDIA's layout."""
    if args.save_w:
        outputs.save_w(args.save_w, result.ws)
        print(f"wrote {args.save_w} (w: {list(result.ws.shape)}, NVIDIA's projected_w layout)")


def _check_w_path(args):
    if getattr(args, "save_w", None):
        path = Path(args.save_w)
        if path.suffix.lower() != ".npz":
            raise UsageError(f"{path}: W files are .npz files.")
        _check_folder(path.parent, path)


def cmd_mix(args, task):
    out = _png_path(args.out)
    result = demos.style_mix(_load(args), task, max_images=args.max_images)
    _save(result.grid, out, result.recipe, "grid")
    _save_w(args, result)


def cmd_edit(args, task):
    out = _png_path(args.out)
    G = _load(args)
    result = demos.edit(G, task, max_images=args.max_images)
    _save(result.grid, out, result.recipe, "grid")
    if task.video:
        sweep = out.with_name(out.stem + "-sweep.mp4")
        for _ in demos.edit_video_steps(G, task, sweep):
            pass
        print(f"wrote {sweep} ({demos.SWEEP_FRAMES} frames)")
    _save_w(args, result)
    start, stop = result.extras["layers"]
    shares = ", ".join(f"{i}: {share:.1%}" for (i, _), share in zip(task.components, result.extras["explained"]))
    print(f"{result.extras['method']} directions ({shares} of the total), layers {start}-{stop - 1}, "
          f"strength -{task.strength:g} to +{task.strength:g} standard deviations of W")


def cmd_layers(args, task):
    out = _png_path(args.out)
    rgb, torgb = out.with_name(out.stem + "-rgb.png"), out.with_name(out.stem + "-torgb.png")
    result = demos.look_inside(_load(args), task, max_images=args.max_images)
    chosen = result.extras["layer"]
    for layer in result.extras["layers"]:
        mark = "->" if layer.index == chosen.index else "  "
        print(f"{mark} {layer.index:2d} {layer.name:16s} {layer.resolution:5d} px {layer.channels:5d} channels")
    written = []
    try:
        _save(result.grid, out, result.recipe, "grid")
        written.append(out)
        _save(result.extras["rgb"], rgb, result.recipe, "rgb")
        written.append(rgb)
        if result.extras["torgb"]:
            strip = demos.make_grid([picture for _, picture in result.extras["torgb"]], 1, len(result.extras["torgb"]))
            outputs.save_png(strip, torgb)
            print(f"wrote {torgb} (what each resolution's toRGB adds: "
                  + ", ".join(str(r) for r, _ in result.extras["torgb"]) + " px; grey is zero)")
        else:
            print(result.extras["torgb_reason"])
    except SettingsError:
        for path in written:
            path.unlink(missing_ok=True)  # all or none
        raise
    print(f"the {len(result.extras['channels'])} strongest of {chosen.channels} channels: "
          + ", ".join(map(str, result.extras["channels"])))
    _save_w(args, result)


def cmd_project(args, task):
    from tqdm import tqdm
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"cannot write into {out}: it is a file, not a folder.")
    _check_folder(out.parent, out)
    G = _load(args)
    steps = demos.project_steps(G, task, args.photo)
    bar = None  # made once the photo is read and aligned, so that a bad photo prints only its error
    try:
        while True:
            try:
                progress = next(steps)
            except StopIteration as finished:
                result = finished.value
                break
            bar = bar or tqdm(total=progress.total, unit="step", disable=args.quiet)
            bar.update(progress.step - bar.n)
            if progress.loss is not None:
                bar.set_postfix(loss=f"{progress.loss:.4f}")
    finally:
        if bar is not None:
            bar.close()
    files = {"aligned.png": (result.aligned, None), "reconstruction.png": (result.reconstruction, result.recipe),
             "compare.png": (result.comparison, None)}
    for path in outputs.save_pngs(out, files, {"projected_w.npz": result.w_file}):
        print(f"wrote {path}")
    for note in result.notes:
        print(note)
    print(f"PSNR {result.psnr:.1f} dB against the aligned photo; losses: {', '.join(result.losses)}. "
          f"Render it again: python -m stylegan generate --w {out / 'projected_w.npz'} --out again.png")


def cmd_directions(args):
    method = args.method
    out = Path(args.out)
    if out.suffix.lower() != ".npz":
        raise UsageError(f"{out}: directions are written as .npz.")
    _check_folder(out.parent, out)
    G = loading.load(args.source, device="cpu")
    from . import directions
    if method == "sefa":
        layers = settings.EditSettings(layers=args.layers).resolve(G).layers
        found = directions.sefa(G, layers)
        where = f"from the style layers {layers[0]}-{layers[1] - 1}"
    else:
        found = directions.ganspace(G, settings.EditSettings(samples=args.samples).samples)
        where = f"from {args.samples} mapped samples"
    directions.save_directions(out, found)
    shares = ", ".join(f"{share:.1%}" for share in found.explained()[:5])
    print(f"wrote {out}: {len(found.vectors)} {method} directions {where}; the first five hold {shares} of the total")


def cmd_noise(args, task):
    out = _png_path(args.out)
    strip = out.with_name(out.stem + "-layers.png")
    result = demos.noise_study(_load(args), task, max_images=args.max_images)
    _save(result.grid, out, result.recipe, "grid")
    try:
        _save(result.extras["comparison_grid"], strip, result.recipe, "comparison_grid")
    except SettingsError:
        out.unlink(missing_ok=True)  # both or neither
        raise
    _save_w(args, result)


def cmd_video(args, task):
    from tqdm import tqdm
    _check_folder(Path(args.out).parent, args.out)
    bars = []  # made at the first progress report, so that bad input prints only its error

    def progress(done, total):
        if not bars:
            bars.append(tqdm(total=total, unit="frame", disable=args.quiet))
        bars[0].update(done - bars[0].n)
    try:
        if args.ray is not None or args.workers is not None:  # the frames on Ray, the encoder here
            from . import render
            path, recipe = render.render_video(task, args.out, source=args.model, address=args.ray,
                                               workers=args.workers, device=args.device, progress=progress,
                                               max_frames=args.max_frames)
        else:
            path, recipe = demos.interpolation_video(_load(args), task, args.out, progress=progress,
                                                     max_frames=args.max_frames)
    finally:
        for bar in bars:
            bar.close()
    print(f"wrote {path} ({recipe['frames']} frames)")


def cmd_render(args, task):
    from tqdm import tqdm
    from . import render
    bars = []  # made at the first progress report, so that bad input prints only its error

    def progress(done, total):
        if not bars:
            bars.append(tqdm(total=total, initial=done, unit="img", smoothing=0.1))  # images/s
        bars[0].update(done - bars[0].n)
    try:
        result = render.render(task, args.out, source=args.model, address=args.ray, workers=args.workers,
                               device=args.device, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    print(f"rendered {result['rendered']} images into {args.out} ({result['skipped']} were already there)")


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


def add_settings_options(parser, cls):
    """One option per field of a settings class, with the field's name, default and help."""
    for f in cls.fields():
        spec = settings.spec_of(f)
        flag = spec.flag or "--" + f.name.replace("_", "-")
        default = f.default
        shown = settings.as_text(spec, default) if default is not None else None
        if spec.kind == "bool":
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default,
                                help=f"{spec.help} (default: {flag if default else '--no-' + flag[2:]})")
            continue
        kind = {"float": float, "int": int, "class": int}.get(spec.kind, str)
        parser.add_argument(flag, dest=f.name, type=kind, default=default, metavar=flag[2:].upper().replace("-", "_"),
                            help=spec.help + (f" (default {shown})" if shown else ""))


COMMANDS = {  # command: (settings class, help, example, run, output option)
    "generate": (settings.GenerateSettings, "faces from seeds",
                 "python -m stylegan generate --seeds 0-7,42 --out faces.png\n"
                 "         python -m stylegan generate --seeds 0-3 --out faces/   (seed0000.png ... and grid.png)",
                 cmd_generate, ("faces.png", "a .png for the grid, or a folder for one PNG per seed")),
    "mix": (settings.MixSettings, "style-mixing grid (the StyleGAN paper's Figure 3)",
            "python -m stylegan mix --rows 1,2,3 --cols 4,5,6,7 --layers coarse --out mixing.png",
            cmd_mix, ("mixing.png", "the grid, a .png")),
    "noise": (settings.NoiseSettings, "what the per-layer noise changes (the paper's Figures 4-5)",
              "python -m stylegan noise --seed 1 --samples 8 --layers fine --out noise.png",
              cmd_noise, ("noise.png", "the realisations and their standard deviation's heat map; OUT-layers.png "
                                       "gets the same noise on all / coarse / fine / no layers")),
    "video": (settings.VideoSettings, "interpolation video between seeds",
              "python -m stylegan video --seeds 1,2,3 --frames 30 --space w --out walk.mp4\n"
              "         python -m stylegan video --seeds 0-59 --frames 30 --ray --out long.mp4   (on a local Ray)",
              cmd_video, ("walk.mp4", ".mp4 (H.264) or .gif")),
    "edit": (settings.EditSettings, "move a face along semantic directions (SeFa, GANSpace or a file)",
             "python -m stylegan edit --seed 1 --method ganspace --components 0 --strength 3 --out edit.png\n"
             "         python -m stylegan edit --w projected_w.npz --method file --directions age.npy --out older.png",
             cmd_edit, ("edit.png", "the strip of faces, a .png; with --video, OUT-sweep.mp4 too")),
    "layers": (settings.LayersSettings, "a look inside one layer: its strongest channels, the channels as RGB, "
               "and what each resolution's toRGB adds",
               "python -m stylegan layers --seed 1 --layer 4 --out layer4.png",
               cmd_layers, ("layer.png", "the channels' grid; OUT-rgb.png gets the channels projected to RGB and "
                                        "OUT-torgb.png what each toRGB adds (StyleGAN2 skip models)")),
    "project": (settings.ProjectSettings, "find your own photo's face in W or W+ (align it, then project it)",
                "python -m stylegan project portrait.jpg --steps 300 --space w+ --out me/\n"
                "         python -m stylegan edit --w me/projected_w.npz --method ganspace --out me-edit.png",
                cmd_project, ("projection", "a folder: aligned.png, reconstruction.png (with its recipe), "
                                            "compare.png and projected_w.npz (NVIDIA's layout)")),
    "render": (RenderSettings, "many faces on Ray, resumable: PNGs or WebDataset shards, and a Parquet manifest",
               "python -m stylegan render --seeds 0-99999 --out faces/   (on a local Ray)\n"
               "         python -m stylegan render --seeds 0-9999999 --ray auto --format webdataset --out faces/",
               cmd_render, ("faces", "the folder: seedNNNN.png or shard-NNNNNN.tar, manifest.parquet, render.json")),
}
SAVES_W = ("generate", "mix", "noise", "edit", "layers")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m stylegan", description="StyleGAN generators from the command line.",
                                     epilog="example: python -m stylegan generate --seeds 0-7 --psi 0.7 --out faces.png")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="describe a checkpoint",
                       epilog="example: python -m stylegan info hf://owner/repo/network.pkl")
    p.add_argument("source", nargs="?", help="checkpoint: .pkl, .pt, .safetensors or hf://owner/repo/file "
                                             "(default: the bundled model)")
    p.set_defaults(run=cmd_info)

    p = sub.add_parser("directions", help="compute semantic directions (SeFa or GANSpace) and save them",
                       epilog="example: python -m stylegan directions network.pkl --method sefa --layers coarse "
                              "--out dirs.npz")
    p.add_argument("source", nargs="?", help="checkpoint (default: the bundled model)")
    p.add_argument("--method", choices=("sefa", "ganspace"), default="sefa",
                   help="sefa: from the style weights (milliseconds); ganspace: principal components of W")
    p.add_argument("--layers", default="all", help="sefa: the layers, all, coarse, middle, fine or START:STOP")
    p.add_argument("--samples", type=int, default=10_000, help="ganspace: mapped samples")
    p.add_argument("--out", default="directions.npz", help="the .npz to write (directions [k, w_dim], values [k])")
    p.set_defaults(run=cmd_directions)

    p = sub.add_parser("convert", help="convert a checkpoint to the safe .safetensors format",
                       epilog="example: python -m stylegan convert network.pkl network.safetensors")
    p.add_argument("source", help="checkpoint: .pkl, .pt, .safetensors or hf://owner/repo/file")
    p.add_argument("out", help="output .safetensors path")
    p.set_defaults(run=cmd_convert)

    p = sub.add_parser("export-onnx", help="export a generator to ONNX (z [, c] -> image, or ws -> image)",
                       epilog="example: python -m stylegan export-onnx network.pkl generator.onnx --psi 0.7")
    p.add_argument("source", nargs="?", help="checkpoint: .pkl, .pt, .safetensors or hf://owner/repo/file "
                                             "(default: the bundled model)")
    p.add_argument("out", help="output .onnx path")
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi, fixed in the graph (default 1)")
    p.add_argument("--cutoff", type=int, help="truncate only the first CUTOFF style inputs (default: the model's own)")
    p.add_argument("--noise", choices=["const", "none"], default="const",
                   help="the per-layer noise: the model's stored constant noise, or none (default const)")
    p.add_argument("--synthesis-only", action="store_true", help="export ws -> image instead of z [, c] -> image")
    p.set_defaults(run=cmd_export_onnx)

    p = sub.add_parser("check-catalog", help="check that every source of every catalog model is reachable, "
                                             "of the listed size and sha256 (downloads nothing)",
                       epilog="example: python -m stylegan check-catalog")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each server (default 10)")
    p.set_defaults(run=cmd_check_catalog)

    for name, (cls, help, example, run, (out, out_help)) in COMMANDS.items():
        p = sub.add_parser(name, help=help, epilog="example: " + example,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--model", help="checkpoint: path, hf://owner/repo/file.pkl or https:// URL (default: the bundled model)")
        p.add_argument("--device", help="cpu, cuda or mps (default: the best available)")
        add_settings_options(p, cls)
        if cls is settings.ProjectSettings:
            p.add_argument("photo", help="a photo (JPEG, PNG, WebP, ...) with a face")
            p.add_argument("--quiet", action="store_true", help="no progress bar")
        elif cls is settings.VideoSettings:
            p.add_argument("--max-frames", type=int, default=settings.MAX_FRAMES, help="refuse longer videos")
            p.add_argument("--quiet", action="store_true", help="no progress bar")
            p.add_argument("--ray", metavar="ADDRESS", nargs="?", const="local",
                           help="render the frames on Ray (pip install \".[scale]\"), encode them here: alone or "
                                "local, a local Ray of its own; auto, HOST:PORT or ray://HOST:PORT, an existing "
                                "cluster (default: no Ray, all in this process)")
            p.add_argument("--workers", type=int, help="generator workers on Ray; alone, it means --ray local "
                                                       "(default: one per core, or per GPU)")
        elif cls is RenderSettings:
            p.add_argument("--ray", metavar="ADDRESS", nargs="?", const="local",
                           help="local (or alone) for a local Ray of its own; auto, HOST:PORT or ray://HOST:PORT for "
                                "an existing cluster (default: local)")
            p.add_argument("--workers", type=int, help="generator workers (default: one per core, or per GPU)")
        else:
            p.add_argument("--max-images", type=int, default=settings.MAX_IMAGES, help="refuse requests of more images")
        if name in SAVES_W:
            p.add_argument("--save-w", metavar="FILE.npz", help="also save the faces' ws as NVIDIA's projected_w.npz "
                                                                "layout (key w, [N, num_ws, w_dim] float32)")
        p.add_argument("--out", default=out, help=out_help)
        p.set_defaults(run=run, settings_class=cls)

    p = sub.add_parser("regenerate", help="rebuild an image from the recipe in its PNG",
                       epilog="example: python -m stylegan regenerate faces.png --out again.png")
    p.add_argument("image", help="a PNG written by this tool")
    p.add_argument("--model", help="use this checkpoint instead of the one the recipe names")
    p.add_argument("--device", help="cpu, cuda or mps (default: the best available)")
    p.add_argument("--max-images", type=int, default=settings.MAX_IMAGES,
                   help="refuse recipes with more images than this (raise it for images made with --max-images)")
    p.add_argument("--out", help="default: IMAGE-regenerated.png")
    p.set_defaults(run=cmd_regenerate)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)  # --help ends here, before torch is imported
    global catalog, demos, export, loading, outputs
    from . import catalog, demos, export, loading, outputs
    status = None  # a command may return its own exit status
    try:
        if hasattr(args, "settings_class"):
            values = {f.name: getattr(args, f.name) for f in args.settings_class.fields()}
            _check_w_path(args)
            args.run(args, args.settings_class(**values))
        else:
            status = args.run(args)
    except (UsageError, loading.LoadError, SettingsError, export.ExportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
