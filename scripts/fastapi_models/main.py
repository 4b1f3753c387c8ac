"""The original's start command: ``cd scripts/fastapi_models && uvicorn main:app --port 1234``.

The server itself lives in ``lm_eval_patches.server``; this shim only builds its app. Say what to
serve with environment variables, read when the server starts (see docs/backends.md):
``MERA_SERVER_MODEL`` (required), ``MERA_SERVER_ADAPTER`` (default ``auto``),
``MERA_SERVER_MODEL_ARGS``, ``MERA_SERVER_API_KEY``, ``MERA_SERVER_MAX_BODY_BYTES``,
``MERA_SERVER_ALLOW_REMOTE_MEDIA`` (and the media layer's ``MERA_IMAGE_MAX_PIXELS``).
``mera-mm serve --adapter NAME --model PATH`` does the same with flags.
"""

from lm_eval_patches.server.app import create_app

app = create_app()
