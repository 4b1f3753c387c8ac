"""A bounded cache of sampled video frames, so each clip is decoded once per run."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable

from PIL import Image

from lm_eval_patches.media.video import DEFAULT_NUM_FRAMES, sample_frames

__all__ = ["FRAME_CACHE", "FrameCache"]


class FrameCache:
    """Bounded LRU of sampled frames so each clip is decoded once per run.

    Keyed by ``(content sha256, num_frames, fps)``; the decoder is not part of the key
    because every decoder returns the same frames.  Callers get copies, so editing a frame
    in place cannot corrupt the cache.
    """

    def __init__(self, max_entries: int = 64, max_bytes: int | None = 1 << 30) -> None:
        if max_entries <= 0:
            raise ValueError("max_entries must be positive")
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._entries: OrderedDict[tuple, tuple[list[Image.Image], int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def get_or_sample(
        self,
        sha256: str,
        data_loader: Callable[[], bytes],
        num_frames: int | None = None,
        fps: float | None = None,
        decoder: str = "auto",
        index: int | None = None,
    ) -> list[Image.Image]:
        """Cached frames for the clip, calling ``data_loader`` and decoding only on a miss.

        With ``index``, only that frame is copied out (a one-item list): frame-by-frame readers
        such as --replace_videos_with_images_amount need not copy the whole clip each time.
        """
        frames = self._frames(sha256, data_loader, num_frames, fps, decoder)
        chosen = frames if index is None else [frames[index]]
        return [im.copy() for im in chosen]

    def _frames(
        self,
        sha256: str,
        data_loader: Callable[[], bytes],
        num_frames: int | None,
        fps: float | None,
        decoder: str,
    ) -> list[Image.Image]:
        if num_frames is None and fps is None:
            num_frames = DEFAULT_NUM_FRAMES
        key = (sha256, num_frames, None if fps is None else float(fps))
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return hit[0]
            self.misses += 1
        frames = sample_frames(data_loader(), num_frames, fps=fps, decoder=decoder)
        size = sum(im.width * im.height * len(im.getbands()) for im in frames)
        with self._lock:
            if key not in self._entries:
                self._entries[key] = (frames, size)
                self._bytes += size
            budget = math.inf if self.max_bytes is None else self.max_bytes
            while len(self._entries) > self.max_entries or (
                self._bytes > budget and len(self._entries) > 1  # keep at least the newest
            ):
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
        return frames


FRAME_CACHE = FrameCache()  # the process-wide cache used by MediaRef.as_frames
