"""The answer store: one SQLite file (WAL), plain JSON values, one transaction per answer.

Why SQLite: several processes (``accelerate launch`` ranks) can write one file safely through its
locks, readers never block the writer in WAL mode, and a committed row survives ``kill -9``
(``synchronous=FULL``: each answer is on disk before the next request is answered). Values are
JSON text; a value that is not (a pickle planted in the file, a foreign format) is ignored and
never deserialised by anything but ``json.loads``. lm-eval's own ``--use_cache`` table
(``unnamed``, pickled values) is never read.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A child of lm-eval's logger: these lines appear in the run's log, at its verbosity.
log = logging.getLogger("lm_eval.mera_cache")

SCHEMA_VERSION = "1"
# How long a writer waits for another process's transaction before giving up (seconds).
BUSY_TIMEOUT_S = 120.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mera_cache_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mera_models (
    model TEXT PRIMARY KEY, identity TEXT NOT NULL, first_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS mera_answers (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    request_type TEXT NOT NULL,
    task TEXT,
    doc TEXT,
    value TEXT NOT NULL,
    created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS mera_answers_model ON mera_answers (model);
CREATE INDEX IF NOT EXISTS mera_answers_task ON mera_answers (task);
"""


class CacheFileError(RuntimeError):
    """The cache file cannot be used (locking unsupported, unreadable, another format)."""


def cache_file_for(use_cache: str | Path) -> Path:
    """The file that ``--use_cache PATH`` means: PATH itself when it ends in .db, .sqlite or
    .sqlite3, else ``PATH.sqlite``. One file for every rank (no ``_rank<N>`` suffix)."""
    path = Path(use_cache)
    if path.suffix.lower() in (".db", ".sqlite", ".sqlite3"):
        return path
    return path.with_name(path.name + ".sqlite")


@dataclass(frozen=True)
class Entry:
    """One stored answer (for ``mera-mm cache info`` and tests)."""

    key: str
    model: str
    request_type: str
    task: str | None
    doc: str | None
    value: Any
    valid: bool
    created: float


class AnswerStore:
    """A cache file opened for reading and writing answers.

    Raises:
        CacheFileError: the file is not a SQLite database, or SQLite cannot lock it (network
            filesystems without POSIX locks); the message says what to do.
    """

    def __init__(self, path: str | Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # one connection, used from the backend's threads too
        self._warned_invalid = False
        try:
            self._db = sqlite3.connect(
                str(self.path),
                timeout=busy_timeout_s,
                isolation_level=None,  # autocommit: each statement below is its own transaction
                check_same_thread=False,
            )
            self._setup()
        except sqlite3.DatabaseError as exc:
            raise _explain(self.path, exc) from exc

    def _setup(self) -> None:
        db = self._db
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise CacheFileError(
                f"cache file {self.path}: SQLite cannot use write-ahead logging here "
                f"(journal mode {mode!r}); put --use_cache on a local disk"
            )
        db.execute("PRAGMA synchronous=FULL")
        # Take the write lock once now: a filesystem without working locks fails here, at start.
        db.execute("BEGIN IMMEDIATE")
        db.execute("COMMIT")
        db.executescript(_SCHEMA)
        db.execute(
            "INSERT OR IGNORE INTO mera_cache_meta (name, value) VALUES ('schema', ?)",
            (SCHEMA_VERSION,),
        )
        found = db.execute("SELECT value FROM mera_cache_meta WHERE name='schema'").fetchone()
        if found[0] != SCHEMA_VERSION:
            raise CacheFileError(
                f"cache file {self.path} has schema {found[0]}, this version writes "
                f"{SCHEMA_VERSION}; use another --use_cache path"
            )

    # -- answers ------------------------------------------------------------------------------
    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Stored values of the ``keys`` that have a valid (JSON) entry."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, value FROM mera_answers WHERE key IN ({marks})", chunk
                ).fetchall()
                for key, raw in rows:
                    ok, value = decode_value(raw)
                    if ok:
                        found[key] = value
                    else:
                        self._warn_invalid(key)
        return found

    def put(
        self,
        key: str,
        value: Any,
        model: str,
        request_type: str,
        task: str | None = None,
        doc: str | None = None,
    ) -> None:
        """Store one answer durably (its own transaction, on disk when this returns).

        Raises:
            TypeError: ``value`` is not plain JSON data.
        """
        text = json.dumps(value, ensure_ascii=False, allow_nan=True)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO mera_answers "
                "(key, model, request_type, task, doc, value, created) VALUES (?,?,?,?,?,?,?)",
                (key, model, request_type, task, doc, text, time.time()),
            )

    def register_model(self, model: str, identity: dict[str, Any]) -> None:
        """Remember which identity a model id stands for (shown by ``mera-mm cache info``)."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO mera_models (model, identity, first_seen) VALUES (?,?,?)",
                (model, json.dumps(identity, sort_keys=True, ensure_ascii=False), time.time()),
            )

    # -- inspection ---------------------------------------------------------------------------
    def count(self, model: str | None = None) -> int:
        """Number of stored answers (of one model when given)."""
        sql, params = "SELECT COUNT(*) FROM mera_answers", ()
        if model is not None:
            sql, params = sql + " WHERE model=?", (model,)
        with self._lock:
            return int(self._db.execute(sql, params).fetchone()[0])

    def entries(self) -> Iterator[Entry]:
        """Every stored answer, oldest first (invalid values flagged, never deserialised)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, model, request_type, task, doc, value, created FROM mera_answers "
                "ORDER BY created"
            ).fetchall()
        for key, model, rtype, task, doc, raw, created in rows:
            ok, value = decode_value(raw)
            yield Entry(key, model, rtype, task, doc, value if ok else None, ok, created)

    def models(self) -> dict[str, dict[str, Any]]:
        """Model id -> identity (backend and answer-relevant model args)."""
        with self._lock:
            rows = self._db.execute("SELECT model, identity FROM mera_models").fetchall()
        out = {}
        for model, raw in rows:
            ok, identity = decode_value(raw)
            out[model] = identity if ok else {"backend": "?", "model_args": {}}
        return out

    def delete(self, keys: Iterable[str]) -> int:
        """Delete entries by key in one transaction; returns how many were deleted."""
        keys = list(keys)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                deleted = 0
                for start in range(0, len(keys), 500):
                    chunk = keys[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    deleted += self._db.execute(
                        f"DELETE FROM mera_answers WHERE key IN ({marks})", chunk
                    ).rowcount
                self._db.execute(
                    "DELETE FROM mera_models WHERE model NOT IN "
                    "(SELECT DISTINCT model FROM mera_answers)"
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return deleted

    def compact(self) -> None:
        """Give freed pages back to the filesystem (after a prune)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.execute("VACUUM")

    def close(self) -> None:
        """Close the connection (answers are already on disk)."""
        with self._lock:
            self._db.close()

    def _warn_invalid(self, key: str) -> None:
        if not self._warned_invalid:
            log.warning(
                "cache file %s holds entries that are not plain JSON (e.g. key %s); they are "
                "ignored and recomputed (remove them: mera-mm cache prune --invalid %s)",
                self.path,
                key[:12],
                self.path,
            )
            self._warned_invalid = True


def decode_value(raw: Any) -> tuple[bool, Any]:
    """(True, value) for JSON text; (False, None) for anything else. Nothing but
    ``json.loads`` ever reads a stored value: bytes (a pickle, say) are not even decoded."""
    if not isinstance(raw, str):
        return False, None
    try:
        return True, json.loads(raw)
    except ValueError:
        return False, None


def _explain(path: Path, exc: sqlite3.DatabaseError) -> CacheFileError:
    text = str(exc).lower()
    if "locked" in text or "locking" in text or "disk i/o" in text or "busy" in text:
        return CacheFileError(
            f"cache file {path}: SQLite cannot lock it ({exc}). Network filesystems (NFS, "
            "SMB, some FUSE mounts) often lack the locks SQLite needs; put --use_cache on a "
            "local disk (copy the file back afterwards if you want to keep it there)"
        )
    if "not a database" in text or "malformed" in text:
        return CacheFileError(f"cache file {path} is not a SQLite database: {exc}")
    return CacheFileError(f"cache file {path}: {exc}")
