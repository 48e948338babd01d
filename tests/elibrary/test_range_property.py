"""Property test of the ``Range`` parser (issue 15): any header, against any file size, gives a
range inside the file, ``None`` (send the whole file) or :class:`RangeNotSatisfiable` (416) —
nothing else, in bounded time and memory; a last position with however many digits is clamped
to the file's end (RFC 9110 §14.1.2), and only ASCII digits are digits (RFC 9110's DIGIT)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from elibrary.delivery import parse_range
from elibrary.errors import RangeNotSatisfiable
from tests.bounds import MiB, peak_growth_below

DEADLINE = timedelta(milliseconds=500)
"""Per header: parsing is microseconds; the deadline is generous for a loaded machine."""
MEMORY = 8 * MiB

digits = st.one_of(st.integers(0, 2**70).map(str), st.just("9" * 5000),
                   st.just("0" * 3000 + "7"), st.just(""))
structured = st.builds(
    lambda unit, a, b, sep, pad: f"{pad}{unit}={a}{sep}{b}{pad}",
    st.sampled_from(["bytes", "Bytes", "items", "bytes "]), digits, digits,
    st.sampled_from(["-", "--", ",", "- "]), st.sampled_from(["", " ", "\t"]))
headers = st.one_of(st.none(), st.text(max_size=200), structured,
                    st.lists(structured, min_size=2, max_size=4).map(",".join))
sizes = st.one_of(st.integers(0, 10), st.integers(0, 2**63), st.just(10**6))


@settings(max_examples=1500, deadline=DEADLINE, derandomize=True)
@given(header=headers, size=sizes)
@example(header="bytes=0-" + "9" * 20, size=1000)  # the attack sweep's 20-digit end: clamped
@example(header="bytes=" + "9" * 20 + "-", size=1000)  # a 20-digit start: 416
@example(header="bytes=٣-٥", size=1000)  # Arabic-Indic digits are not DIGIT: ignored
@example(header="bytes=-0", size=10)
def test_any_range_header_gives_a_range_inside_the_file_none_or_416(
    header: str | None, size: int,
) -> None:
    with peak_growth_below(MEMORY, f"parse_range({header!r:.60}, {size})"):
        try:
            got = parse_range(header, size)
        except RangeNotSatisfiable:
            return
    if got is None:
        return
    start, end = got
    assert 0 <= start < end <= size


@settings(max_examples=400, deadline=DEADLINE, derandomize=True)
@given(size=st.integers(1, 2**63), data=st.data())
def test_well_formed_ranges_mean_what_rfc_9110_says(size: int, data: st.DataObject) -> None:
    first = data.draw(st.integers(0, size - 1), label="first")
    last = data.draw(st.integers(first, 10**40), label="last")
    assert parse_range(f"bytes={first}-{last}", size) == (first, min(last + 1, size))
    assert parse_range(f"bytes={first}-", size) == (first, size)
    n = data.draw(st.integers(1, 10**40), label="suffix")
    assert parse_range(f"bytes=-{n}", size) == (max(0, size - n), size)
    with pytest.raises(RangeNotSatisfiable):
        parse_range(f"bytes={size + data.draw(st.integers(0, 10**30))}-", size)


def test_regressions_found_by_the_property_test() -> None:
    """Explicit examples: a 20-digit end is clamped, a 20-digit start is 416, and digits from
    other scripts (which Python's ``\\d`` and ``int`` accept) are no digits in HTTP."""
    assert parse_range("bytes=0-" + "9" * 20, 1000) == (0, 1000)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=" + "9" * 20 + "-", 1000)
    assert parse_range("bytes=٣-٥", 1000) is None  # Arabic-Indic three to five
    assert parse_range("bytes=０-５", 1000) is None  # fullwidth digits
