"""``mera-mm retry-failed RUN_DIR``: redo only the failed samples of a run, complete its outputs.

The run's ``run_status.json`` records its command, working folder and media settings. With the
``--use_cache`` file of that run, rerunning the same command answers every finished request
from the cache (failed answers are never stored) and sends only the failed ones again; lm-eval
then writes complete results and samples. The superseded results and samples files of the
failed run are moved into ``RUN_DIR/superseded/`` so the folder reads as if the run had never
failed. Exit status: the rerun's (non-zero when requests still fail).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from lm_eval_patches.run_record import ENV_SETTINGS, RUN_STATUS_FILE


def find_status(run_dir: Path) -> Path:
    """``run_status.json`` of RUN_DIR (the results folder, or the --output_path above it)."""
    if run_dir.is_file():
        return run_dir
    direct = run_dir / RUN_STATUS_FILE
    if direct.is_file():
        return direct
    found = sorted(run_dir.glob(f"*/{RUN_STATUS_FILE}"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise ValueError(f"no {RUN_STATUS_FILE} in {run_dir} (was it written by mera-multimodal?)")
    raise ValueError(
        f"several runs under {run_dir}: " + ", ".join(str(p.parent) for p in found) + "; pick one"
    )


def rerun_plan(status: dict[str, Any]) -> tuple[list[str], dict[str, str], str]:
    """The command, environment and folder to rerun a recorded run with.

    Raises:
        ValueError: the run had no cache (a rerun would recompute everything) or its command
            held credentials that the record masks.
    """
    record = status.get("reproducibility") or {}
    command = list(record.get("command") or [])
    if status.get("cache") is None:
        raise ValueError(
            "the run did not use --use_cache, so a rerun would recompute every request; "
            "rerun its command with --use_cache PATH (then failed requests alone are redone "
            "on later reruns)"
        )
    if not command or any("***" in arg for arg in command):
        raise ValueError(
            "the recorded command is missing or had credentials (masked in the record); rerun "
            "it yourself with the same --use_cache: " + " ".join(command)
        )
    env = {k: v for k, v in os.environ.items() if k not in ENV_SETTINGS}
    env.update(record.get("environment") or {})
    argv = [sys.executable, "-m", "lm_eval", *command[1:]]
    return argv, env, record.get("cwd") or os.getcwd()


def supersede(folder: Path, old_results: str, new_results: str | None) -> list[Path]:
    """Move the failed run's results and samples files into ``folder/superseded``."""
    if not old_results or old_results == new_results:
        return []
    stamp = old_results.removeprefix("results_").removesuffix(".json")
    moved = []
    target = folder / "superseded"
    for path in [folder / old_results, *folder.glob(f"samples_*_{stamp}.jsonl")]:
        if path.is_file():
            target.mkdir(exist_ok=True)
            moved.append(Path(shutil.move(str(path), target / path.name)))
    return moved


def run(args: argparse.Namespace) -> int:
    """Rerun the recorded command; report what was redone."""
    status_path = find_status(Path(args.run_dir))
    status = json.loads(status_path.read_text("utf-8"))
    totals = status.get("totals") or {}
    if status.get("status") == "complete":
        print(f"{status_path.parent}: nothing to retry (no failed or missing samples)")
        return 0
    argv, env, cwd = rerun_plan(status)
    print(
        f"retrying {totals.get('failed', 0)} failed and {totals.get('missing', 0)} missing "
        f"sample(s) of {status_path.parent}; finished ones come from {status['cache']['file']}"
    )
    if args.dry_run:
        print(" ".join(argv))
        return 0
    proc = subprocess.run(argv, env=env, cwd=cwd)
    new = json.loads(status_path.read_text("utf-8")) if status_path.is_file() else {}
    if new.get("results_file") == status.get("results_file"):
        print("the rerun wrote no new results", file=sys.stderr)
        return proc.returncode or 1
    old = status.get("results_file", "")
    for path in supersede(status_path.parent, old, new.get("results_file")):
        print(f"superseded: {path}")
    redone = sum((t.get("computed") or 0) for t in (new.get("tasks") or {}).values())
    new_totals = new.get("totals") or {}
    print(
        f"redone: {redone} request(s); from cache: {new_totals.get('from_cache', 0)}; "
        f"still failed: {new_totals.get('failed', 0)}; status: {new.get('status')}"
    )
    return proc.returncode


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``retry-failed`` to the ``mera-mm`` subcommands."""
    retry = sub.add_parser(
        "retry-failed",
        help="redo only the failed samples of a run that used --use_cache",
    )
    retry.add_argument("run_dir", help="the run's results folder (holding run_status.json)")
    retry.add_argument("--dry-run", action="store_true", help="print the rerun command only")
    retry.set_defaults(func=run)
