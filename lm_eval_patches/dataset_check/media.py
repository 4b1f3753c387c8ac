"""Media checks: readable, allowed format, resolution, blur, duplicates, duration and streams.

Decoding goes through the project's media layer (``MediaRef``: sniffed MIME, PIL decode with the
media fixes, soundfile/PyAV audio, PyAV video probe and frame sampling). Perceptual hashes come
from ``imagehash`` (pHash), blur is the variance of the Laplacian (``scipy.ndimage.laplace``), as
in MERA's own dataset tests. Unlike the original checkout (bug B33), an image fails the
resolution rule when *either* side is out of range, and a corrupt file is always reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lm_eval_patches.dataset_check.layout import MEDIA_EXTENSIONS, Item, MediaCell
from lm_eval_patches.dataset_check.report import ERROR, WARNING, Report
from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.media.mime import extension_for
from lm_eval_patches.media.ref import MediaRef

IMAGE_MIMES = ("image/png", "image/jpeg")  # MERA accepts .png/.jpg/.jpeg only


@dataclass
class MediaRules:
    """Limits of the media checks (MERA's defaults; every one can be changed on the CLI)."""

    min_side: int = 224
    max_side: int = 3840
    blur_threshold: float = 100.0  # variance of the Laplacian below this: blurred
    phash_distance: int = 4  # pHash Hamming distance at or below this: near-duplicates
    audio_seconds: tuple[float, float] = (0.1, 600.0)
    video_seconds: tuple[float, float] = (0.5, 600.0)


@dataclass
class _Seen:
    """A media file already checked: where it was and its hashes."""

    item: Item
    field: str
    sha256: str


@dataclass
class MediaChecker:
    """Checks each media cell as it streams by; duplicates are judged against all seen so far."""

    rules: MediaRules
    by_sha: dict[str, _Seen] = field(default_factory=dict)
    phashes: list[int] = field(default_factory=list)
    phash_owner: list[_Seen] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    durations: dict[str, list[float]] = field(default_factory=dict)

    def check(self, item: Item, cell: MediaCell, report: Report) -> None:
        """Run every check that applies to one media cell."""
        where = item.where(f"inputs.{cell.field}")
        label = f"{cell.name or cell.field}"
        if cell.data is None:
            report.add("unreadable", ERROR, f"{label}: {cell.problem}", **where)
            return
        self.counts[cell.kind] = self.counts.get(cell.kind, 0) + 1
        ref = MediaRef.from_bytes(cell.kind, cell.data, cell.name)
        if not self._check_format(ref, cell, label, where, report):
            return
        seen = _Seen(item, cell.field, ref.sha256)
        self._check_exact_duplicate(seen, label, where, report)
        try:
            if cell.kind == "image":
                self._check_image(ref, seen, label, where, report)
            elif cell.kind == "audio":
                self._check_audio(ref, label, where, report)
            else:
                self._check_video(ref, label, where, report)
        except MediaError as exc:
            report.add("unreadable", ERROR, f"{label}: {exc.message}", **where)
        except Exception as exc:  # noqa: BLE001 - one odd file must not end the whole check
            report.add("unreadable", ERROR, f"{label}: {type(exc).__name__}: {exc}", **where)

    # -- format and exact duplicates ------------------------------------------------------
    def _check_format(self, ref: MediaRef, cell: MediaCell, label: str, where, report) -> bool:
        mime = ref.mime
        if mime is None or not mime.startswith(cell.kind + "/"):
            found = mime or "an unknown format"
            report.add(
                "format",
                ERROR,
                f"{label}: inputs.{cell.field} must hold {cell.kind}, the bytes are {found}",
                **where,
            )
            return False
        if cell.kind == "image" and mime not in IMAGE_MIMES:
            report.add("format", ERROR, f"{label}: {mime} (MERA accepts PNG and JPEG)", **where)
        if cell.name and "." in cell.name:
            suffix = "." + cell.name.rsplit(".", 1)[1].lower()
            real = "." + extension_for(mime)
            same_family = {suffix, real} <= {".jpg", ".jpeg"}
            if suffix != real and not same_family and suffix in _all_extensions():
                report.add(
                    "format",
                    WARNING,
                    f"{label}: named {suffix} but the bytes are {mime}",
                    **where,
                )
        return True

    def _check_exact_duplicate(self, seen: _Seen, label: str, where, report: Report) -> None:
        first = self.by_sha.get(seen.sha256)
        if first is None:
            self.by_sha[seen.sha256] = seen
            return
        if first.item.split != seen.item.split:
            report.add(
                "shots",
                ERROR,
                f"{label}: the same file as {first.item.split} doc {first.item.doc_id} "
                f"inputs.{first.field} (shots must not reuse test media)",
                **where,
            )
        elif first.item is not seen.item:
            report.add(
                "duplicates",
                WARNING,
                f"{label}: the same file as doc {first.item.doc_id} inputs.{first.field}",
                **where,
            )

    # -- kinds ----------------------------------------------------------------------------
    def _check_image(self, ref: MediaRef, seen: _Seen, label: str, where, report) -> None:
        import imagehash
        import numpy as np
        from scipy.ndimage import laplace

        image = ref.as_pil()
        width, height = image.size
        low, high = self.rules.min_side, self.rules.max_side
        if min(width, height) < low or max(width, height) > high:
            report.add(
                "resolution",
                ERROR,
                f"{label}: {width}x{height}, each side must be within {low}..{high} px",
                **where,
            )
        gray = np.asarray(image.convert("L"), dtype=np.float64)
        sharpness = float(laplace(gray).var())
        if sharpness < self.rules.blur_threshold:
            report.add(
                "blur",
                WARNING,
                f"{label}: variance of the Laplacian {sharpness:.1f} < "
                f"{self.rules.blur_threshold:g} (blurred or flat; review by eye)",
                **where,
            )
        value = int(str(imagehash.phash(image)), 16)
        self._check_near_duplicate(value, seen, label, where, report)

    def _check_near_duplicate(self, value: int, seen: _Seen, label: str, where, report) -> None:
        import numpy as np

        if self.phashes:
            known = np.array(self.phashes, dtype=np.uint64)
            distances = np.bitwise_count(known ^ np.uint64(value))
            for index in np.flatnonzero(distances <= self.rules.phash_distance)[:3]:
                other = self.phash_owner[int(index)]
                if other.sha256 == seen.sha256:
                    continue  # the same file: reported as an exact duplicate
                # pHash is a heuristic (flat drawings collide): a warning to review by eye.
                report.add(
                    "near_duplicates",
                    WARNING,
                    f"{label}: looks like {other.item.split} doc {other.item.doc_id} "
                    f"inputs.{other.field} (pHash distance {int(distances[index])})",
                    **where,
                )
        self.phashes.append(value)
        self.phash_owner.append(seen)

    def _check_audio(self, ref: MediaRef, label: str, where, report: Report) -> None:
        duration = ref.duration_s()
        samples, rate = ref.as_audio(target_rate=None, mono=False)
        self._duration("audio", duration, self.rules.audio_seconds, label, where, report)
        if samples.size == 0:
            report.add("unreadable", ERROR, f"{label}: no samples", **where)

    def _check_video(self, ref: MediaRef, label: str, where, report: Report) -> None:
        from lm_eval_patches.media.video import probe_video

        info = probe_video(ref.read_bytes())
        self._duration("video", info.duration_s, self.rules.video_seconds, label, where, report)
        if not info.width or not info.height:
            report.add("unreadable", ERROR, f"{label}: the video stream has no size", **where)
            return
        frames = ref.as_frames(num_frames=2)
        if len(frames) < 1:
            report.add("unreadable", ERROR, f"{label}: no frame could be decoded", **where)
        streams = _stream_counts(ref.read_bytes())
        if streams.get("video", 0) > 1:
            report.add(
                "streams",
                WARNING,
                f"{label}: {streams['video']} video streams (models read the first only)",
                **where,
            )

    def _duration(self, kind: str, seconds: float, bounds, label: str, where, report) -> None:
        self.durations.setdefault(kind, []).append(seconds)
        low, high = bounds
        if not low <= seconds <= high:
            report.add(
                "duration",
                ERROR,
                f"{label}: {seconds:.2f} s, {kind} must last {low:g}..{high:g} s",
                **where,
            )

    def stats(self) -> dict[str, Any]:
        """Counts per kind and the duration range per kind."""
        out: dict[str, Any] = {"media": dict(self.counts)}
        for kind, values in self.durations.items():
            out[f"{kind}_seconds"] = f"{min(values):.2f}..{max(values):.2f}"
        return out


def _all_extensions() -> set[str]:
    return {ext for exts in MEDIA_EXTENSIONS.values() for ext in exts}


def _stream_counts(data: bytes) -> dict[str, int]:
    import io

    import av

    with av.open(io.BytesIO(data)) as container:
        counts: dict[str, int] = {}
        for stream in container.streams:
            counts[stream.type] = counts.get(stream.type, 0) + 1
        return counts
