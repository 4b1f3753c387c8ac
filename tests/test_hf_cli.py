"""hf-multimodal through the plain lm-eval CLI, with a tiny random LLaVA built offline.

The run also carries the media checks that need a real CLI run (one run, as each costs ~11 s
before any work): ``LOAD_BASE64=1`` requests reach hf-multimodal, WEIRD's first test picture is
the 180-megapixel case (answered under ``MERA_IMAGE_MAX_PIXELS``), and the samples log names
every picture by its source descriptor, never its data URL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TASKS_DIR, run_cli, write_variant
from tiny_models import build_tiny_llava

from lm_eval_patches.failures import FAILED_EXIT_STATUS, FAILURE_MARKER
from lm_eval_patches.fixtures.builder import HUB_ORG

HUGE = Path(__file__).parent / "cases" / "huge_20000x9000.png"


def _mirror_with_huge_weird(mirror: Path, out: Path) -> int:
    """The session mirror (linked) with WEIRD rewritten: test doc 0 holds the huge case picture;
    returns that doc's id."""
    (out / HUB_ORG).mkdir(parents=True)
    for dataset in (mirror / HUB_ORG).iterdir():
        if dataset.name != "WEIRD":
            (out / HUB_ORG / dataset.name).symlink_to(dataset, target_is_directory=True)

    def huge(record: dict) -> None:
        record["inputs"]["image"] = {**record["inputs"]["image"], "bytes": HUGE.read_bytes()}

    return write_variant("WEIRD", {0: huge}, out)[0]


@pytest.mark.slow
def test_hf_multimodal_image_tasks_and_failed_audio_task(mirror: Path, tmp_path: Path) -> None:
    """Two image tasks answered (LOAD_BASE64 form, one huge picture decoded under the pixel
    budget); an audio task (this backend passes images only) fails every request: counted, no
    score at all (never 0), and the run exits non-zero after writing."""
    model = build_tiny_llava(tmp_path / "tiny-llava")
    huge_id = _mirror_with_huge_weird(mirror, tmp_path / "mirror")
    out = tmp_path / "out"
    proc = run_cli(
        [
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
            "weird,ruclevr,ruenvaqa",
            "--limit",
            "3",
            "--batch_size",
            "2",
            "--gen_kwargs",
            "max_gen_toks=4",
            "--log_samples",
            "--output_path",
            str(out),
        ],
        {
            "MERA_DATA_DIR": str(tmp_path / "mirror"),
            "LOAD_BASE64": "1",
            "MERA_IMAGE_MAX_PIXELS": "1000000",
        },
        returncode=FAILED_EXIT_STATUS,
    )
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    for task in ("weird", "ruclevr"):
        assert 0.0 <= results["results"][task]["exact_match,none"] <= 1.0
        (samples,) = out.rglob(f"samples_{task}_*.jsonl")
        text = samples.read_text()
        assert "base64" not in text and len(text) < 40_000  # no data URL in the log
        rows = [json.loads(line) for line in text.splitlines()]
        assert results["results"][task]["n_scored,none"] == 3
        assert results["results"][task]["n_failed,none"] == 0
        assert len(rows) == 3
        for row in rows:
            prompt = row["arguments"]["gen_args_0"]["arg_0"]
            # The model's chat template rendered the turn, with the image slot kept in place.
            assert prompt.startswith("user:") and "<image>" in prompt
            assert isinstance(row["resps"][0][0], str)
            # One file, one hash: the source descriptor, whatever form the request carried.
            (visual,) = row["arguments"]["gen_args_0"]["arg_2"]["visual"]
            assert visual == {
                "kind": "image",
                "sha256": row["doc"]["inputs"]["image"]["sha256"],
                "mime": row["doc"]["inputs"]["image"]["mime"],
                "name": row["doc"]["inputs"]["image"]["path"],
            }
        if task == "weird":
            assert huge_id in {row["doc"]["meta"]["id"] for row in rows}

    # The audio task: every request failed; its metrics have no value and its counts say why.
    audio = results["results"]["ruenvaqa"]
    assert audio["exact_match,none"] is None and audio["exact_match_norm,none"] is None
    assert (audio["n_scored,none"], audio["n_failed,none"]) == (0, 3)
    rows = [json.loads(line) for line in next(out.rglob("samples_ruenvaqa_*.jsonl")).open()]
    assert len(rows) == 3
    for row in rows:
        answer = row["resps"][0][0]
        assert answer.startswith(FAILURE_MARKER) and "passes only images" in answer
        assert row["exact_match"] is None and row["n_failed"] == 1
    # The table shows the counts and an empty value cell, never 0 for the failed task.
    table = {}
    task = None
    for line in proc.stdout.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) == 11 and cells[5] not in ("Metric", ""):
            task = cells[1].lstrip("- ") or task
            table[(task, cells[5])] = cells[7]
    assert table[("ruenvaqa", "exact_match")] == ""
    assert table[("ruenvaqa", "n_failed")] == "3" and table[("ruenvaqa", "n_scored")] == "0"
    assert table[("weird", "n_scored")] == "3"
    # The last line says what happened, after the table and the files were written.
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("mera: 3 request(s) failed (ruenvaqa 3)")
    assert f"exit status {FAILED_EXIT_STATUS}" in last
