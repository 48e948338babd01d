"""MARC21 import and export of records with their items (ISO 2709 and MARCXML, via pymarc).

Bibliographic fields: 001 control number (the import key), 008 fixed-length data (date entered,
date of publication, language), 020 $a ISBN, 022 $a ISSN, 041 $a language (MARC language codes:
``kaz``, ``rus``, ``eng``… — Qor holds ISO 639-1 ``kk``, ``ru``, ``en``), 100 $a first author,
700 $a further authors, 245 $a title, 264 _1 $b publisher $c year (260 is read too), 856 40 $u
the e-library page of each item's digital copy ($3 its inventory number; written when an
e-library address is given, never read back: it follows from the copies), leader/06–07 the kind
of material. Qor's own data in local fields:

* 953 $a material type (R2) $b legal-deposit flag (1/0);
* 952, one per item (Koha's holdings field, with Koha's letters where they mean the same):
  $i inventory number, $p barcode, $c shelf location, $g price, $d receipt date (ISO),
  $e source of acquisition (R5), $t receipt act, $s status, $f RFID tag id, $o shelf mark,
  $v value flags (comma-separated, R13), $q condition, $w write-off act, $x write-off date,
  $y write-off reason.

A file Qor wrote (it has the 953 field) is read back exactly: export → import into an empty
register → export gives the same fields and subfields. Records from other catalogues lose their
ISBD punctuation (a title's trailing `` /``, an author's trailing comma, a full stop that ends
a name but not an initial: ``Әуезов М.`` keeps its stop).

Imports are idempotent: a record whose 001 is present is not added again, an item whose
inventory number is present on that record is skipped. Every record that cannot be taken is
reported with why (its import is rolled back alone, in a savepoint); the others go in.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import pymarc
from lxml import etree
from pymarc import Field, Indicators, Record, Subfield
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog_sync import languages, register
from catalog_sync.errors import MarcError, RegisterError
from catalog_sync.models import (
    BibRecord,
    Item,
    ItemStatus,
    MaterialType,
    ReceiptBatch,
    ValueFlag,
    WriteOffAct,
    utcnow,
)

logger = logging.getLogger(__name__)

MarcFormat = Literal["iso2709", "marcxml"]
FORMATS: tuple[MarcFormat, ...] = ("iso2709", "marcxml")
#: File name endings and the format each means.
EXTENSIONS: Mapping[str, MarcFormat] = {
    ".mrc": "iso2709", ".marc": "iso2709", ".iso": "iso2709", ".iso2709": "iso2709",
    ".xml": "marcxml", ".marcxml": "marcxml",
}

def format_for(path: Path, fmt: str | None = None) -> MarcFormat:
    """The format of ``path``: ``fmt`` if given (and it must agree with a known extension), else
    the extension's. Refused with the valid values when neither says."""
    by_ext = EXTENSIONS.get(path.suffix.lower())
    if fmt is not None:
        if fmt not in FORMATS:
            raise MarcError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
        if by_ext is not None and by_ext != fmt:
            raise MarcError(
                f"{path.name}: the extension {path.suffix} means {by_ext}, not {fmt}; rename "
                f"the file or drop --format"
            )
        return fmt
    if by_ext is None:
        known = ", ".join(f"{e} ({f})" for e, f in EXTENSIONS.items())
        raise MarcError(
            f"{path.name}: cannot tell the format from the extension {path.suffix or '(none)'}; "
            f"use one of {known}, or --format {'|'.join(FORMATS)}"
        )
    return by_ext

# leader/06 (type of record) and /07 (bibliographic level) for each material type
LEADER_TYPE: dict[MaterialType, tuple[str, str]] = {
    MaterialType.PERIODICAL: ("a", "s"),
    MaterialType.BOOK: ("a", "m"),
    MaterialType.BROCHURE: ("a", "m"),
    MaterialType.BOOKLET: ("a", "m"),
    MaterialType.ALBUM: ("k", "m"),
    MaterialType.POSTER: ("k", "m"),
    MaterialType.PRINTED_OTHER: ("a", "m"),
    MaterialType.AUDIOVISUAL: ("g", "m"),
    MaterialType.ELECTRONIC: ("m", "m"),
}


@dataclass(frozen=True)
class MarcProblem:
    """A record the import could not take: its position in the file (1-based), its 001 if it
    could be read, and why."""

    position: int
    control_number: str | None
    reason: str


@dataclass(frozen=True)
class MarcImportReport:
    """What an import did."""

    records_added: int
    records_present: int
    items_added: int
    items_present: int
    problems: tuple[MarcProblem, ...]


# --- export -----------------------------------------------------------------------------------


def control_number_of(record: BibRecord) -> str:
    """The record's 001: its own control number, or one made from its id."""
    return record.control_number or f"QOR{record.id:09d}"


def _fixed_field(record: BibRecord) -> str:
    """008 for books (40 positions): date entered, publication date, language, source ``d``."""
    entered = record.created_at.astimezone(UTC).strftime("%y%m%d")
    dates = ("s" + f"{record.year:04d}" + "    ") if record.year is not None else "n        "
    codes = languages.split(record.language)
    language = (languages.to_marc(codes[0]) + "   ")[:3] if codes else "und"
    return f"{entered}{dates}xx {'|' * 17}{language} d"


def record_to_marc(
    record: BibRecord, items: Sequence[Item], *, elibrary_url: str | None = None
) -> Record:
    """One bibliographic record and its items as a MARC21 record; with ``elibrary_url`` each
    item that has a digital copy gets an 856 to the copy's e-library page."""
    material = MaterialType(record.material_type)
    rec = Record(force_utf8=True)
    kind, level = LEADER_TYPE[material]
    leader = list(str(rec.leader))
    leader[5], leader[6], leader[7], leader[9] = "n", kind, level, "a"
    rec.leader = pymarc.Leader("".join(leader))
    _add(rec, Field(tag="001", data=control_number_of(record)))
    _add(rec, Field(tag="008", data=_fixed_field(record)))
    if record.isbn:
        _add(rec, _df("020", [("a", record.isbn)]))
    if record.issn:
        _add(rec, _df("022", [("a", record.issn)]))
    codes = languages.split(record.language)
    if codes:
        _add(rec, _df("041", [("a", languages.to_marc(c)) for c in codes]))
    authors = list(record.authors)
    if authors:
        _add(rec, _df("100", [("a", authors[0])], ind=("1", " ")))
    _add(rec, _df("245", [("a", record.title)], ind=("1" if authors else "0", "0")))
    pub = [("b", record.publisher)] if record.publisher else []
    if record.year is not None:
        pub.append(("c", str(record.year)))
    if pub:
        _add(rec, _df("264", pub, ind=(" ", "1")))
    for author in authors[1:]:
        _add(rec, _df("700", [("a", author)], ind=("1", " ")))
    if elibrary_url:
        base = elibrary_url.rstrip("/")
        for item in items:
            if item.digital_copies:
                latest = item.digital_copies[-1]
                _add(rec, _df("856", [("3", item.inventory_number),
                                      ("u", f"{base}/copies/{latest.bag_id}")], ind=("4", "0")))
    _add(rec, _df("953", [("a", material.value), ("b", "1" if record.legal_deposit else "0")]))
    for item in items:
        _add(rec, _item_field(item))
    return rec


def _add(rec: Record, field: Field) -> None:
    rec.add_field(field)  # type: ignore[no-untyped-call]  # pymarc leaves it unannotated


def _df(tag: str, subfields: Iterable[tuple[str, str]], ind: tuple[str, str] = (" ", " ")) -> Field:
    return Field(
        tag=tag,
        indicators=Indicators(*ind),
        subfields=[Subfield(code, value) for code, value in subfields],
    )


def _item_field(item: Item) -> Field:
    subs: list[tuple[str, str]] = [("i", item.inventory_number)]
    optional: list[tuple[str, str | None]] = [
        ("p", item.barcode),
        ("f", item.rfid),
        ("c", item.location),
        ("o", item.shelf_mark),
        ("g", None if item.price is None else str(item.price)),
        ("d", item.receipt_batch.received_on.isoformat()),
        ("t", item.receipt_batch.act_number),
        ("e", item.source),
        ("s", item.status),
        ("v", ",".join(sorted(f.value for f in item.value_flags)) or None),
        ("q", item.condition),
    ]
    if item.write_off_act is not None:
        optional += [
            ("w", item.write_off_act.act_number),
            ("x", item.write_off_act.act_date.isoformat()),
            ("y", item.write_off_act.reason),
        ]
    subs += [(c, v) for c, v in optional if v is not None]
    return _df("952", subs)


def iter_marc_records(
    session: Session, record_ids: Sequence[int] | None = None, *, elibrary_url: str | None = None
) -> Iterator[Record]:
    """The register's records (all, or those with ``record_ids``) as MARC, in id order."""
    stmt = select(BibRecord).order_by(BibRecord.id).execution_options(yield_per=500)
    if record_ids is not None:
        stmt = stmt.where(BibRecord.id.in_(list(record_ids)))
    for record in session.scalars(stmt):
        items = sorted(record.items, key=lambda i: (i.sort_key, i.inventory_number))
        yield record_to_marc(record, items, elibrary_url=elibrary_url)


def export_marc(
    session: Session,
    path: Path,
    *,
    fmt: MarcFormat = "iso2709",
    record_ids: Sequence[int] | None = None,
    elibrary_url: str | None = None,
) -> int:
    """Write the register's records with their items to ``path``; returns how many records.
    ``elibrary_url`` (the e-library's public address) adds an 856 per digitised item."""
    count = 0
    records = iter_marc_records(session, record_ids, elibrary_url=elibrary_url)
    with path.open("wb") as fh:
        if fmt == "iso2709":
            for rec in records:
                fh.write(rec.as_marc())
                count += 1
        else:
            writer = pymarc.XMLWriter(fh)
            for rec in records:
                writer.write(rec)
                count += 1
            writer.close(close_fh=False)
    return count


# --- import -----------------------------------------------------------------------------------


MARCXML_NS = "http://www.loc.gov/MARC21/slim"
MAX_XML_TEXT = 1_000_000
"""Longest text of one MARCXML element, in characters (far above any real field; 99 999 bytes
is a whole ISO 2709 record). A longer one refuses the file by name."""


def _read(path: Path, fmt: MarcFormat | None) -> Iterator[tuple[int, Record | None, str | None]]:
    """The file's records, streamed: ``(position, record or None, why not)``.

    Hostile input is refused with a named reason in bounded time and memory (issue 15):
    ISO 2709 is read record by record, framed by Qor itself (each at most 99 999 bytes, its
    own length says so; pymarc's reader read the whole rest of the file for a length of
    ``00004`` and raised ValueError for ``-0001``); MARCXML is parsed by lxml with entities
    left unresolved, no network, lxml's own limits on tree depth and text size
    (``huge_tree=False``), each record at most :data:`MAX_RECORD_BYTES` as ISO 2709 would
    hold it, and a document that declares a
    DOCTYPE (the carrier of entity expansion and external entities, which MARCXML never
    needs) is refused outright. At most :data:`MAX_UNREADABLE` unreadable records are
    reported; the rest of such a file is refused.
    """
    try:
        with path.open("rb") as fh:
            head = fh.read(512)
    except OSError as e:
        raise MarcError(f"{path}: cannot be read ({e.strerror})") from e
    if fmt is None:
        fmt = "marcxml" if head.lstrip()[:1] == b"<" else "iso2709"
    if fmt == "marcxml":
        yield from _read_marcxml(path)
        return
    yield from _read_iso2709(path)


_END_OF_RECORD = b"\x1d"
MAX_UNREADABLE = 1000
"""How many unreadable records a file may hold before the rest of it is refused unread: each is
one problem in the report, so a file of millions of broken records cannot fill memory."""


def _read_iso2709(path: Path) -> Iterator[tuple[int, Record | None, str | None]]:
    """ISO 2709 records framed by their own leaders, one at a time: five ASCII digits give the
    record's length (at most :data:`MAX_RECORD_BYTES`), and the record must end with the record
    terminator there. A record that breaks the framing (a length that is not five digits or is
    shorter than a leader, a file that ends inside the record, no terminator where the length
    says) ends the file: past it nothing can be told apart. A framed record pymarc cannot parse
    is reported and the next one read."""
    unreadable = 0
    with path.open("rb") as fh:  # streamed: one record (≤ 99 999 bytes) at a time
        n = 0
        while first5 := fh.read(5):
            n += 1
            why: str | None = None
            length = int(first5) if len(first5) == 5 and first5.isdigit() else -1
            if length < 0:
                why = (f"RecordLengthInvalid: the record length {first5!r} is not five digits"
                       if len(first5) == 5 else "TruncatedRecord: the file ends inside a leader")
            elif length < 24 + 1:
                why = f"RecordLengthInvalid: a record length of {length} is shorter than a leader"
            else:
                chunk = first5 + fh.read(length - 5)
                if len(chunk) < length:
                    why = (f"TruncatedRecord: the file ends {length - len(chunk):,} bytes before "
                           "the end its leader gives")
                elif chunk[-1:] != _END_OF_RECORD:
                    why = ("EndOfRecordNotFound: no record terminator at the end its leader gives "
                           f"(byte {length:,})")
            if why is not None:
                yield n, None, f"not a readable MARC record ({why})"
                yield n + 1, None, "the rest of the file cannot be read after this point"
                return
            try:
                rec = Record(chunk, to_unicode=True, force_utf8=True)
            except Exception as e:  # pymarc raises many kinds for bad bytes, as its reader does
                unreadable += 1
                yield n, None, f"not a readable MARC record ({type(e).__name__}: {e})"
                if unreadable >= MAX_UNREADABLE:
                    yield n + 1, None, (f"{MAX_UNREADABLE:,} unreadable records already; the "
                                        "rest of the file is not read")
                    return
                continue
            yield n, rec, None


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _text(el: etree._Element) -> str:
    value = el.text or ""
    if len(value) > MAX_XML_TEXT:
        raise MarcError(f"an element's text is longer than {MAX_XML_TEXT} characters")
    return value


def _record_from_xml(el: etree._Element) -> Record:
    rec = Record(force_utf8=True)
    for child in el:
        name = _local(child.tag)
        if name == "leader":
            rec.leader = pymarc.Leader(_text(child).ljust(24)[:24])
        elif name == "controlfield":
            _add(rec, Field(tag=str(child.get("tag", "")), data=_text(child)))
        elif name == "datafield":
            subs = [Subfield(str(sf.get("code", "")), _text(sf))
                    for sf in child if _local(sf.tag) == "subfield"]
            _add(rec, Field(tag=str(child.get("tag", "")),
                            indicators=Indicators(str(child.get("ind1", " "))[:1] or " ",
                                                  str(child.get("ind2", " "))[:1] or " "),
                            subfields=subs))
    return rec


def _refuse_doctype(path: Path) -> None:
    """Refuse before parsing a document whose prolog declares a DOCTYPE: lxml would otherwise
    read the DTD first (and may fail on its amplification guard with a less plain reason)."""
    with path.open("rb") as fh:
        head = fh.read(1024 * 1024)
    root = re.search(rb"<[A-Za-z_]", head)
    doctype = head.find(b"<!DOCTYPE")
    if doctype >= 0 and (root is None or doctype < root.start()):
        raise MarcError(f"{path}: refused: the MARCXML declares a DOCTYPE (entity declarations "
                        "and external entities are not accepted)")


MAX_RECORD_BYTES = 99_999
"""The largest record ISO 2709 can hold (its leader gives the length in five digits). A MARCXML
record, or anything else at the top of a collection, larger than that once written as ISO 2709
(:func:`_iso_size`) is refused, and the rest of the file with it: reading on would hold the
whole record in memory (a 64 MiB record took 961 MiB)."""

_ISO_OVERHEAD = {"controlfield": 12 + 1, "datafield": 12 + 2 + 1, "subfield": 2,
                 "leader": 0, "record": 24 + 1}
"""Bytes an element costs in ISO 2709 beyond its text: a directory entry (12) and a field
terminator for a field, two indicators for a data field, delimiter and code for a subfield,
the leader and the record terminator for a record."""


_INDENT = 16
"""Whitespace between elements up to this many characters (a line break and indentation) is
not counted: a pretty-printed record is the same record."""
_MARC_ATTRIBUTES = frozenset({"tag", "ind1", "ind2", "code"})


def _iso_size(el: etree._Element) -> int:
    """What ``el`` adds to its record's ISO 2709 length (an estimate from below for elements
    MARCXML does not define: their text, tail and attributes)."""
    size = _ISO_OVERHEAD.get(_local(el.tag), 2)
    for value in (el.text, el.tail):
        if value and value.isspace():
            size += max(0, len(value) - _INDENT)  # pretty-printing is not content
        elif value:
            size += len(value.encode("utf-8", "replace"))
    for name, value in el.attrib.items():
        # tag, ind1, ind2 and code are in the overhead (directory, indicators, code): only
        # what is longer than a tag counts; any other attribute counts whole.
        size += max(0, len(value) - 3) if name in _MARC_ATTRIBUTES else len(name) + len(value)
    return size


def _read_marcxml(path: Path) -> Iterator[tuple[int, Record | None, str | None]]:
    _refuse_doctype(path)
    context = etree.iterparse(
        str(path), events=("start", "end"), resolve_entities=False, no_network=True,
        huge_tree=False, load_dtd=False, dtd_validation=False, remove_comments=True,
        remove_pis=True)
    n = 0
    checked = False
    depth = 0
    unit_depth = 0  # the depth of the record (or other top-level element) being read; 0: none
    unit_size = 0
    unreadable = 0
    try:
        for event, el in context:
            if not checked:
                checked = True
                if el.getroottree().docinfo.doctype:
                    raise MarcError(f"{path}: refused: the MARCXML declares a DOCTYPE (entity "
                                    "declarations and external entities are not accepted)")
            if event == "start":
                depth += 1
                if not unit_depth and (depth == 2 or _local(el.tag) == "record"):
                    unit_depth, unit_size = depth, 0
                continue
            depth -= 1
            if not unit_depth:
                continue
            unit_size += _iso_size(el)
            if unit_size > MAX_RECORD_BYTES:
                yield n + 1, None, (f"record {n + 1} is larger than {MAX_RECORD_BYTES:,} bytes, "
                                    "the most an ISO 2709 record can hold; refused, and the rest "
                                    "of the file is not read")
                return
            if depth + 1 != unit_depth:
                continue
            unit_depth = 0
            if _local(el.tag) == "record":
                n += 1
                try:
                    yield n, _record_from_xml(el), None
                except (MarcError, ValueError) as e:
                    yield n, None, f"not a readable MARCXML record ({e})"
                    unreadable += 1
                    if unreadable >= MAX_UNREADABLE:
                        yield n + 1, None, (f"{MAX_UNREADABLE:,} unreadable records already; "
                                            "the rest of the file is not read")
                        return
            # Streamed: what has been read is dropped, whatever the file's size.
            el.clear()
            parent = el.getparent()
            while parent is not None and el.getprevious() is not None:
                del parent[0]
    except etree.XMLSyntaxError as e:
        if n == 0:
            raise MarcError(f"{path}: not readable as MARCXML: {e}") from e
        yield n + 1, None, f"not readable as MARCXML after record {n}: {e}"
    except MarcError as e:
        if n == 0 and str(e).startswith(str(path)):
            raise
        yield n + 1, None, f"refused after record {n}: {e}"


def _sub(field: Field, code: str) -> str | None:
    values = field.get_subfields(code)
    return values[0].strip() if values and values[0].strip() else None


def _material(rec: Record) -> MaterialType:
    for f in rec.get_fields("953"):
        value = _sub(f, "a")
        if value:
            return MaterialType(value)
    leader = str(rec.leader)
    kind, level = leader[6:7], leader[7:8]
    if kind in ("a", "t"):
        return MaterialType.PERIODICAL if level == "s" else MaterialType.BOOK
    if kind == "k":
        return MaterialType.POSTER
    if kind in ("g", "i", "j"):
        return MaterialType.AUDIOVISUAL
    if kind == "m":
        return MaterialType.ELECTRONIC
    return MaterialType.PRINTED_OTHER


def _year(text: str | None) -> int | None:
    if not text:
        return None
    digits = "".join(c for c in text if c.isdigit())[:4]
    return int(digits) if len(digits) == 4 else None


def _first(rec: Record, tag: str, code: str) -> str | None:
    for f in rec.get_fields(tag):
        value = _sub(f, code)
        if value:
            return value
    return None


_INITIAL = re.compile(r"(^|[\s.,\-])\w\.$")


def _author(name: str) -> str:
    """An author heading without ISBD punctuation: a trailing comma goes, and a trailing full
    stop too unless it ends an initial (``Әуезов М.`` keeps it, ``Smith, John.`` loses it)."""
    name = name.strip().rstrip(",;:").rstrip()
    if name.endswith(".") and not _INITIAL.search(name):
        name = name[:-1].rstrip()
    return name


def _date_entered(fixed: str) -> datetime | None:
    """008/00-05 (yymmdd) as a UTC midnight, or None when absent or not a date."""
    try:
        day = datetime.strptime(fixed[:6], "%y%m%d")
    except ValueError:
        return None
    return day.replace(tzinfo=UTC)


def _control(rec: Record) -> str | None:
    fields = rec.get_fields("001")
    value = (fields[0].data or "").strip() if fields else ""
    return value or None


_CONTROL_CHAR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _refuse_control_characters(rec: Record) -> None:
    """A control character (other than tab and line breaks) in any field is refused by name:
    it is no text a catalogue means, and PostgreSQL cannot store a NUL at all (the import
    failed with a database error before)."""
    for f in rec.fields:
        values = [f.data or ""] if f.is_control_field() else [s.value for s in f.subfields]
        for value in values:
            if m := _CONTROL_CHAR.search(value):
                raise MarcError(f"field {f.tag} holds the control character "
                                f"U+{ord(m.group()):04X}; records hold text only")


def _import_record(session: Session, rec: Record, *, actor: str) -> tuple[bool, int, int]:
    _refuse_control_characters(rec)
    control = _control(rec)
    if not control:
        raise MarcError("no control number (001): the import could not be repeated safely")
    title = _first(rec, "245", "a")
    if not title:
        raise MarcError("no title (245 $a)")
    existing = session.scalar(select(BibRecord).where(BibRecord.control_number == control))
    added = existing is None
    if existing is None:
        ours = bool(rec.get_fields("953"))  # written by Qor: taken exactly as written
        authors = [a for a in [_first(rec, "100", "a")] if a]
        authors += [v for f in rec.get_fields("700") if (v := _sub(f, "a"))]
        legal = any(_sub(f, "b") == "1" for f in rec.get_fields("953"))
        in_041 = [v.strip() for f in rec.get_fields("041") for v in f.get_subfields("a")
                  if v.strip()]
        language = ",".join(in_041) or None
        fixed = [f.data or "" for f in rec.get_fields("008")]
        if language is None and fixed and len(fixed[0]) >= 38:
            language = fixed[0][35:38].strip() or None
        if language in ("und", "|||"):
            language = None
        existing = register.add_record(
            session,
            title=title if ours else title.rstrip(" /:;,=").rstrip(),
            authors=authors if ours else [_author(a) for a in authors],
            publisher=_first(rec, "264", "b") or _first(rec, "260", "b"),
            year=_year(_first(rec, "264", "c") or _first(rec, "260", "c")),
            language=languages.normalise(language),
            isbn=_first(rec, "020", "a"),
            issn=_first(rec, "022", "a"),
            material_type=_material(rec),
            legal_deposit=legal,
            control_number=control,
            actor=actor,
        )
        entered = _date_entered(fixed[0] if fixed else "")
        if entered is not None and entered < existing.created_at:
            existing.created_at = entered  # the date the source catalogue entered it (008/00-05)
    items_added = items_present = 0
    for f in rec.get_fields("952"):
        if _import_item(session, existing, f, actor=actor):
            items_added += 1
        else:
            items_present += 1
    return added, items_added, items_present


def _import_item(session: Session, record: BibRecord, f: Field, *, actor: str) -> bool:
    inv = _sub(f, "i")
    if inv is None:
        raise MarcError("a 952 item field has no inventory number ($i)")
    present = session.scalar(select(Item).where(Item.inventory_number == inv))
    if present is not None:
        if present.record_id != record.id:
            raise MarcError(
                f"inventory number {inv} already belongs to another record "
                f"({control_number_of(present.record)}); numbers are never reused (R14)"
            )
        return False
    received = _sub(f, "d")
    try:
        received_on = date.fromisoformat(received) if received else None
    except ValueError as e:
        raise MarcError(f"item {inv}: receipt date {received!r} is not YYYY-MM-DD") from e
    act = _sub(f, "t") or f"MARC-{received_on.isoformat() if received_on else 'undated'}"
    batch = session.scalar(select(ReceiptBatch).where(ReceiptBatch.act_number == act))
    if batch is None:
        batch = register.open_receipt_batch(
            session,
            act_number=act,
            received_on=received_on or utcnow().date(),
            actor=actor,
            note="created by MARC import",
        )
    try:
        status = ItemStatus(_sub(f, "s") or ItemStatus.RECEIVED)
    except ValueError as e:
        allowed = ", ".join(s.value for s in ItemStatus)
        raise MarcError(f"item {inv}: status (952 $s) {_sub(f, 's')!r} is not one of "
                        f"{allowed}") from e
    try:
        flags = frozenset(ValueFlag(v.strip())
                          for v in (_sub(f, "v") or "").split(",") if v.strip())
    except ValueError as e:
        allowed = ", ".join(v.value for v in ValueFlag)
        raise MarcError(f"item {inv}: value flags (952 $v) {_sub(f, 'v')!r}: each one of "
                        f"{allowed} (R13)") from e
    # Items enter as received/processed/available; other states are reached from there.
    shelved = bool((_sub(f, "p") or _sub(f, "f")) and _sub(f, "c"))
    if status in (ItemStatus.RECEIVED, ItemStatus.PROCESSED, ItemStatus.AVAILABLE):
        initial = status
    else:
        initial = ItemStatus.AVAILABLE if shelved else ItemStatus.RECEIVED
    register.bulk_receive(
        session,
        batch=batch,
        items=[
            register.BulkItem(
                record_id=record.id,
                inventory_number=inv,
                source=_sub(f, "e"),
                price=_sub(f, "g"),
                barcode=_sub(f, "p"),
                rfid=_sub(f, "f"),
                location=_sub(f, "c"),
                status=initial,
                value_flags=flags,
                condition=_sub(f, "q"),
                shelf_mark=_sub(f, "o"),
            )
        ],
        actor=actor,
    )
    if status is ItemStatus.WRITTEN_OFF:
        _import_write_off(session, inv, f, actor=actor)
    elif status is not initial:
        register.set_status(session, inv, status, actor=actor, note="MARC import")
    return True


def _import_write_off(session: Session, inv: str, f: Field, *, actor: str) -> None:
    act_number = _sub(f, "w")
    act_date = _sub(f, "x")
    if act_number is None or act_date is None:
        raise MarcError(f"item {inv} is written off but its act ($w) or date ($x) is missing")
    act = session.scalar(select(WriteOffAct).where(WriteOffAct.act_number == act_number))
    if act is None:
        try:
            day = date.fromisoformat(act_date)
        except ValueError as e:
            raise MarcError(f"item {inv}: write-off date {act_date!r} is not YYYY-MM-DD") from e
        act = register.open_write_off_act(
            session,
            act_number=act_number,
            act_date=day,
            reason=_sub(f, "y") or "other",
            note="created by MARC import",
            actor=actor,
        )
    register.apply_write_off(session, act, [register.get_item(session, inv)], actor=actor)


def import_marc(
    session: Session, path: Path, *, actor: str, fmt: MarcFormat | None = None
) -> MarcImportReport:
    """Import records with their items from an ISO 2709 or MARCXML file (guessed if ``fmt`` is
    None). Idempotent; bad records are reported in the result and the rest imported. Does not
    commit."""
    problems: list[MarcProblem] = []
    added = present = items_added = items_present = 0
    for position, rec, error in _read(path, fmt):
        if rec is None:
            problems.append(MarcProblem(position, None, error or "unreadable record"))
            continue
        control = _control(rec)
        savepoint = session.begin_nested()
        try:
            was_added, n_new, n_old = _import_record(session, rec, actor=actor)
        except (RegisterError, ValueError) as e:
            savepoint.rollback()
            problems.append(MarcProblem(position, control, str(e) or type(e).__name__))
            logger.warning("MARC record %d (%s) not imported: %s", position, control, e)
            continue
        savepoint.commit()
        added += was_added
        present += not was_added
        items_added += n_new
        items_present += n_old
    return MarcImportReport(added, present, items_added, items_present, tuple(problems))
