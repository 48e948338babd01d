"""Property test of MARC import (issue 15): ISO 2709 and MARCXML files — random bytes, and
valid records with bits flipped, cut short or with bytes inserted — give the documented
outcome and nothing else: an import report whose problems name each record not taken (the rest
imported), or :class:`MarcError` for a file that cannot be read at all; never another
exception, each example within a time bound (the deadline) and a memory bound (peak RSS
growth). On SQLite and PostgreSQL (the register's two backends)."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import pymarc
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync import marc
from catalog_sync.errors import MarcError
from tests.bounds import MiB, peak_growth_below

DEADLINE = timedelta(seconds=5)
"""Per file: a handful of records into the register (PostgreSQL on a loaded machine)."""
MEMORY = 64 * MiB
FUZZ = settings(max_examples=60, deadline=DEADLINE, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _field(tag: str, subfields: list[tuple[str, str]], ind: tuple[str, str] = (" ", " ")
           ) -> pymarc.Field:
    return pymarc.Field(tag=tag, indicators=pymarc.Indicators(*ind),
                        subfields=[pymarc.Subfield(c, v) for c, v in subfields])


def sample_records() -> list[pymarc.Record]:
    """Two records as other catalogues and Qor write them: control number, 008, ISBN,
    languages, authors, title, imprint, Qor's 953 and 952 items (statuses, flags, dates)."""
    out = []
    for n, (title, author) in enumerate([("Абай жолы", "Әуезов М."),
                                         ("Қан мен тер", "Нұрпейісов Ә.")], 1):
        rec = pymarc.Record(force_utf8=True)
        for f in [
            pymarc.Field(tag="001", data=f"FUZZ-{n}"),
            pymarc.Field(tag="008", data="250301s1942    xx |||||||||||||||||kaz d"),
            _field("020", [("a", "978-601-7000-00-1")]),
            _field("041", [("a", "kaz"), ("a", "rus")]),
            _field("100", [("a", author)], ("1", " ")),
            _field("245", [("a", title + " /")], ("1", "0")),
            _field("264", [("b", "Жазушы"), ("c", "1942")], (" ", "1")),
            _field("953", [("a", "book"), ("b", "1")]),
            _field("952", [("i", f"KZ-FUZZ-{n}-1"), ("d", "2025-03-01"), ("s", "available"),
                           ("p", f"BC{n}1"), ("c", "A-1"), ("v", "historical")]),
            _field("952", [("i", f"KZ-FUZZ-{n}-2"), ("d", "2025-03-02"), ("s", "written_off"),
                           ("w", "WO-1"), ("x", "2025-04-01"), ("y", "worn")]),
        ]:
            rec.add_field(f)  # type: ignore[no-untyped-call]
        out.append(rec)
    return out


ISO = b"".join(r.as_marc() for r in sample_records())
XML = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
       b'<collection xmlns="http://www.loc.gov/MARC21/slim">'
       + b"".join(pymarc.record_to_xml(r, namespace=False)  # type: ignore[no-untyped-call]
                  for r in sample_records())
       + b"</collection>\n")


@st.composite
def mutated(draw: st.DrawFn, good: bytes) -> bytes:
    out = bytearray(good)
    for _ in range(draw(st.integers(1, 4), label="changes")):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "byte"]), label="kind")
        at = draw(st.integers(0, max(0, len(out) - 1)), label="at")
        if kind == "flip" and out:
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del out[at:]
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif out:
            out[at] = draw(st.sampled_from(b"\x1d\x1e\x1f0<>&\"' \x00"))
    return bytes(out)


def import_outcome(sessions: sessionmaker[Session], body: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory(prefix="qor-marc-fuzz-") as tmp:
        path = Path(tmp) / f"fuzz{suffix}"
        path.write_bytes(body)
        with sessions() as session, peak_growth_below(MEMORY, "importing a hostile MARC file"):
            try:
                report = marc.import_marc(session, path, actor="fuzz")
            except MarcError as e:
                assert e.message
                return
            finally:
                session.rollback()
    assert all(isinstance(p, marc.MarcProblem) and p.reason and p.position >= 1
               for p in report.problems)
    assert min(report.records_added, report.records_present, report.items_added,
               report.items_present) >= 0


@FUZZ
@given(body=st.one_of(st.binary(max_size=4000), mutated(ISO)))
@example(body=ISO)
@example(body=ISO[: len(ISO) // 2])
@example(body=b"-0001" + ISO[5:])
@example(body=b"00000" + ISO[5:])
@example(body=ISO.replace(b"FUZZ-1", b"FUZZ\x00\x01"))  # NUL: PostgreSQL text cannot hold it
@example(body=ISO.replace("Абай жолы".encode(), "Абай жолы".encode()[:-1] + b"\xff"))
def test_hostile_iso2709_gives_a_report_or_marc_error(
    sessions: sessionmaker[Session], body: bytes,
) -> None:
    import_outcome(sessions, body, ".mrc")


@FUZZ
@given(body=st.one_of(st.binary(max_size=4000), mutated(XML)))
@example(body=XML)
@example(body=XML[: len(XML) // 2])
@example(body=XML.replace(b"FUZZ-1", b"FUZZ-\x00"))
def test_hostile_marcxml_gives_a_report_or_marc_error(
    sessions: sessionmaker[Session], body: bytes,
) -> None:
    import_outcome(sessions, body, ".xml")


def test_the_intact_files_import(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """The control: what the mutated examples start from imports whole."""
    for suffix, body in ((".mrc", ISO), (".xml", XML)):
        path = tmp_path / f"good{suffix}"
        path.write_bytes(body)
        with sessions() as session:
            report = marc.import_marc(session, path, actor="fuzz")
            session.rollback()
        assert (report.records_added, report.items_added, report.problems) == (2, 4, ()), \
            report.problems




def test_regression_a_control_character_is_refused_by_name(
    sessions: sessionmaker[Session], tmp_path: Path,
) -> None:
    """Found by the property test: a NUL in a record's 001 crashed the import on PostgreSQL
    (DataError from the database); now that record is refused naming the field, and the other
    record is imported."""
    path = tmp_path / "nul.mrc"
    path.write_bytes(ISO.replace(b"FUZZ-1", b"FUZZ\x00\x01"))
    with sessions() as session:
        report = marc.import_marc(session, path, actor="fuzz")
        session.rollback()
    assert report.records_added == 1
    (problem,) = report.problems
    assert problem.position == 1 and "U+0000" in problem.reason and "001" in problem.reason
