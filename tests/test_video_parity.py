"""Decoder parity: every available decoder returns the frames a player shows, the same ones.

Over every fixture clip (fixtures/video_sets.py, drawn by fixtures/clips.py), clips with each
display rotation, and the two case files, each decoder either returns the same frame numbers
(within one frame) in the same orientation, or declines the clip with a reason, in which case
``decoder="auto"`` logs the reason and still returns the right frames. Frames carry their index
drawn in them; the tests read it back.
"""

from __future__ import annotations

import logging
from pathlib import Path

import media_samples as ms
import pytest
from PIL import Image

from lm_eval_patches.fixtures.clips import read_frame_index
from lm_eval_patches.media import video
from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.media.video import probe_video, sample_frame_times, sample_frames

CASES = Path(__file__).parent / "cases"
UNDO = {
    90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}


def _available() -> list[str]:
    names = []
    for name, module in (
        ("pyav", "av"),
        ("decord", "decord"),
        ("torchcodec", "torchcodec.decoders"),
    ):
        try:
            __import__(module)
        except Exception:  # noqa: BLE001 - torchcodec raises OSError/RuntimeError when unloadable
            continue
        names.append(name)
    return names


DECODERS = _available()


def _fixture_clips() -> dict[str, tuple[bytes, float]]:
    """Every distinct clip of the video fixture datasets, with its frame rate."""
    import hashlib

    from lm_eval_patches.fixtures.builder import FixtureOptions, build_records
    from lm_eval_patches.fixtures.video_sets import VIDEO_SPECS

    clips: dict[str, tuple[bytes, float]] = {}
    for spec in VIDEO_SPECS:
        for split, records in build_records(spec, None, FixtureOptions()).items():
            for record in records:
                data = record["inputs"]["video"]["bytes"]
                key = hashlib.sha256(data).hexdigest()[:10]
                name = f"{spec.name}/{split}/{record['inputs']['video']['path']}#{key}"
                clips.setdefault(key, (name, data))
    return {name: data for name, data in clips.values()}


@pytest.fixture(scope="module")
def fixture_clips() -> dict[str, bytes]:
    return _fixture_clips()


def _each_decoder(data: bytes, num_frames: int) -> dict[str, list[Image.Image] | str]:
    """Frames from every available decoder, or the reason it declined."""
    out: dict[str, list[Image.Image] | str] = {}
    for name in DECODERS:
        try:
            out[name] = sample_frames(data, num_frames, decoder=name)
        except MediaError as err:
            out[name] = err.detail
    return out


def test_every_fixture_clip_gives_the_same_frames_from_every_decoder(fixture_clips) -> None:
    assert len(fixture_clips) >= 10 and {"pyav", "decord"} <= set(DECODERS)
    containers = set()
    for name, data in fixture_clips.items():
        info = probe_video(data)
        containers.add(video.sniff_video_mime(data))
        times = sample_frame_times(info.duration_s, 8)
        expected = [min(int(t * info.fps + 1e-6), info.frame_count - 1) for t in times]
        for decoder, frames in _each_decoder(data, 8).items():
            assert not isinstance(frames, str), (name, decoder, frames)  # none declines these
            numbers = [read_frame_index(f) for f in frames]
            assert all(abs(a - b) <= 1 for a, b in zip(numbers, expected, strict=True)), (
                name,
                decoder,
                numbers,
                expected,
            )
            assert numbers == sorted(numbers), (name, decoder, numbers)
            assert {f.size for f in frames} == {(info.width, info.height)}, (name, decoder)
    assert containers == {"video/mp4", "video/quicktime"}


@pytest.mark.parametrize("rotation", [90, 180, 270])
@pytest.mark.parametrize("container", ["mp4", "mov", "mkv"])
def test_display_rotation_is_honoured_by_every_decoder_and_the_probe(rotation, container) -> None:
    data = ms.make_counter_video(
        1.0, 10, 64, 32, container, keyframe_interval=5, display_rotation=rotation
    )
    info = probe_video(data)
    shown = (32, 64) if rotation in (90, 270) else (64, 32)
    assert (info.width, info.height, info.rotation) == (*shown, rotation)
    for decoder, frames in _each_decoder(data, 4).items():
        assert not isinstance(frames, str) or decoder == "torchcodec", (decoder, frames)
        if isinstance(frames, str):
            continue
        assert {f.size for f in frames} == {shown}, decoder
        # Undo the display rotation: the number is drawn upright in the coded picture.
        numbers = [ms.read_frame_number(f.transpose(UNDO[rotation])) for f in frames]
        assert numbers == [1, 3, 6, 8], (decoder, numbers)


def test_case_rotated90_is_upright_from_every_decoder_and_the_probe() -> None:
    data = (CASES / "rotated90.mp4").read_bytes()
    info = probe_video(data)
    assert (info.width, info.height) == (32, 64)
    assert info.rotation == 270  # counter-clockwise, i.e. a quarter turn clockwise
    results = _each_decoder(data, 8)
    for decoder, frames in results.items():
        if decoder == "torchcodec" and isinstance(frames, str):
            continue
        assert {f.size for f in frames} == {(32, 64)}, decoder
        numbers = [ms.read_frame_number(f.transpose(Image.Transpose.ROTATE_90)) for f in frames]
        assert numbers == [1, 3, 6, 8, 11, 13, 16, 18], (decoder, numbers)
    assert {"pyav", "decord"} <= set(results)


def test_case_starts_mid_gop_in_time_order_from_every_decoder(caplog, monkeypatch) -> None:
    data = (CASES / "starts_mid_gop.mp4").read_bytes()
    right = [10, 10, 14, 18, 23, 27, 32, 36]
    for decoder, frames in _each_decoder(data, 8).items():
        if isinstance(frames, str):
            # decord numbers frames from packets, which drift on this clip: it must say so.
            assert decoder != "pyav" and "mid-GOP" in frames, (decoder, frames)
            continue
        assert [ms.read_frame_number(f) for f in frames] == right, decoder
    # The default path falls back past a declining decoder with a logged reason.
    assert "decord" in DECODERS
    monkeypatch.setattr(video, "AUTO_ORDER", ("decord", "pyav"))
    with caplog.at_level(logging.WARNING, logger=video.__name__):
        frames = sample_frames(data, 8)
    assert [ms.read_frame_number(f) for f in frames] == right
    assert any("decord" in r.getMessage() and "mid-GOP" in r.getMessage() for r in caplog.records)
    # The seeking PyAV path and a full decode agree on every frame of the clip too.
    every = sample_frames(data, fps=10, decoder="pyav")
    assert [ms.read_frame_number(f) for f in every] == [10] * 7 + list(range(10, 39))
