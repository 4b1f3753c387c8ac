"""The packer on a real demo-like run, through `mera-mm pack` and the original's script command
line, round-tripped through `mera-mm validate` (MERA_SPEC section 11)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import BASELINE_MODEL_ARGS, REPO

from lm_eval_patches.cli import main as cli_main
from lm_eval_patches.submission.expected import ExpectedIds
from lm_eval_patches.submission.logs import samples_logs
from lm_eval_patches.submission.samples import response_text
from lm_eval_patches.submission.table import BY_TASK, LOGS_ZIP, SUBMISSION_DATASETS

pytestmark = pytest.mark.slow
FILES = {d.file for d in SUBMISSION_DATASETS}


def _logged_answers(logs_dir: Path) -> dict[str, dict[int, str]]:
    """{file: {meta.id: filtered response}} straight from the samples logs."""
    answers: dict[str, dict[int, str]] = {}
    for task, logs in samples_logs(logs_dir).items():
        file = BY_TASK[task].file
        for line in logs[0].path.read_text(encoding="utf-8").splitlines():
            sample = json.loads(line)
            answers.setdefault(file, {})[sample["doc"]["meta"]["id"]] = response_text(
                sample["filtered_resps"]
            )
    return answers


def test_pack_demo_run_round_trips_through_the_validator(
    baseline_run: Path, mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    dst = tmp_path / "submission"
    # In-process through mera-mm's own entry point (the script test below spawns a process).
    args = ["pack", "--outputs_dir", str(baseline_run), "--dst_dir", str(dst)]
    assert cli_main(args + ["--model_args", BASELINE_MODEL_ARGS, "--data", str(mirror)]) == 0
    stdout = capsys.readouterr().out
    archive = tmp_path / "submission.zip"
    assert f"submission archive: {archive}" in stdout
    assert "valid and complete: all 18 datasets" in stdout
    assert not (dst / ".zip").exists() and not list(dst.glob("*.zip.partial"))

    with zipfile.ZipFile(archive) as zipped:
        names = set(zipped.namelist())
        assert names == FILES | {LOGS_ZIP}  # the 18 original names at the root, and the logs
        packed = {name: json.loads(zipped.read(name)) for name in FILES}
        logs_zip = zipped.read(LOGS_ZIP)

    # Every answer is the logged filtered response of that doc id; ids are the data's test ids.
    logged = _logged_answers(baseline_run / "mera-baseline")
    # ruTiE is packed from the dialogue variants the demo group runs, under the original ids.
    assert {"rutie_vision_gen", "rutie_audio_gen"} <= set(
        samples_logs(baseline_run / "mera-baseline")
    )
    expected = ExpectedIds(mirror)
    for dataset in SUBMISSION_DATASETS:
        entries = packed[dataset.file]["data"]["test"]
        assert all(set(e) == {"outputs", "meta"} and set(e["meta"]) == {"id"} for e in entries)
        got = {e["meta"]["id"]: e["outputs"] for e in entries}
        assert len(got) == len(entries), f"{dataset.file}: an id packed twice"
        assert got == logged[dataset.file], dataset.file
        assert sorted(got) == sorted(expected.get(dataset)), dataset.file
    science = packed["SchoolScienceVQA.json"]["data"]["test"]
    assert len(science) == 7 * 4  # seven configs concatenated, one id space

    # logs_public.zip: the samples log of every packed task and the run's results log.
    with zipfile.ZipFile(io.BytesIO(logs_zip)) as logs:
        members = logs.namelist()
    assert len([m for m in members if m.startswith("samples_")]) == 32
    assert len([m for m in members if m.startswith("results_")]) == 1

    assert cli_main(["validate", str(archive), "--data", str(mirror)]) == 0
    assert "valid and complete" in capsys.readouterr().out


def test_original_script_command_line(baseline_run: Path, mirror: Path, tmp_path: Path) -> None:
    """The original's README command, unchanged, with its default --dst_dir submission/
    (trailing slash): the archive lands next to the folder, never inside it (B30)."""
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "log_to_submission.py"),
            "--outputs_dir",
            str(baseline_run),
            "--model_args",
            BASELINE_MODEL_ARGS,
        ],
        cwd=tmp_path,
        env={**os.environ, "MERA_DATA_DIR": str(mirror)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "submission.zip").is_file()
    assert sorted(p.name for p in (tmp_path / "submission").iterdir()) == sorted(FILES | {LOGS_ZIP})
    with zipfile.ZipFile(tmp_path / "submission.zip") as zipped:
        assert set(zipped.namelist()) == FILES | {LOGS_ZIP}


def test_pack_without_logs_fails_loudly(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    assert cli_main(["pack", "--outputs_dir", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert "no samples logs" in err and "nothing to pack" not in out
