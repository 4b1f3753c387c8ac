"""What a person sees around an ``lm-eval run``: its output folder name, user errors as one
line, and failed requests as a summary and a non-zero exit status.

``cli_flags.install_run_flags`` calls :func:`run_with_outcome` around lm-eval's own ``_execute``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from lm_eval_patches.errors import USER_ERROR_EXIT_STATUS, find_user_error, report_user_error
from lm_eval_patches.failures import FAILED_EXIT_STATUS, FAILURES

# Keys lm-eval reads a model's name from, in its order (lm_eval.loggers.evaluation_tracker).
_NAME_KEYS = ("peft", "delta", "pretrained", "model", "path", "engine")


def model_name_for(backend: str, model_args: object) -> str | None:
    """The name lm-eval would not find: ``None`` when ``model_args`` names the model (lm-eval
    then uses it), else the backend's own name (instead of lm-eval's random one)."""
    if isinstance(model_args, dict):
        named = any(key in model_args for key in _NAME_KEYS)
    else:
        text = str(model_args or "")
        named = any(f"{key}=" in text for key in _NAME_KEYS)
    return None if named else backend


@contextmanager
def readable_model_name(backend: str) -> Iterator[None]:
    """For the duration, a run whose ``--model_args`` name no model is named after its
    backend (``mera-baseline``), so its results land in ``OUTPUT/mera-baseline/``, not in a
    random folder."""
    from lm_eval.loggers.evaluation_tracker import GeneralConfigTracker

    original = GeneralConfigTracker.__dict__["_get_model_name"]

    def get_model_name(model_args: object) -> str | None:
        return original.__func__(model_args) or model_name_for(backend, model_args)

    GeneralConfigTracker._get_model_name = staticmethod(get_model_name)
    try:
        yield
    finally:
        GeneralConfigTracker._get_model_name = original


COUNT_ROWS = ("n_scored", "n_failed")


def tidy_count_rows(table: str) -> str:
    """lm-eval's markdown results table with the count rows as integers, and no stderr on
    count rows or on metrics without a value (the writer formats a whole column alike, so
    ``8`` would read ``8.0000``, and an empty score would still show ``± N/A``)."""
    lines = []
    for line in table.splitlines():
        cells = line.split("|")
        # | name | version | filter | n-shot | metric | arrow | value | ± | stderr |
        if len(cells) != 11 or cells[5].strip() in ("Metric", ""):
            lines.append(line)
            continue
        is_count = cells[5].strip() in COUNT_ROWS
        if is_count:
            try:
                value = float(cells[7])
            except ValueError:
                value = None
            if value is not None and value.is_integer():
                cells[7] = str(int(value)).rjust(len(cells[7]))
        if is_count or not cells[7].strip():
            cells[8], cells[9] = " " * len(cells[8]), " " * len(cells[9])
        lines.append("|".join(cells))
    return "\n".join(lines)


@contextmanager
def tidy_results_table() -> Iterator[None]:
    """For the duration, ``lm_eval.utils.make_table`` (which the CLI imports when it prints)
    returns :func:`tidy_count_rows` of its table."""
    import lm_eval.utils

    original = lm_eval.utils.make_table

    def make_table(*args: object, **kwargs: object) -> str:
        return tidy_count_rows(original(*args, **kwargs))

    lm_eval.utils.make_table = make_table
    try:
        yield
    finally:
        lm_eval.utils.make_table = original


def missing_summary(status: dict | None) -> str | None:
    """One line naming the tasks with samples missing from the outputs (``run_status.json``
    counts them), or None when nothing is missing."""
    tasks = (status or {}).get("tasks") or {}
    missing = {name: t.get("missing", 0) for name, t in tasks.items() if t.get("missing")}
    if not missing:
        return None
    listed = ", ".join(f"{name} {count}" for name, count in sorted(missing.items()))
    return (
        f"mera: {sum(missing.values())} sample(s) missing from the outputs ({listed}); the run "
        f"is incomplete (see run_status.json): rerun the same command with --use_cache; exit "
        f"status {FAILED_EXIT_STATUS}"
    )


def finish_with_failures(start: int) -> None:
    """After everything is written: when requests failed since ``start``, print the details
    and a one-line summary as the last line on stderr, and exit with FAILED_EXIT_STATUS; the
    same, with its own line, when a task is incomplete (samples missing from the outputs)."""
    from lm_eval_patches import run_record

    failed = FAILURES.since(start)
    if not failed:
        line = missing_summary(run_record.LAST_STATUS)
        if line:
            print(line, file=sys.stderr)
            raise SystemExit(FAILED_EXIT_STATUS)
        return
    print(FAILURES.summary(failed), file=sys.stderr)
    print(FAILURES.summary_line(failed), file=sys.stderr)
    raise SystemExit(FAILED_EXIT_STATUS)


def run_with_outcome(
    execute: Callable[[argparse.Namespace], None], args: argparse.Namespace, ours: bool
) -> None:
    """Run lm-eval's ``execute(args)``; ``ours`` says whether ``--model`` is our backend.

    A :class:`~lm_eval_patches.errors.UserError` (raised directly or behind another exception)
    ends the process with one line on stderr and exit status 2; other exceptions propagate.
    """
    from lm_eval_patches import run_record

    start = len(FAILURES.items)
    run_record.LAST_STATUS = None
    verbosity = getattr(args, "verbosity", None)
    try:
        with tidy_results_table():
            if ours:
                with readable_model_name(str(args.model)):
                    execute(args)
            else:
                execute(args)
    except Exception as exc:
        error = find_user_error(exc)
        if error is None:
            raise
        raise SystemExit(report_user_error(error, exc, verbosity)) from None
    finish_with_failures(start)


__all__ = ["USER_ERROR_EXIT_STATUS", "model_name_for", "readable_model_name", "run_with_outcome"]
