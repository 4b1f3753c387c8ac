"""A small stand-in for the part of vLLM's API that ``vllm-vlm`` calls (vLLM needs a CUDA torch
and cannot be installed on the CPU machines the tests run on).

It is put on ``sys.modules`` by :func:`install` (a test fixture calls it through pytest's
``monkeypatch``, so it is gone after the test) and mimics vLLM 0.11:

- ``vllm.LLM(**engine_args)``: records its arguments; ``generate(prompts, sampling_params)``
  takes ``{"prompt", "multi_modal_data"}`` dicts and, as vLLM does, refuses a prompt whose
  count of the model's placeholder text differs from its media count, or that has more media
  of a kind than ``limit_mm_per_prompt`` allows; ``chat(conversations, sampling_params, ...)``
  takes OpenAI-style messages, decodes every data URL (refusing undecodable media) and applies
  the same limits; both record exactly what they were sent (prompts, messages, media types,
  shapes, sizes, sample rates) in :class:`Recorder`;
- ``vllm.SamplingParams`` with vLLM's keyword names only (an unknown one is a TypeError);
- the modules upstream lm-eval imports from (``vllm.lora.request``,
  ``vllm.entrypoints.chat_utils``, ``vllm.transformers_utils.tokenizer``), whose tokenizer is
  the real Hugging Face tokenizer of the model folder;
- ``ray`` with ``remote``/``get``/``shutdown`` run in-process (data parallel);
- package metadata for ``importlib.metadata.version("vllm")``.
"""

from __future__ import annotations

import base64
import importlib.abc
import importlib.machinery
import importlib.metadata
import io
import sys
import types
from dataclasses import dataclass, field
from typing import Any

VERSION = "0.11.0"
SAMPLING_KEYS = {
    "n", "presence_penalty", "frequency_penalty", "repetition_penalty", "temperature", "top_p",
    "top_k", "min_p", "seed", "stop", "stop_token_ids", "ignore_eos", "max_tokens", "min_tokens",
    "logprobs", "prompt_logprobs", "detokenize", "skip_special_tokens",
    "spaces_between_special_tokens", "include_stop_str_in_output",
}  # fmt: skip
MEDIA_PARTS = {"image_url": "image", "audio_url": "audio", "video_url": "video"}


@dataclass
class Recorder:
    """What the stand-in was asked: engines built and every generate/chat call."""

    # Placeholder text the "model" expects in plain prompts, per media kind.
    placeholders: dict[str, str] = field(default_factory=dict)
    engines: list[dict] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)
    ray_shutdowns: int = 0

    def sent(self, method: str) -> list[dict]:
        """Every prompt or conversation sent through ``method``, in order."""
        return [item for call in self.calls if call["method"] == method for item in call["items"]]


def _describe_image(img: Any) -> dict:
    return {"type": type(img).__name__, "size": img.size, "mode": img.mode}


def _describe_mm(kind: str, item: Any) -> dict:
    import numpy as np

    if kind == "image":
        return _describe_image(item)
    if kind == "audio":
        samples, rate = item  # vLLM takes (array, sample rate)
        return {"type": "tuple", "shape": samples.shape, "dtype": str(samples.dtype), "rate": rate}
    assert isinstance(item, np.ndarray), f"video must be an array of frames, got {type(item)}"
    return {"type": "ndarray", "shape": item.shape, "dtype": str(item.dtype)}


def _decode_url(kind: str, url: str) -> dict:
    header, _, payload = url.partition(",")
    assert header.startswith("data:") and header.endswith(";base64"), header[:40]
    data = base64.b64decode(payload, validate=True)
    mime = header[5:].removesuffix(";base64")
    if kind == "image":
        from PIL import Image

        return {"mime": mime, **_describe_image(Image.open(io.BytesIO(data)))}
    if kind == "audio":
        import soundfile

        info = soundfile.info(io.BytesIO(data))
        return {"mime": mime, "rate": info.samplerate, "frames": info.frames}
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        return {"mime": mime, "bytes": len(data), "size": (stream.width, stream.height)}


class SamplingParams:
    def __init__(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - SAMPLING_KEYS
        if unknown:
            raise TypeError(f"SamplingParams got unexpected keyword arguments {sorted(unknown)}")
        self.kwargs = kwargs


def _output(text: str) -> Any:
    return types.SimpleNamespace(outputs=[types.SimpleNamespace(text=text)])


def make_llm(recorder: Recorder) -> type:
    class LLM:
        def __init__(self, **engine_args: Any) -> None:
            from transformers import AutoTokenizer

            recorder.engines.append(engine_args)
            self.engine_args = engine_args
            self.limits = engine_args.get("limit_mm_per_prompt") or {}
            self.tokenizer = AutoTokenizer.from_pretrained(engine_args["model"])
            self.llm_engine = types.SimpleNamespace(
                model_config=types.SimpleNamespace(model=engine_args["model"])
            )

        def get_tokenizer(self) -> Any:
            return self.tokenizer

        def _check_limits(self, counts: dict[str, int]) -> None:
            for kind, count in counts.items():
                limit = self.limits.get(kind)
                if limit is not None and count > limit:
                    raise ValueError(f"At most {limit} {kind}(s) may be provided in one prompt")

        def generate(self, prompts: list, sampling_params: Any = None, **kwargs: Any) -> list:
            items, outputs = [], []
            for prompt in prompts:
                text = prompt["prompt"]
                data = prompt.get("multi_modal_data") or {}
                media = {k: [_describe_mm(k, v) for v in vs] for k, vs in data.items()}
                counts = {k: len(v) for k, v in media.items()}
                for kind, count in counts.items():
                    found = text.count(recorder.placeholders.get(kind, f"<{kind}>"))
                    if found != count:
                        raise ValueError(f"{count} {kind} item(s) but {found} placeholder(s)")
                self._check_limits(counts)
                items.append({"prompt": text, "media": media})
                outputs.append(_output(f"generate saw {counts}"))
            recorder.calls.append(
                {
                    "method": "generate",
                    "items": items,
                    "sampling": sampling_params.kwargs,
                    "kwargs": kwargs,
                    "engine": self.engine_args,
                }  # fmt: skip
            )
            return outputs

        def chat(self, messages: list, sampling_params: Any = None, **kwargs: Any) -> list:
            conversations = messages if messages and isinstance(messages[0], list) else [messages]
            items, outputs = [], []
            for conversation in conversations:
                seen, counts = [], {}
                for message in conversation:
                    content = message["content"]
                    parts = [{"type": "text", "text": content}] if isinstance(content, str) else []
                    for part in parts or content:
                        kind = MEDIA_PARTS.get(part["type"])
                        if kind is None:
                            assert part["type"] == "text", part["type"]
                            seen.append({"role": message["role"], "text": part["text"]})
                            continue
                        counts[kind] = counts.get(kind, 0) + 1
                        url = part[part["type"]]["url"]
                        seen.append({"role": message["role"], kind: _decode_url(kind, url)})
                self._check_limits(counts)
                items.append({"messages": seen})
                outputs.append(_output(f"chat saw {counts}"))
            recorder.calls.append(
                {
                    "method": "chat",
                    "items": items,
                    "sampling": sampling_params.kwargs,
                    "kwargs": kwargs,
                    "engine": self.engine_args,
                }  # fmt: skip
            )
            return outputs

    return LLM


class _EngineArgs:
    """Data parallel: upstream reads the model config from engine args, not an engine."""

    def __init__(self, **engine_args: Any) -> None:
        self.engine_args = engine_args

    def create_model_config(self) -> Any:
        return types.SimpleNamespace(model=self.engine_args["model"])


def _module(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.__dict__.update(attrs)
    return module


class _Distribution(importlib.metadata.Distribution):
    def read_text(self, filename: str) -> str | None:
        return f"Metadata-Version: 2.1\nName: vllm\nVersion: {VERSION}\n" if filename in (
            "METADATA", "PKG-INFO") else None  # fmt: skip

    def locate_file(self, path: Any) -> Any:
        return None


class _MetadataFinder(importlib.abc.MetaPathFinder):
    """Makes ``importlib.metadata.version("vllm")`` answer; imports nothing."""

    def find_spec(self, *args: Any, **kwargs: Any) -> None:
        return None

    def find_distributions(self, context: Any = None) -> list:
        name = getattr(context, "name", None)
        return [_Distribution()] if name in ("vllm", None) else []


def _ray(recorder: Recorder) -> types.ModuleType:
    class _Remote:
        def __init__(self, fn: Any) -> None:
            self.fn = fn

        def remote(self, *args: Any, **kwargs: Any) -> Any:
            return self.fn(*args, **kwargs)  # the "object ref" is the result itself

    def shutdown() -> None:
        recorder.ray_shutdowns += 1

    return _module("ray", remote=_Remote, get=lambda refs: list(refs), shutdown=shutdown)


def install(monkeypatch: Any, placeholders: dict[str, str]) -> Recorder:
    """Put the stand-in on ``sys.modules`` (undone by ``monkeypatch``); forget every module
    that bound names from it. Returns the recorder."""
    from transformers import AutoTokenizer

    recorder = Recorder(placeholders=dict(placeholders))
    llm = make_llm(recorder)

    def get_tokenizer(name: str, **kwargs: Any) -> Any:
        return AutoTokenizer.from_pretrained(name)

    def resolve_hf_chat_template(tokenizer: Any, chat_template: Any = None, **kwargs: Any):
        return chat_template or getattr(tokenizer, "chat_template", None)

    modules = {
        "vllm": _module(
            "vllm",
            __version__=VERSION,
            LLM=llm,
            SamplingParams=SamplingParams,
            TextPrompt=dict,
            TokensPrompt=dict,
        ),  # fmt: skip
        "vllm.lora": _module("vllm.lora"),
        "vllm.lora.request": _module("vllm.lora.request", LoRARequest=tuple),
        "vllm.entrypoints": _module("vllm.entrypoints"),
        "vllm.entrypoints.chat_utils": _module(
            "vllm.entrypoints.chat_utils", resolve_hf_chat_template=resolve_hf_chat_template
        ),
        "vllm.engine": _module("vllm.engine"),
        "vllm.engine.arg_utils": _module("vllm.engine.arg_utils", EngineArgs=_EngineArgs),
        "vllm.transformers_utils": _module("vllm.transformers_utils"),
        "vllm.transformers_utils.tokenizer": _module(
            "vllm.transformers_utils.tokenizer", get_tokenizer=get_tokenizer
        ),
        "ray": _ray(recorder),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    # Upstream registers "vllm" when imported: give the registry back its lazy entries after.
    from lm_eval.api.registry import _materialise_placeholder, model_registry

    from lm_eval_patches.registration import register_backends

    register_backends()
    for alias in ("vllm", "vllm-vlm"):
        monkeypatch.setitem(model_registry._objs, alias, model_registry._objs[alias])
    _materialise_placeholder.cache_clear()
    monkeypatch.setattr(sys, "meta_path", [_MetadataFinder(), *sys.meta_path])
    forget_backend_modules(monkeypatch)
    return recorder


def forget_backend_modules(monkeypatch: Any) -> None:
    """Drop (for the test) the modules that import vllm, so the next import binds afresh."""
    for name in (
        "lm_eval.models.vllm_causallms",
        "lm_eval.models.vllm_vlms",
        "lm_eval_patches.models.vllm_vlm",
    ):
        monkeypatch.delitem(sys.modules, name, raising=False)
