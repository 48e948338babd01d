"""Errors raised by the ``integrity`` package (bags, validation, PREMIS).

Validation findings are *data* (:mod:`integrity.problems`); the exceptions here carry them, or say
why a bag could not be built or read at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from qor.errors import QorError

if TYPE_CHECKING:
    from integrity.problems import BagProblem


class IntegrityError(QorError):
    """Base of the integrity package's errors."""

    exit_code = 4
    http_status = 500
    retryable = False


class BagInvalid(IntegrityError):  # noqa: N818 - the name the issue and callers use
    """A bag failed validation; ``problems`` lists every reason found (never only the first).

    CLI exit code 1: the bag is refused ("invalid"), as ``qor bag validate`` documents.
    """

    exit_code = 1
    http_status = 422

    def __init__(self, bag: str, problems: Sequence[BagProblem]) -> None:
        self.bag = bag
        self.problems: tuple[BagProblem, ...] = tuple(problems)
        lines = [f"bag {bag} is not valid ({len(self.problems)} problem(s)):"]
        lines += [f"  - {p.message}" for p in self.problems]
        super().__init__("\n".join(lines))

    def problem_lines(self) -> tuple[str, ...]:
        return tuple(f"bag {self.bag}: {p.message}" for p in self.problems) or (self.message,)


class BagBuildError(IntegrityError):
    """A bag could not be built from the given input (bad path, unreadable source, ...).

    Nothing is left behind: the partial bag folder is removed before this is raised.
    """

    exit_code = 1
    http_status = 422


class BagExistsError(BagBuildError):
    """The destination of a new bag already exists; bags are never overwritten."""

    http_status = 409


class BagUnreadableError(IntegrityError):
    """The bag's location cannot be read at all (not a folder, permission denied, ...)."""

    exit_code = 3
    http_status = 500
    retryable = True


class PremisError(IntegrityError):
    """PREMIS or Dublin Core metadata could not be produced or is not schema-valid."""

    exit_code = 1
    http_status = 500


class MetsError(IntegrityError):
    """A METS document could not be validated, or is not valid against the METS schema."""

    exit_code = 1
    http_status = 500


class FormatIdentificationError(IntegrityError):
    """A payload file could not be identified (unreadable, or the identifier is not installed)."""

    exit_code = 1
    http_status = 500


class FixityAuditFailed(IntegrityError):  # noqa: N818 - the name the flow and CLI use
    """A fixity audit found damage that could not be repaired (exit code 4).

    ``result`` is the audit's result (an :class:`integrity.audit.AuditRun`), for the caller to
    report; ``alert_error`` says why the alert could not be delivered, if it could not.
    """

    exit_code = 4
    http_status = 500
    retryable = False

    def __init__(self, message: str, *, result: object = None,
                 alert_error: str | None = None) -> None:
        self.result = result
        self.alert_error = alert_error
        super().__init__(message if alert_error is None
                         else f"{message} — and the alert FAILED: {alert_error}")

    def problem_lines(self) -> tuple[str, ...]:
        """One line per damaged file left unrepaired (per bag), and one if the alert failed."""
        lines = [f"bag {bag.bag_id}: {f.message} (not repaired)"
                 for bag in getattr(self.result, "failed", ())
                 for f in getattr(bag, "remaining", ())]
        if not lines:
            lines = [self.message]
        elif self.alert_error is not None:
            lines.append(self.alert_error)
        return tuple(lines)
