"""The OpenAI-compatible model server (``mera-mm serve``, ``scripts/fastapi_models``).

Modules: ``config`` (settings, read once at start-up), ``errors`` (OpenAI's error shape),
``security`` (bearer token, body size limit), ``schema`` (request/response shapes),
``inputs`` (OpenAI messages to the neutral chat structure with lazy media), ``app`` (the FastAPI
app) and ``adapters`` (one model family per module, chosen by name). FastAPI and uvicorn are
imported only by ``app`` and the ``serve`` command, never at package import.
"""
