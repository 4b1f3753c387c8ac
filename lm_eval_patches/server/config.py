"""Server settings: one dataclass, filled from ``mera-mm serve`` flags or, for the original's
``uvicorn main:app`` start, from ``MERA_SERVER_*`` environment variables read at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_HOST = "127.0.0.1"  # loopback unless told otherwise: safe by default
DEFAULT_PORT = 1234  # the original's documented port
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024  # a few videos as data URLs; refuses runaway uploads
DEFAULT_MAX_MEDIA_BYTES = 32 * 1024 * 1024  # one fetched remote file at most (when enabled)

API_KEY_ENV = "MERA_SERVER_API_KEY"


@dataclass
class ServerConfig:
    """What the server serves and how it guards itself.

    - ``adapter``: adapter name from :data:`lm_eval_patches.server.adapters.ADAPTERS`;
    - ``model``: what the adapter loads (a local path or hub id; the proxy's upstream model);
    - ``served_model_name``: the name clients put in ``model`` (default: ``model``);
    - ``api_key``: when set, every ``/v1`` request needs ``Authorization: Bearer <key>``;
    - ``max_body_bytes``: larger request bodies get 413 before they are read in full;
    - ``allow_remote_media``: fetch ``http(s)://`` media URLs (off: only ``data:`` URLs);
    - ``options``: adapter keyword arguments (``device``, ``dtype``, ``base_url``...).
    """

    adapter: str
    model: str
    served_model_name: str | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    allow_remote_media: bool = False
    max_remote_media_bytes: int = DEFAULT_MAX_MEDIA_BYTES
    options: dict[str, str] = field(default_factory=dict)

    @property
    def model_name(self) -> str:
        """The name the server answers to and reports in responses."""
        return self.served_model_name or self.model

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerConfig:
        """Settings from ``MERA_SERVER_ADAPTER``, ``MERA_SERVER_MODEL`` (required),
        ``MERA_SERVER_SERVED_MODEL_NAME``, ``MERA_SERVER_API_KEY``, ``MERA_SERVER_MAX_BODY_BYTES``,
        ``MERA_SERVER_ALLOW_REMOTE_MEDIA`` (1/true/yes) and ``MERA_SERVER_MODEL_ARGS``
        (``key=value,key=value``). Raises ValueError naming the missing or malformed variable."""
        env = os.environ if environ is None else environ
        model = env.get("MERA_SERVER_MODEL", "").strip()
        if not model:
            raise ValueError(
                "MERA_SERVER_MODEL is not set: say which model to serve, e.g. "
                "MERA_SERVER_ADAPTER=hf-image-text-to-text MERA_SERVER_MODEL=/path/to/model "
                "uvicorn main:app --port 1234 (or use `mera-mm serve --adapter ... --model ...`)"
            )
        return cls(
            adapter=env.get("MERA_SERVER_ADAPTER", "").strip() or "auto",
            model=model,
            served_model_name=env.get("MERA_SERVER_SERVED_MODEL_NAME") or None,
            api_key=env.get(API_KEY_ENV) or None,
            max_body_bytes=_int(env, "MERA_SERVER_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
            allow_remote_media=env.get("MERA_SERVER_ALLOW_REMOTE_MEDIA", "").lower()
            in ("1", "true", "yes"),
            options=parse_options(env.get("MERA_SERVER_MODEL_ARGS", "")),
        )


def parse_options(text: str) -> dict[str, str]:
    """``"device=cpu,dtype=float32"`` -> ``{"device": "cpu", "dtype": "float32"}``."""
    options: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"model args: expected key=value, got {item!r}")
        options[key.strip()] = value.strip()
    return options


def _int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc
