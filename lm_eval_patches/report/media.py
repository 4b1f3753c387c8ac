"""Small, embeddable forms of a sample's media for the report (data URLs, nothing external).

Images become JPEG thumbnails, videos a few JPEG frames, audio a mono MP3 of its first seconds
(PyAV's bundled libmp3lame), so a page with thousands of samples stays a few megabytes.
"""

from __future__ import annotations

import base64
import io

from lm_eval_patches.media.ref import MediaRef

THUMB_SIDE = 192  # pixels, longest side
VIDEO_FRAMES = 4
AUDIO_SECONDS = 20.0
AUDIO_RATE = 16000


def _jpeg_url(image, max_side: int) -> str:
    image = image.convert("RGB")
    image.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_thumbnail(ref: MediaRef, max_side: int = THUMB_SIDE) -> str:
    """A JPEG data URL of the image, downscaled to ``max_side`` (MediaError if undecodable)."""
    return _jpeg_url(ref.as_pil(), max_side)


def video_frames(ref: MediaRef, count: int = VIDEO_FRAMES, max_side: int = THUMB_SIDE) -> list[str]:
    """JPEG data URLs of ``count`` frames sampled uniformly over the clip."""
    return [_jpeg_url(frame, max_side) for frame in ref.as_frames(num_frames=count)]


def audio_clip(ref: MediaRef, seconds: float = AUDIO_SECONDS) -> str:
    """An ``audio/mpeg`` data URL: the first ``seconds`` of the clip, mono, 16 kHz, 32 kbit/s."""
    import av
    import numpy as np

    samples, rate = ref.as_audio(target_rate=AUDIO_RATE, mono=True)
    samples = np.clip(np.asarray(samples, dtype=np.float32)[: int(seconds * rate)], -1.0, 1.0)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate)
        stream.bit_rate = 32000
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return "data:audio/mpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
