"""The FastAPI app: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health``.

``create_app(config, adapter)`` builds it; with no config the settings are read from
``MERA_SERVER_*`` variables when the server starts (not at import), which is what the
original's ``cd scripts/fastapi_models && uvicorn main:app --port 1234`` uses. Every error goes
out in OpenAI's error shape with a 4xx status for the client's mistakes; an adapter that fails
gives a 500 with a one-line reason, and the traceback goes to the server's log only.
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.server.adapters import BaseModel, adapter_class, auto_adapter
from lm_eval_patches.server.config import ServerConfig
from lm_eval_patches.server.errors import APIError, error_body
from lm_eval_patches.server.inputs import MediaPolicy, parse_messages, request_field
from lm_eval_patches.server.schema import ChatCompletionRequest, completion_body, models_body
from lm_eval_patches.server.security import GuardMiddleware

log = logging.getLogger("mera_mm.server")


def load_adapter(config: ServerConfig) -> BaseModel:
    """Build the adapter ``config`` names (``auto``: from the model's config.json)."""
    name = auto_adapter(config.model) if config.adapter == "auto" else config.adapter
    log.info("loading %s with adapter %s", config.model, name)
    return adapter_class(name)(config.model, **config.options)


class _State:
    """What the routes share: settings, the loaded adapter, the start time."""

    def __init__(self) -> None:
        self.config: ServerConfig | None = None
        self.adapter: BaseModel | None = None
        self.created = int(time.time())


def create_app(config: ServerConfig | None = None, adapter: BaseModel | None = None) -> FastAPI:
    """The server app. ``adapter`` may be given ready-made (tests, embedding); otherwise it is
    loaded at start-up from ``config`` (or from the environment when ``config`` is None)."""
    state = _State()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.config = config or ServerConfig.from_env()
        state.adapter = adapter or await run_in_threadpool(load_adapter, state.config)
        log.info("serving %s (adapter %s)", state.config.model_name, state.adapter.name)
        yield

    app = FastAPI(title="mera-mm model server", lifespan=lifespan)
    app.state.server = state
    _install_error_handlers(app)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": state.config.model_name, "adapter": state.adapter.name}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return models_body(state.config.model_name, state.created)

    @app.post("/v1/chat/completions")
    def chat_completions(body: ChatCompletionRequest) -> dict[str, Any]:
        cfg = state.config
        if body.model != cfg.model_name:
            raise APIError(
                404,
                f"model {body.model!r} is not served here; this server serves {cfg.model_name!r}",
                param="model",
                code="model_not_found",
            )
        params = body.sampling(int(state.adapter.option("max_tokens", 256)))
        policy = MediaPolicy(
            allow_remote=cfg.allow_remote_media,
            max_remote_bytes=cfg.max_remote_media_bytes,
        )
        messages = parse_messages(body.messages, policy)
        return completion_body(cfg.model_name, state.adapter.serve(messages, params))

    # Outermost: refuse strangers and oversized bodies before anything reads them.
    app.add_middleware(
        GuardMiddleware, settings=lambda: (state.config.api_key, state.config.max_body_bytes)
    )
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.status, exc.message, exc.param, exc.code),
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(MediaError)
    async def bad_media(request: Request, exc: MediaError) -> JSONResponse:
        # Media that the adapter could not decode: the client's input, named by its field.
        param = request_field(exc.where or "")
        return JSONResponse(error_body(400, str(exc), param, "invalid_media"), status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        if first.get("type") == "json_invalid":
            message = f"the request body is not valid JSON ({first.get('ctx', {}).get('error')})"
            param = None
        elif not loc:
            param, message = None, "the request body must be a JSON object (model, messages, ...)"
        else:
            param = ".".join(loc)
            message = f"{param}: {first.get('msg', 'invalid request')}"
        return JSONResponse(error_body(400, message, param, "invalid_request"), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            error_body(exc.status_code, str(exc.detail)), status_code=exc.status_code
        )

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed inside the server")  # the traceback stays here
        message = f"the model failed to answer: {type(exc).__name__}: {exc}"
        return JSONResponse(error_body(500, message[:500], code="model_error"), status_code=500)
