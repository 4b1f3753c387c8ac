"""MediaRef: a lazy, content-hashed reference to one image, audio clip or video.

Requests carry MediaRefs instead of decoded media, so building requests for a 7,000-image task
costs almost nothing and logged samples name media by the hash of their source bytes. A MediaRef
is a ``dict`` of JSON-safe facts (kind, sha256, mime, name), so lm-eval's sample logging and
request hashing serialise it as-is without touching pixels; the bytes come from ``loader`` only
when a backend asks for a concrete form.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.media.mime import extension_for, sniff_mime

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

BytesLoader = Callable[[], bytes]
# (content sha256, pixel budget) -> (plain?, file stem): header facts read once per image.
_IMAGE_FORMS: dict[tuple[str, int], tuple[bool, str]] = {}


class MediaRef(dict):
    """Lazy media reference; equal and hashable by kind and content hash."""

    def __init__(
        self,
        kind: str,
        sha256: str,
        mime: str | None,
        name: str | None,
        loader: BytesLoader,
        where: str | None = None,
        pil_loader: Callable[[], Image.Image] | None = None,
    ) -> None:
        super().__init__(kind=kind, sha256=sha256, mime=mime, name=name)
        self._loader = loader
        self.where = where
        self._pil_loader = pil_loader  # a decoded source (video frames): skip encode/decode

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_bytes(
        cls, kind: str, data: bytes, name: str | None = None, where: str | None = None
    ) -> MediaRef:
        """A reference to bytes already in memory (hashes them once)."""
        return cls(
            kind, hashlib.sha256(data).hexdigest(), sniff_mime(data), name, lambda: data, where
        )

    @classmethod
    def from_file(cls, kind: str, path: str | os.PathLike, where: str | None = None) -> MediaRef:
        """A reference to a file on disk (read once to hash and sniff)."""
        p = Path(path)
        data = p.read_bytes()
        return cls(
            kind, hashlib.sha256(data).hexdigest(), sniff_mime(data), p.name, p.read_bytes, where
        )

    # -- facts ------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self["kind"]

    @property
    def sha256(self) -> str:
        return self["sha256"]

    @property
    def mime(self) -> str | None:
        return self["mime"]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash((self["kind"], self["sha256"]))

    def __repr__(self) -> str:
        return f"MediaRef({self['kind']}, sha256={self['sha256'][:12]}, {self['mime']})"

    # Immutable in practice: copies share the loader instead of duplicating datasets.
    def __copy__(self) -> MediaRef:
        return self

    def __deepcopy__(self, memo: dict) -> MediaRef:
        return self

    def __reduce__(self):
        return (
            MediaRef,
            (self["kind"], self["sha256"], self["mime"], self["name"], self._loader, self.where),
        )

    # -- forms ------------------------------------------------------------------------------
    def read_bytes(self) -> bytes:
        """The source bytes, exactly as stored."""
        with self.located():
            try:
                data = self._loader()
            except MediaError:
                raise
            except Exception as exc:  # noqa: BLE001 - any storage failure becomes a MediaError
                raise self.error(f"cannot read the media bytes: {exc}") from exc
        if not data:
            raise self.error("the media file is empty")
        return data

    @contextmanager
    def located(self) -> Iterator[None]:
        """Add this media's place (task, doc, field) to a MediaError raised inside."""
        try:
            yield
        except MediaError as exc:
            if self.where and not exc.where:
                exc.with_context(self.where)
            raise

    def error(self, detail: str) -> MediaError:
        """A MediaError about this media, naming where it came from."""
        return MediaError(self.kind, detail, self.where)

    def _decoded(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self.located():
            return fn(self.read_bytes(), *args, **kwargs)

    def as_pil(
        self,
        width: int | None = None,
        height: int | None = None,
        max_side: int | None = None,
        max_pixels: int | None = None,
    ) -> Image.Image:
        """An upright 8-bit RGB PIL image (see ``media/image.py``: EXIF orientation, every mode,
        alpha on white, at most ``max_pixels``), resized by the original's rules when asked."""
        from lm_eval_patches.media.image import decode_image, resize_image

        self._expect("image")
        if self._pil_loader is not None:
            with self.located():
                img = self._pil_loader()
        else:
            img = self._decoded(decode_image, max_pixels)
        return resize_image(img, width, height, max_side)

    def as_bytes(self, max_pixels: int | None = None) -> tuple[bytes, str | None]:
        """Bytes and MIME to send: the source bytes unchanged, except an image that is not
        plain (see ``image.is_plain``: 8-bit RGB/L, upright, opaque, within the pixel budget,
        JPEG/PNG/WebP), which is normalised once and encoded (JPEG for JPEG sources, else PNG)."""
        data = self.read_bytes()
        if self.kind != "image" or self._pil_loader is not None:
            return data, self.mime or sniff_mime(data)
        plain, _ = self._image_form(data, max_pixels)
        if plain:
            return data, self.mime or sniff_mime(data)
        from lm_eval_patches.media.image import encode_image

        img = self.as_pil(max_pixels=max_pixels)
        return encode_image(img, like_jpeg=self.mime == "image/jpeg")

    def _image_form(self, data: bytes | None, max_pixels: int | None) -> tuple[bool, str]:
        """(plain?, file stem) of this image under the budget, remembered per content hash."""
        from lm_eval_patches.media import image

        budget = image.max_pixels(max_pixels)
        key = (self.sha256, budget)
        known = _IMAGE_FORMS.get(key)
        if known is not None:
            return known
        if data is None:
            data = self.read_bytes()
        with self.located():
            facts = image.image_facts(data)
        plain = image.is_plain(facts, budget)
        stem = f"image-{self.sha256}"
        if not plain:  # normalised pixels get a name of their own, never the source's
            stem += "-rgb" if facts.size[0] * facts.size[1] <= budget else f"-rgb-max{budget}"
        if len(_IMAGE_FORMS) > 4096:
            _IMAGE_FORMS.clear()
        _IMAGE_FORMS[key] = (plain, stem)
        return plain, stem

    def as_audio(
        self, target_rate: int | None = 16000, mono: bool = True
    ) -> tuple[np.ndarray, int]:
        """Float32 samples and their rate, down-mixed and resampled as asked."""
        from lm_eval_patches.media.audio import decode_audio

        self._expect("audio")
        return self._decoded(decode_audio, target_rate=target_rate, mono=mono)

    def as_frames(
        self, num_frames: int | None = None, fps: float | None = None, index: int | None = None
    ) -> list:
        """PIL frames sampled uniformly (or at ``fps``) by seeking, cached per clip and sampling;
        with ``index``, only that frame of the sampling (a one-item list)."""
        from lm_eval_patches.media.frame_cache import FRAME_CACHE

        self._expect("video")
        with self.located():
            return FRAME_CACHE.get_or_sample(
                self.sha256, self.read_bytes, num_frames, fps, index=index
            )

    def duration_s(self) -> float:
        """Length in seconds of an audio clip or a video (read from headers where possible),
        so backends can enforce their limits before decoding anything."""
        if self.kind == "audio":
            from lm_eval_patches.media.audio import audio_duration

            return self._decoded(audio_duration)
        if self.kind == "video":
            from lm_eval_patches.media.video import probe_video

            return self._decoded(probe_video).duration_s
        raise self.error("an image has no duration")

    def as_data_url(self, max_pixels: int | None = None) -> str:
        """``data:<real mime>;base64,...`` of :meth:`as_bytes` (source bytes unless an image
        needs normalising)."""
        data, mime = self.as_bytes(max_pixels)
        mime = mime or "application/octet-stream"
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"

    def as_file(self, root: str | os.PathLike | None = None, max_pixels: int | None = None) -> Path:
        """A content-addressed file ``<root>/<kind>s/<kind>-<sha256>.<real ext>`` of
        :meth:`as_bytes`, written once (a normalised image is named ``...-rgb`` or, when the
        budget reduced it, ``...-rgb-max<budget>``)."""
        folder = Path(root or media_root()) / f"{self.kind}s"
        if self.kind == "image" and self._pil_loader is None:
            plain, stem = self._image_form(None, max_pixels)
            jpeg = self.mime == "image/jpeg"
            mime = self.mime if plain else ("image/jpeg" if jpeg else "image/png")
        else:
            stem, mime = f"{self.kind}-{self.sha256}", self.mime
        path = folder / f"{stem}.{extension_for(mime)}"
        if not path.exists():
            data, _ = self.as_bytes(max_pixels)
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
            tmp.write_bytes(data)
            tmp.replace(path)  # atomic: a concurrent reader never sees half a file
        return path

    def _expect(self, kind: str) -> None:
        if self.kind != kind:
            raise self.error(f"expected {kind} media, got {self.kind}")


def frame_refs(video: MediaRef, count: int) -> list[MediaRef]:
    """``count`` image refs for frames sampled uniformly over ``video``, decoded lazily.

    Their sha256 identifies (clip hash, frame index, count) rather than bytes: the frames
    exist only once decoded. All frames of a clip come from one cached sampling pass.
    """

    def frame(index: int) -> Image.Image:
        return video.as_frames(count, index=index)[0]

    def png(index: int) -> bytes:
        from lm_eval_patches.media.image import encode_png

        return encode_png(frame(index))

    refs = []
    for index in range(count):
        ident = hashlib.sha256(f"{video.sha256}|frame {index} of {count}".encode()).hexdigest()
        name = f"{video['name'] or 'video'}#frame{index + 1}of{count}"
        refs.append(
            MediaRef(
                "image",
                ident,
                "image/png",
                name,
                partial(png, index),
                video.where,
                pil_loader=partial(frame, index),
            )
        )
    return refs


def media_root() -> Path:
    """Where content-addressed media files go (same precedence as the original project)."""
    if os.environ.get("LM_EVAL_MEDIA_DIR"):
        return Path(os.environ["LM_EVAL_MEDIA_DIR"]) / "lm_eval_media"
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "lm_eval_media"
    return Path.home() / ".cache" / "huggingface" / "lm_eval_media"
