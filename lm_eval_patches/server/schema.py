"""Request and response shapes of ``/v1/chat/completions`` and ``/v1/models`` (OpenAI's).

Requests are validated with pydantic (unknown fields are accepted, as OpenAI-compatible servers
do, so newer clients still work); ``messages`` are checked by ``inputs.parse_messages`` with
error messages that name the exact part at fault.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from pydantic import BaseModel as Schema
from pydantic import ConfigDict, Field

from lm_eval_patches.server.adapters.base import Generation, SamplingParams
from lm_eval_patches.server.errors import APIError


class ChatCompletionRequest(Schema):
    """The fields of OpenAI's chat completion request that the server acts on."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[Any]
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1)
    stream: bool | None = None

    def sampling(self, default_max_tokens: int) -> SamplingParams:
        """The request's settings; ``max_completion_tokens`` wins over the older ``max_tokens``
        (servers accept either: OpenAI's reasoning models want the first, vLLM both)."""
        if self.stream:
            raise APIError(400, "streaming is not supported by this server", param="stream")
        if self.n not in (None, 1):
            raise APIError(400, "only n=1 is supported by this server", param="n")
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return SamplingParams(
            max_tokens=self.max_completion_tokens or self.max_tokens or default_max_tokens,
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            stop=[s for s in stop if s],
            seed=self.seed,
        )


def completion_body(model: str, result: Generation) -> dict[str, Any]:
    """OpenAI's ``chat.completion`` object for one answer."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.text},
                "logprobs": None,
                "finish_reason": result.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens,
        },
    }


def models_body(model: str, created: int) -> dict[str, Any]:
    """OpenAI's model list with the one served model."""
    return {
        "object": "list",
        "data": [{"id": model, "object": "model", "created": created, "owned_by": "mera-mm"}],
    }
