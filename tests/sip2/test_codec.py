"""Qor's SIP2 checksum against published vectors (the 3M spec's examples, as quoted by the
PyPI ``Sip2`` client), and a decode of each against the ``pysip2`` encoder."""

from __future__ import annotations

import pysip2
import pytest

from catalog_sync.sip2.codec import checksum, decode
from catalog_sync.sip2.errors import Sip2FrameError


@pytest.mark.parametrize(("body", "expected"), [
    (b"09N20160419    12200820160419    122008APReading Room 1|AO830|AB830$28170815|AC|AY2AZ",
     "EB80"),
    (b"09N20160419    12171320160419    121713APReading Room 1|AO830|AB830$28170815|AC|AY2AZ",
     "EB7C"),
])
def test_checksum_matches_published_vectors(body: bytes, expected: str) -> None:
    assert checksum(body) == expected
    request = decode(body + expected.encode() + b"\r", encoding="utf-8")
    assert (request.command, request.sequence, request.checksummed) == ("09", 2, True)
    assert request.get("AB") == "830$28170815" and request.get("AP") == "Reading Room 1"


def test_a_frame_from_pysip2_decodes_field_by_field() -> None:
    frame = pysip2.encode_message(pysip2.CheckoutRequest(
        sc_renewal_policy="Y", no_block="N", transaction_date="20260105    101010",
        nb_due_date="20260205    101010", institution_id="KZ", patron_identifier="T-1",
        item_identifier="ҚР-0001", terminal_password="", fee_acknowledged="N"),
        sequence_number=7, checksum=True, encoding="utf-8")
    request = decode(frame, encoding="utf-8")
    assert request.fixed == "YN20260105    10101020260205    101010"
    assert dict(request.fields) == {"AO": ("KZ",), "AA": ("T-1",), "AB": ("ҚР-0001",),
                                    "AC": ("",), "BO": ("N",)}
    assert request.sequence == 7 and request.flag(0)
    with pytest.raises(Sip2FrameError, match="does not match"):
        decode(frame.replace(b"T-1", b"T-2"), encoding="utf-8")
