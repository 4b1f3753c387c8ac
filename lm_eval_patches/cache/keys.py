"""Cache keys: what a request *is*, independent of how its media happen to be held in memory.

A key is the sha256 of a canonical JSON document made of the cache format, the model identity,
the request type and the request's arguments (prompt or chat messages, generation settings and
media). Media never enter the document as pixels or samples: a :class:`MediaRef` contributes the
hash of its source bytes (already known, nothing is read), and each concrete form produced by the
``LOAD_*`` switches is hashed once from its bytes (PIL pixels, array buffers, raw bytes, the
decoded payload of a data URL, the content of a file path). The form is part of the key: a
backend may answer a PNG data URL differently from a PIL image.

Model identity: the backend name and its model arguments, without secrets (API keys, tokens),
without settings that cannot change an answer (batch size, concurrency, retries, timeouts,
device placement, the server URL) and with every other argument as given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Mapping
from typing import Any

from lm_eval_patches.media.ref import MediaRef

# Bump when the key document or the stored value format changes: old entries then never match.
CACHE_FORMAT = 1

# Model arguments that never change what a model answers (placement, throughput, transport).
NON_IDENTITY_ARGS = frozenset(
    {
        "batch_size",
        "max_batch_size",
        "num_concurrent",
        "max_retries",
        "timeout",
        "retry_backoff",
        "retry_max_wait",
        "device",
        "device_map",
        "parallelize",
        "gpus",
        "max_memory_per_gpu",
        "max_cpu_memory",
        "offload_folder",
        "base_url",
        "verify_certificate",
        "tokenizer_backend",
        "trust_remote_code",
        "gpu_memory_utilization",
        "swap_space",
        "data_parallel_size",
        "tensor_parallel_size",
        "tp_plan",
    }
)

# Argument names that hold credentials; they are never stored, hashed or written anywhere.
SECRET_ARG = re.compile(r"(^|_)(api_?key|key|token|secret|password|auth|authorization)($|_)", re.I)

_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w-]+=[^;,]*)*);base64,", re.I)


class UncacheableRequest(TypeError):
    """A request argument that has no stable content hash (the request bypasses the cache)."""


def is_secret(name: str) -> bool:
    """True when a model-argument name holds a credential (``api_key``, ``hf_token``...)."""
    return bool(SECRET_ARG.search(str(name)))


def mask_secrets(args: Mapping[str, Any]) -> dict[str, Any]:
    """``args`` with every credential's value replaced by ``"***"``."""
    return {k: ("***" if is_secret(k) else v) for k, v in args.items()}


def parse_model_args(model_args: Any) -> dict[str, Any]:
    """Model arguments as a dict, from lm-eval's ``key=value,...`` string or a dict."""
    if not model_args:
        return {}
    if isinstance(model_args, Mapping):
        return dict(model_args)
    from lm_eval.utils import simple_parse_args_string

    return dict(simple_parse_args_string(str(model_args)))


def model_identity(backend: Any, model_args: Any, lm: Any = None) -> dict[str, Any]:
    """What identifies the model that answers: backend name and answer-relevant arguments.

    ``backend`` is the ``--model`` name (or an LM instance passed in-process, then its class and
    its HF ``name_or_path`` stand for it). Secrets and :data:`NON_IDENTITY_ARGS` are dropped.
    """
    args = {
        str(k): _plain(v)
        for k, v in parse_model_args(model_args).items()
        if not is_secret(k) and k not in NON_IDENTITY_ARGS
    }
    if isinstance(backend, str):
        name = backend
    else:
        target = lm if lm is not None else backend
        cls = type(getattr(target, "lm", target))  # unwrap a caching wrapper
        name = f"{cls.__module__}.{cls.__qualname__}"
        config = getattr(getattr(target, "model", None), "config", None)
        if config is not None and getattr(config, "_name_or_path", None):
            args.setdefault("pretrained", str(config._name_or_path))
    return {"backend": name, "model_args": args}


def identity_hash(identity: Mapping[str, Any]) -> str:
    """Short, stable id of a model identity (first 16 hex digits of its sha256)."""
    return hashlib.sha256(_dumps(identity).encode()).hexdigest()[:16]


def request_key(request_type: str, arguments: tuple | list, model_id: str) -> str:
    """The cache key (sha256 hex) of one request of ``request_type`` for model ``model_id``.

    Raises:
        UncacheableRequest: an argument holds an object with no content hash (e.g. a tensor).
    """
    document = [CACHE_FORMAT, model_id, request_type, canonical(list(arguments))]
    return hashlib.sha256(_dumps(document).encode("utf-8")).hexdigest()


def partial_signature(arguments: Any) -> str | None:
    """What lm-eval's ``cache_hook.add_partial`` can tell about a request: its first two
    arguments (context and generation settings), canonical; None when they cannot be hashed."""
    try:
        return _dumps(canonical(list(arguments)[:2]))
    except UncacheableRequest:
        return None


def canonical(obj: Any) -> Any:
    """A JSON-safe rendering of request arguments, with every medium reduced to its hash."""
    if isinstance(obj, MediaRef):
        return {"__media__": obj.kind, "sha256": obj.sha256}
    if obj is None or isinstance(obj, (bool, int, float)):
        return obj
    if isinstance(obj, str):
        return _data_url_digest(obj) if obj.startswith("data:") else obj
    if isinstance(obj, Mapping):
        return _canonical_mapping(obj)
    if isinstance(obj, (list, tuple)):
        return [canonical(item) for item in obj]
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"__bytes__": hashlib.sha256(bytes(obj)).hexdigest()}
    module = type(obj).__module__ or ""
    if module.startswith("PIL.") and hasattr(obj, "tobytes"):
        return _image_digest(obj)
    if module == "numpy" and hasattr(obj, "tobytes"):
        if getattr(obj, "ndim", None) == 0 or not hasattr(obj, "shape"):
            return _plain(obj.item())
        return _array_digest(obj)
    raise UncacheableRequest(f"no content hash for a request argument of type {type(obj)!r}")


def _canonical_mapping(obj: Mapping) -> dict[str, Any]:
    kind = obj.get("type")
    # LOAD_FILES: {"type": kind, kind: path}; the file's content is what the model sees.
    if kind in ("image", "audio", "video") and isinstance(obj.get(kind), str):
        path = obj[kind]
        if not path.startswith("data:") and os.path.isfile(path):
            rest = {str(k): canonical(v) for k, v in obj.items() if k != kind}
            return {**rest, kind: {"__file__": file_sha256(path)}}
    return {str(k): canonical(v) for k, v in obj.items()}


def _data_url_digest(text: str) -> Any:
    match = _DATA_URL.match(text[:200])
    if not match:
        return text
    try:
        payload = base64.b64decode(text[match.end() :], validate=False)
    except (binascii.Error, ValueError):
        return text
    return {"__data_url__": (match.group(1) or "").lower(), "sha256": _sha(payload)}


def _image_digest(img: Any) -> dict[str, Any]:
    source = getattr(img, "info", {}).get("mera_sha256")
    if source:  # a decoded MediaRef that carries its source hash: no pixel hashing
        return {"__pil__": img.mode, "size": list(img.size), "source_sha256": source}
    return {"__pil__": img.mode, "size": list(img.size), "sha256": _sha(img.tobytes())}


def _array_digest(array: Any) -> dict[str, Any]:
    import numpy as np

    data = np.ascontiguousarray(array)
    return {"__array__": str(data.dtype), "shape": list(data.shape), "sha256": _sha(data.data)}


_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str) -> str:
    """sha256 of a file's bytes, computed once per (path, size, mtime) in this process."""
    stat = os.stat(path)
    ident = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if ident not in _FILE_HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _FILE_HASHES[ident] = digest.hexdigest()
    return _FILE_HASHES[ident]


def _sha(data: Any) -> str:
    return hashlib.sha256(data).hexdigest()


def _plain(value: Any) -> Any:
    """Model-argument values as JSON-safe scalars (the CLI gives str/int/float/bool)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
