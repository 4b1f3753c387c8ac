"""Facts about a clip that decoders must honour: display rotation, a mid-GOP start.

Read with PyAV up to the first decodable frame, which carries the display matrix (PyAV reports it
as ``VideoFrame.rotation``, counter-clockwise degrees).
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from lm_eval_patches.media.errors import MediaError

__all__ = ["ClipFacts", "clip_facts", "frame_rotation", "turn"]


@dataclass(frozen=True)
class ClipFacts:
    """What a decoder needs to know before trusting its own frame numbering."""

    rotation: int  # counter-clockwise display rotation in degrees: 0, 90, 180 or 270
    starts_on_keyframe: bool  # False for a clip cut mid-GOP
    coded_size: tuple[int, int]  # (width, height) as stored, before rotation


def clip_facts(data: bytes) -> ClipFacts:
    """Display rotation, keyframe start and coded size, read by PyAV up to the first frame.

    Raises:
        MediaError: The bytes cannot be opened or hold no decodable video frame.
    """
    from lm_eval_patches.media.video import _open  # video.py imports this module

    container, stream = _open(data)
    with container:
        first_packet_key = None
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if first_packet_key is None:
                    first_packet_key = bool(packet.is_keyframe)
                for frame in packet.decode():
                    return ClipFacts(
                        frame_rotation(frame), first_packet_key, (frame.width, frame.height)
                    )
        except Exception as exc:  # noqa: BLE001 - any FFmpeg error is this clip's error
            raise MediaError("video", f"cannot decode the first frame: {exc}") from exc
    raise MediaError("video", "no frame of the clip could be decoded")


def frame_rotation(frame) -> int:
    """Counter-clockwise display rotation (0/90/180/270) of an ``av.VideoFrame``."""
    return int(round(getattr(frame, "rotation", 0) or 0)) % 360 // 90 * 90


def turn(img: Image.Image, rotation: int) -> Image.Image:
    """``img`` turned counter-clockwise by ``rotation`` degrees (0, 90, 180 or 270)."""
    steps = {
        90: Image.Transpose.ROTATE_90,
        180: Image.Transpose.ROTATE_180,
        270: Image.Transpose.ROTATE_270,
    }
    return img.transpose(steps[rotation]) if rotation in steps else img
