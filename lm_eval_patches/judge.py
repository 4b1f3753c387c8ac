"""Judge score (JS): an OpenAI-compatible chat model says whether a prediction means the gold.

MERA's own JS is computed on the MERA site with a judge that is not public (MERA_SPEC 5.2); this
is our approximation with a judge the user chooses. Per item the verdict is 1 (same meaning),
0 (different), or None when the judge could not be asked (HTTP or network error after the
client's retries) or its reply holds no verdict; None items are counted and left out of JS,
never scored 0 or 1. Verdicts are cached in SQLite keyed by the judge model, the prompt version
and the (question, gold, prediction) text, so scoring the same run again asks nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

# Bump when the prompt changes: cached verdicts of an older prompt are then not reused.
PROMPT_VERSION = "mera-js-ru-1"

SYSTEM_PROMPT = (
    "Ты — беспристрастный эксперт, который проверяет ответы на вопросы. "
    "Тебе дают вопрос, эталонный ответ и ответ модели. Реши, совпадает ли ответ модели "
    "с эталонным по смыслу. Форма не важна: регистр, пунктуация, лишние слова вроде "
    "«Ответ:», синонимы и запись числа словами или цифрами не считаются ошибкой. "
    "Если вопрос с вариантами ответа, ответ модели верен, только когда он выбирает тот же "
    "вариант, что и эталон. Если ответ модели содержит несколько разных ответов, "
    "противоречит эталону или уклоняется от ответа, он неверен. "
    "Ответь одной цифрой: 1 — ответ верный, 0 — ответ неверный."
)

USER_TEMPLATE = (
    "Вопрос:\n{question}\n\n"
    "Эталонный ответ (подходит любой из вариантов через «|»):\n{gold}\n\n"
    "Ответ модели:\n{prediction}\n\n"
    "Оценка (1 или 0):"
)

DEFAULT_KEY_ENV = "MERA_JUDGE_API_KEY"
_VERDICT = re.compile(r"^\W*(?:(?:оценка|ответ|verdict|score)\W*)?([01])\W*$", re.IGNORECASE)


@dataclass(frozen=True)
class JudgeItem:
    """One question to judge: the prompt text, acceptable golds, and the model's answer."""

    question: str
    golds: tuple[str, ...]
    prediction: str

    def key(self, model: str) -> str:
        """Cache key: sha256 over prompt version, judge model and the three texts."""
        payload = json.dumps(
            [PROMPT_VERSION, model, self.question, list(self.golds), self.prediction],
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def messages(self) -> list[dict[str, str]]:
        """The chat messages sent to the judge (system + user, in Russian)."""
        user = USER_TEMPLATE.format(
            question=self.question.strip(),
            gold=" | ".join(g.strip() for g in self.golds),
            prediction=self.prediction.strip(),
        )
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


@dataclass
class Verdict:
    """The judge's verdict on one item: ``value`` 1/0, or None with ``error`` saying why."""

    value: int | None
    error: str | None = None
    cached: bool = False


def parse_verdict(reply: str) -> int | None:
    """1 or 0 from a reply such as "1", " 0.", "Оценка: 1"; None for anything else."""
    match = _VERDICT.match(reply or "")
    return int(match.group(1)) if match else None


class VerdictCache:
    """Verdicts in one SQLite file (plain rows, safe for the scorer's threads)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        with self._lock, self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, model TEXT, "
                "verdict INTEGER NOT NULL, reply TEXT)"
            )

    def get(self, key: str) -> int | None:
        """The cached verdict for ``key``, or None when there is none."""
        with self._lock:
            row = self._db.execute("SELECT verdict FROM verdicts WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])

    def put(self, key: str, model: str, verdict: int, reply: str) -> None:
        """Store a parsed verdict (errors and unparsable replies are never stored)."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?)", (key, model, verdict, reply)
            )

    def close(self) -> None:
        self._db.close()


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/mera-mm/judge.sqlite`` (``~/.cache`` when unset)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "mera-mm" / "judge.sqlite"


@dataclass
class JudgeClient:
    """An OpenAI-compatible judge endpoint.

    ``url`` is the API base (e.g. ``http://127.0.0.1:8000/v1``); the key is read from the
    environment variable ``key_env`` when a request is made (``EMPTY`` when unset, as local
    servers expect). The ``openai`` client retries connection errors, 408/409/429 and 5xx
    with exponential back-off (``max_retries`` times) before an item counts as an error.
    """

    url: str
    model: str
    key_env: str = DEFAULT_KEY_ENV
    max_retries: int = 3
    timeout_s: float = 60.0
    max_tokens: int = 8
    _client: object | None = field(default=None, repr=False)

    def _openai(self):  # noqa: ANN202 - openai is an optional import
        if self._client is None:
            import openai

            self._client = openai.OpenAI(
                base_url=self.url,
                api_key=os.environ.get(self.key_env) or "EMPTY",
                max_retries=self.max_retries,
                timeout=self.timeout_s,
            )
        return self._client

    def ask(self, item: JudgeItem) -> tuple[int | None, str, str | None]:
        """(verdict, raw reply, error); never raises for an HTTP or protocol failure."""
        import openai

        try:
            completion = self._openai().chat.completions.create(
                model=self.model,
                messages=item.messages(),
                temperature=0,
                max_tokens=self.max_tokens,
            )
            reply = completion.choices[0].message.content or ""
        except (openai.OpenAIError, IndexError, AttributeError, ValueError) as exc:
            return None, "", f"judge request failed: {type(exc).__name__}: {exc}"
        verdict = parse_verdict(reply)
        if verdict is None:
            return None, reply, f"judge reply has no 0/1 verdict: {reply[:80]!r}"
        return verdict, reply, None

    def identity(self) -> dict[str, str]:
        """What the results record about the judge (never the key)."""
        return {"url": self.url, "model": self.model, "prompt_version": PROMPT_VERSION}


def judge_items(
    client: JudgeClient,
    items: Iterable[JudgeItem],
    cache: VerdictCache,
    concurrency: int = 8,
    progress: Callable[[int], None] | None = None,
) -> list[Verdict]:
    """Verdicts for ``items`` in order: cached ones first, the rest asked ``concurrency`` at a
    time, once per distinct content. Errors and unparsable replies come back as
    Verdict(None, reason)."""
    items = list(items)
    verdicts: list[Verdict | None] = [None] * len(items)
    pending: dict[str, list[int]] = {}  # one request per distinct content
    for i, item in enumerate(items):
        key = item.key(client.model)
        hit = cache.get(key)
        if hit is None:
            pending.setdefault(key, []).append(i)
        else:
            verdicts[i] = Verdict(hit, cached=True)

    def ask(key: str) -> tuple[str, Verdict]:
        item = items[pending[key][0]]
        value, reply, error = client.ask(item)
        if value is not None:
            cache.put(key, client.model, value, reply)
        return key, Verdict(value, error)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for key, verdict in pool.map(ask, list(pending)):
            for i in pending[key]:
                verdicts[i] = verdict
            if progress:
                progress(len(pending[key]))
    return [v for v in verdicts if v is not None]
