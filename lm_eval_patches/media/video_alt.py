"""The optional video decoders (decord, torchcodec), held to the frames PyAV returns.

Each one returns the frames a player shows (display rotation applied) at
:func:`~lm_eval_patches.media.video.sample_frame_times`. Where a decoder is known not to manage a
clip, it declines it with a :class:`MediaError` saying why, and ``sample_frames(decoder="auto")``
logs that reason and uses the next decoder:

- decord numbers frames from the packets, so on a clip cut mid-GOP (its first packets cannot be
  decoded) its frame numbers drift and depend on the access order: such clips are declined.
  Its bundled FFmpeg applies the display rotation of MP4/QuickTime files only; we turn frames
  of other containers ourselves, and decline a result whose shape contradicts the rotation.
- torchcodec could not be loaded on the machines this was built on (CPU torch), so its handling
  of rotated and mid-GOP clips is unverified: it declines those clips rather than risk frames
  that differ from the other decoders'.
"""

from __future__ import annotations

import io

from PIL import Image

from lm_eval_patches.media.clip_facts import ClipFacts, clip_facts, turn
from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.media.video import sample_frame_times
from lm_eval_patches.media.video import sniff_video_mime as _sniff

# Containers whose display rotation decord's bundled FFmpeg applies itself (mov demuxer).
DECORD_ROTATES = ("video/mp4", "video/quicktime")


def _decord_upright(frames: list[Image.Image], facts: ClipFacts, rotated_by_decord: bool):
    """Turn decord's frames as a player would, checking their shape against the rotation."""
    coded = facts.coded_size
    shown = coded[::-1] if facts.rotation in (90, 270) else coded
    expected = shown if rotated_by_decord else coded
    if frames and frames[0].size != expected:
        raise MediaError(
            "video",
            f"decord returned {frames[0].size[0]}x{frames[0].size[1]} frames for a "
            f"{coded[0]}x{coded[1]} clip rotated {facts.rotation} degrees",
        )
    if rotated_by_decord:
        return frames
    return [turn(f, facts.rotation) for f in frames]


def frames_decord(data: bytes, num_frames: int | None, fps: float | None) -> list[Image.Image]:
    """Frames by decord's ``get_batch`` at the sampled times (see the module docstring)."""
    import numpy as np
    from decord import VideoReader, cpu

    facts = clip_facts(data)
    if not facts.starts_on_keyframe:
        raise MediaError(
            "video", "decord declines a clip that starts mid-GOP (its frame numbers drift there)"
        )
    reader = VideoReader(io.BytesIO(data), ctx=cpu(0), num_threads=0)
    n = len(reader)
    if n == 0:
        raise MediaError("video", "decord found no frames")
    stamps = reader.get_frame_timestamp(range(n))  # (n, 2): start and end seconds
    starts = stamps[:, 0] - stamps[0, 0]
    times = sample_frame_times(float(stamps[-1, 1] - stamps[0, 0]), num_frames, fps)
    idx = np.searchsorted(starts, np.asarray(times) + 1e-6, side="right") - 1
    idx = np.clip(idx, 0, n - 1)
    uniq, inverse = np.unique(idx, return_inverse=True)
    batch = reader.get_batch(uniq.tolist()).asnumpy()
    frames = [Image.fromarray(batch[i]) for i in inverse]
    return _decord_upright(frames, facts, _sniff(data) in DECORD_ROTATES)


def frames_torchcodec(data: bytes, num_frames: int | None, fps: float | None) -> list[Image.Image]:
    """Frames by torchcodec's exact-seek decoder (declines rotated and mid-GOP clips)."""
    from torchcodec.decoders import VideoDecoder

    facts = clip_facts(data)
    if facts.rotation or not facts.starts_on_keyframe:
        raise MediaError(
            "video",
            "torchcodec declines rotated and mid-GOP clips (its handling of them is unverified)",
        )
    decoder = VideoDecoder(data, seek_mode="exact")
    meta = decoder.metadata
    begin = meta.begin_stream_seconds or 0.0
    end = meta.end_stream_seconds
    duration = (end - begin) if end is not None else (meta.duration_seconds or 0.0)
    times = sample_frame_times(float(duration), num_frames, fps)
    last = begin + max(0.0, duration - 1e-6)  # "played at" must stay inside the stream
    batch = decoder.get_frames_played_at(seconds=[min(begin + t, last) for t in times])
    arrays = batch.data.permute(0, 2, 3, 1).cpu().numpy()  # NCHW -> NHWC uint8
    return [Image.fromarray(a) for a in arrays]
