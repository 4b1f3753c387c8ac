"""Judge pieces that need no run: verdict parsing, the cache, cache keys, an unreachable judge."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from lm_eval_patches.judge import (
    PROMPT_VERSION,
    JudgeClient,
    JudgeItem,
    VerdictCache,
    judge_items,
    parse_verdict,
)


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("1", 1),
        ("0", 0),
        (" 1.\n", 1),
        ("Оценка: 0", 0),
        ("**1**", 1),
        ("verdict: 1", 1),
        ("", None),
        ("10", None),
        ("1 или 0", None),
        ("Возможно", None),
        ("да", None),
        ("0 1", None),
    ],
)
def test_parse_verdict(reply: str, verdict: int | None) -> None:
    assert parse_verdict(reply) == verdict


def test_cache_keys_and_round_trip(tmp_path: Path) -> None:
    item = JudgeItem("Сколько кубов?", ("3", "три"), "три")
    assert item.key("judge-a") != item.key("judge-b")
    assert item.key("judge-a") != JudgeItem("Сколько кубов?", ("3",), "три").key("judge-a")
    user = item.messages()[1]["content"]
    assert "Сколько кубов?" in user and "3 | три" in user and user.endswith("(1 или 0):")
    cache = VerdictCache(tmp_path / "v.sqlite")
    assert cache.get(item.key("judge-a")) is None
    cache.put(item.key("judge-a"), "judge-a", 1, "1")
    cache.close()
    again = VerdictCache(tmp_path / "v.sqlite")  # survives the process: a file, no pickle
    assert again.get(item.key("judge-a")) == 1
    again.close()
    assert PROMPT_VERSION


def test_unreachable_judge_is_a_counted_failure_not_an_answer(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = JudgeClient(f"http://127.0.0.1:{port}/v1", "judge", max_retries=0, timeout_s=5)
    cache = VerdictCache(tmp_path / "v.sqlite")
    items = [JudgeItem("q", ("A",), "A"), JudgeItem("q", ("A",), "A"), JudgeItem("q", ("B",), "A")]
    verdicts = judge_items(client, items, cache, concurrency=2)
    assert [v.value for v in verdicts] == [None, None, None]
    assert all("judge request failed" in v.error for v in verdicts)
    assert cache.get(items[0].key("judge")) is None  # failures are not cached
    cache.close()
