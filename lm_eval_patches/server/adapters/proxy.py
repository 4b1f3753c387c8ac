"""``proxy``: forward each request to another OpenAI-compatible server (vLLM, a closed API).

Model args: ``base_url`` (required, e.g. ``http://127.0.0.1:8000/v1``), ``api_key`` (else the
``MERA_PROXY_API_KEY`` variable, read when the adapter starts), ``timeout`` (seconds, default
300), ``dialect`` (``vllm``: media as ``image_url``/``audio_url``/``video_url`` data URLs, the
default; ``openai``: audio as ``input_audio``, video as frames), rendered by the project's
message builder with images as their original bytes. ``--model`` is the upstream
model name. Requests are forwarded concurrently (the upstream server batches them).
"""

from __future__ import annotations

import os
from typing import Any

from lm_eval_patches.server.adapters.base import BaseModel, Generation, SamplingParams
from lm_eval_patches.server.errors import APIError


class ProxyModel(BaseModel):
    """Relays chat completions; upstream failures come back as 502 with the upstream reason."""

    name = "proxy"
    exclusive = False

    def init_model(self) -> None:
        import httpx

        base_url = self.option("base_url")
        if not base_url:
            raise ValueError("the proxy adapter needs --model-args base_url=http://HOST:PORT/v1")
        self.dialect = self.option("dialect", "vllm")
        if self.dialect not in ("vllm", "openai"):
            raise ValueError(f"proxy dialect must be vllm or openai, got {self.dialect!r}")
        key = self.option("api_key") or os.environ.get("MERA_PROXY_API_KEY")
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=float(self.option("timeout", 300)),
            headers={"Authorization": f"Bearer {key}"} if key else {},
        )

    def payload(self, messages: list[dict], params: SamplingParams) -> dict[str, Any]:
        """The upstream request body (messages in this adapter's dialect)."""
        from lm_eval_patches.messages import RenderOptions, render_messages

        body: dict[str, Any] = {
            "model": self.model_name,
            "messages": render_messages(messages, RenderOptions(dialect=self.dialect)),
            "max_completion_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.stop:
            body["stop"] = params.stop
        if params.seed is not None:
            body["seed"] = params.seed
        return body

    def generate(self, messages: list[dict], params: SamplingParams) -> Generation:
        import httpx

        try:
            reply = self.client.post("/chat/completions", json=self.payload(messages, params))
        except httpx.HTTPError as exc:
            raise APIError(
                502, f"upstream server unreachable: {exc}", code="upstream_error"
            ) from exc
        if reply.status_code >= 400:
            raise APIError(
                502 if reply.status_code >= 500 else reply.status_code,
                f"upstream server answered {reply.status_code}: {reply.text[:300]}",
                code="upstream_error",
            )
        try:
            data = reply.json()
            choice = data["choices"][0]
            usage = data.get("usage") or {}
            return Generation(
                choice["message"].get("content") or "",
                choice.get("finish_reason") or "stop",
                int(usage.get("prompt_tokens") or 0),
                int(usage.get("completion_tokens") or 0),
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise APIError(
                502,
                f"upstream reply is not a chat completion: {reply.text[:300]}",
                code="upstream_error",
            ) from exc
