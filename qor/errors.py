"""The root of every error Qor raises on purpose.

Each package (``flows``, ``storage``, ``integrity``, ``catalog_sync``) has its own ``errors.py``
whose classes derive from :class:`QorError`. Callers act on the attributes, not on the wording:

* ``exit_code`` — what the CLI exits with (1 = refused/invalid input, 2 = usage, 3 = environment
  or service problem, 4 = integrity failure);
* ``http_status`` — what the e-library or an API answers;
* ``retryable`` — whether a Prefect retry (or an operator simply trying again) can help.
  Bad input is never retryable; a store or database that is briefly unreachable is.
"""

from __future__ import annotations


class QorError(Exception):
    """Base of all Qor errors. Subclasses set the class attributes below."""

    exit_code: int = 1
    http_status: int = 500
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def problem_lines(self) -> tuple[str, ...]:
        """Each problem as one line, for the CLI's "one line per problem" (one, by default)."""
        return (self.message,)


class ConfigurationError(QorError):
    """A setting is missing, malformed or left at a placeholder value."""

    exit_code = 3
    http_status = 500


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` (or the Qor error it wraps) is worth retrying.

    Prefect retry conditions call this: unknown exceptions are not retried, because repeating a
    programming error only hides it.
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, QorError):
            return cur.retryable
        cur = cur.__cause__
    return False


class OrchestrationUnavailable(QorError):  # noqa: N818 - reads as what happened
    """The Prefect server that runs flows cannot be reached or started.

    ``exit_code`` 3 (environment problem); retryable, since a server that is starting or briefly
    down answers later.
    """

    exit_code = 3
    http_status = 503
    retryable = True
