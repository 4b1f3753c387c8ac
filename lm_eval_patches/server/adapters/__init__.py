"""Adapters by name: ``mera-mm serve --adapter NAME`` (``auto`` reads the model's config).

Entries are lazy ``"module:Class"`` strings, so choosing an adapter imports only its module.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from lm_eval_patches.server.adapters.base import BaseModel, Generation, SamplingParams

__all__ = ["ADAPTERS", "BaseModel", "Generation", "SamplingParams", "adapter_class", "auto_adapter"]

_PKG = "lm_eval_patches.server.adapters"
ADAPTERS: dict[str, str] = {
    # Generic Hugging Face families (tested here with tiny random models).
    "hf-image-text-to-text": f"{_PKG}.hf_image:ImageTextToTextModel",
    "qwen2-audio": f"{_PKG}.hf_audio:Qwen2AudioModel",
    "llava-next-video": f"{_PKG}.hf_video:LlavaNextVideoModel",
    # Families the original project served (need their real checkpoints; see docs/backends.md).
    "qwen2-vl": f"{_PKG}.qwen_vl:QwenVLModel",
    "qwen2.5-omni": f"{_PKG}.qwen_omni:QwenOmniModel",
    "ultravox": f"{_PKG}.remote_code:UltravoxModel",
    "minicpm-o": f"{_PKG}.remote_code:MiniCPMOModel",
    "phi-4-multimodal": f"{_PKG}.remote_code:Phi4MultimodalModel",
    # Forward to another OpenAI-compatible server (vLLM, a closed API).
    "proxy": f"{_PKG}.proxy:ProxyModel",
}

# config.json model_type -> adapter, for ``--adapter auto`` (the config says what the model is).
MODEL_TYPES = {
    "qwen2_audio": "qwen2-audio",
    "llava_next_video": "llava-next-video",
    "qwen2_vl": "qwen2-vl",
    "qwen2_5_vl": "qwen2-vl",
    "qwen3_vl": "qwen2-vl",
    "qwen3_vl_moe": "qwen2-vl",
    "qwen2_5_omni": "qwen2.5-omni",
    "ultravox": "ultravox",
    "minicpmo": "minicpm-o",
    "phi4mm": "phi-4-multimodal",
    "phi4_multimodal": "phi-4-multimodal",
}


def adapter_class(name: str) -> type[BaseModel]:
    """The adapter class registered as ``name``; ValueError listing the names when unknown."""
    if name not in ADAPTERS:
        raise ValueError(f"unknown adapter {name!r}; choose one of: auto, {', '.join(ADAPTERS)}")
    module, _, cls = ADAPTERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def auto_adapter(model: str) -> str:
    """The adapter for ``model`` from its ``config.json`` ``model_type`` (a local folder, or a
    hub id through the Hugging Face cache); ``hf-image-text-to-text`` for other types.
    ValueError, asking for ``--adapter``, when no config can be read."""
    config = Path(model) / "config.json"
    if not config.is_file():
        config = _hub_config(model)
    model_type = json.loads(config.read_text()).get("model_type", "")
    return MODEL_TYPES.get(model_type, "hf-image-text-to-text")


def _hub_config(model: str) -> Path:
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(model, "config.json"))
    except Exception as exc:  # noqa: BLE001 - offline, unknown id, no huggingface_hub
        raise ValueError(
            f"--adapter auto cannot read {model!r}'s config.json ({type(exc).__name__}); "
            f"name the adapter: {', '.join(ADAPTERS)}"
        ) from exc
