"""Issue 15: a MARC record of hundreds of megabytes is refused by name in bounded time and
memory, and the limits that make it so keep honest files working.

ISO 2709 is framed by Qor (five ASCII digits of length, at most 99 999 bytes, the record
terminator where the length says); a MARCXML record is refused past
:data:`catalog_sync.marc.MAX_RECORD_BYTES` (what ISO 2709 could hold); at most
:data:`catalog_sync.marc.MAX_UNREADABLE` unreadable records are reported. The memory figures
are measured in a child process (its peak RSS over its baseline after imports), so they are the
import's own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pymarc
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog_sync import marc
from catalog_sync.models import BibRecord

HUGE = 128 * 1024 * 1024
MIB = 1 << 20

PROBE = """
import json, sys, time
from pathlib import Path
from catalog_sync.db import make_engine, session_factory, upgrade
from catalog_sync.marc import import_marc
engine = make_engine(f"sqlite:///{sys.argv[2]}/register.db")
upgrade(engine)
session = session_factory(engine)()
session.connection()
def status(key):
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith(key))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak starts again from here
before = status("VmRSS:")
t0 = time.perf_counter()
report = import_marc(session, Path(sys.argv[1]), actor="test")
took = time.perf_counter() - t0
print(json.dumps({"seconds": took, "growth_kib": status("VmHWM:") - before,
                  "added": report.records_added,
                  "problems": [[p.position, p.reason] for p in report.problems]}))
"""


def import_in_child(path: Path, work: Path) -> dict[str, object]:
    run = subprocess.run([sys.executable, "-c", PROBE, str(path), str(work)],
                         capture_output=True, text=True, timeout=180, check=True)
    result: dict[str, object] = json.loads(run.stdout)
    return result


def write(path: Path, head: bytes, unit: bytes, size: int, tail: bytes = b"") -> Path:
    """``head``, ``unit`` repeated to about ``size`` bytes, ``tail``; in 1 MiB blocks."""
    block = unit * (MIB // len(unit))
    with path.open("wb") as f:
        f.write(head)
        for _ in range(size // len(block)):
            f.write(block)
        f.write(tail)
    return path


def record(control: str, title: str, notes: Iterable[str] = ()) -> pymarc.Record:
    rec = pymarc.Record(force_utf8=True)
    rec.add_field(pymarc.Field(tag="001", data=control))  # type: ignore[no-untyped-call]
    rec.add_field(pymarc.Field(  # type: ignore[no-untyped-call]
        tag="245", indicators=pymarc.Indicators("0", "0"), subfields=[pymarc.Subfield("a", title)]))
    for note in notes:
        rec.add_field(pymarc.Field(  # type: ignore[no-untyped-call]
            tag="500", indicators=pymarc.Indicators(" ", " "),
            subfields=[pymarc.Subfield("a", note)]))
    return rec


NOTE_XML = ('<datafield tag="500" ind1=" " ind2=" "><subfield code="a">Ескерту: түпнұсқа '
            'қолжазба.</subfield></datafield>\n').encode()
XML_HEAD = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
            b'<collection xmlns="http://www.loc.gov/MARC21/slim">')
ISO_FIELD = b"500  \x1fa" + "Ескерту: түпнұсқа қолжазба. ".encode() * 4 + b"\x1e"


def test_a_marcxml_record_of_128_mib_is_refused_in_bounded_time_and_memory(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "huge.xml",
                 XML_HEAD + b'<record><leader>00000nam a2200000 a 4500</leader>'
                 b'<controlfield tag="001">HUGE-1</controlfield>', NOTE_XML, HUGE,
                 b"</record></collection>\n")
    result = import_in_child(path, tmp_path)
    assert result["added"] == 0
    problems = result["problems"]
    assert isinstance(problems, list)
    (problem,) = problems
    assert problem[0] == 1 and f"{marc.MAX_RECORD_BYTES:,} bytes" in problem[1]
    assert float(result["seconds"]) < 2.0  # type: ignore[arg-type]
    assert int(result["growth_kib"]) < 64 * 1024  # type: ignore[call-overload]


@pytest.mark.parametrize(("length", "kind"), [(b"-0001", "RecordLengthInvalid"),
                                             (b"00004", "RecordLengthInvalid")])
def test_an_iso2709_record_with_an_impossible_length_is_refused_unread(
    tmp_path: Path, length: bytes, kind: str,
) -> None:
    """pymarc's own reader raised ValueError for ``-0001`` (a traceback) and, for ``00004``,
    read ``4 - 5`` bytes, i.e. the whole rest of the file."""
    path = write(tmp_path / "impossible.mrc", length + b"nam a2200025 a 4500", ISO_FIELD, HUGE)
    result = import_in_child(path, tmp_path)
    problems = result["problems"]
    assert isinstance(problems, list) and [p[0] for p in problems] == [1, 2]
    assert kind in problems[0][1]
    assert float(result["seconds"]) < 2.0  # type: ignore[arg-type]
    assert int(result["growth_kib"]) < 64 * 1024  # type: ignore[call-overload]


def test_an_iso2709_record_running_past_its_length_ends_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "runs-on.mrc", b"99999nam a2200025 a 4500", ISO_FIELD, HUGE)
    result = import_in_child(path, tmp_path)
    problems = result["problems"]
    assert isinstance(problems, list) and [p[0] for p in problems] == [1, 2]
    assert "EndOfRecordNotFound" in problems[0][1]
    assert float(result["seconds"]) < 2.0  # type: ignore[arg-type]
    assert int(result["growth_kib"]) < 64 * 1024  # type: ignore[call-overload]


def _xml(records: Iterable[pymarc.Record]) -> bytes:
    return XML_HEAD + b"".join(pymarc.record_to_xml(r, namespace=False)  # type: ignore[no-untyped-call]
                               for r in records) + b"</collection>\n"


def test_a_marcxml_record_iso2709_could_hold_imports_and_one_it_could_not_is_refused(
    session: Session, tmp_path: Path,
) -> None:
    notes = ["Ескерту: түпнұсқа қолжазба, " + str(n) for n in range(1400)]
    fits = record("FITS-1", "Абай жолы", notes)
    assert len(fits.as_marc()) < marc.MAX_RECORD_BYTES
    path = tmp_path / "fits.xml"
    path.write_bytes(_xml([fits]))
    report = marc.import_marc(session, path, actor="test")
    assert (report.records_added, report.problems) == (1, ())

    big = record("BIG-2", "Қан мен тер", notes * 2)
    after = record("AFTER-3", "Көшпенділер")
    path = tmp_path / "big.xml"
    path.write_bytes(_xml([big, after]))
    report = marc.import_marc(session, path, actor="test")
    assert report.records_added == 0
    (problem,) = report.problems
    assert (problem.position, problem.control_number) == (1, None)
    assert f"{marc.MAX_RECORD_BYTES:,}" in problem.reason
    assert session.scalar(select(BibRecord).where(BibRecord.control_number == "AFTER-3")) is None


def test_unreadable_iso2709_records_are_reported_up_to_the_limit(
    session: Session, tmp_path: Path,
) -> None:
    """A framed record pymarc cannot parse is reported and the next one read; past
    MAX_UNREADABLE of them the rest of the file is refused."""
    broken = b"00030nam a22zzzzz a 4500\x1e\x1e\x1e\x1e\x1e\x1d"  # base address not a number
    good = record("GOOD-1", "Абай жолы").as_marc()
    path = tmp_path / "some-broken.mrc"
    path.write_bytes(broken + good + broken)
    report = marc.import_marc(session, path, actor="test")
    assert report.records_added == 1
    assert [p.position for p in report.problems] == [1, 3]

    path = tmp_path / "all-broken.mrc"
    path.write_bytes(broken * (marc.MAX_UNREADABLE + 500) + good)
    report = marc.import_marc(session, path, actor="test")
    assert report.records_added == 0
    assert len(report.problems) == marc.MAX_UNREADABLE + 1
    assert report.problems[-1].position == marc.MAX_UNREADABLE + 1


def test_a_pretty_printed_record_near_the_limit_still_imports(
    session: Session, tmp_path: Path,
) -> None:
    """Indentation between elements is not content: the same record, pretty-printed."""
    from lxml import etree

    notes = ["Ескерту: түпнұсқа қолжазба, " + str(n) for n in range(1400)]
    fits = record("PRETTY-1", "Абай жолы", notes)
    tree = etree.fromstring(_xml([fits]))
    etree.indent(tree, space="    ")
    path = tmp_path / "pretty.xml"
    path.write_bytes(etree.tostring(tree, xml_declaration=True, encoding="UTF-8"))
    report = marc.import_marc(session, path, actor="test")
    assert (report.records_added, report.problems) == (1, ())
