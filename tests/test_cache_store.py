"""The cache file: plain JSON only (a planted pickle never runs), several writers, locks."""

from __future__ import annotations

import multiprocessing
import pathlib
import pickle
import sqlite3
from pathlib import Path

import pytest

from lm_eval_patches.cache.store import AnswerStore, CacheFileError, cache_file_for
from lm_eval_patches.commands.cache import summary


class _Touch:
    """A pickle payload: unpickling it creates ``path`` (proof that code ran)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def test_cache_file_names() -> None:
    assert cache_file_for("runs/cache") == Path("runs/cache.sqlite")
    assert cache_file_for("runs/cache.db") == Path("runs/cache.db")
    assert cache_file_for("runs/c.sqlite3") == Path("runs/c.sqlite3")


def test_pickle_payloads_in_the_file_are_never_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "old_rank0.db"
    # The payload is live: unpickling it does run code.
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Touch(probe)))
    assert probe.exists()

    marker = tmp_path / "payload-ran"
    payload = pickle.dumps(_Touch(marker))
    db = sqlite3.connect(path)
    # lm-eval's own --use_cache layout (SqliteDict: table "unnamed", pickled values) ...
    db.execute("CREATE TABLE unnamed (key TEXT PRIMARY KEY, value BLOB)")
    db.execute("INSERT INTO unnamed VALUES (?, ?)", ("k", payload))
    db.commit()
    db.close()
    store = AnswerStore(path)
    store.put("good", "answer", "m1", "generate_until", "weird", "1")
    # ... and a pickle planted in our own table, as text and as a blob.
    raw = sqlite3.connect(path)
    raw.execute(
        "INSERT INTO mera_answers VALUES (?,?,?,?,?,?,?)",
        ("blob", "m1", "generate_until", "weird", "2", payload, 0.0),
    )
    raw.execute(
        "INSERT INTO mera_answers VALUES (?,?,?,?,?,?,?)",
        ("text", "m1", "generate_until", "weird", "3", payload.decode("latin-1"), 0.0),
    )
    raw.commit()
    raw.close()

    assert store.get_many(["good", "blob", "text", "k"]) == {"good": "answer"}
    info = summary(store)
    assert (info["answers"], info["invalid"]) == (3, 2)
    assert not marker.exists()


def _write_many(path: str, rank: int, count: int) -> None:
    store = AnswerStore(path)
    for i in range(count):
        store.put(f"rank{rank}-{i}", f"answer {rank}/{i}", "m", "generate_until", "t", str(i))
    store.close()


def test_several_processes_write_one_file(tmp_path: Path) -> None:
    """Ranks share one file: every entry of every writer is found by a later reader."""
    path = str(tmp_path / "shared.sqlite")
    AnswerStore(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(path, rank, 150)) for rank in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    store = AnswerStore(path)
    keys = [f"rank{r}-{i}" for r in range(3) for i in range(150)]
    found = store.get_many(keys)
    assert len(found) == 450 and found["rank2-149"] == "answer 2/149"


def test_a_file_that_cannot_be_locked_is_reported_clearly(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=DELETE")
    holder.execute("BEGIN EXCLUSIVE")  # as a filesystem whose locks never succeed would look
    try:
        with pytest.raises(CacheFileError, match="cannot lock it.*local disk"):
            AnswerStore(path, busy_timeout_s=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_not_a_database_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(CacheFileError, match="not a SQLite database"):
        AnswerStore(path)


def test_cache_info_and_prune_commands(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from lm_eval_patches.cli import main

    path = tmp_path / "run.sqlite"
    store = AnswerStore(path)
    store.register_model("m1", {"backend": "hf-multimodal", "model_args": {"pretrained": "a"}})
    store.register_model("m2", {"backend": "hf-multimodal", "model_args": {"pretrained": "b"}})
    for i in range(3):
        store.put(f"a{i}", f"A{i}", "m1", "generate_until", "weird", str(i))
        store.put(f"b{i}", f"B{i}", "m2", "generate_until", "ruclevr", str(i))
    raw = sqlite3.connect(path)
    raw.execute(
        "INSERT INTO mera_answers VALUES ('bad', 'm2', 'generate_until', 'ruclevr', '9', ?, 0)",
        (b"\x80\x04junk",),
    )
    raw.commit()
    raw.close()

    assert main(["cache", "info", str(tmp_path / "run")]) == 0  # the --use_cache PATH works
    out = capsys.readouterr().out
    assert "answers: 7 (not plain JSON, ignored: 1)" in out
    assert "m1" in out and "pretrained=a" in out and "weird: 3" in out

    assert main(["cache", "prune", str(path), "--invalid"]) == 0
    assert main(["cache", "prune", str(path), "--model", "m1", "--task", "ruclevr"]) == 0
    assert "deleted 0 answer(s)" in capsys.readouterr().out  # criteria combine with "and"
    assert main(["cache", "prune", str(path), "--model", "m2"]) == 0
    left = AnswerStore(path)
    assert left.count() == 3 and set(left.models()) == {"m1"}
    assert main(["cache", "prune", str(path)]) == 2  # no criterion: refused
