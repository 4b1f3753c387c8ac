"""``mera-mm serve``: the OpenAI-compatible model server (``lm_eval_patches.server``)."""

from __future__ import annotations

import argparse
import os
import sys

from lm_eval_patches.server.config import (
    API_KEY_ENV,
    DEFAULT_HOST,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_PORT,
    ServerConfig,
    parse_options,
)


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """Server settings from the parsed flags (the API key falls back to the environment)."""
    return ServerConfig(
        adapter=args.adapter,
        model=args.model,
        served_model_name=args.served_model_name,
        host=args.host,
        port=args.port,
        api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
        max_body_bytes=args.max_body_bytes,
        allow_remote_media=args.allow_remote_media,
        options=parse_options(args.model_args),
    )


def run(args: argparse.Namespace) -> int:
    """Load the adapter and serve until interrupted; returns the exit status."""
    import uvicorn

    from lm_eval_patches.server.app import create_app

    config = config_from_args(args)
    if config.host not in ("127.0.0.1", "localhost", "::1") and not config.api_key:
        print(
            f"mera-mm serve: warning: listening on {config.host} with no API key; anyone who "
            f"can reach this port can use the model (set --api-key or {API_KEY_ENV})",
            file=sys.stderr,
        )
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level=args.log_level)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``serve`` to the ``mera-mm`` subcommands."""
    from lm_eval_patches.server.adapters import ADAPTERS

    sv = sub.add_parser(
        "serve",
        help="serve a model over an OpenAI-compatible HTTP API (/v1/chat/completions)",
        description="Serve one model behind /v1/chat/completions, /v1/models and /health.",
    )
    sv.add_argument(
        "--adapter",
        default="auto",
        help=f"model family: auto (from the model's config.json), {', '.join(ADAPTERS)}",
    )
    sv.add_argument("--model", required=True, help="model folder or hub id (proxy: upstream name)")
    sv.add_argument("--served-model-name", default=None, help="name clients use (default: --model)")
    sv.add_argument(
        "--model-args",
        default="",
        help="adapter options key=value,... (device, dtype, num_frames, max_tokens, "
        "image_max_pixels, base_url...)",
    )
    sv.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})"
    )
    sv.add_argument("--port", type=int, default=DEFAULT_PORT)
    sv.add_argument(
        "--api-key", default=None, help=f"require 'Authorization: Bearer KEY' (or {API_KEY_ENV})"
    )
    sv.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="refuse larger request bodies with 413",
    )
    sv.add_argument(
        "--allow-remote-media",
        action="store_true",
        help="fetch http(s) media URLs (default: only data: URLs are accepted)",
    )
    sv.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sv.set_defaults(func=run)
