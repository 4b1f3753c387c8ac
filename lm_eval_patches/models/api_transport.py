"""Concurrent chat-completion requests over HTTP: retries, Retry-After, timeouts, failures.

One job per sample. Each job renders its payload (in a worker thread, so media encoding never
stalls the event loop), then posts it with ``aiohttp``; ``tenacity`` retries transient failures
(connection errors, timeouts, HTTP 408/409/425/429/5xx, unparsable replies) with exponential
backoff and jitter, and waits at least ``Retry-After`` when the server sends one. A request that
still fails, or fails for good (another 4xx), becomes an :class:`Outcome` with its reason:
never an exception that ends the run.

Servers differ in the parameters they take (``max_tokens`` versus ``max_completion_tokens``;
reasoning models refuse ``stop`` and ``temperature``). A 400/422 reply that names one of the
:data:`ADAPTABLE` parameters drops it for the rest of the run and sends the request again, so
no model name is ever sniffed.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
# Parameters a server may refuse that a request can do without (the max-token fields go in
# pairs: each is only dropped while the other one is still sent).
ADAPTABLE = ("max_tokens", "max_completion_tokens", "stop", "temperature", "seed")
_PARTNER = {"max_tokens": "max_completion_tokens", "max_completion_tokens": "max_tokens"}


@dataclass
class RetryPolicy:
    """How often and how long to retry.

    Attributes:
        attempts: tries per request in all (the first one included).
        backoff_s: first backoff; doubles each retry, plus up to ``backoff_s`` of jitter.
        max_wait_s: cap on any single wait, ``Retry-After`` included.
        timeout_s: limit on one attempt, from sending to the last byte of the reply.
    """

    attempts: int = 5
    backoff_s: float = 1.0
    max_wait_s: float = 60.0
    timeout_s: float = 300.0


@dataclass
class Outcome:
    """What became of one request: a reply (``response``) or a failure ``reason``."""

    response: dict | None = None
    reason: str | None = None
    latency_s: float | None = None  # of the successful attempt
    attempts: int = 0


class Transient(Exception):
    """Worth another try; ``retry_after`` is the server's wish in seconds, if it said."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Permanent(Exception):
    """Not worth another try (e.g. HTTP 401, 404, a 400 we cannot adapt to)."""


class Rejected(Exception):
    """The server refused one parameter by name; ``param`` is in ADAPTABLE."""

    def __init__(self, param: str, reason: str) -> None:
        super().__init__(reason)
        self.param = param


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def rejected_param(body: str, payload: dict, dropped: set[str]) -> str | None:
    """The parameter a 400/422 body complains about, if the request can do without it.

    The first ADAPTABLE parameter named in the body wins ("Unsupported parameter: 'max_tokens'
    ... use 'max_completion_tokens' instead" names max_tokens first). A max-token field is
    dropped only while its partner is still sent.
    """
    text = body.lower()
    named = []
    for param in ADAPTABLE:
        if param not in payload:  # the payload as sent: a param dropped meanwhile can't be it
            continue
        found = re.search(rf"(?<!\w){param}(?!\w)", text)
        if found:
            named.append((found.start(), param))
    for _, param in sorted(named):
        partner = _PARTNER.get(param)
        if partner is None or (partner in payload and partner not in dropped):
            return param
    return None


def _wait(policy: RetryPolicy) -> Callable[[Any], float]:
    from tenacity import wait_exponential_jitter

    backoff = wait_exponential_jitter(
        multiplier=policy.backoff_s, max=policy.max_wait_s, jitter=policy.backoff_s
    )

    def wait(state: Any) -> float:
        exc = state.outcome.exception() if state.outcome else None
        after = getattr(exc, "retry_after", None)
        if after is not None:
            return min(after, policy.max_wait_s)
        return backoff(state)

    return wait


def _check_reply(data: Any) -> None:
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise Transient(f"malformed reply: no choices in {json.dumps(data)[:200]}")
    message = choices[0].get("message")
    if not isinstance(message, dict) or not (
        message.get("content") is None or isinstance(message.get("content"), str)
    ):
        raise Transient(f"malformed reply: no message content in {json.dumps(data)[:200]}")


async def _attempt(session: Any, url: str, body: bytes, headers: dict, timeout: float) -> dict:
    import aiohttp

    headers = {**headers, "Content-Type": "application/json"}
    try:
        async with session.post(
            url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            body = await resp.read()
            status, retry_after = resp.status, resp.headers.get("Retry-After")
    except TimeoutError:
        raise Transient(f"no complete reply within the timeout of {timeout:g} s") from None
    except aiohttp.ClientError as exc:
        raise Transient(f"connection error: {type(exc).__name__}: {exc}") from None
    text = body.decode("utf-8", "replace")
    if status in RETRY_STATUSES or status >= 500:
        raise Transient(f"HTTP {status}: {text[:200]}", parse_retry_after(retry_after))
    if status >= 400:
        raise Permanent(f"HTTP {status}: {text[:300]}")
    try:
        data = json.loads(text)
    except ValueError:
        raise Transient(f"malformed reply (not JSON): {text[:120]!r}") from None
    _check_reply(data)
    return data


@dataclass
class Client:
    """Posts jobs to one endpoint, ``concurrency`` at a time.

    ``dropped`` holds the parameters this endpoint refused (shared by all requests of the run).
    """

    url: str
    headers: dict
    concurrency: int = 1
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    dropped: set[str] = field(default_factory=set)

    def _encode(self, payload: dict) -> tuple[dict, bytes]:
        sent = {k: v for k, v in payload.items() if k not in self.dropped}
        return sent, json.dumps(sent, ensure_ascii=False).encode("utf-8")

    async def _one(
        self,
        session: Any,
        sem: asyncio.Semaphore,
        ahead: asyncio.Semaphore,
        make: Callable[[], dict],
    ) -> Outcome:
        outcome = Outcome()
        # Payloads (media rendering, JSON encoding) are prepared in worker threads up to
        # `ahead` requests in advance, so a free connection never waits for one.
        async with ahead:
            try:
                payload = await asyncio.to_thread(make)
                sent, body = await asyncio.to_thread(self._encode, payload)
            except Exception as exc:  # noqa: BLE001 - a payload that cannot be built fails alone
                outcome.reason = str(exc) or type(exc).__name__
                return outcome
            async with sem:
                while True:
                    if any(k in self.dropped for k in sent):  # refused meanwhile by another
                        sent, body = self._encode(payload)
                    try:
                        await self._with_retries(session, sent, body, outcome)
                        return outcome
                    except Rejected as exc:
                        log.warning("the server refused %r; sending requests without it", exc.param)
                        self.dropped.add(exc.param)
                    except (Transient, Permanent) as exc:
                        tries = (
                            f" after {outcome.attempts} attempt(s)" if outcome.attempts > 1 else ""
                        )
                        outcome.reason = f"{exc}{tries}"
                        return outcome

    async def _with_retries(self, session: Any, sent: dict, body: bytes, outcome: Outcome) -> None:
        from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(max(1, self.policy.attempts)),
            wait=_wait(self.policy),
            retry=retry_if_exception_type(Transient),
            reraise=True,
        ):
            with attempt:
                outcome.attempts += 1
                start = time.perf_counter()
                try:
                    outcome.response = await _attempt(
                        session, self.url, body, self.headers, self.policy.timeout_s
                    )
                except Permanent as exc:
                    param = rejected_param(str(exc), sent, self.dropped)
                    if param is None:
                        raise
                    raise Rejected(param, str(exc)) from None
                outcome.latency_s = time.perf_counter() - start

    async def _all(
        self,
        makers: Sequence[Callable[[], dict]],
        progress: Any,
        on_done: Callable[[int, Outcome], None] | None,
    ) -> list[Outcome]:
        import aiohttp

        sem = asyncio.Semaphore(max(1, self.concurrency))
        ahead = asyncio.Semaphore(2 * max(1, self.concurrency))
        connector = aiohttp.TCPConnector(limit=max(1, self.concurrency))
        async with aiohttp.ClientSession(connector=connector) as session:

            async def run(position: int, make: Callable[[], dict]) -> Outcome:
                outcome = await self._one(session, sem, ahead, make)
                if on_done is not None:
                    on_done(position, outcome)
                if progress is not None:
                    progress.update(1)
                return outcome

            return await asyncio.gather(*(run(i, m) for i, m in enumerate(makers)))

    def post_all(
        self,
        makers: Sequence[Callable[[], dict]],
        progress: Any = None,
        on_done: Callable[[int, Outcome], None] | None = None,
    ) -> list[Outcome]:
        """Outcomes of the payloads that ``makers`` build, in order (never raises per job).

        ``on_done(position, outcome)`` runs as each one completes, so a caller can keep each
        answer (e.g. in the request cache) before the others are back.
        """
        if not makers:
            return []
        return asyncio.run(self._all(makers, progress, on_done))
