"""Real media written with real encoders, for the audio and video tests and the benchmark.

Audio goes through libsndfile (WAV/FLAC/OGG) and FFmpeg via PyAV (MP3, AAC-in-M4A); video
through PyAV (H.264 in MP4/MOV/MKV, VP8 in WebM, MPEG-4 Part 2 in AVI).  Video frames carry
their own frame number as a 16-bit pattern of large black/white cells, which survives lossy
compression, so a test can read back which frame a decoder returned.
"""

from __future__ import annotations

import io
from fractions import Fraction

import numpy as np
from PIL import Image

# -- audio ------------------------------------------------------------------------------


def tone(
    freq_hz: float, rate: int, seconds: float, channels: int = 1, amplitude: float = 0.5
) -> np.ndarray:
    """A sine tone, shape (channels, samples), identical in every channel."""
    t = np.arange(int(round(rate * seconds))) / rate
    wave = (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
    return np.tile(wave, (channels, 1))


def noise(
    rate: int, seconds: float, channels: int = 1, amplitude: float = 0.3, seed: int = 0
) -> np.ndarray:
    """Uniform white noise in [-amplitude, amplitude], shape (channels, samples)."""
    rng = np.random.default_rng(seed)
    n = int(round(rate * seconds))
    return rng.uniform(-amplitude, amplitude, size=(channels, n)).astype(np.float32)


def speechlike(rate: int, seconds: float, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Amplitude-modulated harmonic bursts (~4 syllables/s, gliding 100-220 Hz pitch)."""
    rng = np.random.default_rng(seed)
    n = int(round(rate * seconds))
    t = np.arange(n) / rate
    f0 = 160 + 60 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, np.pi))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 9))  # falling harmonic series
    envelope = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, np.pi)), 0, None) ** 2
    out = (0.4 * envelope * voiced / 2.7).astype(np.float32)
    return np.tile(out, (channels, 1))


def write_audio(
    samples: np.ndarray, rate: int, fmt: str = "wav", subtype: str | None = None
) -> bytes:
    """Encode (channels, samples) or (samples,) float audio as wav/flac/ogg/mp3/m4a bytes."""
    arr = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    fmt = fmt.lower()
    if fmt in ("mp3", "m4a"):
        return _write_audio_pyav(arr, rate, fmt)
    import soundfile as sf

    sf_format = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG"}[fmt]
    if subtype is None:
        subtype = {"wav": "PCM_16", "flac": "PCM_16", "ogg": "VORBIS"}[fmt]
    buf = io.BytesIO()
    sf.write(buf, arr.T, rate, format=sf_format, subtype=subtype)
    return buf.getvalue()


def _write_audio_pyav(arr: np.ndarray, rate: int, fmt: str) -> bytes:
    import av

    codec, container_fmt = {"mp3": ("libmp3lame", "mp3"), "m4a": ("aac", "ipod")}[fmt]
    layout = {1: "mono", 2: "stereo"}[arr.shape[0]]
    buf = io.BytesIO()
    with av.open(buf, "w", format=container_fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        stream.bit_rate = 192_000
        frame_size = stream.codec_context.frame_size or 1024
        for start in range(0, arr.shape[1], frame_size):
            chunk = np.ascontiguousarray(arr[:, start : start + frame_size])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


def make_tone_wav(
    freq_hz: float, rate: int, seconds: float, channels: int = 1, subtype: str = "PCM_16"
) -> bytes:
    """A WAV file holding a 0.5-amplitude sine tone."""
    return write_audio(tone(freq_hz, rate, seconds, channels), rate, "wav", subtype)


def make_noise_wav(
    rate: int, seconds: float, channels: int = 1, subtype: str = "PCM_16", seed: int = 0
) -> bytes:
    """A WAV file holding white noise."""
    return write_audio(noise(rate, seconds, channels, seed=seed), rate, "wav", subtype)


def make_speechlike_wav(
    rate: int, seconds: float, channels: int = 1, subtype: str = "PCM_16", seed: int = 0
) -> bytes:
    """A WAV file holding speech-like harmonic bursts."""
    return write_audio(speechlike(rate, seconds, channels, seed=seed), rate, "wav", subtype)


def make_flac(samples: np.ndarray, rate: int) -> bytes:
    """FLAC (16-bit) bytes."""
    return write_audio(samples, rate, "flac")


def make_ogg(samples: np.ndarray, rate: int) -> bytes:
    """Ogg Vorbis bytes."""
    return write_audio(samples, rate, "ogg")


def make_mp3(samples: np.ndarray, rate: int) -> bytes:
    """MP3 bytes (libmp3lame through PyAV)."""
    return write_audio(samples, rate, "mp3")


def make_m4a(samples: np.ndarray, rate: int) -> bytes:
    """AAC in an MP4 audio container: a format libsndfile cannot read (forces FFmpeg)."""
    return write_audio(samples, rate, "m4a")


def make_audio_only_mp4(seconds: float = 1.0, rate: int = 16000) -> bytes:
    """An MP4 with a single AAC stream and no video stream."""
    return make_m4a(tone(440.0, rate, seconds), rate)


def truncate(data: bytes, fraction: float = 0.5) -> bytes:
    """The first ``fraction`` of the bytes, as a download cut short would leave them."""
    return data[: max(1, int(len(data) * fraction))]


def garbage(n: int = 4096, seed: int = 0) -> bytes:
    """Random bytes with no recognisable signature."""
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


# -- video ------------------------------------------------------------------------------

BITS = 16  # the frame number as 2 rows x 8 cells, most significant bit first
_CONTAINERS = {  # container -> (FFmpeg muxer, encoder)
    "mp4": ("mp4", "libx264"),
    "mov": ("mov", "libx264"),
    "mkv": ("matroska", "libx264"),
    "webm": ("webm", "libvpx"),
    "avi": ("avi", "mpeg4"),
}


def _cells(width: int, height: int) -> tuple[int, int]:
    cw = width // 8
    return cw, min(cw, height // 5)


def draw_counter_frame(
    index: int, width: int, height: int, texture: np.ndarray | None = None
) -> np.ndarray:
    """RGB frame showing ``index`` as binary cells on top and a moving square below."""
    frame = np.full((height, width, 3), 96, np.uint8)
    if texture is not None:  # scrolling texture plus film grain: realistic bitrate and cost
        shift = (index * 4) % texture.shape[1]
        grain = np.random.default_rng(index).integers(0, 24, (height, width, 1), dtype=np.uint8)
        frame[:] = np.roll(texture, shift, axis=1)[:height, :width] + grain
    cw, ch = _cells(width, height)
    for bit in range(BITS):
        row, col = divmod(bit, 8)
        on = (index >> (BITS - 1 - bit)) & 1
        frame[row * ch : (row + 1) * ch, col * cw : (col + 1) * cw] = 255 if on else 0
    side = max(8, height // 6)
    top = 2 * ch + (height - 2 * ch - side) // 2
    left = (index * max(1, width // 60)) % max(1, width - side)
    frame[top : top + side, left : left + side] = (220, 40, 40)
    return frame


def read_frame_number(img: Image.Image | np.ndarray) -> int:
    """Decode the number drawn by :func:`draw_counter_frame` from a decoded frame."""
    gray = np.asarray(img.convert("L") if isinstance(img, Image.Image) else img, np.float32)
    if gray.ndim == 3:
        gray = gray.mean(axis=2)
    height, width = gray.shape
    cw, ch = _cells(width, height)
    value = 0
    for bit in range(BITS):
        row, col = divmod(bit, 8)
        # The central half of each cell is clear of compression ringing at its edges.
        y0, x0 = row * ch + ch // 4, col * cw + cw // 4
        cell = gray[y0 : y0 + ch // 2, x0 : x0 + cw // 2]
        value = (value << 1) | int(cell.mean() > 128)
    return value


def make_counter_video(
    seconds: float,
    fps: float,
    width: int,
    height: int,
    container: str = "mp4",
    keyframe_interval: int | None = None,
    *,
    texture: bool = False,
    x264_preset: str | None = None,
    frame_pts: list[int] | None = None,
    progress: bool = False,
) -> bytes:
    """Encode a clip whose frame ``i`` shows the number ``i``.

    Args:
        seconds, fps, width, height: Clip geometry (width and height should be even).
        container: ``mp4``, ``mov``, ``mkv`` (H.264), ``webm`` (VP8) or ``avi`` (MPEG-4).
        keyframe_interval: Fixed GOP length in frames (no scene-cut keyframes); None keeps
            the encoder default (250 for libx264).
        texture: Fill the background with scrolling noise (for realistic benchmark clips).
        x264_preset: Optional libx264 preset (e.g. ``"veryfast"`` to encode quicker).
        frame_pts: Explicit timestamps in ``1/fps`` units, one per frame (variable frame
            rate when they skip values); overrides ``seconds``.
        progress: Print encoding progress every 10 %.
    """
    import av

    muxer, codec = _CONTAINERS[container]
    rate = Fraction(fps).limit_denominator(1001)
    n_frames = len(frame_pts) if frame_pts is not None else int(round(seconds * fps))
    options: dict[str, str] = {}
    if codec == "libx264":
        if keyframe_interval:
            k = keyframe_interval
            options["x264-params"] = f"keyint={k}:min-keyint={k}:scenecut=0"
        if x264_preset:
            options["preset"] = x264_preset
    rng = np.random.default_rng(1)
    tex = None
    if texture:
        small = rng.integers(40, 200, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
        tex = np.repeat(np.repeat(small, 8, axis=0), 8, axis=1)
    buf = io.BytesIO()
    with av.open(buf, "w", format=muxer) as out:
        stream = out.add_stream(codec, rate=rate, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec != "libx264":
            stream.bit_rate = int(width * height * float(rate) * 0.3)
            if keyframe_interval:
                stream.codec_context.gop_size = keyframe_interval
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(
                draw_counter_frame(i, width, height, tex), format="rgb24"
            )
            frame.pts = frame_pts[i] if frame_pts is not None else i
            out.mux(stream.encode(frame))
            if progress and n_frames >= 10 and (i + 1) % (n_frames // 10) == 0:
                print(f"  encoded {i + 1}/{n_frames} frames", flush=True)
        out.mux(stream.encode(None))
    return buf.getvalue()


def expected_frame_index(t: float, fps: float, n_frames: int) -> int:
    """Index of the frame on screen at time ``t`` (frame i covers [i/fps, (i+1)/fps))."""
    return min(n_frames - 1, int(np.floor(t * fps + 1e-6)))


def reference_indices(data: bytes, times: list[float]) -> list[int]:
    """Ground truth by full decode: the number on the last frame with time <= t."""
    import bisect

    import av

    with av.open(io.BytesIO(data)) as src:
        stream = src.streams.video[0]
        start = float((stream.start_time or 0) * stream.time_base)
        pairs = [
            (float(f.pts * stream.time_base) - start, read_frame_number(f.to_image()))
            for f in src.decode(stream)
        ]
    starts = [p[0] for p in pairs]
    return [pairs[max(0, bisect.bisect_right(starts, t + 1e-9) - 1)][1] for t in times]
