"""Command line: python -m stylegan COMMAND ... (see --help)."""

import argparse
import sys

from . import loading


def describe(G):
    """A few lines about a loaded generator, for people."""
    params = sum(p.numel() for p in G.parameters())
    resolutions = ", ".join(str(r) for r in G.synthesis.ws_resolutions)
    classes = f"{G.c_dim} classes" if G.c_dim else "unconditional"
    return "\n".join([
        f"source:      {G.source}",
        f"family:      {G.family}",
        f"resolution:  {G.img_resolution} px, {G.img_channels} channel(s)",
        f"z_dim/w_dim: {G.z_dim} / {G.w_dim}",
        f"num_ws:      {G.num_ws} (resolution of each: {resolutions})",
        f"classes:     {classes}",
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
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (UsageError, loading.LoadError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
