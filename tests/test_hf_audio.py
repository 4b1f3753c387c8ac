"""hf-audiolm-qwen on a tiny random Qwen2-Audio built offline: in-process and through the CLI."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import TASKS_DIR, run_cli
from lm_eval.api.instance import Instance
from tiny_models import AUDIO_CHUNK_SECONDS, build_tiny_qwen2_audio

from lm_eval_patches.failures import FAILURE_MARKER, is_failure
from lm_eval_patches.fixtures.sound import make_sound
from lm_eval_patches.media.ref import MediaRef
from lm_eval_patches.models.local_requests import GenSettings


@pytest.fixture(scope="session")
def tiny_qwen2_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen2_audio(tmp_path_factory.mktemp("tiny-qwen2-audio"))


class RecordingProcessor:
    """Wraps a processor: records what each call was given, then delegates."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[dict] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.inner(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def qwen_lm(tiny_qwen2_audio: Path):
    from lm_eval_patches.models.hf_audio import MeraAudioLM

    lm = MeraAudioLM(pretrained=str(tiny_qwen2_audio), dtype="float32", batch_size=1)
    lm.processor = RecordingProcessor(lm.processor)
    return lm


def clip(seconds: float, rate: int, channels: int = 2, seed: int = 0) -> MediaRef:
    data, _ = make_sound(random.Random(seed), "tone", rate=rate, channels=channels, seconds=seconds)
    return MediaRef.from_bytes("audio", data, name=f"tone-{seconds}s-{rate}.wav")


def request(context: Any, audios: list, doc_id: int = 0, **gen: Any) -> Instance:
    gen_kwargs = {"until": ["\n\n"], "do_sample": False, "temperature": 0.0, "max_gen_toks": 5}
    gen_kwargs.update(gen)
    return Instance(
        request_type="generate_until",
        doc={"meta": {"id": 100 + doc_id}},
        arguments=(context, gen_kwargs, {"audio": audios}),
        idx=0,
        metadata=("audio_probe", doc_id, 1),
    )


def chat(text: str) -> Any:
    from lm_eval.models.api_models import JsonChatStr

    return JsonChatStr(json.dumps([{"role": "user", "content": text}], ensure_ascii=False))


def test_every_audio_resampled_and_batches_agree(qwen_lm) -> None:
    """All audio of a request reaches the processor at 16 kHz mono, in order; batch sizes 1
    and 2 give the same greedy replies (plain and chat prompts mixed)."""
    requests = [
        request(
            chat("Первая <audio> и вторая <audio>. Что громче?"),
            [clip(1.0, 44100), clip(0.5, 22050, 1, 1)],
            0,
        ),
        request("Прослушайте <audio> и ответьте.", [clip(0.8, 8000)], 1),
        request(chat("Что слышно? <audio>"), [clip(1.2, 16000, 1, 2)], 2),
        request(chat("Просто вопрос без аудио."), [], 3),
    ]
    qwen_lm.processor.calls.clear()
    qwen_lm.batch_size_per_gpu = 1
    one = qwen_lm.generate_until(requests)
    seen = [call for call in qwen_lm.processor.calls]
    assert [call["sampling_rate"] for call in seen] == [16000] * 4
    first = seen[0]["audio"]
    assert [a.ndim for a in first] == [1, 1]  # down-mixed to mono
    assert [len(a) for a in first] == [16000, 8000]  # 1.0 s and 0.5 s at 16 kHz, in order
    assert len(seen[1]["audio"]) == 1 and len(seen[1]["audio"][0]) == 12800
    assert seen[3]["audio"] is None
    # The chat prompt is the processor's template with the audio in the user turn.
    slot = "<|audio_bos|><|AUDIO|><|audio_eos|>"
    assert (
        f"<|im_start|>user\nПервая Audio 1: {slot}\n и вторая Audio 2: {slot}" in seen[0]["text"][0]
    )
    assert seen[1]["text"][0] == "Прослушайте <|audio_bos|><|AUDIO|><|audio_eos|> и ответьте."

    qwen_lm.batch_size_per_gpu = 2
    qwen_lm.processor.calls.clear()
    two = qwen_lm.generate_until(requests)
    assert [len(call["text"]) for call in qwen_lm.processor.calls] == [2, 2]
    assert one == two
    assert not any(is_failure(a) for a in one)
    qwen_lm.batch_size_per_gpu = 1


def test_long_audio_policy_and_wrong_media(qwen_lm) -> None:
    """Audio past the model's window is cut to it (truncate) or fails its sample (fail); a
    request with an image fails with the reason; the other requests are still answered."""
    long_clip = clip(AUDIO_CHUNK_SECONDS + 1.0, 16000, 1, 3)
    image = MediaRef.from_bytes("image", b"\x89PNG\r\n\x1a\n" + b"0" * 32)
    requests = [
        request("Что слышно? <audio>", [long_clip], 0),
        request("Что видно? <image>", [], 1),
        request("Что слышно? <audio>", [clip(0.7, 16000, 1, 4)], 2),
    ]
    requests[1].arguments = (requests[1].args[0], requests[1].args[1], {"visual": [image]})
    qwen_lm.processor.calls.clear()
    answers = qwen_lm.generate_until(requests)
    assert len(qwen_lm.processor.calls[0]["audio"][0]) == AUDIO_CHUNK_SECONDS * 16000
    assert not is_failure(answers[0]) and not is_failure(answers[2])
    assert answers[1].startswith(FAILURE_MARKER) and "passes only audio" in answers[1]

    qwen_lm.long_audio = "fail"
    try:
        answers = qwen_lm.generate_until(requests[:1] + requests[2:])
    finally:
        qwen_lm.long_audio = "truncate"
    assert answers[0].startswith(FAILURE_MARKER)
    assert f"takes at most {AUDIO_CHUNK_SECONDS} s" in answers[0] and "3.0 s" in answers[0]
    assert not is_failure(answers[1])


def test_generation_length_and_greedy(qwen_lm, monkeypatch: pytest.MonkeyPatch) -> None:
    """max_gen_toks is the number of new tokens; do_sample=False (or absent) is greedy whatever
    the temperature, so two runs agree (B17)."""
    calls: list[tuple[dict, int]] = []
    generate = qwen_lm.model.generate

    def recording_generate(**kwargs: Any) -> Any:
        out = generate(**kwargs)
        calls.append((kwargs, out.shape[1] - kwargs["input_ids"].shape[1]))
        return out

    monkeypatch.setattr(qwen_lm.model, "generate", recording_generate)
    req = request("Ответ: <audio>", [clip(0.6, 16000, 1, 5)], 0, until=[], max_gen_toks=3)
    first = qwen_lm.generate_until([req])[0]
    hot = request("Ответ: <audio>", [clip(0.6, 16000, 1, 5)], 0, until=[], max_gen_toks=3)
    hot.arguments[1]["temperature"] = 1.5
    assert qwen_lm.generate_until([hot])[0] == first and first
    for kwargs, new_tokens in calls:
        assert kwargs["max_new_tokens"] == 3 and new_tokens <= 3
        assert kwargs["do_sample"] is False and "temperature" not in kwargs
    settings = GenSettings.from_gen_kwargs(
        {"do_sample": False, "temperature": 0.7, "top_p": 0.5}, 256
    )
    assert (settings.do_sample, settings.max_new_tokens, settings.extra) == (False, 256, {})


@pytest.mark.slow
def test_hf_audiolm_qwen_cli_with_cache(
    mirror: Path, tiny_qwen2_audio: Path, tmp_path: Path
) -> None:
    """The original's command shape (--apply_chat_template, batch 2) over two audio tasks;
    --use_cache keyed by the media and the model: a rerun at batch size 1 gets every answer from
    the cache, a different model computes its own."""
    cache = tmp_path / "cache" / "qwen"

    def run(
        model: Path, out: Path, batch: str, cache_path: Path | None = cache, launch: tuple = ()
    ) -> dict[tuple[str, int], dict]:
        cached = ["--use_cache", str(cache_path)] if cache_path else []
        env = {"MERA_DATA_DIR": str(mirror)}
        if launch:
            env.update(ACCELERATE_USE_CPU="true", OMP_NUM_THREADS="1")
        proc = run_cli(
            [
                *launch,
                "--model", "hf-audiolm-qwen",
                "--model_args", f"pretrained={model},dtype=float32",
                "--device", "cpu",
                "--apply_chat_template",
                "--include_path", str(TASKS_DIR),
                "--tasks", "ruenvaqa,aquaria",
                "--limit", "2",
                "--batch_size", batch,
                "--gen_kwargs", "max_gen_toks=4",
                *cached,
                "--log_samples",
                "--output_path", str(out),
            ],
            env,
            program="torchrun" if launch else "lm-eval",
        )  # fmt: skip
        if launch:  # each rank generated its share of the 4 requests
            assert proc.stderr.count("Running generate_until requests (hf-audiolm-qwen)") >= 2
            assert "0/2 [" in proc.stderr and "0/4 [" not in proc.stderr
        results = json.loads(next(out.rglob("results_*.json")).read_text())
        for task in ("ruenvaqa", "aquaria"):
            assert results["results"][task]["n_scored,none"] == 2
            assert results["results"][task]["n_failed,none"] == 0
        return {
            (path.name.split("_")[1], row["doc_id"]): row
            for path in out.rglob("samples_*.jsonl")
            for row in map(json.loads, path.read_text().splitlines())
        }

    first = run(tiny_qwen2_audio, tmp_path / "a", "2")
    assert len(first) == 4
    for row in first.values():
        logged = row["arguments"]["gen_args_0"]["arg_0"]  # lm-eval's JsonChatStr, as a list
        history = json.loads(logged[0] if isinstance(logged, list) else logged)
        slots = re.findall(r"<audio(?:_\d+)?>", history[-1]["content"])
        assert history[-1]["role"] == "user" and slots
        audio = row["arguments"]["gen_args_0"]["arg_2"]["audio"]
        assert len(audio) == len(slots) and all(a["sha256"] for a in audio)
        assert not is_failure(row["resps"][0][0])
    second = run(tiny_qwen2_audio, tmp_path / "b", "1")
    assert {k: r["resps"] for k, r in second.items()} == {k: r["resps"] for k, r in first.items()}
    status = json.loads(next((tmp_path / "b").rglob("run_status.json")).read_text())
    assert {t: status["tasks"][t]["from_cache"] for t in ("ruenvaqa", "aquaria")} == {
        "ruenvaqa": 2,
        "aquaria": 2,
    }
    other = build_tiny_qwen2_audio(tmp_path / "other-model", seed=1)
    run(other, tmp_path / "o", "1")
    status = json.loads(next((tmp_path / "o").rglob("run_status.json")).read_text())
    assert all(status["tasks"][t]["from_cache"] == 0 for t in ("ruenvaqa", "aquaria"))

    # Data parallel over two CPU processes (torchrun; `accelerate launch --cpu` starts only
    # one process in accelerate 1.x): ranks split the docs, rank 0 writes them all, and the
    # outputs equal the single-process run's.
    launch = ("--nproc_per_node", "2", "-m", "lm_eval")
    third = run(tiny_qwen2_audio, tmp_path / "c", "2", None, launch)
    assert {k: r["resps"] for k, r in third.items()} == {k: r["resps"] for k, r in first.items()}


def test_harness_tensor_parallel_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The original's HARNESS_TENSOR_PARALLEL=1 is lm-eval's tp_plan="auto", read when a
    backend is built; an explicit plan wins; other values leave it off."""
    from lm_eval_patches.models.hf_scaling import tensor_parallel_kwargs

    monkeypatch.delenv("HARNESS_TENSOR_PARALLEL", raising=False)
    assert tensor_parallel_kwargs({"dtype": "bfloat16"}) == {"dtype": "bfloat16"}
    monkeypatch.setenv("HARNESS_TENSOR_PARALLEL", "1")
    assert tensor_parallel_kwargs({})["tp_plan"] == "auto"
    assert tensor_parallel_kwargs({"tp_plan": "custom"})["tp_plan"] == "custom"
    monkeypatch.setenv("HARNESS_TENSOR_PARALLEL", "0")
    assert "tp_plan" not in tensor_parallel_kwargs({})


def test_pass_mode_chat_history(qwen_lm) -> None:
    """--pass_multimodal_args_to_chat_history: the context is the chat with the audio inside
    its turn and there is no media argument; the same reply as the three-argument form."""
    from lm_eval_patches.messages import ChatHistory, build_messages

    ref = clip(0.9, 22050, 2, 6)
    three = request(chat("Что слышно? <audio>"), [ref], 0)
    history = ChatHistory(
        build_messages([{"role": "user", "content": "Что слышно? <audio>"}], [ref])
    )
    two = request(history, [], 1)
    two.arguments = (history, dict(three.args[1]))
    qwen_lm.processor.calls.clear()
    answers = qwen_lm.generate_until([three, two])
    assert answers[0] == answers[1] and not is_failure(answers[1])
    assert [len(call["audio"][0]) for call in qwen_lm.processor.calls] == [14400, 14400]
