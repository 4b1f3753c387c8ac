"""Checkpoint folders for the remote-code audio stand-ins (``tests/standin_audio``).

Each folder is what a real Qwen-Audio-Chat / MiniCPM-o / Ultravox checkpoint looks like to
transformers: a ``config.json`` whose ``auto_map`` names classes in a code file shipped with
the checkpoint (loaded only with ``trust_remote_code=True``), weights and a tokenizer.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tiny_models import _build_tokenizer

STANDIN_CODE = Path(__file__).parent / "standin_audio" / "modeling_standin.py"
_CODE = "modeling_standin"

FAMILIES = {
    "minicpm": {"AutoModel": f"{_CODE}.StandinMiniCPMO"},
    "qwen-audio-chat": {"AutoModelForCausalLM": f"{_CODE}.StandinQwenAudioChat"},
    "ultravox": {"AutoModel": f"{_CODE}.StandinUltravox"},
}


def build_standin_audio(out_dir: Path, family: str) -> Path:
    """Write the stand-in checkpoint of ``family`` (a key of FAMILIES) into ``out_dir``."""
    import torch
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _build_tokenizer(["<|im_start|>", "<|im_end|>"])
    tokenizer.save_pretrained(out_dir)
    shutil.copy(STANDIN_CODE, out_dir / STANDIN_CODE.name)
    (model_ref,) = FAMILIES[family].values()
    config = {
        "model_type": "mera_standin_audio",
        "family": family,
        "architectures": [model_ref.split(".")[1]],
        "auto_map": {"AutoConfig": f"{_CODE}.StandinAudioConfig", **FAMILIES[family]},
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "max_position_embeddings": 4096,
    }
    if family == "ultravox":
        config["custom_pipelines"] = {
            "ultravox-pipeline": {"impl": f"{_CODE}.StandinUltravoxPipeline", "pt": ["AutoModel"]}
        }
    (out_dir / "config.json").write_text(json.dumps(config, indent=1))
    if family == "qwen-audio-chat":
        path = out_dir / "tokenizer_config.json"
        tok_config = json.loads(path.read_text())
        tok_config["tokenizer_class"] = "StandinQwenTokenizer"
        tok_config["auto_map"] = {"AutoTokenizer": [None, f"{_CODE}.StandinQwenTokenizer"]}
        path.write_text(json.dumps(tok_config, indent=1))
    torch.manual_seed(0)
    save_file(
        {"proj.weight": torch.randn(2, 2), "proj.bias": torch.zeros(2)},
        out_dir / "model.safetensors",
    )
    return out_dir
