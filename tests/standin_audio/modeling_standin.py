"""Stand-ins for remote-code audio models (Qwen-Audio-Chat, MiniCPM-o, Ultravox).

These families ship their model classes as code inside their checkpoints, which cannot be
fetched here. Each stand-in below is loaded the same way (``trust_remote_code=True`` from a
checkpoint folder whose ``auto_map`` names this file) and has the same call interface as the
real family, but instead of a language model it answers with a JSON summary of what it was
given (roles, part order, audio lengths and rates, generation settings), so tests can check
exactly what the backend sent.
"""

from __future__ import annotations

import json
import re
import wave

import numpy as np
import torch
from transformers import Pipeline, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerFast


class StandinAudioConfig(PretrainedConfig):
    model_type = "mera_standin_audio"

    def __init__(self, family: str = "minicpm", **kwargs):
        self.family = family
        super().__init__(**kwargs)


class _Base(PreTrainedModel):
    config_class = StandinAudioConfig
    base_model_prefix = "standin"

    def __init__(self, config):
        super().__init__(config)
        self.proj = torch.nn.Linear(2, 2)  # real weights, so from_pretrained has something to load
        self.post_init()

    def forward(self, *args, **kwargs):
        raise NotImplementedError("the stand-in only answers through its family's chat API")


def _audio_facts(array: np.ndarray) -> list:
    array = np.asarray(array)
    return [str(array.dtype), array.ndim, int(array.shape[-1])]


class StandinMiniCPMO(_Base):
    """MiniCPM-o's interface: ``chat(msgs, tokenizer, sampling, max_new_tokens, ...)`` with
    content lists of strings and 16 kHz float arrays."""

    def chat(self, msgs, tokenizer=None, sampling=True, max_new_tokens=2048, **kwargs):
        turns = []
        for message in msgs:
            parts = [
                ["text", item] if isinstance(item, str) else ["audio", *_audio_facts(item)]
                for item in message["content"]
            ]
            turns.append([message["role"], parts])
        return json.dumps(
            {
                "family": "minicpm",
                "turns": turns,
                "sampling": sampling,
                "max_new_tokens": max_new_tokens,
                "options": sorted(kwargs),
            },
            ensure_ascii=False,
        )


class StandinQwenAudioChat(_Base):
    """Qwen-Audio-Chat's interface: ``chat(tokenizer, query, history, system, **gen)`` with the
    query from ``tokenizer.from_list_format`` holding audio file paths."""

    def chat(self, tokenizer, query, history=None, system="You are a helpful assistant.", **kwargs):
        audios = []
        for path in re.findall(r"<audio>(.*?)</audio>", query):
            with wave.open(path) as clip:
                audios.append([clip.getframerate(), clip.getnchannels(), clip.getnframes()])
        reply = json.dumps(
            {
                "family": "qwen-audio-chat",
                "query": re.sub(r"<audio>.*?</audio>", "<audio>FILE</audio>", query),
                "audios": audios,
                "history": len(history or []),
                "system": system,
                "gen": {k: v for k, v in sorted(kwargs.items()) if k != "stop_words_ids"},
            },
            ensure_ascii=False,
        )
        return reply, [*(history or []), (query, reply)]


class StandinQwenTokenizer(PreTrainedTokenizerFast):
    """Qwen-Audio-Chat's tokenizer addition: ``from_list_format``."""

    def from_list_format(self, list_format):
        text, count = "", 0
        for element in list_format:
            if "audio" in element:
                count += 1
                text += f"Audio {count}:<audio>{element['audio']}</audio>\n"
            elif "text" in element:
                text += element["text"]
        return text


class StandinUltravox(_Base):
    """Ultravox's model: used through its pipeline below."""


class StandinUltravoxPipeline(Pipeline):
    """Ultravox's pipeline interface: ``pipe({"audio", "turns", "sampling_rate"}, max_new_tokens=,
    temperature=)``; one audio, marked ``<|audio|>`` in the last turn."""

    def _sanitize_parameters(self, **kwargs):
        forward = {k: kwargs[k] for k in ("max_new_tokens", "temperature") if k in kwargs}
        return {}, forward, {}

    def preprocess(self, inputs):
        return inputs

    def _forward(self, inputs, **settings):
        return {
            "family": "ultravox",
            "turns": [[t["role"], t["content"]] for t in inputs["turns"]],
            "audio": _audio_facts(inputs["audio"]),
            "sampling_rate": inputs["sampling_rate"],
            "settings": settings,
        }

    def postprocess(self, outputs):
        return json.dumps(outputs, ensure_ascii=False)
