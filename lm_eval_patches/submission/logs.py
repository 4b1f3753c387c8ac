"""Find lm-eval's logs: the folder a run wrote them to, and the newest samples log per task.

lm-eval (0.4.x) writes ``<output_path>/<sanitized model name>/samples_<task>_<date>.jsonl`` and
``results_<date>.json``, where ``<date>`` is ``datetime.now().isoformat()`` with ``:`` turned
into ``-`` (so microseconds vanish when they are 0: the original packer's fixed format then
failed, MERA_SPEC B30). The model name comes from ``--model_args`` the way lm-eval's own tracker
takes it; we call lm-eval for both steps rather than re-implement them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lm_eval_patches.submission.table import BY_TASK, SubmissionDataset

# The tail of a log name: an ISO date-time in any of the forms seen (":" or "-" between the time
# fields, with or without fractions of a second and a UTC offset).
_DATE = re.compile(
    r"_(?P<date>\d{4}-\d{2}-\d{2}[T ]\d{2}[-:]\d{2}[-:]\d{2}(?:\.\d{1,9})?"
    r"(?:Z|[+-]\d{2}[-:]?\d{2})?)$"
)


class LogsError(ValueError):
    """The logs folder or the logs in it cannot be used; the message says what to do."""


@dataclass(frozen=True)
class LogFile:
    """One samples or results log: its path, task (samples only) and when it was written."""

    path: Path
    task: str | None
    written: float  # POSIX seconds; from the name's date, else the file's modification time
    dated_by_name: bool


def parse_log_date(text: str) -> datetime | None:
    """A log name's date part as a datetime (naive = local time, as lm-eval writes it), or
    None. Accepts ``2026-11-29T12-30-05.123456``, ``2026-11-29T12-30-05`` (microseconds 0),
    ``2026-11-29T12:30:05`` and the same with a ``Z``/``+03:00`` offset."""
    match = re.fullmatch(
        r"(\d{4}-\d{2}-\d{2})[T ](\d{2})[-:](\d{2})[-:](\d{2})(\.\d{1,9})?"
        r"(Z|[+-]\d{2}[-:]?\d{2})?",
        text,
    )
    if not match:
        return None
    date, hours, minutes, seconds, fraction, zone = match.groups()
    iso = f"{date}T{hours}:{minutes}:{seconds}{(fraction or '')[:7]}"
    if zone:
        iso += "+00:00" if zone == "Z" else f"{zone[:3]}:{zone[-2:]}"
    try:
        return datetime.fromisoformat(iso)
    except ValueError:
        return None


def split_log_name(name: str, prefix: str) -> tuple[str, datetime | None] | None:
    """``samples_<task>_<date>.jsonl`` -> (task, date); results logs give ("", date). None when
    ``name`` is not a log of that kind. A name whose date cannot be read keeps the part after
    the last ``_`` as its date (date None)."""
    if not name.startswith(prefix):
        return None
    stem = re.sub(r"\.jsonl?$", "", name)
    if stem == name:
        return None
    body = "_" + stem[len(prefix) :]  # the leading "_" lets results_<date> match too
    match = _DATE.search(body)
    if match:
        return body[: match.start()].removeprefix("_"), parse_log_date(match.group("date"))
    task, _, _ = body.rpartition("_")
    return task.removeprefix("_"), None


def model_folder_name(model_args: str) -> str | None:
    """The folder lm-eval writes a run's logs to, from the run's ``--model_args`` (string, or
    a JSON object as text); None when the args name no model (lm-eval then made up a name)."""
    from lm_eval.loggers.evaluation_tracker import GeneralConfigTracker
    from lm_eval.utils import sanitize_model_name

    args: str | dict = model_args
    if model_args.strip().startswith("{"):
        try:
            args = json.loads(model_args)
        except json.JSONDecodeError:
            pass
    name = GeneralConfigTracker._get_model_name(args)
    return sanitize_model_name(name) if name else None


def _has_logs(folder: Path) -> bool:
    return any(folder.glob("samples_*.json*"))


def find_logs_dir(outputs_dir: str | Path, model_args: str | None = None) -> Path:
    """The folder holding a run's logs.

    With ``model_args``: ``<outputs_dir>/<model folder>`` as lm-eval names it. Without: the
    ``outputs_dir`` itself when it holds samples logs, else its only subfolder that does. An
    ``--output_path`` ending in ``.json`` makes lm-eval write next to it, so its parent is used.
    Raises LogsError naming what was looked for and what is there.
    """
    root = Path(outputs_dir).expanduser()
    if root.suffix == ".json":
        root = root.parent
    if not root.is_dir():
        raise LogsError(f"--outputs_dir {root} is not a folder (give lm-eval's --output_path)")
    candidates = sorted(p for p in root.iterdir() if p.is_dir() and _has_logs(p))
    if model_args:
        folder = model_folder_name(model_args)
        if folder is None:
            raise LogsError(
                f"--model_args {model_args!r} names no model (lm-eval looks for peft=, delta=, "
                "pretrained=, model=, path= or engine=); give --outputs_dir the logs folder "
                "itself and no --model_args"
            )
        logs = root / folder
        if _has_logs(logs):
            return logs
        found = ", ".join(p.name for p in candidates) or "none"
        raise LogsError(
            f"no samples logs in {logs} (the folder lm-eval names for --model_args "
            f"{model_args!r}); folders with samples logs under {root}: {found}. "
            "Was the run made with --log_samples and this --model_args?"
        )
    if _has_logs(root):
        return root
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise LogsError(
            f"{root} holds the logs of several models ({', '.join(p.name for p in candidates)}); "
            "pick one with --model_args (as given to lm-eval) or give its folder"
        )
    raise LogsError(
        f"no samples logs (samples_<task>_<date>.jsonl) in {root} or its subfolders; "
        "run lm-eval with --log_samples --output_path and give that path"
    )


def _log_file(path: Path, prefix: str) -> LogFile | None:
    parts = split_log_name(path.name, prefix)
    if parts is None:
        return None
    task, date = parts
    written = date.timestamp() if date else path.stat().st_mtime
    return LogFile(path, task or None, written, date is not None)


def samples_logs(logs_dir: Path) -> dict[str, list[LogFile]]:
    """``{task: [samples logs, newest first]}`` for every task with a samples log."""
    found: dict[str, list[LogFile]] = {}
    for path in logs_dir.glob("samples_*.json*"):
        log = _log_file(path, "samples_")
        if log and log.task:
            found.setdefault(log.task, []).append(log)
    for logs in found.values():
        logs.sort(key=lambda f: (f.written, f.path.name), reverse=True)
    return found


def results_logs(logs_dir: Path) -> list[LogFile]:
    """Every ``results_<date>.json`` in the folder, newest first."""
    logs = [f for p in logs_dir.glob("results_*.json") if (f := _log_file(p, "results_"))]
    return sorted(logs, key=lambda f: (f.written, f.path.name), reverse=True)


@dataclass(frozen=True)
class Choice:
    """The samples logs picked for one submission file, and why (for the user)."""

    dataset: SubmissionDataset
    logs: tuple[LogFile, ...]  # one per packed task, in the file's order
    notes: tuple[str, ...]


def choose_logs(found: dict[str, list[LogFile]]) -> tuple[list[Choice], list[str]]:
    """Pick, for each submission dataset with logs, the newest log of each of its tasks.

    One-task files with variants take the first variant present (``_gen`` over ``_default``)
    and never mix them. Returns the choices and the tasks found that no MERA file takes.
    """
    from lm_eval_patches.submission.table import SUBMISSION_DATASETS

    choices = []
    for dataset in SUBMISSION_DATASETS:
        notes = []
        if dataset.parts:
            tasks = [t for t in dataset.parts if t in found]
        else:
            present = [t for t in dataset.variants if t in found]
            tasks = present[:1]
            if len(present) > 1:
                notes.append(f"using {present[0]}; not packed: {', '.join(present[1:])}")
        if not tasks:
            continue
        picked = []
        for task in tasks:
            logs = found[task]
            newest = logs[0]
            if len(logs) > 1:
                notes.append(
                    f"{task}: newest of {len(logs)} logs: {newest.path.name}"
                    + ("" if newest.dated_by_name else " (by modification time)")
                )
            elif not newest.dated_by_name:
                notes.append(f"{task}: {newest.path.name} has no readable date in its name")
            picked.append(newest)
        choices.append(Choice(dataset, tuple(picked), tuple(notes)))
    ignored = sorted(t for t in found if t not in BY_TASK)
    return choices, ignored
