"""Run the model server for real on 127.0.0.1 (uvicorn in a thread, a free port) and record
what its adapter received, so tests can assert part types, order, MIME types and counts."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lm_eval_patches.server.adapters import adapter_class
from lm_eval_patches.server.adapters.base import BaseModel
from lm_eval_patches.server.config import ServerConfig


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recording(adapter_name: str) -> type[BaseModel]:
    """The named adapter class, extended to keep ``(kind, mime)`` / text of every part it got."""
    base = adapter_class(adapter_name)

    class Recording(base):  # type: ignore[misc, valid-type]
        def init_model(self) -> None:
            self.received: list[list[tuple[str, list[tuple[str, str | None]]]]] = []
            self.loads = getattr(self, "loads", 0) + 1
            super().init_model()

        def generate(self, messages, params):
            def seen(part: dict) -> tuple[str, str | None]:
                kind = part["type"]
                return (kind, part["text"]) if kind == "text" else (kind, part[kind].mime)

            self.received.append([(m["role"], [seen(p) for p in m["content"]]) for m in messages])
            self.last_params = params
            return super().generate(messages, params)

    return Recording


@contextmanager
def serve(config: ServerConfig, adapter: BaseModel | None = None) -> Iterator[str]:
    """Serve ``config`` (or a ready ``adapter``) on a free loopback port; yields the base URL
    ``http://127.0.0.1:PORT`` and stops the server afterwards."""
    import uvicorn

    from lm_eval_patches.server.app import create_app

    config.port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, adapter), host="127.0.0.1", port=config.port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the model server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def post_raw(url: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
    """POST raw bytes (for malformed bodies the official client would never send)."""
    import httpx

    return httpx.post(url, content=body, headers=headers or {}, timeout=30)
