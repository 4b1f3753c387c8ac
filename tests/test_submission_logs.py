"""Packing from crafted logs: each case of the original packer's bug B30 (archive inside the
folder it zips, dates without microseconds, task variants mixed by a prefix glob), the logs
folder found from --model_args as lm-eval names it, and failed samples reported, not packed."""

from __future__ import annotations

import io
import json
import os
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from lm_eval_patches.failures import FAILED_ANSWER
from lm_eval_patches.submission.expected import ExpectedIds
from lm_eval_patches.submission.logs import (
    LogsError,
    choose_logs,
    find_logs_dir,
    model_folder_name,
    parse_log_date,
    samples_logs,
    split_log_name,
)
from lm_eval_patches.submission.pack import PackError, archive_path, pack_submission
from lm_eval_patches.submission.table import BY_FILE

RUTIE = BY_FILE["ruTiE_Image.json"]
CLEVR = BY_FILE["ruCLEVR.json"]


@pytest.fixture(scope="module")
def expected(mirror: Path) -> ExpectedIds:
    return ExpectedIds(mirror)


def write_samples(folder: Path, task: str, date: str, answers: dict[int, str]) -> Path:
    """A samples log as lm-eval writes it (the fields the packer reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"samples_{task}_{date}.jsonl"
    lines = [
        {
            "doc_id": n,
            "doc": {"meta": {"id": doc_id}, "instruction": "..."},
            "filter": "none",
            "resps": [[text]],
            "filtered_resps": [text],
        }
        for n, (doc_id, text) in enumerate(answers.items())
    ]
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), "utf-8")
    return path


def packed(archive: Path, file: str) -> dict[int, str]:
    with zipfile.ZipFile(archive) as zipped:
        entries = json.loads(zipped.read(file))["data"]["test"]
    return {e["meta"]["id"]: e["outputs"] for e in entries}


# -- B30: the archive goes next to the folder, whatever the spelling -------------------------
@pytest.mark.parametrize("spelling", ["submission/", "submission", "./submission//", "out/sub/"])
def test_archive_next_to_the_folder(spelling: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    archive = archive_path(spelling)
    folder = (tmp_path / spelling).resolve()
    assert archive == folder.parent / f"{folder.name}.zip"
    assert folder not in archive.parents


def test_archive_of_the_current_folder_and_of_root(tmp_path: Path, monkeypatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert archive_path(".") == tmp_path / "work.zip"
    with pytest.raises(PackError, match="filesystem root"):
        archive_path("/")


def test_pack_with_trailing_slash_writes_beside(
    expected: ExpectedIds, mirror: Path, tmp_path: Path, monkeypatch
) -> None:
    logs = tmp_path / "out" / "mera-baseline"
    write_samples(logs, "ruclevr", "2026-11-29T12-00-00.5", dict.fromkeys(expected.get(CLEVR), "2"))
    monkeypatch.chdir(tmp_path)
    result = pack_submission("out", "submission/", allow_partial=True, data_dir=mirror, echo=print)
    assert result.archive == tmp_path / "submission.zip" and result.archive.is_file()
    assert sorted(p.name for p in (tmp_path / "submission").iterdir()) == [
        "logs_public.zip",
        "ruCLEVR.json",
    ]
    with zipfile.ZipFile(result.archive) as zipped:
        assert sorted(zipped.namelist()) == ["logs_public.zip", "ruCLEVR.json"]


# -- B30: any timestamp form; the newest log wins ---------------------------------------------
@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("2026-11-29T12-30-05.123456", datetime(2026, 11, 29, 12, 30, 5, 123456)),
        ("2026-11-29T12-30-05", datetime(2026, 11, 29, 12, 30, 5)),  # microseconds 0
        ("2026-11-29T12:30:05", datetime(2026, 11, 29, 12, 30, 5)),
        ("2026-11-29T12-30-05.5", datetime(2026, 11, 29, 12, 30, 5, 500000)),
    ],
)
def test_log_dates(text: str, parsed: datetime) -> None:
    assert parse_log_date(text) == parsed
    assert split_log_name(f"samples_rutie_vision_gen_{text}.jsonl", "samples_") == (
        "rutie_vision_gen",
        parsed,
    )
    assert split_log_name(f"results_{text}.json", "results_") == ("", parsed)


def test_log_dates_with_offsets_compare_in_time() -> None:
    utc = parse_log_date("2026-11-29T12-30-05Z")
    moscow = parse_log_date("2026-11-29T15-30-05+03-00")
    assert utc is not None and moscow is not None and utc == moscow


def test_newest_log_wins_whatever_its_form(
    expected: ExpectedIds, mirror: Path, tmp_path: Path
) -> None:
    logs = tmp_path / "out"
    ids = expected.get(CLEVR)
    newer = write_samples(logs, "ruclevr", "2026-11-29T10-00-00", dict.fromkeys(ids, "new"))
    older = write_samples(logs, "ruclevr", "2026-11-29T09-59-59.999999", dict.fromkeys(ids, "old"))
    os.utime(newer, (1, 1))  # modification times say the opposite: the names decide
    choices, _ = choose_logs(samples_logs(logs))
    assert [log.path for log in choices[0].logs] == [newer]
    assert "newest of 2 logs" in choices[0].notes[0] and older.name not in choices[0].notes[0]
    result = pack_submission(logs, tmp_path / "sub", allow_partial=True, data_dir=mirror)
    assert set(packed(result.archive, "ruCLEVR.json").values()) == {"new"}


# -- B30: task variants never mixed; the official _gen wins -------------------------------------
def test_rutie_gen_wins_over_default_and_is_not_mixed(
    expected: ExpectedIds, mirror: Path, tmp_path: Path, capsys
) -> None:
    logs = tmp_path / "out"
    ids = expected.get(RUTIE)
    # The default run is newer and covers every id; the _gen run misses the last one.
    write_samples(logs, "rutie_vision_default", "2026-11-29T11-00-00", dict.fromkeys(ids, "D"))
    write_samples(logs, "rutie_vision_gen", "2026-11-29T10-00-00", dict.fromkeys(ids[:-1], "G"))
    write_samples(logs, "rutie_vision", "2026-11-29T12-00-00", dict.fromkeys(ids, "legacy"))
    result = pack_submission(logs, tmp_path / "sub", allow_partial=True, data_dir=mirror)
    out = capsys.readouterr().out
    assert "using rutie_vision_gen; not packed: rutie_vision_default" in out
    assert "not MERA Multi tasks, not packed: rutie_vision" in out
    answers = packed(result.archive, "ruTiE_Image.json")
    assert set(answers.values()) == {"G"} and sorted(answers) == sorted(ids[:-1])
    assert any(p.code == "MM501" and p.where == "ruTiE_Image.json" for p in result.report.problems)
    with zipfile.ZipFile(result.archive) as zipped:
        logs_zip = zipfile.ZipFile(io.BytesIO(zipped.read("logs_public.zip")))
        assert [n for n in logs_zip.namelist() if "rutie" in n] == [
            "samples_rutie_vision_gen_2026-11-29T10-00-00.jsonl"
        ]


def test_rutie_ids_come_from_the_data_not_arithmetic(
    expected: ExpectedIds, mirror: Path, tmp_path: Path
) -> None:
    logs = tmp_path / "out"
    ids = expected.get(RUTIE)
    write_samples(logs, "rutie_vision_default", "2026-11-29T11-00-00", {i: f"a{i}" for i in ids})
    result = pack_submission(logs, tmp_path / "sub", allow_partial=True, data_dir=mirror)
    assert packed(result.archive, "ruTiE_Image.json") == {i: f"a{i}" for i in ids}
    assert min(ids) != 11  # the fixture's ids are not the original's hard-coded offset


# -- failures are unanswered, not answers; incomplete archives are refused ----------------------
def test_failed_samples_are_reported_not_packed(
    expected: ExpectedIds, mirror: Path, tmp_path: Path, capsys
) -> None:
    logs = tmp_path / "out"
    ids = expected.get(CLEVR)
    answers = dict.fromkeys(ids, "3")
    answers[ids[1]] = FAILED_ANSWER
    answers[ids[2]] = "   "
    write_samples(logs, "ruclevr", "2026-11-29T11-00-00", answers)
    (tmp_path / "sub.zip").write_bytes(b"older archive")

    refused = pack_submission(logs, tmp_path / "sub", data_dir=mirror)
    out = capsys.readouterr().out
    assert refused.archive is None and refused.exit_status == 1
    assert (tmp_path / "sub.zip").read_bytes() == b"older archive"  # never half-replaced
    assert not list(tmp_path.glob(".sub.zip*"))
    assert f"2 unanswered, not packed (ids {ids[1]}, {ids[2]})" in out
    assert "NOT written" in out and "--allow-partial" in out and "MM501" in out

    written = pack_submission(logs, tmp_path / "sub", allow_partial=True, data_dir=mirror)
    assert written.exit_status == 0
    assert sorted(packed(written.archive, "ruCLEVR.json")) == sorted(set(ids) - set(ids[1:3]))
    assert [i for i, _ in written.unanswered["ruCLEVR.json"]] == ids[1:3]


def test_a_failure_marker_is_recognised(
    expected: ExpectedIds, mirror: Path, tmp_path: Path, monkeypatch
) -> None:
    from lm_eval_patches.failures import failure_answer

    ids = expected.get(CLEVR)
    answers = dict.fromkeys(ids, "2")
    answers[ids[0]] = failure_answer("HTTP 500")
    write_samples(tmp_path / "out", "ruclevr", "2026-11-29T11-00-00", answers)
    result = pack_submission(
        tmp_path / "out", tmp_path / "sub", allow_partial=True, data_dir=mirror
    )
    assert result.unanswered["ruCLEVR.json"] == [(ids[0], "the request failed: HTTP 500")]
    assert ids[0] not in packed(result.archive, "ruCLEVR.json")


def test_logs_of_other_tasks_only_is_an_error(tmp_path: Path, capsys) -> None:
    from lm_eval_patches.cli import main as cli_main

    write_samples(tmp_path / "out", "arc_easy", "2026-11-29T11-00-00", {1: "A"})
    assert cli_main(["pack", "--outputs_dir", str(tmp_path / "out")]) == 2
    out, err = capsys.readouterr()
    assert "no samples log of a MERA Multi task" in err and "arc_easy" in err
    assert not (tmp_path / "submission.zip").exists()


def test_a_doc_without_its_mera_id_is_an_error(tmp_path: Path) -> None:
    logs = tmp_path / "out"
    path = write_samples(logs, "weird", "2026-11-29T11-00-00", {1: "A"})
    path.write_text(json.dumps({"doc_id": 0, "doc": {}, "filtered_resps": ["A"]}) + "\n")
    with pytest.raises(ValueError, match=r"task weird, .* line 1 .*doc\.meta\.id"):
        pack_submission(logs, tmp_path / "sub", allow_partial=True, data_dir=tmp_path)


# -- the logs folder, as lm-eval names it -------------------------------------------------------
@pytest.mark.parametrize(
    ("model_args", "folder"),
    [
        ("model=mera-baseline,seed=1234", "mera-baseline"),
        ("pretrained=org/Model:v1,dtype=bfloat16", "org__Model__v1"),
        ("pretrained=base/llm,peft=me/adapter", "me__adapter"),  # peft first, as lm-eval does
        ('{"pretrained": "org/m", "dtype": "float16"}', "org__m"),
        ("dtype=float16", None),
    ],
)
def test_model_folder_name(model_args: str, folder: str | None) -> None:
    assert model_folder_name(model_args) == folder


def test_find_logs_dir(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_samples(out / "org__Model__v1", "weird", "2026-11-29T11-00-00", {1: "A"})
    found = find_logs_dir(out, "pretrained=org/Model:v1,dtype=bfloat16")
    assert found == out / "org__Model__v1"
    assert find_logs_dir(out) == found  # the only model folder
    flat = tmp_path / "flat"  # --output_path flat/run.json: lm-eval writes beside it
    write_samples(flat, "weird", "2026-11-29T11-00-00", {1: "A"})
    assert find_logs_dir(flat / "run.json") == flat
    with pytest.raises(LogsError, match="org__Model__v1"):
        find_logs_dir(out, "pretrained=other/model")
    write_samples(out / "second", "weird", "2026-11-29T11-00-00", {1: "A"})
    with pytest.raises(LogsError, match="several models"):
        find_logs_dir(out)
    with pytest.raises(LogsError, match="not a folder"):
        find_logs_dir(tmp_path / "missing")
