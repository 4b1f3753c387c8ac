"""A chat API run killed with SIGKILL at three points, resumed each time, then a failed request
retried: the server's own records prove that no stored answer was ever asked for again and
that the final outputs equal an uninterrupted run's.

The server answers every request with a text naming the request (a hash of its messages), so
the cache file says exactly which requests it holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from functools import partial
from pathlib import Path

import pytest
from aiohttp import web
from conftest import BIN, REPO, TASKS_DIR, run_cli
from loopback_api import LoopbackAPI
from test_cache_resume import outputs, run_status

pytestmark = pytest.mark.slow

TOTAL = 8  # 4 image docs and 4 audio docs


class NamingAPI(LoopbackAPI):
    """Replies ``ans-<hash of the messages>``; requests in ``failing`` get a 400."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []  # request names, in arrival order
        self.ok = 0
        self.failing: set[str] = set()

    async def _answer(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        name = hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()
        name = name[:12]
        self.sent.append(name)
        if name in self.failing:
            return self._status(400, "this request is refused for now")
        self.ok += 1
        return web.json_response(
            {
                "id": f"c{len(self.sent)}",
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": f"ans-{name}"},
                        "finish_reason": "stop",
                    }
                ],
            }
        )


def stored_names(cache_file: Path) -> set[str]:
    """Request names whose answers the cache file holds."""
    if not cache_file.exists():
        return set()
    db = sqlite3.connect(f"file:{cache_file}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT value FROM mera_answers").fetchall()
    finally:
        db.close()
    return {json.loads(value).removeprefix("ans-") for (value,) in rows}


def argv(url: str, out: Path, cache: Path) -> list[str]:
    return [
        "--model",
        "local-chat-completions",
        "--model_args",
        f"model=tiny,base_url={url},num_concurrent=1,max_retries=1",
        "--apply_chat_template",
        "--include_path",
        str(TASKS_DIR),
        "--tasks",
        "weird,ruenvaqa",
        "--limit",
        "4",
        "--log_samples",
        "--output_path",
        str(out),
        "--use_cache",
        str(cache),
    ]


def run_until(args: list[str], env: dict, ready=None) -> int:
    """Run lm-eval; SIGKILL it as soon as ``ready()`` is true (never when None)."""
    proc = subprocess.Popen(
        [str(BIN / "lm-eval"), *args],
        env={**os.environ, **env},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while ready is not None and proc.poll() is None:
            if ready():
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        return proc.wait(300)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_api_run_killed_three_times_resumes_and_retries_only_what_failed(
    mirror: Path, tmp_path: Path
) -> None:
    env = {"MERA_DATA_DIR": str(mirror)}
    with NamingAPI() as server:
        run_cli(argv(server.url, tmp_path / "reference", tmp_path / "ref-cache"), env)
        everything = list(server.sent)
        assert len(set(everything)) == TOTAL
        server.failing = {everything[5]}  # one request the server refuses, for now

        out, cache = tmp_path / "run", tmp_path / "cache"
        cache_file = cache.with_name("cache.sqlite")
        # Kill points: after the server's 2nd answer; after 3 more; once every answer the
        # server gives is in the cache file (nothing written yet).
        points = [
            lambda start: server.ok - start >= 2,
            lambda start: server.ok - start >= 3,
            lambda start: len(stored_names(cache_file)) == TOTAL - 1,
        ]
        for point in points:
            before, sent_from, ok_from = stored_names(cache_file), len(server.sent), server.ok
            code = run_until(argv(server.url, out, cache), env, partial(point, ok_from))
            assert code == -signal.SIGKILL
            sent = server.sent[sent_from:]
            after = stored_names(cache_file)
            assert not before & set(sent), "a stored answer was asked for again"
            answered = [n for n in sent if n not in server.failing]
            # Durable per answer: at most the one in flight at the kill is lost.
            assert len(set(answered) - after) <= 1
        assert not list(out.rglob("results_*.json"))

        # Resume to the end: only the refused request goes out again, and fails again.
        before, sent_from = stored_names(cache_file), len(server.sent)
        assert len(before) == TOTAL - 1
        run_until(argv(server.url, out, cache), env)
        assert server.sent[sent_from:] == [everything[5]]
        status = run_status(out)
        assert status["status"] == "failed" and status["totals"]["failed"] == 1
        assert status["totals"]["from_cache"] == TOTAL - 1

        server.failing = set()  # the server is healthy again
        sent_from = len(server.sent)
        proc = run_cli(["retry-failed", str(out)], env, program="mera-mm")
        assert server.sent[sent_from:] == [everything[5]], proc.stdout
        assert run_status(out)["status"] == "complete"
    assert outputs(out) == outputs(tmp_path / "reference")
