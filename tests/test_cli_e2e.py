"""Plain `lm-eval` CLI end to end on fixture data (the way a user runs it)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import ALL_TASKS, SCIENCE_CONFIGS, TASKS_DIR, VIDEO_TASKS, run_cli


def _outputs(out: Path) -> tuple[dict, dict[str, list[dict]]]:
    results = [json.loads(p.read_text()) for p in out.rglob("results_*.json")]
    assert len(results) == 1, list(out.rglob("*"))
    samples = {}
    for path in out.rglob("samples_*.jsonl"):
        task = path.name.removeprefix("samples_").rsplit("_", 1)[0]
        samples[task] = [json.loads(line) for line in path.read_text().splitlines()]
    return results[0], samples


def _source_hashes(mirror: Path) -> set[str]:
    hashes = set()
    for path in (mirror / "MERA-evaluation").rglob("test-*.parquet"):
        for inputs in pq.read_table(path, columns=["inputs"]).column("inputs").to_pylist():
            for value in inputs.values():
                if isinstance(value, dict) and value.get("bytes"):
                    hashes.add(hashlib.sha256(value["bytes"]).hexdigest())
    return hashes


def test_all_tasks_with_original_flags(mirror: Path, tmp_path: Path) -> None:
    """mera_multimodal (all 18 datasets) through plain lm-eval, with the original flags."""
    out = tmp_path / "out"
    proc = run_cli(
        [
            "--model",
            "mera-baseline",
            "--include_path",
            str(TASKS_DIR),
            "--tasks",
            "mera_multimodal",
            "--apply_chat_template",
            "--pass_multimodal_args_to_chat_history",
            "--replace_videos_with_images_amount",
            "4",
            "--log_samples",
            "--output_path",
            str(out),
            "--seed",
            "1234",
        ],
        {"MERA_DATA_DIR": str(mirror)},
    )
    results, samples = _outputs(out)
    # No model= in --model_args: the output folder is named after the backend, not at random.
    assert [p.name for p in out.iterdir()] == ["mera-baseline"]
    # Every task has explicit generation settings (the original's defaults).
    assert "No `generation_kwargs` specified" not in proc.stderr
    for task in ALL_TASKS:
        metric = "intent_em,scoring" if task == "ruslun" else "exact_match,none"
        assert 0.0 <= results["results"][task][metric] <= 1.0, task
        assert samples[task], task
    for group in ("runaturalsciencevqa", "schoolsciencevqa", "unisciencevqa"):
        assert 0.0 <= results["groups"][group]["exact_match,none"] <= 1.0
    _check_group_scores(results)
    assert "group_exact_match,none" in results["results"]["ruhhh_image"]
    assert "exact_match_norm" in proc.stdout and "ruhhh_image" in proc.stdout

    # Logged samples name media by the hash of the source bytes, never by pixels.
    known = _source_hashes(mirror)
    logged = [
        ref["sha256"]
        for task, rows in samples.items()
        if task not in VIDEO_TASKS
        for row in rows
        for ref in row["arguments"]["gen_args_0"]["arg_2"].get("visual", [])
    ]
    # --replace_videos_with_images_amount 4: each video became 4 frame images at its slot.
    for task in VIDEO_TASKS:
        row = samples[task][0]["arguments"]["gen_args_0"]
        frames = row["arg_2"]["visual"]
        assert len(frames) == 4 and all("#frame" in ref["name"] for ref in frames)
        assert "video" not in row["arg_2"] and row["arg_0"].count("<image>") == 4
    assert logged and set(logged) <= known
    one = samples["weird"][0]["arguments"]["gen_args_0"]["arg_2"]["visual"][0]
    assert one["mime"] in ("image/png", "image/jpeg")


def _task_score(result: dict) -> float:
    if "intent_em,scoring" in result:  # ruSLUn: the mean of its two metrics
        return (result["intent_em,scoring"] + result["slot_f1,scoring"]) / 2
    return result["exact_match_norm,none"]


def _check_group_scores(results: dict) -> None:
    """Each MERA group's score is the mean over its datasets; a science dataset's score is its
    subtasks' mean weighted by samples scored; counts add up."""
    tasks, subtasks = results["results"], results["group_subtasks"]
    science = {name: subtasks[name] for name in SCIENCE_CONFIGS}

    def dataset_score(name: str) -> float:
        if name in science:
            parts = [(_task_score(tasks[t]), tasks[t]["n_scored,none"]) for t in science[name]]
            return sum(v * w for v, w in parts) / sum(w for _, w in parts)
        return _task_score(tasks[name])

    modality = {
        "mera_image": subtasks["mera_image"],
        "mera_audio": subtasks["mera_audio"],
        "mera_video": subtasks["mera_video"],
    }
    assert sum(len(v) for v in modality.values()) == 18  # datasets, science sets counted once
    for group, names in modality.items():
        expected = sum(dataset_score(n) for n in names) / len(names)
        assert results["groups"][group]["score,none"] == pytest.approx(expected), group
    every = [n for names in modality.values() for n in names]
    overall = results["groups"]["mera_multimodal"]
    assert overall["score,none"] == pytest.approx(sum(map(dataset_score, every)) / 18)
    assert overall["n_scored,none"] == sum(
        tasks[t].get("n_scored,none", tasks[t].get("n_scored,scoring")) for t in ALL_TASKS
    )
    assert overall["n_failed,none"] == 0


def test_predict_only_on_private_splits(tmp_path: Path) -> None:
    """Hub-style private splits (empty golds): --predict_only works; scoring says gold missing."""
    mirror = tmp_path / "private"
    run_cli(
        ["fixtures", "--out", str(mirror), "--datasets", "LabTabVQA", "ruCLEVR", "--private"],
        {},
        program="mera-mm",
    )
    env = {"MERA_DATA_DIR": str(mirror)}
    out = tmp_path / "predict"
    run_cli(
        [
            "--model",
            "mera-baseline",
            "--include_path",
            str(TASKS_DIR),
            "--tasks",
            "labtabvqa",
            "--predict_only",
            "--output_path",
            str(out),
        ],
        env,
    )
    _, samples = _outputs(out)
    assert len(samples["labtabvqa"]) == 8
    assert all(row["target"] == "" for row in samples["labtabvqa"])

    proc = run_cli(
        [
            "--model",
            "mera-baseline",
            "--include_path",
            str(TASKS_DIR),
            "--tasks",
            "labtabvqa,ruclevr",
        ],
        env,
    )
    assert "task labtabvqa: docs without a gold answer" in proc.stderr
    rows = {
        line.split("|")[1].strip(): line.split("|")
        for line in proc.stdout.splitlines()
        if line.startswith("|") and "exact_match " in line
    }
    assert rows["labtabvqa"][7].strip() == ""  # no score at all: never a fake 0, nor "nan"
    assert 0.0 <= float(rows["ruclevr"][7]) <= 1.0  # a public set keeps its golds


def test_unknown_dataset_is_a_clear_error(tmp_path: Path) -> None:
    proc = pytest.importorskip("subprocess").run(
        [
            str(Path(run_cli.__globals__["BIN"]) / "mera-mm"),
            "fixtures",
            "--out",
            str(tmp_path),
            "--datasets",
            "NoSuchSet",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "unknown dataset" in proc.stderr and "nosuchset" in proc.stderr
