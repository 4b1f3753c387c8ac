"""Real media written with real encoders, for the audio and video tests and the benchmark.

Audio goes through libsndfile (WAV/FLAC/OGG) and FFmpeg via PyAV (MP3, AAC-in-M4A); video
through PyAV (H.264 in MP4/MOV/MKV, VP8 in WebM, MPEG-4 Part 2 in AVI).  Video frames carry
their own frame number as a 16-bit pattern of large black/white cells, which survives lossy
compression, so a test can read back which frame a decoder returned.
"""

from __future__ import annotations

import io

import numpy as np

from lm_eval_patches.fixtures.counter_clips import (  # noqa: F401 - re-exported for tests
    draw_counter_frame,
    make_counter_video,
    read_frame_number,
)

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
