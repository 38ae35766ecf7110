"""Train the bundled offline face model: a compact 64x64 StyleGAN2, distilled from a DCGAN teacher.

    pip install --no-deps gan_face_generate     # the teacher (MIT); only this script needs it
    python tools/train_offline_model.py --max-minutes 60

Data: PyPI's gan_face_generate ships a DCGAN trained on DigiFace-1M (synthetic faces, 64x64).
It is an endless source of faces: each step draws fresh z and renders the teacher's faces.
Recipe: the student takes the teacher's own z (z_dim = 100), so it can learn teacher(z)
directly (L1 at three scales) -- far more sample-efficient than a GAN
from scratch on a CPU. A non-saturating adversarial loss (small discriminator, lazy R1)
on random-noise and style-mixed outputs keeps textures crisp, gives the noise inputs
stochastic detail to model, and keeps mixed styles looking like faces. G is averaged (EMA).
A patch-SWD loss (--swd-weight) asks for the teacher's distribution of local structure.
The bundled model's phases are in its JSON; its last one, from the previous model with
--init, was --adv-weight 0 --swd-weight 10 (after 76k images at 1 and 65k at 3), with
--swd-patches 192 from 994,688 images.

Resumable: the full state goes to --run-dir every few minutes and a rerun continues from it.
At the end the EMA generator is written with stylegan.save_safetensors, and its settings,
compute and SWD (tools/swd.py) are written beside it as JSON for the model card.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import stylegan  # noqa: E402
from stylegan import stylegan2  # noqa: E402
from stylegan.layers import FullyConnectedLayer  # noqa: E402
from swd import PATCH, laplacian_pyramid, swd  # noqa: E402

TEACHER_Z = 100


class Teacher(nn.Module):
    """The DCGAN generator of gan_face_generate: five transposed convolutions, 1x1 -> 64x64."""

    def __init__(self):
        super().__init__()
        layers, channels = [], [TEACHER_Z, 512, 256, 128, 64]
        for i in range(4):
            layers += [nn.ConvTranspose2d(channels[i], channels[i + 1], 4, 1 if i == 0 else 2, 0 if i == 0 else 1,
                                          bias=False), nn.BatchNorm2d(channels[i + 1]), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(64, 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z):
        return self.main(z[:, :, None, None])


def load_teacher(kind):
    teacher = Teacher()
    if kind == "dcgan":
        import importlib.util
        spec = importlib.util.find_spec("gan_face_generate")
        if spec is None:
            sys.exit("the teacher is missing: pip install --no-deps gan_face_generate")
        weights = Path(spec.submodule_search_locations[0]) / "weights.tar"
        teacher.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True)["netG_state_dict"])
    return teacher.eval().requires_grad_(False)


class Discriminator(nn.Module):
    """A small convolutional critic: 64 -> 4 px, then a linear score."""

    def __init__(self, channels=(32, 64, 128, 128)):
        super().__init__()
        layers, c_in = [], 3
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(c, c, 4, 2, 1), nn.LeakyReLU(0.2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.score = nn.Linear(c_in * 16, 1)

    def forward(self, x):
        return self.score(self.features(x).flatten(1))


def student_config(tiny, mapping_lr_mult, channel_max=None):
    """channel_max caps the channels of the 4-8 px layers (those at 16 px and above have fewer)."""
    mapping = {"num_layers": 2 if tiny else 4, "lr_multiplier": mapping_lr_mult}
    if tiny:
        return dict(z_dim=TEACHER_Z, c_dim=0, w_dim=32, img_resolution=64, img_channels=3,
                    mapping_kwargs=mapping, channel_base=256, channel_max=channel_max or 16)
    return dict(z_dim=TEACHER_Z, c_dim=0, w_dim=128, img_resolution=64, img_channels=3,
                mapping_kwargs=mapping, channel_base=2048, channel_max=channel_max or 128)


@torch.no_grad()
def copy_generator(dst, src):
    """Give dst src's function. dst may have more channels in some layers: a new channel keeps
    its fresh incoming weights but reaches the old channels with weight zero, so it starts
    without effect and then learns. Fully connected and ToRGB layers store weight / gain, and
    their gain depends on the learning-rate multiplier or the number of inputs: stored values
    are rescaled where it differs."""
    old_state = src.state_dict()
    for name, new in dst.state_dict().items():
        old = old_state[name]
        new[tuple(slice(0, n) for n in old.shape)] = old
        if new.dim() >= 2:
            new[:old.shape[0], old.shape[1]:] = 0
    for a, b in zip(dst.modules(), src.modules()):
        if isinstance(a, FullyConnectedLayer):
            a.weight.mul_(b.weight_gain / a.weight_gain)
            if a.bias is not None:
                a.bias.mul_(b.bias_gain / a.bias_gain)
        if isinstance(a, stylegan2.ToRGBLayer):
            a.weight.mul_(b.weight_gain / a.weight_gain)


def multiscale_l1(a, b):
    loss = 0
    for _ in range(3):
        loss = loss + (a - b).abs().mean()
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    return loss


def random_patches(level, per_image):
    """per_image random 7x7 patches of each image, as [N * per_image, C, 49]; indexing only
    those windows is far cheaper than unfolding every position."""
    n, c, h, w = level.shape
    y = torch.randint(0, h - PATCH + 1, (n, per_image, 1, 1))
    x = torch.randint(0, w - PATCH + 1, (n, per_image, 1, 1))
    offsets = torch.arange(PATCH)
    rows, cols = y + offsets[:, None], x + offsets[None, :]
    patches = level.permute(0, 2, 3, 1)[torch.arange(n)[:, None, None, None], rows, cols]
    return patches.permute(0, 1, 4, 2, 3).reshape(n * per_image, c, PATCH * PATCH)


def patch_swd_loss(fake, real, directions=128, per_image=64):
    """Sliced Wasserstein distance between the two batches' Laplacian-pyramid patches (7x7, each
    level), both normalised per colour with the real batch's statistics: asks the student for the
    teacher's distribution of local structure, not for its exact pixels."""
    loss = 0
    for level_f, level_r in zip(laplacian_pyramid(fake), laplacian_pyramid(real)):
        c = level_f.shape[1]
        sets = [random_patches(level, per_image) for level in (level_f, level_r)]
        mean = sets[1].mean(dim=(0, 2), keepdim=True).detach()
        std = sets[1].std(dim=(0, 2), keepdim=True).detach() + 1e-8
        d = F.normalize(torch.randn(directions, c * PATCH * PATCH), dim=1)
        # projections as [directions, patches], so that each sort runs over contiguous memory
        pf, pr = (d @ ((s - mean) / std).flatten(1).T for s in sets)
        loss = loss + (pf.sort(dim=1)[0] - pr.sort(dim=1)[0]).abs().mean()
    return loss


def mixed_ws(G, z, prob=0.5):
    """Style-mixing regularisation: for some images, layers from a crossover on come from another z."""
    ws = G.mapping(z, None)
    if torch.rand([]) < prob:
        other = G.mapping(torch.randn_like(z), None)
        cut = int(torch.randint(1, G.num_ws, []))
        ws = torch.cat([ws[:, :cut], other[:, cut:]], dim=1)
    return ws


def save_state(path, state):
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="runs/offline-faces")
    parser.add_argument("--out", default="checkpoints/offline-faces-64.safetensors")
    parser.add_argument("--teacher", choices=["dcgan", "random"], default="dcgan",
                        help="random: an untrained teacher of the same shape, for tests of this script")
    parser.add_argument("--tiny", action="store_true",
                        help="a very small student and critic, and a quick SWD at the end, for tests of this script")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-minutes", type=float, default=60, help="training time of this run")
    parser.add_argument("--max-steps", type=int, default=10 ** 9, help="total steps (over all runs)")
    parser.add_argument("--save-minutes", type=float, default=5)
    parser.add_argument("--adv-weight", type=float, default=1.0)
    parser.add_argument("--g-lr", type=float, default=2.5e-4, help="the generator's learning rate")
    parser.add_argument("--distill-weight", type=float, default=1.0, help="weight of the pixel L1 distillation")
    parser.add_argument("--mapping-lr-mult", type=float, default=1.0,
                        help="the mapping's learning rate relative to G's (NVIDIA: 0.01, which all but freezes z -> w; "
                             "distillation must learn it)")
    parser.add_argument("--channel-max", type=int,
                        help="channels of the 4-8 px layers (default 128, 16 with --tiny); with --init from a "
                             "narrower model, that model is widened")
    parser.add_argument("--swd-images", type=int,
                        help="images of each set in the final SWD (default 4096, 8 with --tiny)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--swd-weight", type=float, default=0.0,
                        help="weight of the patch-SWD loss (the teacher's distribution of local structure)")
    parser.add_argument("--swd-patches", type=int, default=64,
                        help="patch-SWD: random patches per image and pyramid level")
    parser.add_argument("--init", help="start G from this model (ours, .safetensors) when there is no saved state")
    args = parser.parse_args()
    if args.swd_images is None:
        args.swd_images = 8 if args.tiny else 4096

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    np.random.seed(0)
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / "state.pt"

    teacher = load_teacher(args.teacher)
    config = student_config(args.tiny, args.mapping_lr_mult, args.channel_max)
    saved = torch.load(state_path, map_location="cpu", weights_only=True) if state_path.exists() else None
    if saved is not None:  # checked before anything is built
        # States saved before the configuration was recorded were all trained with multiplier 0.01.
        saved_config = saved.get("config", student_config(args.tiny, 0.01))
        if saved_config != config:
            sys.exit(f"{state_path} was trained with another configuration: {saved_config}")
    G = stylegan2.Generator(**config)
    G_ema = stylegan2.Generator(**config).requires_grad_(False)
    D = Discriminator((8, 8, 16, 16) if args.tiny else (32, 64, 128, 128))
    opt_g = torch.optim.Adam(G.parameters(), lr=args.g_lr, betas=(0.0, 0.99))
    # The critic has plain (not equalised) weights: a lower learning rate keeps it stable.
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.0, 0.99))
    for layer in G.synthesis.noise_layers:
        layer.noise_strength.data.fill_(0.05)  # start with a little noise, so it gets used
    progress = {"step": 0, "images": 0, "seconds": 0.0, "curve": []}
    if args.init and not state_path.exists():
        copy_generator(G, stylegan.load(args.init, device="cpu"))
        for name, buffer in G.named_buffers():
            if name.endswith("noise_const"):  # a fresh draw: a model may have learned its old one
                buffer.normal_()
        card = json.loads(Path(args.init).with_suffix(".json").read_text())
        progress.update(step=card["steps"], images=card["images_seen"], seconds=card["train_minutes"] * 60,
                        curve=card["swd_curve_512"], phases=card.get("phases", [
                            {"from_images": 0, "adv_weight": card["adv_weight"], "threads": card["threads"]}]))
        print(f"starting from {args.init} ({progress['images']} images)", flush=True)
    G_ema.load_state_dict(G.state_dict())
    if saved is not None:
        for module, key in ((G, "G"), (G_ema, "G_ema"), (D, "D"), (opt_g, "opt_g"), (opt_d, "opt_d")):
            module.load_state_dict(saved[key])
        for group in opt_g.param_groups:
            group["lr"] = args.g_lr  # the saved state's rate would otherwise override the option
        progress = saved["progress"]
        torch.set_rng_state(saved["rng"])
        print(f"resumed at step {progress['step']} ({progress['images']} images)", flush=True)

    def snapshot():
        save_state(state_path, {"G": G.state_dict(), "G_ema": G_ema.state_dict(), "D": D.state_dict(),
                                "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "progress": progress,
                                "rng": torch.get_rng_state(), "config": config})

    phases = progress.setdefault("phases", [])
    recipe = {"g_lr": args.g_lr, "adv_weight": args.adv_weight, "distill_weight": args.distill_weight,
              "distill_noise": "random", "mapping_lr_mult": args.mapping_lr_mult,
              "channel_max": config["channel_max"], "swd_weight": args.swd_weight, "swd_patches": args.swd_patches}
    # The values of phases written before these keys existed.
    recorded_before = {"g_lr": 2e-3, "distill_weight": 1.0, "distill_noise": "const", "mapping_lr_mult": 0.01,
                       "channel_max": 128, "swd_weight": 0.0, "swd_patches": 64}
    if not phases or any(phases[-1].get(k, recorded_before.get(k)) != v for k, v in recipe.items()):
        phases.append({"from_images": progress["images"], **recipe, "threads": args.threads})
    start = last_save = last_print = time.time()
    seconds_before = progress["seconds"]
    ema_beta = 0.5 ** (args.batch / 10_000)  # half-life of 10k images
    while progress["step"] < args.max_steps and time.time() - start < args.max_minutes * 60:
        step = progress["step"]
        z = torch.randn(args.batch, TEACHER_Z)
        with torch.no_grad():
            real = teacher(z)

        # Generator: distillation, patch-SWD, adversarial (style mixing), all with random noise.
        # Distilled with constant noise alone, a model learned to tell that one noise image apart
        # and gave its blurry distillation faces in const mode (SWD 121 vs 25 with random noise).
        student = G(z, None, noise_mode="random")
        distill = multiscale_l1(student, real)
        g_loss = args.distill_weight * distill
        if args.swd_weight > 0:
            patch_swd = patch_swd_loss(student, real, per_image=args.swd_patches)
            g_loss = g_loss + args.swd_weight * patch_swd
        if args.adv_weight > 0:
            fake = G.synthesis(mixed_ws(G, torch.randn(args.batch, TEACHER_Z)), noise_mode="random")
            adversarial = F.softplus(-D(fake)).mean()
            g_loss = g_loss + args.adv_weight * adversarial
        if not torch.isfinite(g_loss):
            sys.exit(f"training diverged at step {step}; the last saved state is in {state_path}")
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

        if args.adv_weight > 0:  # the discriminator, with lazy R1 on the real images every 16 steps
            d_loss = F.softplus(D(fake.detach())).mean() + F.softplus(-D(real)).mean()
            if step % 16 == 0:
                real_r1 = real.detach().requires_grad_(True)
                grad, = torch.autograd.grad(D(real_r1).sum(), real_r1, create_graph=True)
                d_loss = d_loss + 16 * 0.5 * grad.square().sum(dim=[1, 2, 3]).mean()
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()

        with torch.no_grad():
            for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                p_ema.lerp_(p, 1 - ema_beta)
            for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                b_ema.copy_(b)
        progress["step"] += 1
        progress["images"] += args.batch
        progress["seconds"] = seconds_before + time.time() - start

        if time.time() - last_print > 30 or progress["step"] == args.max_steps:
            rate = progress["images"] / max(progress["seconds"], 1e-9)
            losses = f"patch-swd {patch_swd.item():.4f}  " if args.swd_weight > 0 else ""
            if args.adv_weight > 0:
                losses += f"adv {adversarial.item():.3f}  d {d_loss.item():.3f}  "
            print(f"step {progress['step']}  images {progress['images']}  distill {distill.item():.4f}  {losses}"
                  f"{rate:.1f} img/s  "
                  f"{progress['seconds'] / 60:.1f} min", flush=True)
            last_print = time.time()
        if time.time() - last_save > args.save_minutes * 60:
            with torch.no_grad():
                value = swd(G_ema(torch.randn(512, TEACHER_Z), None, noise_mode="random"),
                            teacher(torch.randn(512, TEACHER_Z)))[1]
            progress["curve"].append([progress["images"], round(value, 2)])
            print(f"SWD (512 images) {value:.2f}; saving state", flush=True)
            snapshot()
            last_save = time.time()
    snapshot()
    export(G_ema, teacher, args, progress)


@torch.no_grad()
def export(G, teacher, args, progress):
    # w_avg: the mean w over many z, what truncation pulls towards.
    G.mapping.w_avg.copy_(G.mapping(torch.randn(10_000, TEACHER_Z), None)[:, 0].mean(dim=0))
    n = args.swd_images
    gen = torch.Generator().manual_seed(123)
    # Batches of 256 (the last one only as large as needed: rendering 256 teacher images for a
    # test's few would dominate its time); for a multiple of 256 the same draws as before.
    sizes = [min(256, n - i) for i in range(0, n, 256)]
    batches = [torch.randn(size, TEACHER_Z, generator=gen) for size in sizes]
    student_images = torch.cat([G(z, None, noise_mode="random") for z in batches])
    # The app's default noise mode is const: measured on the same z.
    student_const = torch.cat([G(z, None, noise_mode="const") for z in batches])
    teacher_a = torch.cat([teacher(torch.randn(size, TEACHER_Z, generator=gen)) for size in sizes])
    teacher_b = torch.cat([teacher(torch.randn(size, TEACHER_Z, generator=gen)) for size in sizes])
    student_levels, student_swd = swd(student_images, teacher_a)
    const_swd = swd(student_const, teacher_a)[1]
    teacher_levels, teacher_swd = swd(teacher_b, teacher_a)
    print(f"SWD x1e3 over {n} images: student vs teacher {student_swd:.2f} {np.round(student_levels, 2).tolist()} "
          f"(const noise: {const_swd:.2f}); teacher vs teacher {teacher_swd:.2f} "
          f"{np.round(teacher_levels, 2).tolist()}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stylegan.save_safetensors(G, out)
    card = {"config": G.config, "parameters": sum(p.numel() for p in G.parameters()), "images_seen": progress["images"],
            "steps": progress["step"], "train_minutes": round(progress["seconds"] / 60, 1),
            "threads": args.threads, "batch": args.batch, "adv_weight": args.adv_weight,
            "swd_images": n, "swd_student_vs_teacher": round(student_swd, 2),
            "swd_student_const_noise_vs_teacher": round(const_swd, 2),
            "swd_teacher_vs_teacher": round(teacher_swd, 2),
            "swd_levels_student": np.round(student_levels, 2).tolist(),
            "swd_levels_teacher": np.round(teacher_levels, 2).tolist(), "swd_curve_512": progress["curve"],
            "phases": progress["phases"]}
    out.with_suffix(".json").write_text(json.dumps(card, indent=1) + "\n")
    print(f"wrote {out} and {out.with_suffix('.json')}", flush=True)


if __name__ == "__main__":
    main()
