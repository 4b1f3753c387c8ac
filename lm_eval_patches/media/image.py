"""Image decoding as a person sees the picture, and the original project's resize rules.

:func:`decode_image` turns any bytes Pillow can open into an upright 8-bit RGB picture:

- EXIF orientation (all eight values) is applied, as image viewers and ``datasets`` do;
- every Pillow mode becomes RGB of the same content: 16-bit integer modes are scaled to 8 bits
  (not clipped), 32-bit integer and float pictures are scaled by their range (see
  :func:`_to_8bit`), palette, CMYK, YCbCr, 1-bit and greyscale are converted;
- transparency (RGBA, LA, PA, a palette's or a colour key's transparent entry) is composited on
  white, so a black drawing on a transparent background stays visible;
- pictures over the pixel budget are decoded reduced (JPEG ``draft`` scaling at decode time, then
  ``reduce`` and a BICUBIC resize) to at most the budget: benchmark images are trusted data, so a
  180-megapixel scan is answered rather than refused as a decompression bomb. The budget is
  ``MERA_IMAGE_MAX_PIXELS`` (read at call time, default :data:`DEFAULT_MAX_PIXELS`) or a model
  argument; sources over :data:`DECODE_CEILING_PIXELS` that cannot be reduced while decoding
  are refused with a :class:`MediaError`.

Any exception from Pillow or its codecs becomes a :class:`MediaError`, so one bad picture fails
only its own request.
"""

from __future__ import annotations

import io
import math
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lm_eval_patches.media.errors import MediaError

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_MAX_PIXELS = 50_000_000  # output budget: 50 MP, ~150 MB of RGB
# Largest source decoded in full before reducing (1-bit 180 MP scans fit; memory ~1 byte/px
# for greyscale, 4 for RGB). JPEG sources are reduced by ``draft`` while decoding instead.
DECODE_CEILING_PIXELS = 1_000_000_000
MAX_PIXELS_ENV = "MERA_IMAGE_MAX_PIXELS"
# MPO: the multi-picture JPEG many phones write; its bytes are an ordinary JPEG to a reader.
PLAIN_FORMATS = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
}
_ORIENTATION_TAG = 0x0112
_OPEN_LOCK = threading.Lock()  # Pillow's bomb limit is a module global: change it under a lock


def max_pixels(value: int | str | None = None) -> int:
    """The pixel budget: ``value`` when given, else ``MERA_IMAGE_MAX_PIXELS``, else 50 MP."""
    raw = value if value not in (None, "") else os.environ.get(MAX_PIXELS_ENV, "")
    if raw in (None, ""):
        return DEFAULT_MAX_PIXELS
    try:
        budget = int(raw)
    except (TypeError, ValueError):
        msg = f"{MAX_PIXELS_ENV}/image_max_pixels must be an integer, got {raw!r}"
        raise ValueError(msg) from None
    if budget <= 0:
        raise ValueError(f"{MAX_PIXELS_ENV}/image_max_pixels must be positive, got {budget}")
    return budget


@dataclass(frozen=True)
class ImageFacts:
    """What the header says, read without decoding pixels."""

    format: str | None
    mode: str
    size: tuple[int, int]
    orientation: int
    has_alpha: bool


def _open(data: bytes) -> Image.Image:
    """``Image.open`` with our own size ceiling instead of Pillow's bomb limit."""
    from PIL import Image

    with _OPEN_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = DECODE_CEILING_PIXELS  # errors only past twice this
        try:
            img = Image.open(io.BytesIO(data))
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    return img


def _orientation(img: Image.Image) -> int:
    try:
        value = int(img.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the picture
        return 1
    return value if 1 <= value <= 8 else 1


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def image_facts(data: bytes) -> ImageFacts:
    """Format, mode, size, EXIF orientation and alpha of encoded image bytes (header only)."""
    try:
        with _open(data) as img:
            return ImageFacts(img.format, img.mode, img.size, _orientation(img), _has_alpha(img))
    except Exception as exc:  # noqa: BLE001 - every decoder failure is this image's failure
        raise MediaError("image", f"cannot read the image header: {_why(exc)}") from exc


def is_plain(facts: ImageFacts, budget: int | None = None) -> bool:
    """True when the bytes can be sent as they are: 8-bit RGB/L, upright, opaque, within the
    pixel budget, in a format every server reads (JPEG, PNG, WebP)."""
    w, h = facts.size
    return (
        facts.format in PLAIN_FORMATS
        and facts.mode in ("RGB", "L")
        and facts.orientation == 1
        and not facts.has_alpha
        and w * h <= max_pixels(budget)
    )


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def decode_image(data: bytes, budget: int | None = None) -> Image.Image:
    """Decode bytes into an upright 8-bit RGB PIL image within the pixel budget.

    Args:
        data: Encoded image bytes (any format Pillow opens).
        budget: Most pixels of the result (default :func:`max_pixels`).

    Raises:
        MediaError: The bytes are empty, not an image, or cannot be decoded (the detail holds
            the decoder's own error).
    """
    if not data:
        raise MediaError("image", "the file is empty")
    limit = max_pixels(budget)
    try:
        with _open(data) as img:
            orientation = _orientation(img)
            w, h = img.size
            if w * h > limit and img.format in ("JPEG", "MPO"):
                # Decode at 1/2, 1/4 or 1/8 scale: the full picture is never in memory.
                img.draft(img.mode, _fit(img.size, limit))
            elif w * h > DECODE_CEILING_PIXELS:
                raise MediaError(
                    "image",
                    f"{w}x{h} is over {DECODE_CEILING_PIXELS:,} pixels and its format "
                    f"({img.format}) cannot be reduced while decoding",
                )
            img.load()
            if img.mode == "1" and img.width * img.height > limit:
                img = img.convert("L")  # reduce one byte per pixel, not four (RGB)
            rgb = to_rgb(fit_pixels(img, limit) if img.mode in ("L", "RGB") else img)
            rgb = fit_pixels(rgb, limit)
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001 - incl. DecompressionBombError, MemoryError, codecs
        raise MediaError("image", f"cannot decode image: {_why(exc)}") from exc
    return upright(rgb, orientation)


def _fit(size: tuple[int, int], limit: int) -> tuple[int, int]:
    w, h = size
    if w * h <= limit:
        return size
    scale = math.sqrt(limit / (w * h))
    return max(1, math.floor(w * scale)), max(1, math.floor(h * scale))


def fit_pixels(img: Image.Image, limit: int) -> Image.Image:
    """``img`` scaled down (aspect kept) to at most ``limit`` pixels; itself when it fits."""
    from PIL import Image

    target = _fit(img.size, limit)
    if target == img.size:
        return img
    factor = min(img.width // target[0], img.height // target[1])
    if factor >= 2:  # integer box reduction first: cheap, and the resize then stays small
        img = img.reduce(factor)
    return img.resize(target, Image.Resampling.BICUBIC)


# Transpositions that undo each EXIF orientation (TIFF/EXIF 2.32, tag 274).
_UPRIGHT = {
    2: ("FLIP_LEFT_RIGHT",),
    3: ("ROTATE_180",),
    4: ("FLIP_TOP_BOTTOM",),
    5: ("TRANSPOSE",),
    6: ("ROTATE_270",),
    7: ("TRANSVERSE",),
    8: ("ROTATE_90",),
}


def upright(img: Image.Image, orientation: int) -> Image.Image:
    """``img`` turned as EXIF ``orientation`` (1-8) says a viewer shows it."""
    from PIL import Image

    for name in _UPRIGHT.get(orientation, ()):
        img = img.transpose(getattr(Image.Transpose, name))
    return img


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit RGB of the same content; alpha composited on white."""
    from PIL import Image

    if img.mode == "RGB" and "transparency" not in img.info:
        return img
    if img.mode.startswith(("I", "F")):
        return _to_8bit(img).convert("RGB")
    if _has_alpha(img):
        rgba = img.convert("RGBA")  # palette/colour-key transparency becomes real alpha
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode in ("1", "L", "P", "CMYK", "YCbCr", "RGBX", "HSV"):
        return img.convert("RGB")
    if img.mode == "LAB":
        from PIL import ImageCms

        lab_to_srgb = ImageCms.buildTransform(
            ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"
        )
        return ImageCms.applyTransform(img, lab_to_srgb)
    return img.convert("RGB")


def _to_8bit(img: Image.Image) -> Image.Image:
    """An ``L`` image from 16/32-bit integer or float greyscale.

    16-bit modes (``I;16``, ``I;16B``, ...) divide by 257, so 0..65535 maps onto 0..255.
    32-bit ``I`` is read as 8-bit when its values fit 0..255, as 16-bit when they fit 0..65535,
    and is otherwise scaled from its minimum to its maximum. ``F`` in 0..1 is scaled by 255,
    in 0..255 kept, otherwise scaled from its minimum to its maximum.
    """
    import numpy as np
    from PIL import Image

    arr = np.asarray(img).astype(np.float64)
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if img.mode.startswith("I;16"):
        scaled = arr / 257.0
    elif img.mode == "F" and lo >= 0 and hi <= 1:
        scaled = arr * 255.0
    elif lo >= 0 and hi <= 255:
        scaled = arr
    elif img.mode == "I" and lo >= 0 and hi <= 65535:
        scaled = arr / 257.0
    else:
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")


def check_resize_args(width: int | None, height: int | None, max_side: int | None) -> None:
    """max_side cannot be combined with width/height (the original raised the same error)."""
    if max_side is not None and (width is not None or height is not None):
        raise ValueError("image_max_side cannot be combined with image_width/image_height")
    for name, value in (
        ("image_width", width),
        ("image_height", height),
        ("image_max_side", max_side),
    ):
        if value is not None and int(value) <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def target_size(
    size: tuple[int, int],
    width: int | None = None,
    height: int | None = None,
    max_side: int | None = None,
) -> tuple[int, int]:
    """New (w, h) under the resize rules; equal to ``size`` when nothing needs to change.

    - width and height: fit inside the box, keeping the aspect ratio (never upscale);
    - only one of them: scale the other side in proportion (only downscale);
    - max_side: the longer side becomes max_side (up or down).
    """
    check_resize_args(width, height, max_side)
    w, h = size
    if max_side is not None:
        scale = max_side / max(w, h)
    elif width is not None and height is not None:
        scale = min(width / w, height / h, 1.0)
    elif width is not None:
        scale = min(width / w, 1.0)
    elif height is not None:
        scale = min(height / h, 1.0)
    else:
        return size
    if scale == 1.0:
        return size
    return max(1, round(w * scale)), max(1, round(h * scale))


def resize_image(
    img: Image.Image,
    width: int | None = None,
    height: int | None = None,
    max_side: int | None = None,
) -> Image.Image:
    """Apply the resize rules with BICUBIC resampling; returns ``img`` itself if unchanged."""
    from PIL import Image

    new_size = target_size(img.size, width, height, max_side)
    if new_size == img.size:
        return img
    return img.resize(new_size, Image.Resampling.BICUBIC)


def encode_image(img: Image.Image, like_jpeg: bool = False) -> tuple[bytes, str]:
    """Encoded bytes and MIME of an RGB picture: JPEG (quality 95) for JPEG sources, else PNG."""
    buf = io.BytesIO()
    if like_jpeg:
        img.save(buf, format="JPEG", quality=95)
        return buf.getvalue(), "image/jpeg"
    img.save(buf, format="PNG")
    return buf.getvalue(), "image/png"


def encode_png(img: Image.Image) -> bytes:
    """PNG bytes of an image (only used when pixels changed, e.g. after a resize)."""
    return encode_image(img)[0]
