"""Errors a user can fix (a setting, a flag, a missing dataset), reported as one line.

Code that detects such a problem raises :class:`UserError` (or a subclass) with a message that
names the task (or model argument) at fault and says what to do. The ``lm-eval run`` wrapper
(``cli_flags``) prints that message as one line and exits with :data:`USER_ERROR_EXIT_STATUS`;
the traceback is shown only with ``--verbosity DEBUG`` or ``MERA_TRACEBACK=1``.
"""

from __future__ import annotations

import os
import sys
import traceback

# argparse's status for a usage error: the run did not start.
USER_ERROR_EXIT_STATUS = 2


class UserError(Exception):
    """A problem in the user's settings or data, with a one-line message saying what to do."""

    def one_line(self) -> str:
        """The message on one line (datasets and friends put newlines in their errors)."""
        return " ".join(str(self).split())


class SettingsError(UserError, ValueError):
    """A setting with a bad value or combination (still a ValueError for callers that catch
    that)."""


def wants_traceback(verbosity: str | None = None) -> bool:
    """True with ``--verbosity DEBUG`` or ``MERA_TRACEBACK=1`` (read now, not at import)."""
    flag = os.environ.get("MERA_TRACEBACK", "").strip().lower() in ("1", "true", "yes")
    return flag or str(verbosity or "").upper() == "DEBUG"


def find_user_error(exc: BaseException) -> UserError | None:
    """The UserError behind ``exc`` (itself or one in its cause/context chain), if any.

    lm-eval sometimes wraps what a task raised while loading in its own exception.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, UserError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def report_user_error(error: UserError, original: BaseException, verbosity: str | None) -> int:
    """Print the error as the last line on stderr (after the traceback when asked for one);
    return the exit status."""
    if wants_traceback(verbosity):
        traceback.print_exception(original, file=sys.stderr)
        print(f"error: {error.one_line()}", file=sys.stderr)
    else:
        print(f"error: {error.one_line()} [traceback: MERA_TRACEBACK=1]", file=sys.stderr)
    return USER_ERROR_EXIT_STATUS
