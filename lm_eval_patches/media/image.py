"""Image decoding and the original project's resize rules."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from lm_eval_patches.media.errors import MediaError

if TYPE_CHECKING:
    from PIL import Image


def decode_image(data: bytes) -> Image.Image:
    """Decode bytes into an RGB PIL image; MediaError when the bytes are not a usable image."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise MediaError("image", "the file is empty")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise MediaError("image", f"cannot decode image: {exc}") from exc


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


def encode_png(img: Image.Image) -> bytes:
    """PNG bytes of an image (only used when pixels changed, e.g. after a resize)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
