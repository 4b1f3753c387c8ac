"""Benchmark: seeking frame sampler vs decoding every frame (and vs decord).

Encodes two H.264 clips (keyframe every 30 frames; libx264's default GOP of 250) into a
temporary folder, then times, side by side in one run:

* a full PyAV decode into RGB frames (what sampling from a fully decoded clip costs: every
  frame decoded and converted, then 8 picked) - the baseline the targets are measured against;
* a full PyAV decode without colour conversion (a stricter floor, printed beside it);
* ``sample_frames(num_frames=8, decoder="pyav")`` - our seeking path, RGB output included;
* the ``--replace_videos_with_images_amount 8`` path end to end: a video MediaRef turned into
  8 lazy frame refs (``frame_refs``) and each resolved to a PIL image, as a backend does;
* decord's own ``VideoReader.get_batch`` of the same 8 indices (when decord is installed).

It prints speed-up ratios, which are comparable across machines, not absolute targets.
Run ``python bench/bench_video.py`` (60 s, 1280x720, 30 fps) or add ``--quick``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

from lm_eval_patches.fixtures.counter_clips import make_counter_video, read_frame_number
from lm_eval_patches.media.frame_cache import FRAME_CACHE
from lm_eval_patches.media.ref import MediaRef, frame_refs
from lm_eval_patches.media.video import sample_frame_times, sample_frames

TARGETS = {"keyint-30": 10.0, "gop-250": 4.0}  # minimum full/ours speed-up


def full_decode(data: bytes, rgb: bool = True) -> int:
    """Decode every frame of the first video stream (into RGB arrays when ``rgb``)."""
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if not rgb:
            return sum(1 for _ in container.decode(stream))
        return sum(1 for frame in container.decode(stream) if frame.to_ndarray(format="rgb24").size)


def replace_videos_path(data: bytes, num_frames: int) -> int:
    """What --replace_videos_with_images_amount does per clip: lazy frame refs, resolved."""
    FRAME_CACHE.clear()  # each timed run starts cold
    video = MediaRef.from_bytes("video", data, "clip.mp4")
    return len([ref.as_pil() for ref in frame_refs(video, num_frames)])


def decord_batch(data: bytes, num_frames: int) -> int:
    """decord's own uniform sampling of ``num_frames`` frames from in-memory bytes."""
    from decord import VideoReader, cpu

    reader = VideoReader(io.BytesIO(data), ctx=cpu(0), num_threads=0)
    n = len(reader)
    idx = [min(n - 1, int((k + 0.5) * n / num_frames)) for k in range(num_frames)]
    return len(reader.get_batch(idx).asnumpy())


def dependency_bound(data: bytes, times: list[float], fps: float) -> float:
    """Best full/ours ratio any exact seeker can reach, counted in decoded frames.

    Each target needs every frame from the keyframe before it up to itself; the union of
    those runs is the least work (before non-reference frames are skipped).
    """
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        entries = list(stream.index_entries)
        total = stream.frames or len(entries)
        first = entries[0].timestamp
        tb = float(stream.time_base)
        keys = sorted(round((e.timestamp - first) * tb * fps) for e in entries if e.is_keyframe)
    needed: set[int] = set()
    for t in times:
        target = int(t * fps)
        start = max(k for k in keys if k <= target)
        needed.update(range(start, target + 1))
    return total / len(needed)


def timed(fn, repeat: int) -> float:
    """Median wall time of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; returns 0 (ratios are reported, not gated)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="clip length (60)")
    parser.add_argument("--quick", action="store_true", help="10 s 640x360 veryfast clips")
    parser.add_argument("--frames", type=int, default=8, help="frames to sample (8)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case (median)")
    parser.add_argument(
        "--content",
        choices=["grain", "flat", "both"],
        default="both",
        help="grain: scrolling texture with film grain (every frame costly to decode, like "
        "camera footage); flat: flat background (cheap inter frames, like screen content)",
    )
    args = parser.parse_args(argv)
    seconds, (width, height), preset = args.seconds, (1280, 720), None
    if args.quick:
        seconds, (width, height), preset = min(seconds, 10.0), (640, 360), "veryfast"
    fps = 30
    try:
        import decord  # noqa: F401

        have_decord = True
    except ImportError:
        have_decord = False

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        contents = ["grain", "flat"] if args.content == "both" else [args.content]
        cases = [
            (f"{gop}/{c}", keyint, c)
            for c in contents
            for gop, keyint in (("keyint-30", 30), ("gop-250", None))
        ]
        for name, keyint, content in cases:
            print(f"encoding {name}: {seconds:g} s {width}x{height} @ {fps} fps ...", flush=True)
            start = time.perf_counter()
            data = make_counter_video(
                seconds,
                fps,
                width,
                height,
                "mp4",
                keyint,
                texture=content == "grain",
                x264_preset=preset,
                progress=True,
            )
            path = Path(tmp) / f"{name.replace('/', '-')}.mp4"
            path.write_bytes(data)
            print(f"  {len(data) / 1e6:.1f} MB in {time.perf_counter() - start:.0f} s", flush=True)

            frames = sample_frames(data, args.frames, decoder="pyav")
            times = sample_frame_times(seconds, args.frames)
            expected = [min(int(seconds * fps) - 1, int(t * fps + 1e-6)) for t in times]
            correct = [read_frame_number(f) for f in frames] == expected

            print("  timing ...", flush=True)
            t_full = timed(lambda d=data: full_decode(d), args.repeat)
            t_strict = timed(lambda d=data: full_decode(d, rgb=False), args.repeat)
            t_path = timed(lambda d=data: replace_videos_path(d, args.frames), args.repeat)
            t_ours = timed(
                lambda d=data: sample_frames(d, args.frames, decoder="pyav"), args.repeat
            )
            t_decord = (
                timed(lambda d=data: decord_batch(d, args.frames), args.repeat)
                if have_decord
                else None
            )
            bound = dependency_bound(data, times, fps)
            rows.append((name, t_full, t_strict, t_ours, t_path, t_decord, bound, correct))

    print()
    print(
        f"{args.frames} frames from {seconds:g} s {width}x{height} H.264 @ {fps} fps, "
        f"median of {args.repeat}"
    )
    header = (
        f"{'clip':<16} {'full s':>7} {'ours s':>7} {'full/ours':>9} {'target':>6} {'met':>4} "
        f"{'full/path':>9} {'full/decord':>11} {'strict/ours':>11} {'bound':>6} {'ok':>5}"
    )
    print(header)
    print("-" * len(header))
    for name, t_full, t_strict, t_ours, t_path, t_decord, bound, correct in rows:
        ratio = t_full / t_ours
        dec = f"{t_full / t_decord:10.1f}x" if t_decord is not None else f"{'n/a':>11}"
        target = TARGETS[name.split("/")[0]]
        print(
            f"{name:<16} {t_full:7.2f} {t_ours:7.2f} {ratio:8.1f}x {target:5.0f}x "
            f"{'yes' if ratio >= target else 'no':>4} {t_full / t_path:8.1f}x {dec} "
            f"{t_strict / t_ours:10.1f}x {bound:5.1f}x {str(correct):>5}"
        )
    print(
        "full: decode every frame into RGB; path: --replace_videos_with_images_amount end to "
        "end;\nstrict: decode every frame without colour conversion; bound: the best strict "
        "ratio any exact\nseeker can reach (frames on the keyframe-to-target runs it must "
        "decode); ok: sampled frames\ncarry the expected frame numbers."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
