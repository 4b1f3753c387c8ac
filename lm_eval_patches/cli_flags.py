"""The original project's extra ``lm-eval run`` flags, added to stock lm-eval's parser."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from lm_eval_patches.settings import RUN_OPTIONS

FLAG_NAMES = ("pass_multimodal_args_to_chat_history", "replace_videos_with_images_amount")


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Add our flags to an ``lm-eval run`` parser."""
    group = parser.add_argument_group("MERA multimodal (mera-multimodal)")
    group.add_argument(
        "--pass_multimodal_args_to_chat_history",
        action="store_true",
        default=False,
        help="Send media inside the chat messages, at their placeholders (needs "
        "--apply_chat_template). Used by chat and API backends.",
    )
    group.add_argument(
        "--replace_videos_with_images_amount",
        type=int,
        default=None,
        metavar="N",
        help="Turn each video into N uniformly sampled frames sent as images "
        "(for image-only backends).",
    )


def take_flags(args: argparse.Namespace) -> None:
    """Move our flags from the namespace into RUN_OPTIONS, before lm-eval validates it."""
    passed = bool(getattr(args, "pass_multimodal_args_to_chat_history", False))
    amount = getattr(args, "replace_videos_with_images_amount", None)
    for name in FLAG_NAMES:
        if hasattr(args, name):
            delattr(args, name)
    if passed and not getattr(args, "apply_chat_template", False):
        raise SystemExit(
            "--pass_multimodal_args_to_chat_history needs --apply_chat_template: media are "
            "placed inside chat messages."
        )
    if amount is not None and amount < 1:
        raise SystemExit("--replace_videos_with_images_amount must be a positive integer")
    check_load_switches()
    RUN_OPTIONS.pass_multimodal_args_to_chat_history = passed
    RUN_OPTIONS.replace_videos_with_images_amount = amount
    RUN_OPTIONS.backend_resolves_media = is_our_backend(getattr(args, "model", None) or "hf")


def check_load_switches() -> None:
    """Fail before any model loads when more than one LOAD_* switch is on."""
    from lm_eval_patches.errors import USER_ERROR_EXIT_STATUS
    from lm_eval_patches.media.forms import load_mode

    try:
        load_mode()
    except ValueError as exc:
        print(
            f"error: {exc} Unset all but one (each chooses the form media take in requests).",
            file=sys.stderr,
        )
        raise SystemExit(USER_ERROR_EXIT_STATUS) from None


def is_our_backend(name: str) -> bool:
    """True when ``--model name`` is one of this package's backends (without importing it)."""
    from lm_eval_patches.registration import BACKENDS

    return name in BACKENDS


def _task_names(args: argparse.Namespace) -> list[str]:
    tasks = getattr(args, "tasks", None) or []
    if isinstance(tasks, str):
        tasks = [tasks]
    return [name for item in tasks for name in str(item).split(",") if name]


def only_include_path_tasks(args: argparse.Namespace) -> bool:
    """True when every requested task is defined under --include_path (a MERA-only run).

    Indexing lm-eval's ~15,000 built-in tasks costs several seconds per run; such a run does not
    need them. Paths and globs of YAML files are left to lm-eval.
    """
    include = getattr(args, "include_path", None)
    names = _task_names(args)
    if not include or not names or any(("/" in n or n.endswith(".yaml")) for n in names):
        return False
    from lm_eval.tasks import TaskManager

    local = TaskManager(include_path=include, include_defaults=False)
    return all(name in local.all_tasks for name in names)


@contextmanager
def tasks_from_include_path_only() -> Iterator[None]:
    """Make lm-eval's TaskManager skip the built-in task index for the duration."""
    from lm_eval.tasks import TaskManager

    original = TaskManager.__init__

    def init(self, *args, include_defaults: bool = False, **kwargs) -> None:
        original(self, *args, include_defaults=include_defaults, **kwargs)

    TaskManager.__init__ = init
    try:
        yield
    finally:
        TaskManager.__init__ = original


def install_run_flags(run_module: ModuleType) -> None:
    """Patch ``lm_eval._cli.run.Run`` so ``lm-eval run`` accepts and consumes our flags."""
    run_cls = run_module.Run
    if getattr(run_cls, "_mera_flags_installed", False):
        return
    original_add_args = run_cls._add_args
    original_execute = run_cls._execute

    def _add_args(self) -> None:
        original_add_args(self)
        add_flags(self._parser)

    def _execute(args: argparse.Namespace) -> None:
        from lm_eval_patches.run_outcome import run_with_outcome

        take_flags(args)
        if only_include_path_tasks(args):
            with tasks_from_include_path_only():
                run_with_outcome(original_execute, args, is_our_backend(args.model or ""))
        else:
            run_with_outcome(original_execute, args, is_our_backend(args.model or ""))

    run_cls._add_args = _add_args
    run_cls._execute = staticmethod(_execute)
    run_cls._mera_flags_installed = True
