"""Errors the fund register raises on purpose.

Every class derives from :class:`qor.errors.QorError`; callers act on ``exit_code``,
``http_status`` and ``retryable``, never on the wording. Messages name the thing and the reason
(``inventory number KZ-000123 is immutable (R14)``).
"""

# ruff: noqa: N818 - domain names (ItemNotFound, NotProcessed…) are the API other packages use

from __future__ import annotations

from qor.errors import QorError


class RegisterError(QorError):
    """Base of the register's errors."""

    exit_code = 1
    http_status = 400
    retryable = False


class ItemNotFound(RegisterError):
    """No item carries this inventory number (or barcode / RFID tag id)."""

    http_status = 404

    def __init__(self, inventory_number: str, *, what: str = "inventory number") -> None:
        super().__init__(f"no item with {what} {inventory_number!r} in the register")
        self.inventory_number = inventory_number


class RecordNotFound(RegisterError):
    """No bibliographic record with this id or control number."""

    http_status = 404


class InventoryNumberImmutable(RegisterError):
    """R14: an inventory number cannot be changed, corrected or deleted."""

    http_status = 409

    def __init__(self, inventory_number: str, detail: str = "") -> None:
        extra = f": {detail}" if detail else ""
        super().__init__(
            f"inventory number {inventory_number!r} is immutable and the item cannot be deleted "
            f"(R14, R3–R4){extra}"
        )
        self.inventory_number = inventory_number


class InventoryNumberTaken(RegisterError):
    """R14: the inventory number was already given to an item (numbers are never reused)."""

    http_status = 409

    def __init__(self, inventory_number: str) -> None:
        super().__init__(
            f"inventory number {inventory_number!r} was already given to an item and can never "
            "be given again (R14)"
        )
        self.inventory_number = inventory_number


class InvalidInventoryNumber(RegisterError):
    """The inventory number (or numbering pattern) is empty or malformed."""


class CodeTaken(RegisterError):
    """A barcode or RFID tag id is already on another item."""

    http_status = 409


class NotProcessed(RegisterError):
    """R8: the item has not passed library processing, so it cannot be given out for use."""

    http_status = 409

    def __init__(self, inventory_number: str, status: str) -> None:
        super().__init__(
            f"item {inventory_number} is {status.replace('_', ' ')}, not processed: unprocessed "
            "items are not given out for use (R8)"
        )
        self.inventory_number = inventory_number
        self.status = status


class InvalidTransition(RegisterError):
    """The item's status cannot move from where it is to where it was asked to go (R8)."""

    http_status = 409

    def __init__(self, inventory_number: str, current: str, wanted: str, why: str = "") -> None:
        reason = f": {why}" if why else ""
        super().__init__(
            f"item {inventory_number} cannot go from {current.replace('_', ' ')} to "
            f"{wanted.replace('_', ' ')}{reason}"
        )
        self.inventory_number = inventory_number
        self.current = current
        self.wanted = wanted


class ItemWrittenOff(InvalidTransition):
    """R3–R4: the item left the fund by a write-off act; it can no longer change."""


class SourceNotAllowed(RegisterError):
    """R5: legal deposit is a source only for a library configured as national."""


class DuplicateAct(RegisterError):
    """A receipt act, write-off act or stocktake with this number already exists."""

    http_status = 409


class ActNotFound(RegisterError):
    """No receipt batch, write-off act or stocktake with this number/id."""

    http_status = 404


class DigitalCopyExists(RegisterError):
    """A digital copy with this bag id, or this version for the item, is already registered."""

    http_status = 409


class DigitalCopyNotFound(RegisterError):
    """No digital copy with this bag id."""

    http_status = 404


class StocktakeClosed(RegisterError):
    """The stocktake is closed: its act is final and takes no more scans."""

    http_status = 409


class BatchInFlight(RegisterError):
    """The same scan batch is being stored by another request (a client's retry overtook its
    first try); the caller rolls back and the client sends it again."""

    http_status = 503
    retryable = True


class RegisterBusy(RegisterError):
    """The database is locked by another writer or unreachable; trying again can help."""

    exit_code = 3
    http_status = 503
    retryable = True


class RegisterTampered(RegisterError):
    """The database refused a change that the register never makes (e.g. editing the audit log).

    Raised when a trigger that protects R3–R4/R14 fires for something other than an inventory
    number, e.g. an attempt to edit the audit log or delete a write-off act.
    """

    exit_code = 4
    http_status = 409


class BulkRefused(RegisterError):
    """A bulk CSV file (``qor items process|move --csv``) was refused as a whole; ``line`` is the
    first bad line (1 = the header), ``detail`` what is wrong with it. Nothing was changed."""

    def __init__(self, line: int, detail: str) -> None:
        super().__init__(f"line {line}: {detail}; nothing was changed")
        self.line = line
        self.detail = detail


class MarcError(RegisterError):
    """A MARC file cannot be read at all (individual bad records are reported, not raised)."""


# --- circulation, reader debts, the security gate, legal deposit ----------------------------


class ReaderNotFound(RegisterError):
    """No reader holds this reader ticket number."""

    http_status = 404

    def __init__(self, ticket_number: str) -> None:
        super().__init__(f"no reader with ticket number {ticket_number!r}")
        self.ticket_number = ticket_number


class ReaderExists(RegisterError):
    """The reader ticket number is already taken."""

    http_status = 409

    def __init__(self, ticket_number: str) -> None:
        super().__init__(f"reader ticket number {ticket_number!r} is already taken")
        self.ticket_number = ticket_number


class LoanRefused(RegisterError):
    """A loan, renewal or hold was refused by a circulation rule (R8, R15, R16).

    ``reason`` is a stable code a program can act on (``not_processed``, ``written_off``,
    ``on_loan``, ``in_repair``, ``not_available``, ``reader_blocked``, ``debt_limit``,
    ``reading_room_only``, ``held_for_another``, ``renewal_limit``, ``holds_waiting``,
    ``overdue``, ``wrong_service_point``, ``patron_password``); the message is what the
    librarian reads.
    """

    http_status = 409

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class LoanNotFound(RegisterError):
    """No open loan for this item, or no loan with this id."""

    http_status = 404


class LoanClosed(RegisterError):
    """A returned loan never changes again."""

    http_status = 409


class ServicePointNotFound(RegisterError):
    """No service point with this code."""

    http_status = 404


class DepositError(RegisterError):
    """A legal deposit operation was refused (unknown publication, recipient, bad date…)."""


class ClaimLetterNotFound(DepositError):
    """No claim letter by this number, or its file is no longer where it was written."""

    http_status = 404


class MailUnavailable(RegisterError):
    """The SMTP server could not be reached or refused the message; the next run retries."""

    exit_code = 3
    http_status = 503
    retryable = True
