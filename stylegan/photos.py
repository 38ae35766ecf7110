"""People's photos: opened safely and upright, and cropped the way the FFHQ dataset was aligned.

A photo is private: nothing here names its file in a message (an upload's name can be a name).
"""

import math

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from .settings import SettingsError

MAX_PHOTO_PIXELS = 50_000_000  # a 8000 x 6000 photo; more is refused before anything is decoded


def open_photo(path, max_pixels=MAX_PHOTO_PIXELS):
    """The photo as an upright RGB image: EXIF rotation applied; CMYK, 16-bit, palette, grey and
    transparent images converted (transparency onto white). Its declared size is checked before
    any pixel is decoded, so a small file declaring a huge image costs nothing."""
    try:
        with Image.open(path) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise SettingsError(f"The photo declares {width} x {height} pixels; at most "
                                    f"{max_pixels / 1e6:.0f} megapixels are read.")
            im.load()
            upright = ImageOps.exif_transpose(im)
    except SettingsError:
        raise
    except FileNotFoundError:
        raise SettingsError("The photo file does not exist.") from None
    except Image.DecompressionBombError:  # Pillow's own limit, for sizes far above ours
        raise SettingsError(f"The photo declares far more than {max_pixels / 1e6:.0f} megapixels; at most "
                            f"{max_pixels / 1e6:.0f} megapixels are read.") from None
    except Image.UnidentifiedImageError:
        raise SettingsError("The photo is not an image that can be read (JPEG, PNG, WebP, ...).") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise SettingsError(f"The photo cannot be read: it seems cut short or damaged ({e}).") from None
    return _as_rgb(upright)


def _as_rgb(im):
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey (PIL may open it as 32-bit "I"): to 8 bits
        values = np.asarray(im, dtype=np.float64)
        im = Image.fromarray((values / 257).round().clip(0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, im).convert("RGB")
    return im.convert("RGB")


# ----------------------------------------------------------------------------- FFHQ alignment

def ffhq_quad(landmarks):
    """The crop quadrilateral FFHQ's alignment takes, from five landmarks (eye centres, nose, mouth
    corners; [5, 2] in pixels): centred a little below the eyes, as wide as twice the eye distance
    or 1.8 times the eye-to-mouth distance, turned so the eyes are level. Returns (quad [4, 2]:
    top-left, bottom-left, bottom-right, top-right; its side in pixels)."""
    p = np.asarray(landmarks, dtype=np.float64)
    eye_left, eye_right, mouth_left, mouth_right = p[0], p[1], p[3], p[4]
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (mouth_left + mouth_right) / 2 - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])  # eye line, tilted by the mouth's direction
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.array([-x[1], x[0]])
    c = eye_avg + eye_to_mouth * 0.1
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
    return quad, float(np.hypot(*x) * 2)


def align_ffhq(image, landmarks, size):
    """The photo cropped, turned and scaled as FFHQ's faces were (size x size): large photos are first
    shrunk for antialiasing; where the crop leaves the photo, the photo is mirrored outwards, blurred
    towards the border and blended towards its median colour (FFHQ's padding)."""
    quad, qsize = ffhq_quad(landmarks)
    img = image

    shrink = int(math.floor(qsize / size * 0.5))
    if shrink > 1:
        img = img.resize((int(round(img.width / shrink)), int(round(img.height / shrink))), Image.LANCZOS)
        quad /= shrink
        qsize /= shrink

    border = max(int(round(qsize * 0.1)), 3)
    lo = np.floor(quad.min(axis=0)).astype(int)
    hi = np.ceil(quad.max(axis=0)).astype(int)
    crop = (max(lo[0] - border, 0), max(lo[1] - border, 0), min(hi[0] + border, img.width),
            min(hi[1] + border, img.height))
    if crop[2] - crop[0] < img.width or crop[3] - crop[1] < img.height:
        img = img.crop(crop)
        quad -= crop[:2]

    lo = np.floor(quad.min(axis=0)).astype(int)
    hi = np.ceil(quad.max(axis=0)).astype(int)
    pad = (max(-lo[0] + border, 0), max(-lo[1] + border, 0), max(hi[0] - img.width + border, 0),
           max(hi[1] - img.height + border, 0))
    if max(pad) > border - 4:
        pad = np.maximum(pad, int(round(qsize * 0.3)))
        img, quad = _pad_like_ffhq(img, quad, qsize, pad)

    side = size * 4  # transform at 4x, then shrink: smooth edges
    out = img.transform((side, side), Image.QUAD, (quad + 0.5).flatten(), Image.BILINEAR)
    return out.resize((size, size), Image.LANCZOS)


def _pad_like_ffhq(img, quad, qsize, pad):
    left, top, right, bottom = (int(v) for v in pad)
    a = np.pad(np.asarray(img, dtype=np.float32), ((top, bottom), (left, right), (0, 0)), "reflect")
    h, w = a.shape[:2]
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    # 0 inside the photo, rising to 1 at the padded border: how far into the padding a pixel lies.
    mask = np.maximum(1 - np.minimum(xx / max(left, 1), (w - 1 - xx) / max(right, 1)),
                      1 - np.minimum(yy / max(top, 1), (h - 1 - yy) / max(bottom, 1)))
    mask = np.clip(mask, 0, 1)[:, :, None]
    blur = qsize * 0.02
    blurred = np.asarray(Image.fromarray(a.round().clip(0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(blur)), dtype=np.float32)
    a += (blurred - a) * np.clip(mask * 3 + 1, 0, 1)
    a += (np.median(a, axis=(0, 1)) - a) * np.clip(mask, 0, 1)
    return Image.fromarray(a.round().clip(0, 255).astype(np.uint8)), quad + [left, top]
