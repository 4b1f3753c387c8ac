"""Adapter pieces that run without their real checkpoints: the registry, ``auto`` selection from
config.json, and the prompt renderers of the remote-code families (Ultravox, MiniCPM-o,
Phi-4-multimodal), fed with real decoded media."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from lm_eval_patches.media.ref import MediaRef
from lm_eval_patches.server.adapters import ADAPTERS, adapter_class, auto_adapter
from lm_eval_patches.server.adapters.base import BaseModel
from lm_eval_patches.server.adapters.remote_code import (
    minicpm_messages,
    phi4_prompt,
    ultravox_turns,
)
from lm_eval_patches.server.errors import APIError


def png(color=(255, 0, 0), size=(20, 10)) -> MediaRef:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return MediaRef.from_bytes("image", buf.getvalue())


def wav(seconds=0.25, rate=8000) -> MediaRef:
    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(int(seconds * rate), dtype="float32"), rate, format="WAV")
    return MediaRef.from_bytes("audio", buf.getvalue())


def text(t: str) -> dict:
    return {"type": "text", "text": t}


def test_every_adapter_is_a_base_model_with_a_name() -> None:
    for name in ADAPTERS:
        cls = adapter_class(name)
        assert issubclass(cls, BaseModel) and cls.name == name
    with pytest.raises(ValueError, match="unknown adapter 'nope'"):
        adapter_class("nope")


def test_auto_reads_the_model_type(tmp_path: Path) -> None:
    for model_type, expected in [
        ("qwen2_audio", "qwen2-audio"),
        ("qwen2_5_vl", "qwen2-vl"),
        ("llava", "hf-image-text-to-text"),
    ]:
        (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
        assert auto_adapter(str(tmp_path)) == expected
    with pytest.raises(ValueError, match="config.json"):
        auto_adapter(str(tmp_path / "missing"))


def test_ultravox_marks_each_clip_in_place() -> None:
    clip = wav()
    messages = [
        {"role": "system", "content": [text("Кратко.")]},
        {"role": "user", "content": [text("Слушай: "), {"type": "audio", "audio": clip}]},
    ]
    turns, clips = ultravox_turns(messages)
    assert turns == [
        {"role": "system", "content": "Кратко."},
        {"role": "user", "content": "Слушай: <|audio|>"},
    ]
    assert len(clips) == 1 and clips[0].shape == (4000,)  # 0.25 s resampled to 16 kHz
    with pytest.raises(APIError, match="does not take image"):
        ultravox_turns([{"role": "user", "content": [{"type": "image", "image": png()}]}])


def test_phi4_numbers_images_and_audio_separately() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": png()},
                text("и "),
                {"type": "audio", "audio": wav()},
                {"type": "image", "image": png((0, 0, 255))},
                text("?"),
            ],
        }
    ]
    prompt, images, audio = phi4_prompt(messages)
    assert prompt == "<|user|><|image_1|>и <|audio_1|><|image_2|>?<|end|><|assistant|>"
    assert [im.getpixel((0, 0)) for im in images] == [(255, 0, 0), (0, 0, 255)]
    assert len(audio) == 1 and audio[0][1] == 16000


def test_minicpm_keeps_the_order_of_parts() -> None:
    msgs = minicpm_messages(
        [{"role": "user", "content": [text("a"), {"type": "image", "image": png()}, text("b")]}],
        num_frames=4,
    )
    content = msgs[0]["content"]
    assert content[0] == "a" and content[2] == "b" and content[1].size == (20, 10)
