"""Broken audio and video files: a clear error naming task, doc and field; the run goes on.

Variants of ruEnvAQA and CommonVideoQA are written with some test docs broken on purpose. Audio
is resolved the way an audio backend would (``MediaRef.as_audio``); video goes end to end
through ``hf-multimodal`` with a tiny offline LLaVA and ``--replace_videos_with_images_amount``,
which decodes the clips' frames, so a broken clip fails only its own request.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import write_variant
from media_samples import garbage, make_audio_only_mp4, truncate
from tiny_models import build_tiny_llava

import lm_eval_patches
from lm_eval_patches.failures import FAILURES, failure_reason
from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.settings import RUN_OPTIONS

REPO = Path(__file__).resolve().parents[1]
TASKS_DIR = REPO / "multimodal_tasks"


def _set_bytes(field: str, make: Callable[[bytes], bytes]) -> Callable[[dict], None]:
    def breaker(record: dict) -> None:
        cell = record["inputs"][field]
        record["inputs"][field] = {**cell, "bytes": make(cell["bytes"])}

    return breaker


def _zero_length_wav(_: bytes) -> bytes:
    import io

    import numpy as np
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, np.zeros(0, dtype="float32"), 16000, format="WAV")
    return buf.getvalue()


def _load(task_name: str, mirror: Path, monkeypatch: pytest.MonkeyPatch):
    import lm_eval.tasks

    monkeypatch.setenv("MERA_DATA_DIR", str(mirror))
    manager = lm_eval.tasks.TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    return manager, manager.load([task_name])["tasks"][task_name]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda data: data[:30], "audio"),  # cut inside the WAV header
        (_zero_length_wav, "no samples"),
        (lambda data: garbage(), "audio"),
    ],
    ids=["truncated", "zero-length", "garbage"],
)
def test_broken_audio_names_task_doc_and_field(
    make: Callable[[bytes], bytes],
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = write_variant("ruEnvAQA", {2: _set_bytes("audio", make)}, tmp_path)
    _, task = _load("ruenvaqa", tmp_path, monkeypatch)
    docs = {doc["meta"]["id"]: doc for doc in task.test_docs()}
    broken_id = ids[2]
    with pytest.raises(MediaError) as info:
        task.doc_media(docs[broken_id])[0].as_audio()
    message = str(info.value)
    assert f"task ruenvaqa, doc {broken_id}, field inputs.audio" in message
    assert expected in message.lower()
    for doc_id, doc in docs.items():  # every other doc still decodes, resampled to 16 kHz
        if doc_id != broken_id:
            samples, rate = task.doc_media(doc)[0].as_audio()
            assert rate == 16000 and samples.size > 0


def test_broken_clips_fail_alone_through_hf_multimodal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lm_eval

    ids = write_variant(
        "CommonVideoQA",
        {
            1: _set_bytes("video", lambda data: truncate(data, 0.3)),
            3: _set_bytes("video", lambda data: make_audio_only_mp4()),
        },
        tmp_path / "mirror",
    )
    model = build_tiny_llava(tmp_path / "llava")
    lm_eval_patches.register()
    monkeypatch.setattr(RUN_OPTIONS, "replace_videos_with_images_amount", 2)
    manager, _ = _load("commonvideoqa", tmp_path / "mirror", monkeypatch)
    FAILURES.items.clear()
    results = lm_eval.simple_evaluate(
        model="hf-multimodal",
        model_args={"pretrained": str(model), "dtype": "float32", "device": "cpu"},
        tasks=["commonvideoqa"],
        task_manager=manager,
        log_samples=True,
        apply_chat_template=True,
        gen_kwargs="max_gen_toks=3",
    )
    failures = {f.doc: f.reason for f in FAILURES.items}
    FAILURES.items.clear()
    assert set(failures) == {str(ids[1]), str(ids[3])}
    for index in (1, 3):
        reason = failures[str(ids[index])]
        assert f"task commonvideoqa, doc {ids[index]}, field inputs.video" in reason
    assert "video stream" in failures[str(ids[3])].lower()
    samples = results["samples"]["commonvideoqa"]
    answered = {row["doc"]["meta"]["id"]: row["resps"][0][0] for row in samples}
    assert len(answered) == 8
    for doc_id, answer in answered.items():
        if str(doc_id) in failures:
            assert failure_reason(answer) == failures[str(doc_id)]
        else:
            assert isinstance(answer, str)
    prompt = samples[0]["arguments"][0][0]
    assert "<video>" not in prompt and prompt.count("<image>") == 2
