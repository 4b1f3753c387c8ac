"""The remote-code audio families through the CLI, against stand-ins with their interfaces
(``tests/standin_audio``: the real checkpoints cannot be fetched here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TASKS_DIR, run_cli
from standin_models import build_standin_audio

from lm_eval_patches.failures import FAILED_EXIT_STATUS, FAILURE_MARKER


def run_family(family: str, mirror: Path, tmp_path: Path, returncode: int = 0) -> tuple:
    model = build_standin_audio(tmp_path / family, family)
    out = tmp_path / "out"
    run_cli(
        [
            "--model", f"hf-audiolm-{family}",
            "--model_args", f"pretrained={model}",
            "--trust_remote_code",
            "--device", "cpu",
            "--apply_chat_template",
            "--include_path", str(TASKS_DIR),
            "--tasks", "ruenvaqa,aquaria",
            "--limit", "2",
            "--batch_size", "2",
            "--gen_kwargs", "max_gen_toks=7",
            "--log_samples",
            "--output_path", str(out),
        ],
        {"MERA_DATA_DIR": str(mirror), "HF_MODULES_CACHE": str(tmp_path / "modules"),
         "HF_HOME": str(tmp_path / "hf-home")},
        returncode=returncode,
    )  # fmt: skip
    results = json.loads(next(out.rglob("results_*.json")).read_text())["results"]
    replies = {
        task: [
            json.loads(line)["resps"][0][0]
            for line in next(out.rglob(f"samples_{task}_*.jsonl")).read_text().splitlines()
        ]
        for task in ("ruenvaqa", "aquaria")
    }
    return results, replies


@pytest.mark.slow
def test_minicpm_every_audio_in_place_greedy(mirror: Path, tmp_path: Path) -> None:
    results, replies = run_family("minicpm", mirror, tmp_path)
    assert results["aquaria"]["n_scored,none"] == 2 and results["ruenvaqa"]["n_scored,none"] == 2
    for reply in replies["ruenvaqa"] + replies["aquaria"]:
        seen = json.loads(reply)
        # Greedy (B17), length from max_gen_toks, the prompt in the user's turn.
        assert seen["sampling"] is False and seen["max_new_tokens"] == 7
        ((role, parts),) = seen["turns"]
        assert role == "user" and parts[0][0] == "text"
        for part in parts:
            if part[0] == "audio":
                assert part[1:3] == ["float32", 1]  # mono float arrays
    # aquaria has two recordings: both reach the model, each at its place in the text.
    ((_, parts),) = json.loads(replies["aquaria"][0])["turns"]
    assert [p[0] for p in parts] == ["text", "audio", "text", "audio", "text"]


@pytest.mark.slow
def test_qwen_audio_chat_files_at_16k_every_audio(mirror: Path, tmp_path: Path) -> None:
    results, replies = run_family("qwen-audio-chat", mirror, tmp_path)
    assert results["aquaria"]["n_failed,none"] == 0
    for reply in replies["aquaria"]:
        seen = json.loads(reply)
        assert [a[:2] for a in seen["audios"]] == [[16000, 1], [16000, 1]]  # B19: not just one
        assert seen["query"].count("<audio>FILE</audio>") == 2
        assert seen["gen"] == {"do_sample": False, "max_new_tokens": 7}
    # Content-addressed files: no collisions between clips with the same source name (B19).
    assert len(list((tmp_path / "hf-home" / "lm_eval_media" / "audios").glob("*.wav"))) >= 3


@pytest.mark.slow
def test_ultravox_user_role_and_one_audio_limit(mirror: Path, tmp_path: Path) -> None:
    results, replies = run_family("ultravox", mirror, tmp_path, returncode=FAILED_EXIT_STATUS)
    assert results["ruenvaqa"]["n_scored,none"] == 2
    for reply in replies["ruenvaqa"]:
        seen = json.loads(reply)
        assert [role for role, _ in seen["turns"]] == ["user"]  # B18: not the assistant role
        assert seen["turns"][0][1].count("<|audio|>") == 1
        assert seen["settings"] == {"max_new_tokens": 7} and seen["sampling_rate"] == 16000
    # Two recordings per aquaria doc: a clear per-sample failure, never a silent drop.
    assert results["aquaria"]["n_failed,none"] == 2
    assert all(r.startswith(FAILURE_MARKER) and "max_audios=1" in r for r in replies["aquaria"])


def test_remote_code_only_when_asked(tmp_path: Path) -> None:
    from lm_eval_patches.models.hf_audio_remote import MeraMiniCPMAudioLM

    model = build_standin_audio(tmp_path / "minicpm", "minicpm")
    with pytest.raises(ValueError, match="trust_remote_code"):
        MeraMiniCPMAudioLM(pretrained=str(model), device="cpu")
