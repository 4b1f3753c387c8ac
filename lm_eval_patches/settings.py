"""Run-wide options that the original project passed as lm-eval CLI flags.

They are set by our ``lm-eval run`` flags (see ``cli_flags``) or by :func:`configure` for
in-process use, and read when requests are built and sent.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RunOptions:
    """Options of the current run."""

    pass_multimodal_args_to_chat_history: bool = False
    replace_videos_with_images_amount: int | None = None
    # Whether the run's backend resolves lazy MediaRefs (ours do). When a CLI run uses another
    # backend, requests carry concrete media by default (PIL images, audio dicts), as the
    # original's default LOAD_OBJECT did; a LOAD_* switch always wins.
    backend_resolves_media: bool = True


RUN_OPTIONS = RunOptions()


def configure(**options: object) -> RunOptions:
    """Set run options by name, e.g. ``configure(replace_videos_with_images_amount=8)``."""
    for name, value in options.items():
        if not hasattr(RUN_OPTIONS, name):
            raise TypeError(f"unknown run option {name!r}")
        setattr(RUN_OPTIONS, name, value)
    return RUN_OPTIONS
