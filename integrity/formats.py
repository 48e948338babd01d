"""Format identification (форматты анықтау / идентификация формата) against PRONOM signatures.

Every payload file of a copy is identified before it is encrypted, by FIDO (Format
Identification for Digital Objects, the Open Preservation Foundation's identifier, PyPI
``opf-fido``) with the PRONOM signature release it ships — offline, nothing is fetched. The
result (PRONOM unique identifier such as ``fmt/353`` for TIFF, the format's name and MIME type,
and whether a byte signature, a container signature or only the file extension matched) goes into
the file's PREMIS object and a *format identification* event (see :mod:`integrity.premis`).
"""

from __future__ import annotations

import contextlib
import io
import re
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from lxml import etree

from integrity.errors import FormatIdentificationError

__all__ = ["IDENTIFIER", "FormatId", "identifier_name", "identify", "pronom_ids", "warm_up"]

Basis = Literal["signature", "container", "extension", "none"]

# The PRONOM release FIDO ships as its format file (formats-v<N>.xml in fido/conf).
_FORMATS_RE = re.compile(r"^formats-v(\d+)\.xml$")
IDENTIFIER = "FIDO"
_LOCK = threading.Lock()  # a Fido instance keeps per-file state: one file at a time


@dataclass(frozen=True)
class FormatId:
    """What the identifier found for one file.

    ``puid`` is the PRONOM unique identifier (``fmt/…``, ``x-fmt/…``), ``None`` when nothing
    matched; ``basis`` says how: a byte ``signature``, a ``container`` signature (ZIP/OLE2
    formats), only the file ``extension`` (weak: the bytes were not recognised), or ``none``.
    """

    puid: str | None
    name: str | None
    mime: str | None
    basis: Basis

    def as_dict(self) -> dict[str, str | None]:
        return {"puid": self.puid, "name": self.name, "mime": self.mime, "basis": self.basis}


def _conf_dir() -> Path:
    import fido

    return Path(fido.__file__).parent / "conf"


def _release() -> str:
    found = sorted((int(m.group(1)), p.name) for p in _conf_dir().iterdir()
                   if (m := _FORMATS_RE.match(p.name)))
    if not found:
        raise FormatIdentificationError(
            f"FIDO's PRONOM signature file (formats-v*.xml) is missing from {_conf_dir()}; "
            "reinstall opf-fido")
    return found[-1][1]


@cache
def identifier_name() -> str:
    """``FIDO <version>, PRONOM signatures v<release>`` — the agent and its signature release."""
    import fido

    release = _FORMATS_RE.match(_release())
    assert release is not None
    return f"{IDENTIFIER} {fido.__version__}, PRONOM signatures v{release.group(1)}"


class _Matches:
    def __init__(self) -> None:
        self.found: list[tuple[Any, str]] = []

    def __call__(self, fullname: str, matches: list[tuple[Any, Any]], delta_t: float,
                 matchtype: str = "") -> None:
        self.found = [(fmt, matchtype) for fmt, _sig in matches]


@cache
def _fido() -> tuple[Any, _Matches]:
    from fido.fido import Fido

    sink = _Matches()
    engine = Fido(quiet=True, handle_matches=sink, conf_dir=str(_conf_dir()),
                  format_files=[_release(), "format_extensions.xml"])
    return engine, sink


def warm_up() -> None:
    """Load the PRONOM signatures now (0.3 CPU-seconds) rather than at the first file: for a
    long-lived process that forks workers, such as the resident flow runner."""
    _fido()


def _text(fmt: Any, tag: str) -> str | None:
    el = fmt.find(tag)
    return el.text if el is not None and el.text else None


def identify(path: Path) -> FormatId:
    """Identify the file at ``path`` by its bytes (then, failing that, by its extension).

    Raises :class:`~integrity.errors.FormatIdentificationError` when the file cannot be read.
    """
    try:
        with path.open("rb"):
            pass
    except OSError as e:
        raise FormatIdentificationError(f"{path}: cannot be read for format identification "
                                        f"({e.strerror or e})") from e
    with _LOCK:
        engine, sink = _fido()
        sink.found = []
        # FIDO reports read errors and empty files on stderr; they are reported here instead.
        with contextlib.redirect_stderr(io.StringIO()):
            engine.identify_file(str(path))
        found = list(sink.found)
    if not found:
        return FormatId(None, None, None, "none")
    fmt, matchtype = found[0]
    basis: Basis = ("container" if matchtype == "container"
                    else "extension" if matchtype == "extension" else "signature")
    return FormatId(_text(fmt, "puid"), _text(fmt, "name"), _text(fmt, "mime"), basis)


def pronom_ids(premis: bytes) -> dict[str, str]:
    """Bag path → PRONOM id, as a bag's ``metadata/premis.xml`` records them."""
    ns = {"p": "http://www.loc.gov/premis/v3"}
    root = etree.fromstring(premis, parser=etree.XMLParser(resolve_entities=False,
                                                           no_network=True))
    out: dict[str, str] = {}
    for obj in root.iterfind("p:object", ns):
        path = obj.findtext("p:objectIdentifier/p:objectIdentifierValue", namespaces=ns)
        key = obj.findtext("p:objectCharacteristics/p:format/p:formatRegistry/"
                           "p:formatRegistryKey", namespaces=ns)
        if path and key:
            out[path] = key
    return out
