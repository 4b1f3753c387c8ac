"""A loopback OpenAI-compatible judge for tests (real HTTP on 127.0.0.1).

Per chat request it reads the gold and the prediction out of our judge prompt and decides by
a hash of the user message: some items always get HTTP 500 (an error that survives retries),
some get nonsense with no verdict, the rest the true verdict (prediction == gold). Every first
attempt of a message gets a 503 with a tiny Retry-After, so the client's retries are exercised.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_KEY = "test-judge-key"


def behaviour(user_message: str) -> str:
    """ "error", "nonsense" or "verdict" for a user message (the test predicts with it too)."""
    h = int(hashlib.sha256(user_message.encode()).hexdigest(), 16) % 6
    return {0: "error", 1: "nonsense"}.get(h, "verdict")


def true_verdict(user_message: str) -> int:
    found = re.search(
        r"«\|»\):\n(.*?)\n\nОтвет модели:\n(.*?)\n\nОценка \(1 или 0\):$", user_message, re.S
    )
    gold, prediction = found.group(1), found.group(2)
    golds = [g.strip().lower() for g in gold.split("|")]
    return int(prediction.strip().lower() in golds)


class JudgeServer:
    """Start with ``with JudgeServer() as s:``; ``s.url`` is the API base."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()  # user message -> requests seen
        self.answered: dict[str, str] = {}  # user message -> what was finally answered
        self.unauthorised = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _send(self, code: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                    server.unauthorised += 1
                    self._send(401, {"error": {"message": "bad key"}})
                    return
                user = body["messages"][-1]["content"]
                server.hits[user] += 1
                if server.hits[user] == 1:
                    self._send(503, {"error": {"message": "busy"}}, {"retry-after-ms": "5"})
                    return
                kind = behaviour(user)
                if kind == "error":
                    server.answered[user] = "error"
                    self._send(500, {"error": {"message": "judge broke"}}, {"retry-after-ms": "5"})
                    return
                text = "Возможно, это так." if kind == "nonsense" else str(true_verdict(user))
                server.answered[user] = text
                self._send(
                    200,
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                    },
                )

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> JudgeServer:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
