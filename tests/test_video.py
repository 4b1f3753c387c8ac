"""Frame sampling by seeking, decoder fallback, probing, sniffing and the frame cache.

Every clip shows its frame number as a binary pattern, so the tests check *which* frame a
decoder returned, not merely that it returned something.
"""

from __future__ import annotations

import logging

import media_samples as ms
import pytest
from PIL import Image

from lm_eval_patches.media import video
from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.media.frame_cache import FRAME_CACHE, FrameCache
from lm_eval_patches.media.video import (
    probe_video,
    sample_frame_times,
    sample_frames,
    sniff_video_mime,
)

FPS, SECONDS, W, H = 30, 2.0, 160, 120
N = int(FPS * SECONDS)
CONTAINERS = ["mp4", "mov", "mkv", "webm", "avi"]
MIMES = {
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "mkv": "video/x-matroska",
    "webm": "video/webm",
    "avi": "video/x-msvideo",
}


@pytest.fixture(scope="module")
def clips() -> dict[str, bytes]:
    """One clip per container (keyframe every 10 frames), plus an encoder-default-GOP mp4."""
    out = {
        c: ms.make_counter_video(SECONDS, FPS, W, H, c, keyframe_interval=10) for c in CONTAINERS
    }
    out["mp4-gop250"] = ms.make_counter_video(SECONDS, FPS, W, H, "mp4")
    return out


def _numbers(frames: list[Image.Image]) -> list[int]:
    return [ms.read_frame_number(f) for f in frames]


def _decoder_params() -> list:
    params = []
    for name, module in (
        ("pyav", "av"),
        ("decord", "decord"),
        ("torchcodec", "torchcodec.decoders"),
    ):
        try:
            __import__(module)
            marks = ()
        except Exception as exc:  # noqa: BLE001 - torchcodec raises OSError/RuntimeError too
            marks = pytest.mark.skip(reason=f"{name} unavailable: {type(exc).__name__}")
        params.append(pytest.param(name, marks=marks))
    return params


# -- timestamps ---------------------------------------------------------------------------


def test_sample_frame_times_are_segment_centres_or_fps_steps():
    assert sample_frame_times(2.0, num_frames=4) == [0.25, 0.75, 1.25, 1.75]
    assert sample_frame_times(2.0, fps=2) == [0.0, 0.5, 1.0, 1.5]
    assert sample_frame_times(2.1, fps=2) == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert sample_frame_times(0.1, fps=1) == [0.0]
    assert sample_frame_times(0.0, num_frames=2) == [0.0, 0.0]


@pytest.mark.parametrize(
    "kwargs", [{}, {"num_frames": 2, "fps": 1.0}, {"num_frames": 0}, {"fps": -1.0}]
)
def test_sample_frame_times_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        sample_frame_times(1.0, **kwargs)


# -- sampling -----------------------------------------------------------------------------


@pytest.mark.parametrize("container", CONTAINERS + ["mp4-gop250"])
def test_uniform_frames_carry_expected_numbers(clips, container):
    frames = sample_frames(clips[container], 8, decoder="pyav")
    assert len(frames) == 8
    assert all(f.mode == "RGB" and f.size == (W, H) for f in frames)
    times = sample_frame_times(SECONDS, 8)
    # Centres of 8 segments of 0.25 s: frames 3, 11, 18, 26, 33, 41, 48, 56.
    assert _numbers(frames) == [ms.expected_frame_index(t, FPS, N) for t in times]


@pytest.mark.parametrize("container", ["mp4", "mov", "mkv"])
def test_fps_sampling(clips, container):
    frames = sample_frames(clips[container], fps=4, decoder="pyav")
    assert _numbers(frames) == [0, 7, 15, 22, 30, 37, 45, 52]


@pytest.mark.parametrize("container", ["mp4", "webm"])
def test_every_frame_and_more_than_every_frame(clips, container):
    data = clips[container]
    every = _numbers(sample_frames(data, fps=FPS, decoder="pyav"))
    # WebM stores milliseconds, so frame 2 starts at 0.067 s, after t = 2/30 s.
    assert every == ms.reference_indices(data, sample_frame_times(SECONDS, fps=FPS))
    if container == "mp4":
        assert every == list(range(N))
    dense = sample_frames(data, fps=45, decoder="pyav")  # faster than the clip: repeats
    assert _numbers(dense) == ms.reference_indices(data, sample_frame_times(SECONDS, fps=45))


def test_variable_frame_rate_matches_full_decode():
    # 20 frames, a 0.5 s hold, then 30 more: the average rate no longer predicts timestamps.
    pts = list(range(20)) + list(range(35, 65))
    data = ms.make_counter_video(0, FPS, W, H, "mp4", frame_pts=pts)
    times = sample_frame_times(probe_video(data).duration_s, 24)
    assert _numbers(sample_frames(data, 24, decoder="pyav")) == ms.reference_indices(data, times)


@pytest.mark.parametrize("container", ["mp4", "mkv"])
def test_stream_starting_late_is_sampled_from_its_first_frame(container):
    pts = list(range(15, 75))  # the first frame is at 0.5 s
    data = ms.make_counter_video(0, FPS, W, H, container, keyframe_interval=10, frame_pts=pts)
    assert probe_video(data).duration_s == pytest.approx(SECONDS, abs=0.05)
    frames = sample_frames(data, 8, decoder="pyav")
    assert _numbers(frames) == [3, 11, 18, 26, 33, 41, 48, 56]


def test_seek_that_lands_past_the_target_is_retried_further_back(clips, monkeypatch):
    original = video._PyAVSeeker._decode_from
    overshoots = []

    def overshoot_once(self, pts):
        if not overshoots:  # a demuxer that seeks to a keyframe *after* the request
            overshoots.append(pts)
            return original(self, pts + 0.5 / self.tb)
        return original(self, pts)

    monkeypatch.setattr(video._PyAVSeeker, "_decode_from", overshoot_once)
    assert _numbers(sample_frames(clips["mp4"], 4, decoder="pyav")) == [7, 22, 37, 52]
    assert overshoots


def test_dropped_non_reference_frame_is_decoded_again(clips, monkeypatch):
    original_init = video._PyAVSeeker.__init__
    original_decode_from = video._PyAVSeeker._decode_from
    redos = []

    def reckless_init(self, *args):
        original_init(self, *args)
        self.margin = -5 * self.frame_pts  # drop non-reference frames even at the target

    def counting_decode_from(self, pts):
        if self.skip_before is None:
            redos.append(pts)
        return original_decode_from(self, pts)

    monkeypatch.setattr(video._PyAVSeeker, "__init__", reckless_init)
    monkeypatch.setattr(video._PyAVSeeker, "_decode_from", counting_decode_from)
    assert _numbers(sample_frames(clips["mp4-gop250"], fps=FPS, decoder="pyav")) == list(range(N))
    assert redos  # B-frames were dropped at their own target and recovered


def test_probe_video(clips):
    info = probe_video(clips["mov"])
    assert info.duration_s == pytest.approx(SECONDS, abs=0.05)
    assert info.fps == pytest.approx(FPS)
    assert abs(info.frame_count - N) <= 1
    assert (info.width, info.height, info.codec) == (W, H, "h264")
    assert probe_video(clips["webm"]).codec == "vp8"


@pytest.mark.parametrize("container", CONTAINERS)
def test_sniff_video_mime(clips, container):
    assert sniff_video_mime(clips[container]) == MIMES[container]


def test_sniff_video_mime_rejects_other_bytes():
    assert sniff_video_mime(ms.make_audio_only_mp4()) is None  # M4A brand: audio
    assert sniff_video_mime(ms.garbage(64)) is None
    assert sniff_video_mime(ms.make_tone_wav(440, 8000, 0.1)) is None


# -- errors -------------------------------------------------------------------------------


def test_no_video_stream_is_a_media_error():
    data = ms.make_audio_only_mp4()
    with pytest.raises(MediaError, match="no video stream"):
        probe_video(data)
    with pytest.raises(MediaError, match="no video stream") as info:
        sample_frames(data, 4)
    assert info.value.kind == "video"


@pytest.mark.parametrize(
    "data",
    [b"", ms.garbage(), b"\x00\x00\x00\x20ftypisom" + bytes(64)],
    ids=["empty", "garbage", "bare-ftyp"],
)
def test_unreadable_bytes_are_media_errors(data):
    with pytest.raises(MediaError):
        sample_frames(data, 4)
    with pytest.raises(MediaError):
        probe_video(data)


def test_truncated_mp4_is_a_media_error(clips):
    data = ms.truncate(clips["mp4"], 0.3)  # mp4 index at the end: unreadable
    with pytest.raises(MediaError):
        sample_frames(data, 4)


# -- decoders and fallback ----------------------------------------------------------------


@pytest.mark.parametrize("decoder", _decoder_params())
@pytest.mark.parametrize("container", ["mp4", "mov", "mkv"])
def test_each_installed_decoder(clips, decoder, container):
    data = clips[container]
    frames = sample_frames(data, 8, decoder=decoder)
    assert _numbers(frames) == ms.reference_indices(data, sample_frame_times(SECONDS, 8))
    assert all(f.mode == "RGB" and f.size == (W, H) for f in frames)


def _broken(data, num_frames, fps):
    raise RuntimeError("simulated decoder crash")


def test_auto_falls_back_and_warns(clips, monkeypatch, caplog):
    monkeypatch.setitem(video._DECODERS, "broken", _broken)
    monkeypatch.setattr(video, "AUTO_ORDER", ("broken", "pyav"))
    with caplog.at_level(logging.WARNING, logger=video.__name__):
        frames = sample_frames(clips["mp4"], 8)
    assert _numbers(frames) == [3, 11, 18, 26, 33, 41, 48, 56]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "broken" in warnings[0].getMessage()
    assert "simulated decoder crash" in warnings[0].getMessage()


def test_auto_skips_missing_decoders_quietly(clips, monkeypatch, caplog):
    def missing(data, num_frames, fps):
        raise ImportError("No module named 'fancy'")

    monkeypatch.setitem(video._DECODERS, "missing", missing)
    monkeypatch.setattr(video, "AUTO_ORDER", ("missing", "pyav"))
    with caplog.at_level(logging.WARNING, logger=video.__name__):
        frames = sample_frames(clips["mov"], 2)
    assert _numbers(frames) == [15, 45]
    assert not caplog.records


def test_auto_default_order_works_here(clips):
    assert _numbers(sample_frames(clips["mkv"], 8)) == [3, 11, 18, 26, 33, 41, 48, 56]


def test_all_decoders_failing_names_each(monkeypatch):
    def other(data, num_frames, fps):
        raise MediaError("video", "other decoder refused")

    monkeypatch.setitem(video._DECODERS, "broken", _broken)
    monkeypatch.setitem(video._DECODERS, "other", other)
    monkeypatch.setattr(video, "AUTO_ORDER", ("broken", "other"))
    with pytest.raises(MediaError) as info:
        sample_frames(ms.garbage(), 4)
    detail = info.value.detail
    assert "broken: RuntimeError: simulated decoder crash" in detail
    assert "other: other decoder refused" in detail


def test_garbage_with_auto_lists_every_real_decoder():
    with pytest.raises(MediaError) as info:
        sample_frames(ms.garbage(), 4)
    for name in video.AUTO_ORDER:
        assert f"{name}:" in info.value.detail


def test_unknown_decoder_name():
    with pytest.raises(ValueError, match="unknown decoder"):
        sample_frames(b"x", 2, decoder="ffmpeg-cli")


# -- cache --------------------------------------------------------------------------------


def test_frame_cache_decodes_each_clip_once(clips):
    cache = FrameCache(max_entries=2)
    calls = []

    def loader(name):
        def load():
            calls.append(name)
            return clips[name]

        return load

    first = cache.get_or_sample("sha-mp4", loader("mp4"), 4)
    again = cache.get_or_sample("sha-mp4", loader("mp4"), 4)
    assert calls == ["mp4"]
    assert _numbers(first) == _numbers(again) == [7, 22, 37, 52]
    assert cache.hits == 1 and cache.misses == 1
    again[0].paste((0, 0, 0), (0, 0, W, H))  # callers get copies: the cache stays intact
    assert _numbers(cache.get_or_sample("sha-mp4", loader("mp4"), 4))[0] == 7
    cache.get_or_sample("sha-mp4", loader("mp4"), None, fps=1.0)  # other sampling: decode
    cache.get_or_sample("sha-mov", loader("mov"), 4)  # third entry evicts the oldest
    assert len(cache) == 2
    cache.get_or_sample("sha-mov", loader("mov"), 4)
    assert calls == ["mp4", "mp4", "mov"]
    cache.get_or_sample("sha-mp4", loader("mp4"), 4)
    assert calls == ["mp4", "mp4", "mov", "mp4"]


def test_frame_cache_byte_budget(clips):
    cache = FrameCache(max_entries=10, max_bytes=W * H * 3 * 5)  # room for 5 frames
    cache.get_or_sample("a", lambda: clips["mp4"], 4)
    cache.get_or_sample("b", lambda: clips["mov"], 4)
    assert len(cache) == 1


def test_module_cache_exists():
    assert isinstance(FRAME_CACHE, FrameCache)
