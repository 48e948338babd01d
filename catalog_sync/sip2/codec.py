"""The SIP2 2.00 wire format (3M Standard Interchange Protocol): frames, fields, checksums.

A message is one line ended by a carriage return: a two-digit command id, fixed-length fields in
the order the spec gives, then variable fields, each a two-letter id, a value and ``|``. With
error detection on, the message ends ``AY<sequence digit>AZ<four hex digits>``: the checksum is
the two's complement of the low 16 bits of the sum of every byte from the first through ``AZ``.

Plain functions, no I/O: the server hands in complete frames and writes out what comes back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final

from catalog_sync.sip2.errors import Sip2FrameError

FIELD_END: Final = "|"
_HEX: Final = frozenset(b"0123456789ABCDEFabcdef")
CR: Final = b"\r"

# The fixed part of each request the server answers, in characters (SIP2 2.00, by command id).
REQUEST_FIXED: Final[Mapping[str, int]] = {
    "93": 2,  # UID algorithm, PWD algorithm
    "99": 8,  # status code, max print width, protocol version
    "97": 0,
    "63": 31,  # language, transaction date, summary
    "23": 21,  # language, transaction date
    "11": 38,  # SC renewal policy, no block, transaction date, nb due date
    "09": 37,  # no block, transaction date, return date
    "17": 18,  # transaction date
    "29": 38,  # third party allowed, no block, transaction date, nb due date
    "65": 18,
    "35": 18,
    "37": 25,  # transaction date, fee type, payment type, currency type
    "01": 19,  # card retained, transaction date
    "15": 19,  # hold mode, transaction date
    "19": 18,
    "25": 18,
}


def checksum(data: bytes) -> str:
    """The four-hex-digit SIP2 checksum of ``data`` (every byte from the first through ``AZ``)."""
    return f"{(-sum(data)) & 0xFFFF:04X}"


@dataclass(frozen=True)
class Request:
    """One decoded message from a self-check machine.

    ``fields`` keeps every occurrence of a variable field in order; ``sequence`` is the ``AY``
    digit and ``checksummed`` whether the frame carried ``AZ`` (the reply does the same).
    """

    command: str
    fixed: str
    fields: Mapping[str, tuple[str, ...]]
    sequence: int | None = None
    checksummed: bool = False

    def get(self, field_id: str, default: str = "") -> str:
        """The first value of a variable field, or ``default`` when it is absent."""
        values = self.fields.get(field_id)
        return values[0] if values else default

    def flag(self, start: int) -> bool:
        """A one-character Y/N fixed field at ``start`` (counted after the command id)."""
        return self.fixed[start : start + 1] == "Y"


def _verify(body: bytes) -> None:
    # body ends "AZ" + 1..4 hex digits. Some clients drop leading zeros of the checksum (the
    # PyPI Sip2 client formats it without padding), so the value is compared, not the text.
    at = body.rfind(b"AZ")
    digits = body[at + 2 :]
    try:
        value = int(digits.decode("ascii"), 16)
    except (UnicodeDecodeError, ValueError):
        raise Sip2FrameError(f"checksum {digits!r} is not hexadecimal") from None
    if not 1 <= len(digits) <= 4 or (sum(body[: at + 2]) + value) & 0xFFFF != 0:
        raise Sip2FrameError(f"checksum {digits.decode('ascii')} does not match the message")


def decode(frame: bytes, *, encoding: str) -> Request:
    """Decode one frame (with or without its trailing CR/LF).

    Raises :class:`Sip2FrameError` for a wrong checksum, an unknown or truncated message, or
    bytes that are not in ``encoding``: the server answers those with a resend request (96).
    """
    body = frame.rstrip(b"\r\n")
    if len(body) < 2:
        raise Sip2FrameError("message too short to carry a command id")
    checksummed = False
    sequence: int | None = None
    tail = body.rfind(b"AZ")
    digits = body[tail + 2 :] if tail != -1 else b""
    if tail >= len(body) - 6 and 1 <= len(digits) <= 4 and all(c in _HEX for c in digits):
        _verify(body)
        checksummed = True
        body = body[:tail]
        if body[-3:-1] == b"AY" and body[-1:].isdigit():
            sequence = int(body[-1:])
            body = body[:-3]
    elif body[-3:-1] == b"AY" and body[-1:].isdigit():  # sequence without checksum
        sequence = int(body[-1:])
        body = body[:-3]
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as e:
        raise Sip2FrameError(f"message is not valid {encoding}: {e.reason}") from None
    command = text[:2]
    width = REQUEST_FIXED.get(command)
    if width is None:
        raise Sip2FrameError(f"unknown message {command!r}")
    fixed = text[2 : 2 + width]
    if len(fixed) != width:
        raise Sip2FrameError(f"message {command}: fixed fields truncated")
    fields: dict[str, list[str]] = {}
    rest = text[2 + width :]
    for part in rest.split(FIELD_END):
        if not part:
            continue
        if len(part) < 2:
            raise Sip2FrameError(f"message {command}: field {part!r} has no identifier")
        fields.setdefault(part[:2], []).append(part[2:])
    return Request(
        command=command,
        fixed=fixed,
        fields={k: tuple(v) for k, v in fields.items()},
        sequence=sequence,
        checksummed=checksummed,
    )


@dataclass(frozen=True)
class Response:
    """A reply under construction: the command id, its fixed part and its variable fields.

    A variable field whose value is ``None`` is left out (what the spec allows for a field the
    library does not hold); an empty string is sent as an empty field (required ones)."""

    command: str
    fixed: str = ""
    fields: list[tuple[str, str | None]] = field(default_factory=list)

    def add(self, field_id: str, value: str | None) -> Response:
        """Append one variable field (``None``: left out)."""
        self.fields.append((field_id, value))
        return self

    def extend(self, field_id: str, values: Iterable[str]) -> Response:
        """Append a repeatable field once per value."""
        for value in values:
            self.fields.append((field_id, value))
        return self


def _clean(value: str) -> str:
    # A value never carries the field separator or a line end; at most 255 characters.
    return value.replace("|", "/").replace("\r", " ").replace("\n", " ")[:255]


def encode(
    response: Response,
    *,
    encoding: str,
    sequence: int | None = None,
    with_checksum: bool = False,
) -> bytes:
    """The wire form of ``response``; with ``with_checksum`` the ``AY``/``AZ`` trailer is added
    (``AY`` only when ``sequence`` is known, and never on a 96/97 resend message)."""
    parts = [response.command, response.fixed]
    for field_id, value in response.fields:
        if value is not None:
            parts.append(f"{field_id}{_clean(value)}{FIELD_END}")
    data = "".join(parts).encode(encoding, errors="replace")
    if with_checksum:
        if sequence is not None and response.command not in ("96", "97"):
            data += b"AY" + str(sequence).encode("ascii")
        data += b"AZ"
        data += checksum(data).encode("ascii")
    return data + CR


def stamp(moment: datetime) -> str:
    """A SIP2 date and time, ``YYYYMMDDZZZZHHMMSS`` with blanks for the zone (local time)."""
    return moment.strftime("%Y%m%d    %H%M%S")


def day_stamp(day: date) -> str:
    """A due date in the same 18-character form (end of the day it is due)."""
    return day.strftime("%Y%m%d    235959")


def parse_stamp(value: str) -> date | None:
    """The date of a SIP2 date/time field, or ``None`` when blank or malformed."""
    digits = value[:8]
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def yn(value: bool) -> str:
    """``Y`` or ``N``."""
    return "Y" if value else "N"
