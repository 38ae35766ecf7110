"""How many images go through a generator at once: the one place that decides it.

Two things bound a pass: the device's speed (on a CPU, large batches of large images are slower
per image; the synthesis network says how many pixels it does well at once) and memory (the
model's peak activations per image, against the request's budget).
"""

import torch

from .layers import images_at_once

DEFAULT_BUDGET = 4 * 2 ** 30  # bytes a pass may use when the caller sets no budget
BYTES_PER_FINISHED_PIXEL = 5  # a finished image is kept as float32 and as 8 bits
# The model of a pass's peak, fitted to the growth of resident memory measured over three passes
# (bundled model at batches 1-64, StyleGAN2 at 256-1024 px, StyleGAN3-T; 1 thread, freed memory
# reused) so that no case was above it: 1.0-1.7 times the growth for StyleGAN2 from 8 images of the
# bundled model up; more for single small images and for StyleGAN3 (2.5 times at 256 px).
LIVE_COPIES = 6.5  # the largest feature map's copies alive at once (input, output, temporaries, the heap's gaps)
WEIGHT_COPIES = 1.5  # the synthesis weights again: reordered for the convolution library, modulated per pass
RUNTIME_BYTES = 32 * 2 ** 20  # the convolution library's and the threads' scratch
STREAMED_BATCH = 4  # images streamed out (a video's frames) go a few at a time: progress and cancel stay prompt


def largest_feature_map(G):
    """Elements of the largest feature map one image passes through, from the architecture."""
    sizes = [G.img_channels * G.img_resolution ** 2]
    for m in G.synthesis.modules():
        weight = getattr(m, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
            continue
        if hasattr(m, "up_factor"):  # StyleGAN3: the activation runs on an up-sampled signal
            side = (int(max(m.in_size)) + m.conv_kernel - 1) * m.up_factor
            sizes.append(weight.shape[0] * side ** 2)
        elif hasattr(m, "resolution"):
            sizes.append(weight.shape[0] * (m.resolution + 2) ** 2)  # + the transposed convolution's overhang
    return max(sizes)


def bytes_per_image_in_flight(G):
    return int(largest_feature_map(G) * 4 * LIVE_COPIES)


def bytes_per_finished_image(G):
    return G.img_channels * G.img_resolution ** 2 * BYTES_PER_FINISHED_PIXEL


def bytes_per_pass(G):
    """What a pass needs whatever its batch size."""
    return RUNTIME_BYTES + int(WEIGHT_COPIES * sum(p.numel() * p.element_size() for p in G.synthesis.parameters()))


def images_computed_at_once(G, batch_size):
    """A pass's images in flight together: on a CPU a large batch is synthesised a few at a time."""
    at_once = images_at_once(next(G.parameters()).device, G.img_resolution, G.synthesis.cpu_batch_pixels)
    return min(batch_size, at_once or batch_size)


def estimate_memory(G, num_images, batch_size, streamed=False):
    """Bytes a request needs at its peak, roughly: its finished images (unless they are streamed
    out, as a video's frames) and one pass: its fixed part and its images in flight."""
    batch_size = min(batch_size, num_images)
    return ((batch_size if streamed else num_images) * bytes_per_finished_image(G) + bytes_per_pass(G)
            + images_computed_at_once(G, batch_size) * bytes_per_image_in_flight(G))


def plan_batch(G, num_images, batch_size=None, max_memory=None, streamed=False):
    """The batch size for a request of num_images: batch_size when the caller chose one, else as
    many as the device does well and the budget allows. A request that would not fit max_memory
    is refused with a sentence (SettingsError)."""
    from .settings import SettingsError
    finished, in_flight = bytes_per_finished_image(G), bytes_per_image_in_flight(G)
    if batch_size is None:
        budget = (max_memory or DEFAULT_BUDGET) - bytes_per_pass(G)
        if streamed:
            fits = min(budget // (finished + in_flight), STREAMED_BATCH)
        else:
            fits = (budget - num_images * finished) // in_flight
        speed = images_at_once(next(G.parameters()).device, G.img_resolution, G.synthesis.cpu_batch_pixels)
        batch_size = int(max(1, min(fits, num_images, speed or num_images)))
    if max_memory is not None:
        need = estimate_memory(G, num_images, batch_size, streamed)
        if need > max_memory:
            raise SettingsError(f"This request would need about {need / 2 ** 30:.1f} GB of memory, more than the "
                                f"{max_memory / 2 ** 30:.1f} GB allowed: ask for fewer images, a smaller batch or a "
                                "smaller model.")
    return batch_size
