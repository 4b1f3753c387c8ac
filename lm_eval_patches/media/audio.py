"""Audio bytes in, float32 samples out.

Decoding goes through libsndfile (``soundfile``) for the formats it reads natively
(WAV, FLAC, OGG and, in recent builds, MP3) and falls back to FFmpeg (PyAV) for anything
else.  Resampling uses a band-limited resampler: ``soxr`` when installed, otherwise SciPy's
polyphase filter, otherwise a small NumPy windowed-sinc polyphase implementation.  Heavy
libraries are imported lazily so importing this module stays cheap.
"""

from __future__ import annotations

import io
import math
import struct

import numpy as np

from lm_eval_patches.media.errors import MediaError

__all__ = ["audio_duration", "decode_audio", "encode_wav", "sniff_audio_mime"]

# Allowed shortfall between the frames a header declares and the frames actually present
# before the file counts as truncated (MP3 encoder padding makes exact counts unreliable).
_TRUNCATION_TOLERANCE = 0.01


def sniff_audio_mime(data: bytes) -> str | None:
    """Return ``audio/wav``, ``audio/flac``, ``audio/ogg`` or ``audio/mpeg`` from magic bytes."""
    head = bytes(data[:16])
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"ID3") or _is_mpeg_audio_frame(head):
        return "audio/mpeg"
    return None


def _is_mpeg_audio_frame(head: bytes) -> bool:
    """True when ``head`` starts with a plausible MPEG-1/2/2.5 audio frame header."""
    if len(head) < 4 or head[0] != 0xFF or (head[1] & 0xE0) != 0xE0:
        return False
    version = (head[1] >> 3) & 0b11
    layer = (head[1] >> 1) & 0b11
    bitrate = head[2] >> 4
    rate = (head[2] >> 2) & 0b11
    # Layer bits 00 is ADTS AAC, not MPEG audio; the other values are reserved/invalid.
    return version != 0b01 and layer != 0b00 and bitrate != 0b1111 and rate != 0b11


def decode_audio(
    data: bytes, *, target_rate: int | None = None, mono: bool = True
) -> tuple[np.ndarray, int]:
    """Decode audio bytes into float32 samples on the [-1, 1] full scale.

    Integer formats land in [-1, 1); float sources are passed through unclipped (a float WAV
    may hold slight overs) and so is the small overshoot a band-limited resampler can add
    near full scale, so nothing is silently distorted.

    Args:
        data: The encoded file (WAV, FLAC, OGG, MP3 or anything FFmpeg reads).
        target_rate: Resample to this rate (band-limited) when it differs from the source.
        mono: Average the channels into shape ``(samples,)``; otherwise ``(channels, samples)``.

    Returns:
        ``(samples, rate)`` where ``rate`` is ``target_rate`` when given.

    Raises:
        MediaError: Empty, truncated or undecodable input, or a stream with no samples.
    """
    if not data:
        raise MediaError("audio", "the input is empty (0 bytes)")
    if target_rate is not None and target_rate <= 0:
        raise ValueError(f"target_rate must be positive, got {target_rate}")
    errors: list[str] = []
    decoded = None
    try:
        decoded = _decode_soundfile(data)
    except MediaError:
        raise  # a definite verdict (e.g. truncation), not a format libsndfile lacks
    except Exception as exc:  # noqa: BLE001 - any libsndfile failure means "try FFmpeg"
        errors.append(f"soundfile: {exc}")
    if decoded is None:
        try:
            decoded = _decode_pyav(data)
        except Exception as exc:  # noqa: BLE001 - report both decoders' reasons together
            errors.append(f"pyav: {exc.detail if isinstance(exc, MediaError) else exc}")
            raise MediaError("audio", "; ".join(errors)) from exc
    samples, rate = decoded  # (channels, frames) float32
    if samples.shape[1] == 0:
        raise MediaError("audio", "the stream contains no samples (zero-length audio)")
    if not np.all(np.isfinite(samples)):
        raise MediaError("audio", "the decoded samples contain NaN or infinity")
    if mono:
        samples = samples.mean(axis=0, dtype=np.float32)
    if target_rate is not None and target_rate != rate:
        samples = _resample(samples, rate, target_rate)
        rate = target_rate
    return np.ascontiguousarray(samples, dtype=np.float32), int(rate)


def _decode_soundfile(data: bytes) -> tuple[np.ndarray, int]:
    import soundfile as sf

    with sf.SoundFile(io.BytesIO(data)) as f:
        declared = f.frames
        samples = f.read(dtype="float32", always_2d=True)
        rate = f.samplerate
    declared = _wav_declared_frames(data) or declared  # libsndfile trims WAV sizes silently
    _check_complete(samples.shape[0], declared)
    return samples.T, rate


def _wav_declared_frames(data: bytes) -> int | None:
    """Frames the RIFF ``data`` chunk claims, or None when not a plain little-endian WAV."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, block_align = 12, 0
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if cid == b"fmt " and pos + 22 <= len(data):
            block_align = struct.unpack("<H", data[pos + 20 : pos + 22])[0]
        elif cid == b"data":
            # 0 and 0xFFFFFFFF are placeholders written by streaming encoders.
            if block_align == 0 or size in (0, 0xFFFFFFFF):
                return None
            return size // block_align
        pos += 8 + size + (size & 1)
    return None


def _check_complete(got: int, declared: int | None) -> None:
    if declared and declared > 0 and got < declared * (1 - _TRUNCATION_TOLERANCE):
        raise MediaError(
            "audio",
            f"the file is truncated: the header declares {declared} frames "
            f"but only {got} could be decoded",
        )


def _decode_pyav(data: bytes) -> tuple[np.ndarray, int]:
    import av

    try:
        container = av.open(io.BytesIO(data), mode="r")
    except Exception as exc:
        raise MediaError("audio", f"FFmpeg cannot open the data: {exc}") from exc
    with container:
        if not container.streams.audio:
            raise MediaError("audio", "the container has no audio stream")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        # Planar float keeps channels separate without changing the rate (we resample later).
        resampler = av.AudioResampler(format="fltp", rate=rate)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                chunks.extend(f.to_ndarray() for f in resampler.resample(frame))
            chunks.extend(f.to_ndarray() for f in resampler.resample(None))
        except av.error.FFmpegError as exc:
            if not chunks:
                raise MediaError("audio", f"FFmpeg cannot decode the stream: {exc}") from exc
            raise MediaError("audio", f"the stream is damaged or truncated: {exc}") from exc
    if not chunks:
        raise MediaError("audio", "the stream contains no samples (zero-length audio)")
    return np.concatenate(chunks, axis=1).astype(np.float32, copy=False), int(rate)


def audio_duration(data: bytes) -> float:
    """Duration in seconds, read from the header where the format allows.

    Raises:
        MediaError: The bytes are not readable audio.
    """
    if not data:
        raise MediaError("audio", "the input is empty (0 bytes)")
    try:
        import soundfile as sf

        info = sf.info(io.BytesIO(data))
        if info.samplerate > 0:
            return info.frames / info.samplerate
    except Exception:  # noqa: BLE001, S110 - not a libsndfile format; ask FFmpeg below
        pass
    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise MediaError("audio", "the container has no audio stream")
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            if container.duration is not None:
                return container.duration / av.time_base
    except MediaError:
        raise
    except Exception as exc:
        raise MediaError("audio", f"cannot read the duration: {exc}") from exc
    # No header duration (e.g. raw ADTS): decoding is the only honest answer.
    samples, rate = decode_audio(data)
    return samples.shape[-1] / rate


def encode_wav(samples: np.ndarray, rate: int, subtype: str = "FLOAT") -> bytes:
    """Encode samples into WAV bytes.

    Args:
        samples: Shape ``(samples,)`` or ``(channels, samples)`` as :func:`decode_audio` returns.
        rate: Sample rate in Hz.
        subtype: libsndfile subtype; ``"FLOAT"`` (default, never clips) or e.g. ``"PCM_24"``,
            ``"PCM_16"``.  Integer subtypes clip to [-1, 1] instead of wrapping around.
    """
    import soundfile as sf

    arr = np.asarray(samples, dtype=np.float32)
    if arr.ndim not in (1, 2):
        raise ValueError(f"samples must be 1-D or (channels, samples), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise MediaError("audio", "the samples contain NaN or infinity", action="encode")
    frames = arr if arr.ndim == 1 else arr.T  # soundfile wants (frames, channels)
    if not subtype.upper().startswith(("FLOAT", "DOUBLE")):
        frames = np.clip(frames, -1.0, 1.0)
    buf = io.BytesIO()
    sf.write(buf, frames, int(rate), format="WAV", subtype=subtype.upper())
    return buf.getvalue()


# -- resampling --------------------------------------------------------------------------


def _resample(x: np.ndarray, src: int, dst: int, backend: str | None = None) -> np.ndarray:
    """Band-limited resampling along the last axis; ``backend`` forces soxr/scipy/numpy."""
    if src == dst:
        return x.astype(np.float32, copy=False)
    for name in (backend,) if backend else ("soxr", "scipy", "numpy"):
        try:
            y = _RESAMPLERS[name](x, src, dst)
        except ImportError:
            if backend:
                raise
            continue
        return np.ascontiguousarray(y, dtype=np.float32)
    raise AssertionError("the numpy resampler needs no imports")  # pragma: no cover


def _ratio(src: int, dst: int) -> tuple[int, int]:
    g = math.gcd(src, dst)
    return dst // g, src // g


def _prototype(up: int, down: int) -> np.ndarray:
    """Kaiser-windowed sinc low-pass for the upsampled rate, unit DC gain per phase / up."""
    half = 16 * max(up, down)  # half-length in upsampled samples
    cutoff = 0.95 / max(up, down)  # a small guard band below the lower Nyquist limits aliasing
    t = np.arange(-half, half + 1)
    return cutoff * np.sinc(cutoff * t) * np.kaiser(2 * half + 1, 8.6)


def _resample_soxr(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    import soxr

    # soxr works on (frames, channels); "HQ" is transparent for speech and music.
    return soxr.resample(x.T, src, dst, quality="HQ").T


def _resample_scipy(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    from scipy.signal import resample_poly

    up, down = _ratio(src, dst)
    # resample_poly scales custom coefficients by ``up`` itself.
    return resample_poly(x, up, down, axis=-1, window=_prototype(up, down))


def _resample_numpy(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Kaiser-windowed sinc polyphase resampler (fallback when soxr and SciPy are absent)."""
    up, down = _ratio(src, dst)
    h = _prototype(up, down) * up
    half = h.size // 2
    x2 = np.atleast_2d(x).astype(np.float64)
    n_in = x2.shape[-1]
    n_out = -(-n_in * up // down)  # ceil
    taps = -(-(2 * half + 1) // up) + 1
    out = np.empty((x2.shape[0], n_out))
    step = max(1, 2**20 // taps)  # bound the gathered block to ~8 MB per channel
    for start in range(0, n_out, step):
        # Output m sits at upsampled position m*down; its inputs are x[k] with k*up near it.
        pos = np.arange(start, min(n_out, start + step)) * down
        k = ((pos - half) // up)[:, None] + np.arange(taps)[None, :]
        offs = pos[:, None] - k * up + half  # index into h
        valid = (k >= 0) & (k < n_in) & (offs >= 0) & (offs < h.size)
        weights = np.where(valid, h[np.clip(offs, 0, h.size - 1)], 0.0)
        gathered = x2[:, np.clip(k, 0, n_in - 1)]  # (channels, block, taps)
        out[:, start : start + pos.size] = np.einsum("cot,ot->co", gathered, weights)
    return out[0] if x.ndim == 1 else out


_RESAMPLERS = {"soxr": _resample_soxr, "scipy": _resample_scipy, "numpy": _resample_numpy}
