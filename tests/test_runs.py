"""A run as a person reads it: failures excluded and counted, MERA group scores that skip a
dataset with no score, user errors as one line, readable output folders (in process)."""

from __future__ import annotations

import argparse
from pathlib import Path

import datasets
import huggingface_hub.constants
import pytest
from conftest import TASKS_DIR, run_cli, write_variant

import lm_eval_patches
from lm_eval_patches.errors import USER_ERROR_EXIT_STATUS, UserError, wants_traceback
from lm_eval_patches.failures import (
    FAILED_ANSWER,
    FAILED_EXIT_STATUS,
    FAILURES,
    FailureLog,
    build_failure_answer,
    failure_answer,
    failure_reason,
    is_failure,
)
from lm_eval_patches.fixtures.builder import build_fixtures
from lm_eval_patches.run_outcome import model_name_for, run_with_outcome, tidy_count_rows

OTHER_AUDIO = ["ruSLUn", "AQUARIA", "ruTiE-Audio"]


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Hub offline in the live config values too (datasets reads the env once at import)."""
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    lm_eval_patches.register()
    return monkeypatch


def _manager():
    import lm_eval.tasks

    return lm_eval.tasks.TaskManager(include_path=str(TASKS_DIR), include_defaults=False)


def _evaluate(**kwargs):
    import lm_eval

    kwargs.setdefault("model", "mera-baseline")
    return lm_eval.simple_evaluate(task_manager=_manager(), **kwargs)


# -- failure answers ----------------------------------------------------------------------------
def test_failure_answer_carries_reason_and_is_recognised() -> None:
    answer = failure_answer("task t, doc 3: cannot decode\naudio")
    assert is_failure(answer) and is_failure(FAILED_ANSWER)
    assert failure_reason(answer) == "task t, doc 3: cannot decode audio"  # one line
    assert not is_failure("") and not is_failure("A") and not is_failure(None)
    built = build_failure_answer(("ctx", {}, {"mera_error": "no image"}))
    assert failure_reason(built) == "no image"


def test_record_returns_the_failure_answer_and_logs_once_per_task(caplog) -> None:
    log = FailureLog()
    with caplog.at_level("DEBUG", logger="lm_eval_patches.failures"):
        answers = [log.record("t", str(i), "no audio path") for i in range(3)]
    new = log.since(0)
    assert all(failure_reason(a) == "no audio path" for a in answers) and len(new) == 3
    assert [r.levelname for r in caplog.records] == ["WARNING", "DEBUG", "DEBUG"]
    line = log.summary_line(new)
    assert line.startswith("mera: 3 request(s) failed (t 3)") and "\n" not in line


def test_failed_scores_mirror_the_metrics_of_a_scored_doc() -> None:
    from lm_eval_patches.tasks.scoring import ScoringOptions, failed_scores, score_doc

    grouped = ScoringOptions.from_dict({"group_by": "meta.group_id"})
    doc = {"outputs": "A", "meta": {"group_id": 7}}
    failed = failed_scores(grouped, doc)
    assert set(failed) == set(score_doc(grouped, doc, "A"))
    assert failed["group_exact_match"] == (7, None) and failed["exact_match_norm"] is None
    slun = ScoringOptions.from_dict({"kind": "slun"})
    gold = '{"intent": "RateBook", "slots": []}'
    assert failed_scores(slun, {"outputs": gold}) == {"intent_em": None, "slot_f1": None}
    assert slun.score_metrics == ["intent_em", "slot_f1"]
    assert grouped.score_metrics == ["exact_match_norm"]


# -- groups -------------------------------------------------------------------------------------
def _no_audio(record: dict) -> None:
    record["inputs"]["audio"] = None


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """mera_audio with every ruEnvAQA request failing (its audio cells are gone)."""
    mirror = tmp_path_factory.mktemp("audio-mirror")
    build_fixtures(mirror, names=OTHER_AUDIO)
    write_variant("ruEnvAQA", {i: _no_audio for i in range(64)}, mirror)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MERA_DATA_DIR", str(mirror))
        mp.setattr(datasets.config, "HF_HUB_OFFLINE", True)
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        lm_eval_patches.register()
        start = len(FAILURES.items)
        results = _evaluate(tasks=["mera_audio"])
        failures = FAILURES.since(start)
        del FAILURES.items[start:]
        task = _manager().load(["ruenvaqa"])["tasks"]["ruenvaqa"]  # a live task for checks
    return {"results": results, "failures": failures, "task": task}


def test_failed_task_has_no_score_and_its_group_skips_it(audio_run: dict) -> None:
    results = audio_run["results"]
    failed = results["results"]["ruenvaqa"]
    assert failed["exact_match,none"] is None and failed["exact_match_norm,none"] is None
    assert failed["n_failed,none"] == len(audio_run["failures"]) > 0
    assert failed["n_scored,none"] == 0
    tasks = results["results"]
    others = [
        tasks["aquaria"]["exact_match_norm,none"],
        (tasks["ruslun"]["intent_em,scoring"] + tasks["ruslun"]["slot_f1,scoring"]) / 2,
        tasks["rutie_audio_gen"]["exact_match_norm,none"],
    ]
    group = results["groups"]["mera_audio"]
    # The mean of the three scored datasets: the failed one is not averaged in as 0.
    assert group["score,none"] == pytest.approx(sum(others) / 3)
    assert group["n_failed,none"] == failed["n_failed,none"]
    names = ["ruenvaqa", "aquaria", "rutie_audio_gen"]
    assert group["n_scored,none"] == tasks["ruslun"]["n_scored,scoring"] + sum(
        tasks[name]["n_scored,none"] for name in names
    )


def test_group_without_any_score_reports_none(audio_run: dict) -> None:
    from lm_eval.api.group import Group

    from lm_eval_patches.groups import macro_over_datasets, sum_over_tasks

    results = audio_run["results"]["results"]
    group = Group("only_failed")
    group.add(audio_run["task"])
    assert macro_over_datasets(group, "score", results) is None
    assert sum_over_tasks(group, "n_failed", results) == results["ruenvaqa"]["n_failed,none"]


# -- the results table --------------------------------------------------------------------------
def test_count_rows_read_as_integers() -> None:
    table = "\n".join(
        [
            "|Tasks|Version|Filter|n-shot|Metric  |   |Value |   |Stderr|",
            "|t    |      1|none  |     0|n_failed|↓  |3.0000|±  |   N/A|",
            "|     |       |none  |     0|score   |   |0.5000|±  |   N/A|",
            "|     |       |none  |     0|em      |↑  |      |±  |   N/A|",
        ]
    )
    lines = tidy_count_rows(table).splitlines()
    assert [c.strip() for c in lines[1].split("|")][7:10] == ["3", "", ""]
    assert lines[2] == table.splitlines()[2] and len(lines[1]) == len(table.splitlines()[1])
    assert [c.strip() for c in lines[3].split("|")][7:10] == ["", "", ""]  # no value, no ±


# -- output folder ------------------------------------------------------------------------------
def test_model_name_falls_back_to_backend() -> None:
    assert model_name_for("mera-baseline", {"seed": 1}) == "mera-baseline"
    assert model_name_for("mera-baseline", "seed=1") == "mera-baseline"
    assert model_name_for("hf-multimodal", {"pretrained": "/m/llava"}) is None
    assert model_name_for("local-chat-completions", "model=qwen,base_url=x") is None


# -- user errors as one line --------------------------------------------------------------------
def _one_line(execute, capsys, ours: bool = True) -> str:
    args = argparse.Namespace(model="mera-baseline", verbosity="INFO")
    with pytest.raises(SystemExit) as info:
        run_with_outcome(execute, args, ours=ours)
    assert info.value.code == USER_ERROR_EXIT_STATUS
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    return err[-1]


def test_missing_dataset_is_one_line(offline, tmp_path: Path, capsys) -> None:
    offline.setenv("MERA_DATA_DIR", str(tmp_path))  # an empty mirror
    line = _one_line(lambda a: _evaluate(tasks=["weird"], limit=1), capsys)
    assert line.startswith("error: task weird: cannot load dataset 'MERA-evaluation/WEIRD'")
    assert f"MERA_DATA_DIR={tmp_path} has no folder MERA-evaluation/WEIRD" in line


def test_missing_mirror_is_one_line(offline, tmp_path: Path, capsys) -> None:
    offline.setenv("MERA_DATA_DIR", str(tmp_path / "nowhere"))
    line = _one_line(lambda a: _evaluate(tasks=["ruclevr"], limit=1), capsys)
    assert line.startswith("error: task ruclevr: cannot load dataset 'MERA-evaluation/ruCLEVR'")
    assert f"MERA_DATA_DIR={tmp_path / 'nowhere'} does not exist" in line


def test_too_many_shots_is_one_line(offline, mera_env: Path, capsys) -> None:
    line = _one_line(lambda a: _evaluate(tasks=["weird"], num_fewshot=5, limit=1), capsys)
    assert line.startswith(
        "error: task weird: --num_fewshot 5 is larger than its few-shot split 'shots' (3 docs)"
    )
    assert "use --num_fewshot 3 or less" in line


def test_conflicting_load_switches_name_the_task(offline, mera_env: Path, capsys) -> None:
    offline.setenv("LOAD_BYTES", "1")
    offline.setenv("LOAD_BASE64", "1")
    line = _one_line(lambda a: _evaluate(tasks=["weird"], limit=1), capsys)
    assert line.startswith("error: task weird: Set at most one of LOAD_OBJECT")
    assert "found LOAD_BYTES, LOAD_BASE64. Unset all but one." in line


def test_conflicting_load_switches_stop_the_cli_before_the_model(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from lm_eval_patches.cli_flags import take_flags

    monkeypatch.setenv("LOAD_OBJECT", "1")
    monkeypatch.setenv("LOAD_FILES", "1")
    with pytest.raises(SystemExit) as info:
        take_flags(argparse.Namespace(model="hf-multimodal"))
    assert info.value.code == USER_ERROR_EXIT_STATUS
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "found LOAD_OBJECT, LOAD_FILES" in line and "Unset all but one" in line


def test_conflicting_resize_args_are_one_line(offline, mera_env: Path, capsys) -> None:
    model_args = {"pretrained": "/nonexistent", "image_max_side": 64, "image_width": 32}
    line = _one_line(
        lambda a: _evaluate(model="hf-multimodal", model_args=model_args, tasks=["weird"]),
        capsys,
    )
    assert line.startswith(
        "error: hf-multimodal --model_args: image_max_side cannot be combined with "
        "image_width/image_height; pass image_max_side alone"
    )


def test_other_exceptions_are_not_hidden() -> None:
    def execute(args):
        raise KeyError("a bug, not a user error")

    with pytest.raises(KeyError):
        run_with_outcome(execute, argparse.Namespace(model="x"), ours=False)


def test_traceback_only_when_asked(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def execute(args):
        raise UserError("task t: fix this")

    monkeypatch.setenv("MERA_TRACEBACK", "1")
    assert wants_traceback() and wants_traceback("info")
    with pytest.raises(SystemExit):
        run_with_outcome(execute, argparse.Namespace(model="x", verbosity="INFO"), ours=False)
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1] == "error: task t: fix this"
    monkeypatch.delenv("MERA_TRACEBACK")
    assert wants_traceback("DEBUG") and not wants_traceback("INFO")


@pytest.mark.slow
def test_user_error_through_the_cli(mirror: Path) -> None:
    """The real CLI: one line as the last output, exit status 2, no traceback."""
    proc = run_cli(
        ["--model", "mera-baseline", "--include_path", str(TASKS_DIR)]
        + ["--tasks", "weird", "--num_fewshot", "5", "--limit", "1"],
        {"MERA_DATA_DIR": str(mirror)},
        returncode=USER_ERROR_EXIT_STATUS,
    )
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: task weird: --num_fewshot 5 is larger than its few-shot")


def test_an_incomplete_run_exits_non_zero_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Samples missing from the outputs (run_status.json counts them) end the run like
    failures do: one line naming the tasks, after everything is written, and a non-zero exit."""
    from lm_eval_patches import run_outcome, run_record

    def execute(args) -> None:  # what the tracker records after writing the results
        run_record.LAST_STATUS = {"tasks": {"weird": {"missing": 2}, "ruclevr": {"missing": 0}}}

    with pytest.raises(SystemExit) as stop:
        run_outcome.run_with_outcome(execute, argparse.Namespace(model="x"), ours=False)
    assert stop.value.code == FAILED_EXIT_STATUS
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("mera: 2 sample(s) missing from the outputs (weird 2)")

    def complete(args) -> None:
        run_record.LAST_STATUS = {"tasks": {"weird": {"missing": 0}}}

    run_outcome.run_with_outcome(complete, argparse.Namespace(model="x"), ours=False)
