"""Video bytes in, a few PIL frames out, without decoding the whole clip.

Frames are taken at uniform timestamps (the centres of equal segments) or every ``1/fps``
seconds.  The default PyAV path seeks to the keyframe before each target, decodes forward
with threaded decoding and skips non-reference frames while still far from the target, so
the cost grows with the number of frames asked for rather than with the clip length.
decord and torchcodec are used when installed; ``decoder="auto"`` falls back from one to
the next when a decoder fails on a file (or declines it: see ``media/video_alt.py``).  Heavy
libraries are imported lazily.

Every decoder returns the frames a player shows: turned by the container's display rotation
(90/180/270, as phones record), and for a clip cut mid-GOP (its first packets reference frames
that are not in the file) the first decodable frame stands in for every earlier time.  Frame
numbers agree across decoders within one frame (tests/test_video_parity.py), which is what
lets the frame cache ignore which decoder filled it.
"""

from __future__ import annotations

import bisect
import io
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from PIL import Image

from lm_eval_patches.media.clip_facts import ClipFacts, clip_facts, frame_rotation, turn
from lm_eval_patches.media.errors import MediaError

__all__ = [
    "AUTO_ORDER",
    "DEFAULT_NUM_FRAMES",
    "ClipFacts",
    "VideoInfo",
    "clip_facts",
    "probe_video",
    "sample_frame_times",
    "sample_frames",
    "sniff_video_mime",
]

logger = logging.getLogger(__name__)

DEFAULT_NUM_FRAMES = 8  # used when neither num_frames nor fps is given
# Fastest first: the seeking PyAV path beat decord's get_batch in bench/bench_video.py (and
# is frame-exact, tested); torchcodec is exact too but could not be measured here.
AUTO_ORDER: tuple[str, ...] = ("pyav", "torchcodec", "decord")
_NO_INDEX_SEEK_GAP_S = 1.0  # without a keyframe index, seek only for gaps longer than this


@dataclass(frozen=True)
class VideoInfo:
    """Basic facts about the first video stream of a file."""

    duration_s: float
    fps: float
    frame_count: int  # from the container when stored, else estimated as duration * fps
    width: int  # as displayed: coded width and height swapped for a 90/270 rotation
    height: int
    codec: str
    rotation: int = 0  # counter-clockwise degrees a player turns the coded frames (0/90/180/270)


def sniff_video_mime(data: bytes) -> str | None:
    """MIME type of MP4, QuickTime, WebM, Matroska or AVI bytes, from their signature."""
    head = bytes(data[:64])
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        return None if brand in (b"M4A ", b"M4B ", b"M4P ") else "video/mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"pnot"):  # pre-ftyp QuickTime
        return "video/quicktime"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: the DocType element (42 82) tells
        pos = head.find(b"\x42\x82")  # "webm" from "matroska"; its 1-byte size is 0x84
        return "video/webm" if head[pos + 2 : pos + 7] == b"\x84webm" else "video/x-matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    return None


def _open(data: bytes):
    import av

    if not data:
        raise MediaError("video", "the input is empty (0 bytes)")
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except Exception as exc:
        raise MediaError("video", f"FFmpeg cannot open the data: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise MediaError("video", "the file has no video stream")
    return container, container.streams.video[0]


def _info(container, stream) -> VideoInfo:
    import av

    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    duration = 0.0
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / av.time_base
        if "matroska" in container.format.name and container.start_time:
            # Matroska's Duration counts from timestamp 0, not from the first frame.
            duration -= container.start_time / av.time_base
    elif stream.frames and fps:
        duration = stream.frames / fps
    elif len(stream.index_entries) > 1 and fps:  # no header duration: span of the index
        entries = stream.index_entries
        duration = float((entries[-1].timestamp - entries[0].timestamp) * stream.time_base)
        duration += 1 / fps
    count = stream.frames or (int(round(duration * fps)) if fps else 0)
    ctx = stream.codec_context
    return VideoInfo(duration, fps, count, ctx.width, ctx.height, ctx.name)


def probe_video(data: bytes) -> VideoInfo:
    """Read duration, frame rate, displayed size, rotation and codec of the first video stream
    (headers, plus the first decodable frame, which carries the display rotation).

    Raises:
        MediaError: The bytes cannot be opened or hold no video stream.
    """
    container, stream = _open(data)
    with container:
        info = _info(container, stream)
    facts = clip_facts(data)
    if facts.rotation in (90, 270):
        return replace(info, width=info.height, height=info.width, rotation=facts.rotation)
    return replace(info, rotation=facts.rotation)


def sample_frame_times(
    duration_s: float, num_frames: int | None = None, fps: float | None = None
) -> list[float]:
    """Timestamps to sample: centres of ``num_frames`` equal segments, or every ``1/fps`` s.

    Exactly one of ``num_frames`` and ``fps`` must be given.  With ``fps`` the first
    timestamp is 0 and at least one timestamp is returned.
    """
    if (num_frames is None) == (fps is None):
        raise ValueError("give exactly one of num_frames and fps")
    if duration_s < 0 or not math.isfinite(duration_s):
        raise ValueError(f"duration must be a finite non-negative number, got {duration_s}")
    if num_frames is not None:
        if num_frames <= 0:
            raise ValueError(f"num_frames must be positive, got {num_frames}")
        step = duration_s / num_frames
        return [(k + 0.5) * step for k in range(num_frames)]
    assert fps is not None
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    count = max(1, math.ceil(duration_s * fps - 1e-9))
    return [k / fps for k in range(count)]


# -- decoders ----------------------------------------------------------------------------


class _PyAVSeeker:
    """Decode the frames shown at given timestamps of one open stream, seeking between them.

    Targets must be asked for in increasing order; consecutive targets with no keyframe
    between them are reached by decoding forward instead of seeking back.
    """

    def __init__(self, container, stream, fps: float) -> None:
        self.container, self.stream = container, stream
        self.tb = float(stream.time_base)
        self.start = stream.start_time or 0
        self.frame_pts = 1.0 / (fps * self.tb) if fps else 0.04 / self.tb  # pts per frame
        avg, base = stream.average_rate, stream.base_rate
        self.cfr = bool(avg and base and abs(float(avg / base) - 1) < 1e-3)
        self.margin = 2 * self.frame_pts  # frames closer than this to a target are decoded
        self.keyframes = sorted(e.timestamp for e in stream.index_entries if e.is_keyframe)
        self.skip_before: float | None = None  # packets shown before this pts may be dropped
        self.max_skipped: float | None = None  # latest pts of a packet sent with NONREF
        self.frames = None  # generator over decoded frames from the current position
        self.pending = None  # a frame read past the last target, to be used next
        self.last = None  # last frame consumed
        stream.thread_type = "AUTO"  # frame + slice threads; must be set before decoding

    def _decode_from(self, pts: float) -> None:
        import av

        at = max(int(math.floor(pts)), self.start)
        self.at_first = at <= self.start  # nothing decodable lies before where we land
        try:
            self.container.seek(at, stream=self.stream)
        except (av.error.FFmpegError, OSError):
            # No keyframe at or before ``at``: the clip was cut mid-GOP, so nothing before
            # its first keyframe can be decoded. Go forward to that keyframe instead (or, with
            # no index at all, to the very start and let the decoder find one).
            self.at_first = True
            try:
                self.container.seek(at, stream=self.stream, backward=False)
            except (av.error.FFmpegError, OSError):
                self.container.seek(self.start, stream=self.stream, any_frame=True)
        self.frames, self.pending, self.last = self._generate(), None, None

    def _generate(self):
        ctx = self.stream.codec_context
        for packet in self.container.demux(self.stream):
            # Non-reference frames well before the target can never be the answer and no
            # other frame depends on them, so the decoder may drop them unseen.
            skip = self.skip_before is not None and packet.pts is not None
            skip = skip and packet.pts < self.skip_before
            ctx.skip_frame = "NONREF" if skip else "DEFAULT"
            if skip:
                self.max_skipped = max(self.max_skipped or packet.pts, packet.pts)
            yield from packet.decode()

    def _pull(self):
        if self.pending is not None:
            frame, self.pending = self.pending, None
            return frame
        return next(self.frames, None)

    def _must_seek(self, target: float) -> bool:
        if self.frames is None or self.last is None or self.last.pts > target:
            return True
        if not self.keyframes:
            return (target - self.last.pts) * self.tb > _NO_INDEX_SEEK_GAP_S
        # Seek only when a keyframe lies between here and the target (else we'd go back).
        i = bisect.bisect_right(self.keyframes, self.last.pts)
        return i < len(self.keyframes) and self.keyframes[i] <= target

    def frame_at(self, t: float):
        """The ``av.VideoFrame`` on screen ``t`` seconds after the start of the stream."""
        target = self.start + t / self.tb
        limit = target + 1e-3  # a thousandth of a tick absorbs float error at boundaries
        self.skip_before, self.max_skipped = target - self.margin, None
        if self._must_seek(target):
            self._decode_from(target)
        found = self._find(target, limit)
        if found is not None and self.max_skipped is not None and self.max_skipped > found.pts:
            # A dropped frame may have been the answer (variable rate, or the clip ended
            # early): decode this stretch again without dropping anything.
            self.skip_before = None
            self._decode_from(target)
            found = self._find(target, limit)
        if found is None:
            raise MediaError("video", f"no frame could be decoded at or before {t:.3f} s")
        return found

    def _find(self, target: float, limit: float):
        """Scan forward; if the seek landed past the target, seek further back and retry."""
        at, back = target, 1.0 / self.tb
        found = self._scan(limit, first_ok=getattr(self, "at_first", at <= self.start))
        while found is None and at > self.start:
            at = target - back
            self._decode_from(at)
            found = self._scan(limit, first_ok=self.at_first)  # before the first frame
            back *= 2
        return found

    def _scan(self, limit: float, first_ok: bool = False):
        """Consume frames up to the last one with pts <= limit (None if the first is past)."""
        prev = self.last
        while (frame := self._pull()) is not None:
            if frame.pts is None:
                continue
            if frame.pts > limit:
                self.pending = frame  # keep it for the next target
                if prev is None and not first_ok:
                    return None
                self.last = prev if prev is not None else frame
                return self.last
            prev = frame
            # On constant-rate streams the container's duration proves this frame is still
            # shown at ``limit``, which saves decoding the next one (with B-frames, variable
            # rate clips get durations from decode-order deltas, so there we need the proof).
            if self.cfr and frame.duration and frame.pts + frame.duration - 1 > limit:
                break
        self.last = prev  # at the end of the stream the last frame stays on screen
        return prev


def _frames_pyav(data: bytes, num_frames: int | None, fps: float | None) -> list[Image.Image]:
    from av.video.reformatter import VideoReformatter

    container, stream = _open(data)
    with container:
        info = _info(container, stream)
        times = sample_frame_times(info.duration_s, num_frames, fps)
        seeker = _PyAVSeeker(container, stream, info.fps)
        # One shared converter: a fresh frame would build its own swscale context (~4 ms).
        convert = VideoReformatter()
        images: dict[float, Image.Image] = {}
        for t in sorted(set(times)):
            frame = seeker.frame_at(t)
            rgb = convert.reformat(frame, format="rgb24")
            images[t] = turn(Image.fromarray(rgb.to_ndarray()), frame_rotation(frame))
    return [images[t] for t in times]


def _frames_decord(data: bytes, num_frames: int | None, fps: float | None) -> list[Image.Image]:
    from lm_eval_patches.media.video_alt import frames_decord

    return frames_decord(data, num_frames, fps)


def _frames_torchcodec(data: bytes, num_frames: int | None, fps: float | None) -> list[Image.Image]:
    from lm_eval_patches.media.video_alt import frames_torchcodec

    return frames_torchcodec(data, num_frames, fps)


_DECODERS: dict[str, Callable[[bytes, int | None, float | None], list[Image.Image]]] = {
    "pyav": _frames_pyav,
    "decord": _frames_decord,
    "torchcodec": _frames_torchcodec,
}


def sample_frames(
    data: bytes,
    num_frames: int | None = None,
    *,
    fps: float | None = None,
    decoder: str = "auto",
) -> list[Image.Image]:
    """RGB frames shown at :func:`sample_frame_times` of the clip, decoded by seeking.

    Args:
        data: The encoded clip.
        num_frames: Number of uniformly spaced frames (default 8 when ``fps`` is also None).
        fps: Sample every ``1/fps`` seconds instead.
        decoder: ``"pyav"``, ``"decord"``, ``"torchcodec"`` or ``"auto"`` (each installed
            decoder in :data:`AUTO_ORDER` until one succeeds, warning about each failure).

    Raises:
        MediaError: No decoder could read the clip; the detail lists every decoder's error.
    """
    if num_frames is None and fps is None:
        num_frames = DEFAULT_NUM_FRAMES
    sample_frame_times(1.0, num_frames, fps)  # validate arguments before touching the data
    if not data:
        raise MediaError("video", "the input is empty (0 bytes)")
    if decoder != "auto" and decoder not in _DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; choose from {sorted(_DECODERS)}")
    order = AUTO_ORDER if decoder == "auto" else (decoder,)
    errors: list[str] = []
    for i, name in enumerate(order):
        try:
            return _DECODERS[name](data, num_frames, fps)
        except ImportError as exc:
            errors.append(f"{name}: not installed ({exc})")
            continue  # an absent optional decoder is not worth a warning
        except Exception as exc:  # noqa: BLE001 - any decoder failure means "try the next"
            reason = exc.detail if isinstance(exc, MediaError) else f"{type(exc).__name__}: {exc}"
            errors.append(f"{name}: {reason}")
            if i + 1 < len(order):
                logger.warning("video decoder %s failed (%s); trying the next", name, reason)
    raise MediaError("video", "no decoder could read the clip: " + "; ".join(errors))
