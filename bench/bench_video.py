"""Benchmark: seeking frame sampler vs decoding every frame (and vs decord).

Encodes two H.264 clips (keyframe every 30 frames; libx264's default GOP of 250) into a
temporary folder, then times, side by side in one run:

* a full PyAV decode of every frame (threaded, no colour conversion: a strict baseline),
* ``sample_frames(num_frames=8, decoder="pyav")`` - our seeking path, RGB output included,
* decord's own ``VideoReader.get_batch`` of the same 8 indices (when decord is installed).

It prints speed-up ratios, which are comparable across machines, not absolute targets.
Run ``python bench/bench_video.py`` (60 s, 1280x720, 30 fps) or add ``--quick``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import media_samples  # noqa: E402

from lm_eval_patches.media.video import sample_frame_times, sample_frames  # noqa: E402

TARGETS = {"keyint-30": 10.0, "gop-250": 4.0}  # minimum full/ours speed-up


def full_decode(data: bytes) -> int:
    """Decode every frame of the first video stream; return the count."""
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def decord_batch(data: bytes, num_frames: int) -> int:
    """decord's own uniform sampling of ``num_frames`` frames from in-memory bytes."""
    from decord import VideoReader, cpu

    reader = VideoReader(io.BytesIO(data), ctx=cpu(0), num_threads=0)
    n = len(reader)
    idx = [min(n - 1, int((k + 0.5) * n / num_frames)) for k in range(num_frames)]
    return len(reader.get_batch(idx).asnumpy())


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
        for name, keyint in (("keyint-30", 30), ("gop-250", None)):
            print(f"encoding {name}: {seconds:g} s {width}x{height} @ {fps} fps ...", flush=True)
            start = time.perf_counter()
            data = media_samples.make_counter_video(
                seconds,
                fps,
                width,
                height,
                "mp4",
                keyint,
                texture=True,
                x264_preset=preset,
                progress=True,
            )
            path = Path(tmp) / f"{name}.mp4"
            path.write_bytes(data)
            print(f"  {len(data) / 1e6:.1f} MB in {time.perf_counter() - start:.0f} s", flush=True)

            frames = sample_frames(data, args.frames, decoder="pyav")
            times = sample_frame_times(seconds, args.frames)
            expected = [
                media_samples.expected_frame_index(t, fps, int(seconds * fps)) for t in times
            ]
            correct = [media_samples.read_frame_number(f) for f in frames] == expected

            print("  timing ...", flush=True)
            t_full = timed(lambda d=data: full_decode(d), args.repeat)
            t_ours = timed(
                lambda d=data: sample_frames(d, args.frames, decoder="pyav"), args.repeat
            )
            t_decord = (
                timed(lambda d=data: decord_batch(d, args.frames), args.repeat)
                if have_decord
                else None
            )
            rows.append((name, t_full, t_ours, t_decord, correct))

    print()
    print(
        f"{args.frames} frames from {seconds:g} s {width}x{height} H.264 @ {fps} fps, "
        f"median of {args.repeat}"
    )
    header = (
        f"{'clip':<10} {'full s':>8} {'ours s':>8} {'decord s':>9} "
        f"{'full/ours':>10} {'full/decord':>12} {'target':>7} {'met':>4} {'frames ok':>9}"
    )
    print(header)
    print("-" * len(header))
    for name, t_full, t_ours, t_decord, correct in rows:
        ratio = t_full / t_ours
        dec_s = f"{t_decord:9.3f}" if t_decord is not None else f"{'n/a':>9}"
        dec_r = f"{t_full / t_decord:11.1f}x" if t_decord is not None else f"{'n/a':>12}"
        target = TARGETS[name]
        print(
            f"{name:<10} {t_full:8.3f} {t_ours:8.3f} {dec_s} {ratio:9.1f}x {dec_r} "
            f"{target:6.0f}x {'yes' if ratio >= target else 'no':>4} {str(correct):>9}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
