"""The original's LOAD_* switches: which concrete form third-party backends receive.

With no switch set, requests carry lazy MediaRefs (our backends resolve them). Each switch
forces one concrete form into the requests, with the real MIME type and extension:

- ``LOAD_OBJECT=1``: PIL images (upright 8-bit RGB), audio dicts ``{array, sampling_rate, path}``,
  video bytes;
- ``LOAD_BYTES=1``: the source bytes;
- ``LOAD_BASE64=1``: ``{"url": "data:<mime>;base64,..."}``;
- ``LOAD_FILES=1``: ``{"type": kind, kind: <absolute content-addressed path>}``.

The byte forms (bytes, data URL, file) hold the source bytes unchanged when an image is already
plain, else its normalised picture encoded once (``MediaRef.as_bytes``). :func:`ref_from_form`
turns any of these forms back into a MediaRef, so our backends accept every form.

Images are resized when ``HARNESS_RESIZE_IMAGES`` is 1/true/yes, by ``INPUT_IMAGE_WIDTH``,
``INPUT_IMAGE_HEIGHT`` and ``INPUT_IMAGE_MAX_SIDE``. Variables are read when requests are built,
not at import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from lm_eval_patches.media.ref import MediaRef

LOAD_SWITCHES = ("LOAD_OBJECT", "LOAD_BYTES", "LOAD_BASE64", "LOAD_FILES")


def load_mode(environ: Mapping[str, str] | None = None) -> str | None:
    """The active LOAD_* switch, or None for lazy references. More than one is an error."""
    env = os.environ if environ is None else environ
    active = [name for name in LOAD_SWITCHES if env.get(name) == "1"]
    if len(active) > 1:
        raise ValueError(
            f"Set at most one of {', '.join(LOAD_SWITCHES)} to 1; found {', '.join(active)}."
        )
    return active[0] if active else None


def resize_from_env(environ: Mapping[str, str] | None = None) -> dict[str, int | None]:
    """Resize settings from HARNESS_RESIZE_IMAGES / INPUT_IMAGE_* (empty when off)."""
    env = os.environ if environ is None else environ
    if env.get("HARNESS_RESIZE_IMAGES", "").lower() not in ("1", "true", "yes"):
        return {}
    sizes = {}
    for key, var in (
        ("width", "INPUT_IMAGE_WIDTH"),
        ("height", "INPUT_IMAGE_HEIGHT"),
        ("max_side", "INPUT_IMAGE_MAX_SIDE"),
    ):
        raw = env.get(var, "").strip()
        sizes[key] = int(raw) if raw.isdigit() else None
    return sizes


def _resized_ref(ref: MediaRef, sizes: dict[str, int | None]) -> MediaRef:
    from lm_eval_patches.media.image import encode_image

    img = ref.as_pil(**sizes)
    data, _ = encode_image(img, like_jpeg=ref.mime == "image/jpeg")
    return MediaRef.from_bytes("image", data, ref["name"], ref.where)


def materialise(ref: MediaRef, mode: str | None, sizes: dict[str, int | None] | None = None) -> Any:
    """The form of ``ref`` that the LOAD_* ``mode`` asks for (``ref`` itself when None)."""
    if mode is None:
        return ref
    if ref.kind == "image" and sizes and any(v is not None for v in sizes.values()):
        ref = _resized_ref(ref, sizes)
    if mode == "LOAD_BYTES":
        return ref.as_bytes()[0]
    if mode == "LOAD_BASE64":
        return {"url": ref.as_data_url()}
    if mode == "LOAD_FILES":
        return {"type": ref.kind, ref.kind: str(ref.as_file().resolve())}
    # LOAD_OBJECT
    if ref.kind == "image":
        return ref.as_pil()
    if ref.kind == "audio":
        array, rate = ref.as_audio(target_rate=None)
        return {"array": array, "sampling_rate": rate, "path": ref["name"]}
    return ref.read_bytes()


def ref_from_form(value: Any, kind: str, where: str | None = None) -> MediaRef:
    """A MediaRef for any form the project produces: a MediaRef itself, bytes (LOAD_BYTES),
    ``{"url": data URL}`` (LOAD_BASE64) or ``{"type": kind, kind: path}`` (LOAD_FILES).

    Raises:
        MediaError: A data URL that is not base64, or a file that cannot be read.
        TypeError: ``value`` is none of these forms (e.g. a PIL image: use it directly).
    """
    import base64
    import binascii

    from lm_eval_patches.media.errors import MediaError

    if isinstance(value, MediaRef):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return MediaRef.from_bytes(kind, bytes(value), where=where)
    if isinstance(value, Mapping):
        url = value.get("url")
        if isinstance(url, str):
            header, sep, payload = url.partition(",")
            if not (url.startswith("data:") and sep and header.endswith(";base64")):
                raise MediaError(kind, f"not a base64 data URL: {url[:40]!r}", where)
            try:
                data = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise MediaError(kind, f"bad base64 in the data URL: {exc}", where) from exc
            return MediaRef.from_bytes(kind, data, where=where)
        path = value.get(kind) or value.get("path")
        if isinstance(path, str) and value.get("type", kind) == kind:
            try:
                return MediaRef.from_file(kind, path, where=where)
            except OSError as exc:
                raise MediaError(kind, f"cannot read {path}: {exc}", where) from exc
    raise TypeError(
        f"cannot use a {kind} of type {type(value).__name__}: expected a MediaRef, bytes, "
        f'{{"url": data URL}} or {{"type": "{kind}", "{kind}": path}}'
    )
