"""Pack a run's lm-eval logs into the archive the MERA site takes (MERA_SPEC section 11).

Layout, as the original's ``scripts/log_to_submission.py`` makes it: one ``<Dataset>.json`` per
dataset (the original 18 names) shaped ``{"data": {"test": [{"outputs": str, "meta": {"id":
int}}]}}``, the science sets' subtasks concatenated into one file, plus ``logs_public.zip`` with
the samples and results logs; all of them written into ``dst_dir`` and zipped, at the archive's
root, into ``<dst_dir>.zip`` NEXT TO that folder (the original wrote ``submission/.zip`` inside it
when given ``submission/``: MERA_SPEC B30). Only the files written by this run are zipped, and the
archive is validated before it is put in place: an incomplete one is refused unless
``allow_partial``.
"""

from __future__ import annotations

import argparse
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lm_eval_patches.submission.logs import (
    Choice,
    LogFile,
    LogsError,
    choose_logs,
    find_logs_dir,
    results_logs,
    samples_logs,
)
from lm_eval_patches.submission.samples import SamplesError, read_answers
from lm_eval_patches.submission.table import BY_FILE, LOGS_ZIP
from lm_eval_patches.submission.validate import SHOWN_IDS, ValidationReport, validate_archive

DEFAULT_DST_DIR = "submission/"  # the original's default


class PackError(ValueError):
    """Nothing can be packed (no logs, a bad log, a bad destination); says what to do."""


# Every error a pack raises for bad input (the message says what to do).
PACK_ERRORS = (PackError, LogsError, SamplesError)


@dataclass
class PackResult:
    """What a pack did: the archive (None if refused), files written, the validation."""

    dst_dir: Path
    archive: Path | None = None
    written: list[Path] = field(default_factory=list)
    unanswered: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    report: ValidationReport | None = None

    @property
    def exit_status(self) -> int:
        """0: archive written; 1: refused (invalid, or incomplete without allow_partial)."""
        return 0 if self.archive else 1


def archive_path(dst_dir: str | Path) -> Path:
    """``<parent>/<name>.zip`` for the folder ``dst_dir``, next to it whatever its spelling
    (``submission/``, ``./out/sub``, ``.``). Raises PackError for a folder with no name."""
    folder = Path(dst_dir).expanduser().resolve()
    if folder.parent == folder:
        raise PackError(f"--dst_dir {dst_dir!r} is a filesystem root; give a folder to fill")
    return folder.parent / f"{folder.name}.zip"


def _results_for(logs: list[LogFile], tasks: set[str]) -> list[LogFile]:
    """Results logs that report at least one of ``tasks``."""
    chosen = []
    for log in logs:
        try:
            data = json.loads(log.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        named = set(data.get("configs") or {}) | set(data.get("results") or {})
        if named & tasks:
            chosen.append(log)
    return chosen


def _write_json(path: Path, entries: list[dict]) -> None:
    text = json.dumps({"data": {"test": entries}}, ensure_ascii=False, indent=4)
    path.write_text(text, encoding="utf-8")


def _zip_files(target: Path, files: list[Path]) -> None:
    """A zip of ``files`` at its root (their base names), written to ``target``."""
    # strict_timestamps=False: a log dated before 1980 (clock reset, copied file) still packs.
    with zipfile.ZipFile(
        target, "w", compression=zipfile.ZIP_DEFLATED, strict_timestamps=False
    ) as archive:
        for path in files:
            archive.write(path, arcname=path.name)


def _pack_choice(choice: Choice, folder: Path) -> tuple[Path, list[tuple[int, str]], str]:
    """Write one dataset file; returns it, its unanswered ids and a summary line."""
    entries, unanswered, sources = [], [], []
    for log in choice.logs:
        found = read_answers(log.task or "", log.path)
        entries += [{"outputs": text, "meta": {"id": doc_id}} for doc_id, text in found.answers]
        unanswered += found.unanswered
        sources.append(log.task or log.path.name)
        if found.other_filters:
            others = ", ".join(sorted(found.other_filters))
            sources[-1] += f" (filter {found.filter_name}; not {others})"
    if len(choice.logs) == 1:
        sources[0] += f" ({choice.logs[0].path.name})"
    path = folder / choice.dataset.file
    _write_json(path, entries)
    line = f"{choice.dataset.file}: {len(entries)} answers from {', '.join(sources)}"
    return path, unanswered, line


def pack_submission(
    outputs_dir: str | Path,
    dst_dir: str | Path = DEFAULT_DST_DIR,
    model_args: str | None = None,
    allow_partial: bool = False,
    data_dir: str | Path | None = None,
    echo: Callable[[str], None] = print,
) -> PackResult:
    """Pack the logs under ``outputs_dir`` (lm-eval's ``--output_path``) into ``dst_dir`` and
    ``<dst_dir>.zip``. ``model_args``: the run's ``--model_args``, to find its logs folder.
    ``data_dir``: the mirror holding the test ids (default ``MERA_DATA_DIR``, else the hub).
    Raises PackError when there is nothing to pack; otherwise returns a PackResult."""
    from tqdm import tqdm

    logs_dir = find_logs_dir(outputs_dir, model_args)
    echo(f"logs: {logs_dir}")
    found = samples_logs(logs_dir)
    choices, ignored = choose_logs(found)
    if ignored:
        echo(f"not MERA Multi tasks, not packed: {', '.join(ignored)}")
    if not choices:
        raise PackError(
            f"no samples log of a MERA Multi task in {logs_dir} (found: "
            f"{', '.join(sorted(found)) or 'none'}); run the MERA tasks with --log_samples"
        )
    archive = archive_path(dst_dir)
    folder = archive.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    result = PackResult(folder)
    for choice in tqdm(choices, desc="packing", unit="dataset", disable=None):
        path, unanswered, line = _pack_choice(choice, folder)
        result.written.append(path)
        echo(line)
        for note in choice.notes:
            echo(f"  {note}")
        if unanswered:
            result.unanswered[choice.dataset.file] = unanswered
            ids = ", ".join(str(i) for i, _ in unanswered[:SHOWN_IDS])
            reasons = sorted({reason for _, reason in unanswered})
            echo(f"  {len(unanswered)} unanswered, not packed (ids {ids}): {'; '.join(reasons)}")
    stale = sorted(
        p.name
        for p in folder.iterdir()
        if p.name in BY_FILE and p not in result.written and p.is_file()
    )
    if stale:
        echo(f"left out (older files in {folder}, not from these logs): {', '.join(stale)}")

    tasks = {log.task for choice in choices for log in choice.logs if log.task}
    logged = [log.path for choice in choices for log in choice.logs]
    logged += [log.path for log in _results_for(results_logs(logs_dir), tasks)]
    logs_zip = folder / LOGS_ZIP
    _zip_files(logs_zip, logged)
    result.written.append(logs_zip)

    pending = archive.with_name(f".{archive.name}.partial")
    _zip_files(pending, result.written)
    echo("validating the archive ...")
    result.report = validate_archive(pending, data_dir=data_dir)
    result.report.archive = archive
    for line in result.report.lines()[1:]:
        echo(line)
    if result.report.ok(allow_partial):
        os.replace(pending, archive)
        result.archive = archive
        echo(f"submission archive: {archive}")
    else:
        pending.unlink()
        why = "it is invalid" if not result.report.ok(True) else "it is incomplete"
        hint = "" if not result.report.ok(True) else "; pack it anyway with --allow-partial"
        old = f" (the older {archive.name} there is left as it was)" if archive.exists() else ""
        echo(f"NOT written: {archive}: {why}{hint}{old}")
    return result


def add_pack_arguments(parser: argparse.ArgumentParser) -> None:
    """The original's arguments (same names and defaults) plus ours, all optional extras."""
    parser.add_argument(
        "--outputs_dir", required=True, help="lm-eval's --output_path of the run(s)"
    )
    parser.add_argument(
        "--dst_dir",
        default=DEFAULT_DST_DIR,
        help="folder for the dataset files; the archive <dst_dir>.zip goes next to it "
        f"(default {DEFAULT_DST_DIR})",
    )
    parser.add_argument(
        "--model_args",
        default=None,
        help="the --model_args given to lm-eval: finds the logs folder as lm-eval named it",
    )
    parser.add_argument(
        "--allow-partial",
        "--allow_partial",
        dest="allow_partial",
        action="store_true",
        help="write the archive even if datasets or test ids are missing",
    )
    parser.add_argument(
        "--data",
        default=None,
        help="hub-layout mirror with the test ids (default: MERA_DATA_DIR, else the hub)",
    )


def run_pack(args: argparse.Namespace) -> int:
    """Run a pack from parsed arguments; returns the exit status."""
    result = pack_submission(
        args.outputs_dir, args.dst_dir, args.model_args, args.allow_partial, args.data
    )
    return result.exit_status
