"""vllm-vlm (MeraVLLMVLM) against a stand-in of vLLM's API (tests/vllm_standin.py): the exact
prompts, media and messages it sends for images, audio and video, plain and chat modes,
through real in-process lm-eval evaluations on the fixture datasets."""

from __future__ import annotations

import importlib
import io
from pathlib import Path

import datasets
import huggingface_hub.constants
import pytest

pytest.importorskip("transformers")

import vllm_standin  # noqa: E402
from conftest import TASKS_DIR, run_cli  # noqa: E402
from lm_eval.api.instance import Instance  # noqa: E402
from PIL import Image  # noqa: E402
from tiny_models import CHAT_TEMPLATE, IMAGE_SIZE, PATCH_SIZE, _build_tokenizer  # noqa: E402

import lm_eval_patches  # noqa: E402
from lm_eval_patches.errors import SettingsError, UserError  # noqa: E402
from lm_eval_patches.failures import FAILURES, failure_reason, is_failure  # noqa: E402
from lm_eval_patches.media.ref import MediaRef  # noqa: E402
from lm_eval_patches.models.vllm_inputs import mm_limits  # noqa: E402
from lm_eval_patches.settings import configure  # noqa: E402

# The tiny "vision" model's template: images as <image>, videos as <video> (LLaVA-style).
VISION_TEMPLATE = CHAT_TEMPLATE.replace(
    "{% if part['type'] == 'image' %}<image>",
    "{% if part['type'] == 'image' %}<image>{% elif part['type'] == 'video' %}<video>",
)
# Qwen2-Audio-style: each audio becomes "Audio N: <|audio_bos|><|AUDIO|><|audio_eos|>\n".
AUDIO_TEMPLATE = (
    "{% set n = namespace(a=0) %}{% for m in messages %}{{ m['role'] }}: "
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for p in m['content'] %}"
    "{% if p['type'] == 'audio' %}{% set n.a = n.a + 1 %}"
    "Audio {{ n.a }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif p['type'] == 'text' %}{{ p['text'] }}{% endif %}{% endfor %}{% endif %}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)
AUDIO_PLACEHOLDER = "<|audio_bos|><|AUDIO|><|audio_eos|>"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Config + tokenizer + processor folders (no weights: the stand-in never loads any)."""
    from transformers import (
        CLIPImageProcessor,
        LlamaConfig,
        LlavaConfig,
        LlavaProcessor,
        Qwen2AudioConfig,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    root = tmp_path_factory.mktemp("vllm-models")
    tokenizer = _build_tokenizer()
    tokenizer.add_special_tokens(
        {"additional_special_tokens": ["<video>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]}
    )
    vision = root / "vision"
    LlavaConfig(text_config=LlamaConfig(vocab_size=len(tokenizer))).save_pretrained(vision)
    LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE}),
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        chat_template=VISION_TEMPLATE,
        image_token="<image>",
    ).save_pretrained(vision)
    audio = root / "audio"
    Qwen2AudioConfig().save_pretrained(audio)
    Qwen2AudioProcessor(
        feature_extractor=WhisperFeatureExtractor(),
        tokenizer=tokenizer,
        chat_template=AUDIO_TEMPLATE,
    ).save_pretrained(audio)
    return {"vision": vision, "audio": audio}


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch, mera_env: Path):
    """The vllm stand-in on sys.modules for one test; the hub offline in live config too."""
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    lm_eval_patches.register()
    recorder = vllm_standin.install(
        monkeypatch, {"image": "<image>", "audio": AUDIO_PLACEHOLDER, "video": "<video>"}
    )
    FAILURES.items.clear()
    yield recorder
    from lm_eval.api.registry import _materialise_placeholder

    _materialise_placeholder.cache_clear()


def backend(model: Path, **args):
    from lm_eval_patches.models.vllm_vlm import MeraVLLMVLM

    return MeraVLLMVLM(pretrained=str(model), **args)


def evaluate(lm, task: str, chat: bool, pass_mode: bool = False, limit: int = 2) -> dict:
    import lm_eval
    import lm_eval.tasks

    configure(pass_multimodal_args_to_chat_history=pass_mode)
    manager = lm_eval.tasks.TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    out = lm_eval.simple_evaluate(
        model=lm,
        tasks=[task],
        task_manager=manager,
        limit=limit,
        apply_chat_template=chat,
        fewshot_as_multiturn=chat,
        log_samples=True,
    )
    return out["samples"][task]


# -- without vllm -----------------------------------------------------------------------------
def test_missing_vllm_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    vllm_standin.forget_backend_modules(monkeypatch)
    with pytest.raises(UserError, match=r"pip install 'mera-multimodal\[vllm\]'") as info:
        importlib.import_module("lm_eval_patches.models.vllm_vlm")
    assert "\n" not in str(info.value)


def test_limit_mm_per_prompt_from_args() -> None:
    assert mm_limits() is None
    assert mm_limits('{"image": 20}', max_audios="2") == {"image": 20, "audio": 2}
    assert mm_limits({"video": 1}, max_images=3) == {"video": 1, "image": 3}
    assert mm_limits("image:4;video:1") == {"image": 4, "video": 1}
    with pytest.raises(SettingsError, match="unknown kind 'picture'"):
        mm_limits({"picture": 1})
    with pytest.raises(SettingsError, match="non-negative"):
        mm_limits(max_videos="many")


@pytest.mark.slow
def test_cli_without_vllm_says_how_to_install_it(mera_env: Path) -> None:
    proc = run_cli(
        [
            "run",
            "--model",
            "vllm-vlm",
            "--model_args",
            "pretrained=Qwen/Qwen2-VL-2B-Instruct",
            "--tasks",
            "ruclevr",
            "--include_path",
            str(TASKS_DIR),
        ],  # fmt: skip
        {},
        returncode=2,
    )
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --model vllm-vlm needs vllm and ray, not installed here")
    assert "pip install 'mera-multimodal[vllm]'" in last and "Traceback" not in proc.stderr


def test_registry_and_model_args_string(standin, models) -> None:
    """`--model vllm-vlm --model_args ...` resolves to ours and parses lm-eval's arg string."""
    from lm_eval.api.registry import get_model

    cls = get_model("vllm-vlm")
    assert cls.__name__ == "MeraVLLMVLM" and cls.__module__ == "lm_eval_patches.models.vllm_vlm"
    lm = cls.create_from_arg_string(
        f"pretrained={models['vision']},limit_mm_per_prompt=audio:2;video:1,max_images=3,"
        "image_max_side=20,tensor_parallel_size=2,data_parallel_size=1"
    )
    (engine,) = standin.engines
    assert engine["limit_mm_per_prompt"] == {"audio": 2, "video": 1, "image": 3}
    assert engine["tensor_parallel_size"] == 2 and lm.media_options.image_max_side == 20
    assert lm.placeholders == {"image": "<image>", "audio": "<audio>", "video": "<video>"}


# -- images -----------------------------------------------------------------------------------
def test_images_plain_mode_resized_with_model_placeholders(standin, models) -> None:
    lm = backend(models["vision"], image_max_side=20, max_images=3, tensor_parallel_size=2, seed=7)
    engine = standin.engines[0]
    assert engine["tensor_parallel_size"] == 2 and engine["seed"] == 7
    assert engine["limit_mm_per_prompt"] == {"image": 3}
    samples = evaluate(lm, "ruclevr", chat=True)
    (call,) = [c for c in standin.calls if c["method"] == "generate"]
    assert call["sampling"]["stop"][0] == "\n\n" and call["sampling"]["temperature"] == 0
    assert call["sampling"]["max_tokens"] == 256
    for item, sample in zip(call["items"], samples, strict=True):
        # The processor's chat template wrote the prompt; its <image> stands where the task's
        # placeholder was, and the image itself travels in multi_modal_data, resized.
        assert item["prompt"].startswith("user: ") and item["prompt"].endswith("assistant:")
        assert item["prompt"].count("<image>") == 1
        (image,) = item["media"]["image"]
        assert image["type"] == "Image" and image["mode"] == "RGB" and max(image["size"]) == 20
        assert sample["resps"][0][0] == "generate saw {'image': 1}"


def test_images_chat_mode_resized_in_messages(standin, models) -> None:
    lm = backend(models["vision"], image_width=16, image_height=16)
    samples = evaluate(lm, "ruclevr", chat=True, pass_mode=True)
    conversations = standin.sent("chat")
    assert len(conversations) == len(samples) == 2
    for conversation in conversations:
        messages = conversation["messages"]
        assert {m["role"] for m in messages} == {"user"}
        (image,) = [m["image"] for m in messages if "image" in m]
        assert max(image["size"]) == 16 and image["mime"] in ("image/png", "image/jpeg")
        text = "".join(m.get("text", "") for m in messages)
        assert "<image>" not in text and text.strip()
    assert all(s["resps"][0][0] == "chat saw {'image': 1}" for s in samples)
    (call,) = standin.calls
    assert call["kwargs"]["add_generation_prompt"] is True
    assert call["kwargs"]["continue_final_message"] is False


# -- audio ------------------------------------------------------------------------------------
def test_audio_plain_mode_every_clip_at_the_feature_extractor_rate(standin, models) -> None:
    lm = backend(models["audio"], max_audios=2)
    samples = evaluate(lm, "aquaria", chat=True)  # two recordings per question
    items = standin.sent("generate")
    assert len(items) == len(samples) == 2
    for item in items:
        assert item["prompt"].count(AUDIO_PLACEHOLDER) == 2
        assert "Audio 1: " in item["prompt"] and "Audio 2: " in item["prompt"]
        for clip in item["media"]["audio"]:
            assert clip["type"] == "tuple" and clip["rate"] == 16000
            assert clip["dtype"] == "float32" and len(clip["shape"]) == 1 and clip["shape"][0]


def test_audio_chat_mode_sends_audio_url_parts(standin, models) -> None:
    lm = backend(models["audio"], limit_mm_per_prompt='{"audio": 2}')
    evaluate(lm, "aquaria", chat=True, pass_mode=True)
    for conversation in standin.sent("chat"):
        clips = [m["audio"] for m in conversation["messages"] if "audio" in m]
        assert len(clips) == 2
        assert all(c["mime"].startswith("audio/") and c["frames"] > 0 for c in clips)


# -- video ------------------------------------------------------------------------------------
def test_video_plain_mode_frames_array_without_chat_template(standin, models) -> None:
    lm = backend(models["vision"], video_frames=4)
    samples = evaluate(lm, "commonvideoqa", chat=False)
    items = standin.sent("generate")
    assert len(items) == len(samples) == 2
    for item in items:
        # No chat template: the task's prompt as is, <video> spliced from the template.
        assert not item["prompt"].startswith("user:") and item["prompt"].count("<video>") == 1
        (video,) = item["media"]["video"]
        assert video["type"] == "ndarray" and video["dtype"] == "uint8"
        assert video["shape"][0] == 4 and video["shape"][3] == 3


def test_video_chat_mode_sends_the_original_clip(standin, models) -> None:
    lm = backend(models["vision"])
    evaluate(lm, "commonvideoqa", chat=True, pass_mode=True)
    for conversation in standin.sent("chat"):
        (video,) = [m["video"] for m in conversation["messages"] if "video" in m]
        assert video["mime"].startswith("video/") and video["bytes"] > 0


# -- failures and scaling out -----------------------------------------------------------------
def _png(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, "blue").save(buf, format="PNG")
    return buf.getvalue()


def _request(doc: int, images: list) -> Instance:
    refs = [MediaRef.from_bytes("image", data, where=f"doc {doc}") for data in images]
    context = "Q " + "<image>" * len(refs)
    return Instance(
        request_type="generate_until",
        doc={"meta": {"id": f"id-{doc}"}},
        arguments=(context, {"until": ["\n\n"], "max_gen_toks": 4}, {"visual": refs}),
        idx=0,
        metadata=("t", doc, 1),
    )


def test_a_bad_request_fails_alone(standin, models) -> None:
    lm = backend(models["vision"], max_images=1, batch_size=8)
    good = _png((8, 8))
    requests = [
        _request(0, [good]),
        _request(1, [b"not an image"]),  # cannot be decoded
        _request(2, [good, good]),  # vLLM refuses: over limit_mm_per_prompt
        _request(3, [good]),
        Instance(  # the task already failed to build it (and recorded why)
            request_type="generate_until",
            doc={"meta": {"id": "id-4"}},
            arguments=("Q <image>", {}, {"mera_error": "task t, doc id-4: no image"}),
            idx=0,
            metadata=("t", 4, 1),
        ),
    ]
    answers = lm.generate_until(requests)
    assert answers[0] == answers[3] == "generate saw {'image': 1}"
    assert is_failure(answers[1]) and "doc 1" in failure_reason(answers[1])
    assert is_failure(answers[2]) and "At most 1 image" in failure_reason(answers[2])
    assert failure_reason(answers[4]) == "task t, doc id-4: no image"
    assert [(f.task, f.doc) for f in FAILURES.items] == [("t", "id-1"), ("t", "id-2")]


def test_data_parallel_splits_requests_over_engines(standin, models) -> None:
    lm = backend(models["vision"], data_parallel_size=2)
    answers = lm.generate_until([_request(i, [_png((8, 8))]) for i in range(3)])
    assert answers == ["generate saw {'image': 1}"] * 3
    shards = [len(c["items"]) for c in standin.calls]
    assert sorted(shards) == [1, 2] and standin.ray_shutdowns == 1
    assert all(c["engine"]["model"] == str(models["vision"]) for c in standin.calls)


def test_chat_ending_with_an_assistant_turn_is_continued(standin, models) -> None:
    from lm_eval_patches.messages import ChatHistory, build_messages

    ref = MediaRef.from_bytes("image", _png((30, 10)), where="doc 0")
    chat = ChatHistory(
        build_messages(
            [
                {"role": "user", "content": "<image> Что это?"},
                {"role": "assistant", "content": "Ответ:"},
            ],
            {"visual": [ref]},
        )
    )
    request = Instance(
        request_type="generate_until",
        doc={"meta": {"id": "id-0"}},
        arguments=(chat, {"until": ["\n\n"]}),
        idx=0,
        metadata=("t", 0, 1),
    )
    (answer,) = backend(models["vision"], image_max_side=15).generate_until([request])
    assert answer == "chat saw {'image': 1}"
    (call,) = standin.calls
    assert call["kwargs"]["continue_final_message"] is True
    assert call["kwargs"]["add_generation_prompt"] is False
    (conversation,) = call["items"]
    assert [m["role"] for m in conversation["messages"]] == ["user", "user", "assistant"]
    assert conversation["messages"][0]["image"]["size"] == (15, 5)


def test_audio_is_resampled_and_down_mixed_for_the_model(standin, models) -> None:
    import numpy as np
    import soundfile

    buf = io.BytesIO()
    stereo = np.zeros((22050, 2), dtype="float32")  # 0.5 s at 44.1 kHz
    soundfile.write(buf, stereo, 44100, format="WAV")
    ref = MediaRef.from_bytes("audio", buf.getvalue(), where="doc 0")
    request = Instance(
        request_type="generate_until",
        doc={"meta": {"id": "id-0"}},
        arguments=("Послушайте: <audio>", {"until": ["\n\n"]}, {"audio": [ref]}),
        idx=0,
        metadata=("t", 0, 1),
    )
    backend(models["audio"]).generate_until([request])
    (item,) = standin.sent("generate")
    assert item["prompt"] == f"Послушайте: Audio 1: {AUDIO_PLACEHOLDER}\n"
    assert item["media"]["audio"] == [
        {"type": "tuple", "shape": (8000,), "dtype": "float32", "rate": 16000}
    ]
