"""Crash and resume through the plain lm-eval CLI: kill -9, rerun, nothing finished is redone.

Also: a run with failed samples, then ``mera-mm retry-failed`` redoing only those.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from conftest import BIN, REPO, TASKS_DIR, run_cli, write_variant
from tiny_models import build_tiny_llava


def cache_entries(path: Path) -> int:
    """Answers in a cache file, read while a writer may be running (0 before it exists)."""
    if not path.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return int(db.execute("SELECT COUNT(*) FROM mera_answers").fetchone()[0])
        finally:
            db.close()
    except sqlite3.OperationalError:
        return 0  # the writer is creating the schema


def outputs(out: Path) -> tuple[dict, dict]:
    """(results' metrics per task, {task: {doc_id: (resps, filtered_resps)}}) of a run
    (files moved to ``superseded/`` by retry-failed are not the run's outputs)."""

    def current(pattern: str) -> list[Path]:
        return [p for p in out.rglob(pattern) if "superseded" not in p.parts]

    (results_file,) = current("results_*.json")
    results = json.loads(results_file.read_text())
    samples: dict = {}
    for path in current("samples_*.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            task = path.name.removeprefix("samples_").rsplit("_", 1)[0]
            samples.setdefault(task, {})[row["doc_id"]] = (row["resps"], row["filtered_resps"])
    return results["results"], samples


def run_status(out: Path) -> dict:
    return json.loads(next(out.rglob("run_status.json")).read_text())


def kill_when(argv: list[str], env: dict, ready, timeout: float = 300) -> int:
    """Start ``lm-eval argv``, SIGKILL it as soon as ``ready()`` is true; its return code."""
    proc = subprocess.Popen(
        [str(BIN / "lm-eval"), *argv],
        env={**os.environ, **env},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if ready():
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        return proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()


def uninterrupted_hf_run(model: Path, mirror: Path) -> tuple[dict, dict]:
    """The same evaluation run in this process without any cache, as :func:`outputs` reads a
    CLI run's files (a fresh CLI process would cost a start-up and a model load more)."""
    import lm_eval
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import handle_non_serializable

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MERA_DATA_DIR", str(mirror))
        results = lm_eval.simple_evaluate(
            model="hf-multimodal",
            model_args=f"pretrained={model},dtype=float32,image_max_side=48",
            tasks=["weird"],
            limit=6,
            batch_size=1,
            device="cpu",
            gen_kwargs="max_gen_toks=8",
            apply_chat_template=True,
            log_samples=True,
            task_manager=TaskManager(include_path=str(TASKS_DIR), include_defaults=False),
        )
    plain = json.loads(json.dumps(results, default=handle_non_serializable))
    samples = {
        task: {row["doc_id"]: (row["resps"], row["filtered_resps"]) for row in rows}
        for task, rows in plain["samples"].items()
    }
    return plain["results"], samples


@pytest.mark.slow
def test_tiny_hf_model_killed_mid_run_resumes_without_recomputing(
    mirror: Path, tmp_path: Path
) -> None:
    model = build_tiny_llava(tmp_path / "tiny-llava")

    def argv(out: Path, cache: Path) -> list[str]:
        return [
            "--model",
            "hf-multimodal",
            "--model_args",
            f"pretrained={model},dtype=float32,image_max_side=48",
            "--device",
            "cpu",
            "--apply_chat_template",
            "--include_path",
            str(TASKS_DIR),
            "--tasks",
            "weird",
            "--limit",
            "6",
            "--batch_size",
            "1",
            "--gen_kwargs",
            "max_gen_toks=8",
            "--log_samples",
            "--output_path",
            str(out),
            "--use_cache",
            str(cache),
        ]

    env = {"MERA_DATA_DIR": str(mirror)}
    reference = uninterrupted_hf_run(model, mirror)

    cache, out = tmp_path / "cache", tmp_path / "run"
    cache_file = cache.with_name("cache.sqlite")
    # All 6 requests go to the backend in one call: answers on disk before it returns are
    # stored one by one.
    code = kill_when(argv(out, cache), env, lambda: cache_entries(cache_file) >= 2)
    assert code == -signal.SIGKILL
    stored = cache_entries(cache_file)
    assert 2 <= stored < 6, stored
    assert not list(out.rglob("results_*.json"))

    run_cli(argv(out, cache), env)
    status = run_status(out)
    assert status["totals"]["from_cache"] == stored
    assert sum(t["computed"] for t in status["tasks"].values()) == 6 - stored
    assert outputs(out) == reference


def _without_image(record: dict) -> None:
    record["inputs"]["image"] = None  # the prompt's <image> slot then has no media


@pytest.mark.slow
def test_failed_samples_are_redone_alone_by_retry_failed(mirror: Path, tmp_path: Path) -> None:
    """A doc that cannot be built fails alone; once its data is fixed, retry-failed redoes only
    it and the run's folder holds complete outputs, as if it had never failed."""
    data = tmp_path / "mirror"
    (data / "MERA-evaluation").mkdir(parents=True)
    for name in ("ruEnvAQA",):
        os.symlink(mirror / "MERA-evaluation" / name, data / "MERA-evaluation" / name)
    broken = write_variant("WEIRD", {1: _without_image}, data)
    env = {"MERA_DATA_DIR": str(data)}
    out, cache = tmp_path / "run", tmp_path / "cache"
    argv = [
        "--model",
        "mera-baseline",
        "--include_path",
        str(TASKS_DIR),
        "--tasks",
        "weird,ruenvaqa",
        "--limit",
        "5",
        "--log_samples",
        "--output_path",
        str(out),
        "--use_cache",
        str(cache),
    ]
    first = subprocess.run(
        [str(BIN / "lm-eval"), *argv],
        env={**os.environ, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    status = run_status(out)
    assert status["status"] == "failed", first.stderr[-3000:]
    weird = status["tasks"]["weird"]
    assert (weird["requested"], weird["done"], weird["failed"]) == (5, 4, 1)
    (reason,) = weird["failed_by_reason"]
    assert f"doc {broken[1]}" in reason and "inputs.image" in reason
    assert status["tasks"]["ruenvaqa"]["failed"] == 0
    record = status["reproducibility"]
    assert record["command"][-2:] == ["--use_cache", str(cache)]
    assert record["environment"]["MERA_DATA_DIR"] == str(data)
    assert record["libraries"]["lm_eval"] and record["media"]["video_decoders"]["order"]
    weird_data = record["datasets"]["weird"]
    assert weird_data["source"].startswith("mirror:") and weird_data["fingerprints"]["test"]
    assert cache_entries(cache.with_name("cache.sqlite")) == 9  # never a failed answer

    write_variant("WEIRD", {}, data)  # the data is fixed
    run_folder = next(out.rglob("run_status.json")).parent
    proc = run_cli(["retry-failed", str(out)], env, program="mera-mm")
    assert "redone: 1 request(s); from cache: 9; still failed: 0" in proc.stdout
    status = run_status(out)
    assert status["status"] == "complete"
    assert len(list(run_folder.glob("results_*.json"))) == 1
    assert len(list((run_folder / "superseded").glob("*"))) == 3
    metrics, samples = outputs(run_folder)
    assert sorted(samples["weird"]) == [0, 1, 2, 3, 4]
