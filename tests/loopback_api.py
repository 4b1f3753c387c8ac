"""A real OpenAI-style chat-completions server on 127.0.0.1 for tests and benchmarks.

Configurable latency, transient failure rate (each chosen request fails its first
``fail_times`` attempts, so retries must win), 429 with ``Retry-After``, permanent failures,
malformed bodies, refused parameters; it records every request body it receives.
Runs aiohttp's server in a thread of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Behaviour:
    latency_s: float = 0.0
    error_rate: float = 0.0  # share of distinct requests that fail transiently
    fail_times: int = 1  # how many attempts of such a request fail
    error_status: int = 500  # 429 sends Retry-After
    retry_after: str | None = None
    always_status: int | None = None  # every request fails with this status
    malformed_rate: float = 0.0  # share of distinct requests answered once with a broken body
    reject_params: tuple[str, ...] = ()  # 400 naming the parameter when the body has it
    require_params: tuple[str, ...] = ()  # 400 when the body lacks it (the original's server)
    reply: str = "A"
    usage: bool = True


def _share(key: str, salt: str) -> float:
    return int(hashlib.sha256((salt + key).encode()).hexdigest()[:8], 16) / 2**32


@dataclass
class LoopbackAPI:
    behaviour: Behaviour = field(default_factory=Behaviour)
    keep_bodies: bool = True
    received: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    seen: Counter = field(default_factory=Counter)
    times: list[float] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    async def _chat(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1
            self.finished.append(time.monotonic())

    async def _stats(self, request: web.Request) -> web.Response:
        """Timing and counts (for benchmarks driving the server from another process)."""
        return web.json_response(
            {
                "requests": len(self.received),
                "statuses": dict(self.statuses),
                "first_arrival": min(self.times, default=None),
                "last_finish": max(self.finished, default=None),
                "max_in_flight": self.max_in_flight,
            }
        )

    async def _reset(self, request: web.Request) -> web.Response:
        self.received.clear()
        self.headers.clear()
        self.statuses.clear()
        self.seen.clear()
        self.times.clear()
        self.finished.clear()
        self.max_in_flight = 0
        return web.json_response({"reset": True})

    async def _answer(self, request: web.Request) -> web.Response:
        self.times.append(time.monotonic())
        raw = await request.read()
        b = self.behaviour
        # Parsing a large body costs the server CPU; a benchmark server needs nothing from it.
        needs_body = self.keep_bodies or b.error_rate or b.malformed_rate or b.reject_params
        body = json.loads(raw) if needs_body or b.require_params else {"messages": []}
        self.received.append(body if self.keep_bodies else {})
        self.headers.append(dict(request.headers))
        key = ""
        if b.error_rate or b.malformed_rate:  # only then: hashing big bodies costs CPU
            key = hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()
            self.seen[key] += 1
        if b.latency_s:
            await asyncio.sleep(b.latency_s)
        if b.always_status:
            return self._status(b.always_status, "the endpoint is down")
        for param in b.reject_params:
            if param in body:
                return self._status(400, f"Unsupported parameter: '{param}' is not supported.")
        for param in b.require_params:
            if param not in body:
                return self._status(400, f"missing required field '{param}'")
        if _share(key, "error") < b.error_rate and self.seen[key] <= b.fail_times:
            headers = {"Retry-After": b.retry_after} if b.retry_after else None
            return self._status(b.error_status, "try again", headers)
        if _share(key, "malformed") < b.malformed_rate and self.seen[key] == 1:
            self.statuses[200] += 1
            return web.Response(text="<html>gateway glitch", content_type="text/html")
        self.statuses[200] += 1
        reply: dict[str, Any] = {
            "id": f"chatcmpl-{len(self.received)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": b.reply},
                    "finish_reason": "stop",
                }
            ],
        }
        if b.usage:
            reply["usage"] = {"prompt_tokens": 11, "completion_tokens": 1, "total_tokens": 12}
        return web.json_response(reply)

    def _status(self, status: int, message: str, headers: dict | None = None) -> web.Response:
        self.statuses[status] += 1
        error = {"error": {"message": message, "type": "invalid_request_error", "code": status}}
        return web.json_response(error, status=status, headers=headers)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> str:
        """Start serving; returns the chat-completions URL."""
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application(client_max_size=256 * 1024**2)
            app.router.add_post("/v1/chat/completions", self._chat)
            app.router.add_get("/stats", self._stats)
            app.router.add_post("/reset", self._reset)
            self._runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self.url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    def stop(self) -> None:
        async def shutdown() -> None:
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> LoopbackAPI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    """``python tests/loopback_api.py --port N --latency 0.2``: serve until interrupted."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--keep-bodies", action="store_true", help="keep request bodies")
    args = parser.parse_args()
    with LoopbackAPI(Behaviour(latency_s=args.latency), keep_bodies=args.keep_bodies) as server:
        print(server.url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
