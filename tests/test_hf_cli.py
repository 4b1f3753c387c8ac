"""hf-multimodal through the plain lm-eval CLI, with a tiny random LLaVA built offline."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import TASKS_DIR, run_cli
from tiny_models import build_tiny_llava


def test_hf_multimodal_chat_template_on_two_image_tasks(mirror: Path, tmp_path: Path) -> None:
    model = build_tiny_llava(tmp_path / "tiny-llava")
    out = tmp_path / "out"
    run_cli(
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
            "weird,ruclevr",
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
        {"MERA_DATA_DIR": str(mirror)},
    )
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    for task in ("weird", "ruclevr"):
        assert 0.0 <= results["results"][task]["exact_match,none"] <= 1.0
        rows = [
            json.loads(line)
            for path in out.rglob(f"samples_{task}_*.jsonl")
            for line in path.read_text().splitlines()
        ]
        assert len(rows) == 3
        for row in rows:
            prompt = row["arguments"]["gen_args_0"]["arg_0"]
            # The model's chat template rendered the turn, with the image slot kept in place.
            assert prompt.startswith("user:") and "<image>" in prompt
            assert isinstance(row["resps"][0][0], str)
            assert row["arguments"]["gen_args_0"]["arg_2"]["visual"][0]["sha256"]
