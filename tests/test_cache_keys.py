"""Cache keys: media by content hash in every form, model identity without secrets."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from lm_eval_patches.cache.keys import (
    UncacheableRequest,
    identity_hash,
    model_identity,
    request_key,
)
from lm_eval_patches.media.ref import MediaRef
from lm_eval_patches.run_record import masked_command

GEN = {"until": ["\n\n"], "max_gen_toks": 8, "do_sample": False}
MODEL = identity_hash(model_identity("hf-multimodal", "pretrained=/m/a"))


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(buf, format="PNG")
    return buf.getvalue()


def key(media: dict, prompt: str = "What is it? <image>", model: str = MODEL) -> str:
    return request_key("generate_until", (prompt, GEN, media), model)


def test_lazy_refs_key_on_their_source_hash_not_on_loading() -> None:
    calls = []

    def loader() -> bytes:
        calls.append(1)
        return _png((1, 2, 3))

    ref = MediaRef.from_bytes("image", _png((1, 2, 3)))
    lazy = MediaRef("image", ref.sha256, "image/png", "other-name.png", loader)
    assert key({"visual": [ref]}) == key({"visual": [lazy]})
    assert calls == []  # the key never read the bytes
    other = MediaRef.from_bytes("image", _png((9, 9, 9)))
    assert key({"visual": [ref]}) != key({"visual": [other]})


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda c: Image.open(io.BytesIO(_png(c))).convert("RGB"), id="pil"),
        pytest.param(lambda c: _png(c), id="bytes"),
        pytest.param(
            lambda c: {"url": "data:image/png;base64," + base64.b64encode(_png(c)).decode()},
            id="data_url",
        ),
    ],
)
def test_concrete_forms_key_on_content(make) -> None:
    same_a, same_b, other = make((10, 20, 30)), make((10, 20, 30)), make((30, 20, 10))
    assert key({"visual": [same_a]}) == key({"visual": [same_b]})
    assert key({"visual": [same_a]}) != key({"visual": [other]})


def test_audio_arrays_key_on_samples_and_rate() -> None:
    """LOAD_OBJECT audio dicts (the original's form): ndarray values hash, never crash."""
    wave = np.sin(np.linspace(0, 50, 16000, dtype=np.float32))

    def audio(arr: np.ndarray, rate: int = 16000) -> dict:
        return {"audio": [{"array": arr, "sampling_rate": rate, "path": "a.wav"}]}

    base = key(audio(wave), "Listen: <audio>")
    assert base == key(audio(wave.copy()), "Listen: <audio>")
    assert base != key(audio(wave * 0.5), "Listen: <audio>")
    assert base != key(audio(wave, 8000), "Listen: <audio>")
    assert base != key(audio(wave.astype(np.float64)), "Listen: <audio>")


def test_file_paths_key_on_file_content(tmp_path) -> None:
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(_png((5, 5, 5)))
    second.write_bytes(_png((5, 5, 5)))
    k1 = key({"visual": [{"type": "image", "image": str(first)}]})
    assert k1 == key({"visual": [{"type": "image", "image": str(second)}]})
    second.write_bytes(_png((6, 6, 6)))
    assert k1 != key({"visual": [{"type": "image", "image": str(second)}]})


def test_forms_are_part_of_the_key() -> None:
    data = _png((1, 1, 1))
    ref = MediaRef.from_bytes("image", data)
    pil = Image.open(io.BytesIO(data)).convert("RGB")
    keys = {key({"visual": [ref]}), key({"visual": [data]}), key({"visual": [pil]})}
    assert len(keys) == 3


def test_prompt_settings_and_model_change_the_key() -> None:
    ref = MediaRef.from_bytes("image", _png((1, 1, 1)))
    base = key({"visual": [ref]})
    assert base != key({"visual": [ref]}, prompt="Another question <image>")
    assert base != request_key(
        "generate_until",
        ("What is it? <image>", {**GEN, "max_gen_toks": 9}, {"visual": [ref]}),
        MODEL,
    )
    other_model = identity_hash(model_identity("hf-multimodal", "pretrained=/m/b"))
    assert base != key({"visual": [ref]}, model=other_model)
    chat = [{"role": "user", "content": [{"type": "image", "image": ref}]}]
    assert request_key("generate_until", (chat, GEN), MODEL) == request_key(
        "generate_until", (chat, dict(GEN)), MODEL
    )


def test_objects_without_a_content_hash_are_refused() -> None:
    with pytest.raises(UncacheableRequest):
        key({"visual": [object()]})


def test_model_identity_drops_secrets_and_throughput_settings() -> None:
    identity = model_identity(
        "local-chat-completions",
        "model=qwen,base_url=http://127.0.0.1:8000/v1,api_key=sk-XYZ,num_concurrent=8,"
        "batch_size=4,max_retries=3,revision=abc,max_gen_toks=64",
    )
    assert identity == {
        "backend": "local-chat-completions",
        "model_args": {"model": "qwen", "revision": "abc", "max_gen_toks": 64},
    }
    assert identity_hash(identity) == identity_hash(
        model_identity(
            "local-chat-completions",
            {"model": "qwen", "revision": "abc", "max_gen_toks": 64, "num_concurrent": 1},
        )
    )
    assert identity_hash(identity) != identity_hash(
        model_identity("openai-chat-completions", "model=qwen,revision=abc,max_gen_toks=64")
    )


def test_recorded_commands_mask_credentials() -> None:
    argv = ["lm-eval", "--model_args", "model=m,api_key=sk-1,hf_token=t", "--tasks", "weird"]
    assert masked_command(argv) == [
        "lm-eval",
        "--model_args",
        "model=m,api_key=***,hf_token=***",
        "--tasks",
        "weird",
    ]
    assert "sk-1" not in str(masked_command(["lm-eval", '{"api_key": "sk-1", "model": "m"}']))
