"""Error type shared by the media decoding helpers.

A :class:`MediaError` carries *what* failed (``kind`` such as ``"audio"`` or ``"video"``),
*why* (``detail``) and, once a caller knows it, *where* (task, document, field).  Low-level
decoders raise it without context; the code that iterates over documents attaches the
location with :meth:`MediaError.with_context` before re-raising, so the final message
points at the exact record that holds the broken media.
"""

from __future__ import annotations

__all__ = ["MediaError"]


class MediaError(ValueError):
    """A media payload could not be decoded, probed or encoded.

    Subclasses :class:`ValueError` so generic input-validation handlers still catch it.

    Attributes:
        kind: Media kind, e.g. ``"audio"``, ``"video"`` or ``"image"``.
        detail: Human-readable reason, usually including the underlying library error.
        where: Optional location (also the third positional argument), e.g.
            ``"task ruenvaqa, doc 12, field inputs.audio"``.
        action: Verb used in the message (``"decode"`` by default, ``"encode"``...).
    """

    def __init__(
        self, kind: str, detail: str, where: str | None = None, *, action: str = "decode"
    ) -> None:
        super().__init__(kind, detail)
        self.kind = kind
        self.detail = detail
        self.where = where
        self.action = action

    def with_context(self, where: str) -> MediaError:
        """Attach a location and return ``self`` (for ``raise err.with_context(...)``).

        Context added later is assumed to be broader (the caller knows the task and doc,
        the callee only the field), so it is prepended to any existing location.
        """
        where = where.strip().rstrip(",")
        if where:
            self.where = f"{where}, {self.where}" if self.where else where
        return self

    @property
    def message(self) -> str:
        """The message without location."""
        if self.detail.lower().startswith("cannot "):  # detail already says what failed
            return self.detail
        return f"cannot {self.action} {self.kind} ({self.detail})"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kind={self.kind!r}, detail={self.detail!r}, "
            f"where={self.where!r}, action={self.action!r})"
        )

    def __reduce__(self):  # keyword-only fields would be lost by the default pickling
        return (_rebuild, (type(self), self.kind, self.detail, self.where, self.action))


def _rebuild(
    cls: type[MediaError], kind: str, detail: str, where: str | None, action: str
) -> MediaError:
    return cls(kind, detail, where=where, action=action)
