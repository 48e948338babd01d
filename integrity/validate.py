"""Qor's own BagIt validator: RFC 8493 (BagIt 1.0) to the letter, and every earlier version in
use (0.93 to 0.97) by that version's own rules (:class:`VersionRules`; the table of rules and
versions is in ``docs/bag-profile.md``). A depository receives bags made by others, of every
version; Qor itself writes only 1.0.

A bag is *complete* when every required element is present, every file listed in every manifest
is present and every payload file is listed in every payload manifest; it is *valid* when it is
complete and every checksum in every payload manifest and tag manifest verifies against the file.
Every problem found is collected (see :mod:`integrity.problems`) and reported together.

Each file is read once for all of the algorithms that cover it; several files are hashed at once
in threads (hashlib releases the GIL on large buffers, so threads use every core).
``fetch.txt`` is parsed and reported, never fetched.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from integrity.algorithms import CHUNK_SIZE, SUPPORTED, MultiHasher, digest_size
from integrity.errors import BagInvalid
from integrity.problems import (
    BadDeclaration,
    BadEncoding,
    BagProblem,
    ChecksumMismatch,
    DuplicateEntry,
    FetchPending,
    ForbiddenEntry,
    MalformedLine,
    MissingElement,
    MissingFile,
    OversizedTagFile,
    OxumMismatch,
    TooManyLines,
    TooManyManifests,
    TooManyProblems,
    UnexpectedFile,
    UnreadableFile,
    UnsafePath,
    UnsupportedAlgorithm,
)
from integrity.source import BagEntry, BagSource, FileSystemBagSource

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_BAG_INFO",
    "MAX_MANIFESTS",
    "MAX_MANIFEST_SURPLUS",
    "MAX_PATH",
    "MAX_TAG_FILE_PROBLEMS",
    "MAX_TAG_LINE",
    "SUPPORTED_VERSIONS",
    "BagRef",
    "FileCheck",
    "VersionRules",
    "is_valid",
    "manifest_digests",
    "problems",
    "rules_for",
    "validate",
]

BagRef = Path | str | BagSource
"""A bag to validate: a folder (``Path`` or ``str``) or any :class:`~integrity.source.BagSource`."""

_MANIFEST_RE = re.compile(r"^manifest-([^/]+)\.txt$")
_TAGMANIFEST_RE = re.compile(r"^tagmanifest-([^/]+)\.txt$")
_EOL_RE = re.compile(r"\r\n|\r|\n")

MAX_TAG_LINE = 64 * 1024
"""The longest tag-file line read (64 KiB): a manifest line is a checksum and a file path (at most
a few kilobytes), a bag-info line a label and a value. Longer lines are refused unread."""
MAX_BAG_INFO = 16 * 1024 * 1024
"""The largest ``bag-info.txt`` read (16 MiB): metadata about the bag, not content."""
MAX_MANIFEST_SURPLUS = 1000
"""How many lines a manifest (or ``fetch.txt``) may have beyond the number of files of its kind
the bag holds (payload files for a payload manifest and ``fetch.txt``, tag files for a tag
manifest): room to report that many missing or still-to-fetch files one by one. A line past it
can only be one more error, so the file is refused unread from there (:class:`TooManyLines`):
a manifest of millions of short lines costs no more than the bag's own listing."""
MAX_TAG_FILE_PROBLEMS = 1000
"""How many problems one tag file may give (malformed lines, unsafe paths, ...) before the rest
of it is refused unread (:class:`TooManyProblems`)."""
MAX_MANIFESTS = 16
"""The most payload manifests, and the most tag manifests, a bag may have (one per checksum
algorithm; the IANA registry BagIt points to holds fewer). Each costs a check of every payload
file; the rest are refused unread (:class:`TooManyManifests`)."""
MAX_PATH = 4096
"""The longest filepath a manifest or ``fetch.txt`` line may name, in bytes (Linux's PATH_MAX;
an S3 key holds 1,024): a longer one names no file any store holds. Refused as a malformed
line, and not kept."""
MAX_URL = 8192
"""The longest URL a ``fetch.txt`` line may give, in bytes."""
_LONG_PATH = f"the filepath is longer than {MAX_PATH:,} bytes; no file system holds such a path"
_LONG_URL = f"the URL is longer than {MAX_URL:,} bytes"
TAG_CHUNK = 1 << 20
"""Tag files are read and decoded this many bytes at a time."""
_MANIFEST_LINE_RE = re.compile(r"^(\S+)[ \t]+(.+)$", re.DOTALL)
_HEX_RE = re.compile(r"^[0-9A-Fa-f]+$")
_PERCENT_RE = re.compile(r"%(0[AaDd]|25)|%")
_PERCENT_097_RE = re.compile(r"%(0[AaDd])")
_FETCH_LINE_RE = re.compile(r"^(\S+)[ \t]+(\S+)[ \t]+(.+)$", re.DOTALL)
_OXUM_RE = re.compile(r"^(\d+)\.(\d+)$")
_VERSION_RE = re.compile(r"^BagIt-Version: (\d+)\.(\d+)$")
_ENCODING_RE = re.compile(r"^Tag-File-Character-Encoding: (\S+)$")


@dataclass(frozen=True)
class VersionRules:
    """How one BagIt version reads a bag: what it allows that 1.0 refuses, and the reverse.

    Derived from the drafts (draft-kunze-bagit, 0.93 to 0.97) and RFC 8493 (1.0), as read by the
    reference implementations (bagit-java is version aware from 0.93); ``docs/bag-profile.md``
    has the table, and ``tests/integrity/test_validate_versions.py`` one valid and one invalid
    bag per rule and version.
    """

    version: tuple[int, int]
    info_file: str
    """The metadata tag file: ``package-info.txt`` in 0.93 and 0.94, ``bag-info.txt`` since 0.95."""
    percent_codes: frozenset[str]
    """Percent-codes decoded in manifest and fetch filepaths: CR/LF since 0.97, ``%25`` in 1.0."""
    bare_percent_refused: bool
    """1.0: every ``%`` in a filepath MUST be encoded as ``%25``; earlier a ``%`` is literal."""
    backslash_separator: bool
    """0.93–0.95: ``\\`` in a manifest filepath is a path separator (bags made on Windows)."""
    binary_marker: bool
    """0.96, 0.97: a ``*`` before the filepath (md5sum's binary mode) is a separator."""
    strict_elements: bool
    """1.0: ``Label: value`` (one whitespace character after the colon, none around the label),
    each element terminated by LF, CR or CRLF, no blank lines. Earlier: label, colon and value
    separated by optional whitespace; the last line need not end with a line ending."""
    every_manifest: bool
    """1.0: every payload file MUST be in every payload manifest; earlier: in at least one."""
    bom_refused: bool
    """1.0: ``bagit.txt`` MUST NOT start with a byte-order mark."""
    tag_manifests_listed_refused: bool
    """1.0: a tag manifest MUST NOT list tag manifests; earlier ones may (and are verified)."""
    repeated_oxum_refused: bool
    """1.0: ``Payload-Oxum`` once; earlier a repeat is accepted when it repeats the same value
    (two different values are refused by every version: both cannot match)."""

    @property
    def label(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"


def _rules(major: int, minor: int) -> VersionRules:
    v = (major, minor)
    one = v >= (1, 0)
    return VersionRules(
        version=v,
        info_file="package-info.txt" if v <= (0, 94) else "bag-info.txt",
        percent_codes=(frozenset({"0a", "0d", "25"}) if one
                       else frozenset({"0a", "0d"}) if v >= (0, 97) else frozenset()),
        bare_percent_refused=one,
        backslash_separator=v <= (0, 95),
        binary_marker=(0, 96) <= v <= (0, 97),
        strict_elements=one,
        every_manifest=one,
        bom_refused=one,
        tag_manifests_listed_refused=one,
        repeated_oxum_refused=one,
    )


SUPPORTED_VERSIONS: dict[tuple[int, int], VersionRules] = {
    v: _rules(*v) for v in [(0, 93), (0, 94), (0, 95), (0, 96), (0, 97), (1, 0)]
}
"""Every BagIt version the validator reads, each with its rules."""


def rules_for(version: str) -> VersionRules:
    """The rules of BagIt ``version`` (``"0.96"``); ``KeyError`` if it is not one Qor reads."""
    major, _, minor = version.partition(".")
    return SUPPORTED_VERSIONS[(int(major), int(minor))]


@dataclass(frozen=True)
class FileCheck:
    """One file hashed during a validation: its path in the bag, the bytes read, and what was
    wrong with it (``ChecksumMismatch`` per algorithm, or ``UnreadableFile``); ``()`` = intact.

    Passed to the ``on_file`` callback of :func:`problems` as each file is finished, so a fixity
    audit can checkpoint file by file.
    """

    path: str
    size: int
    problems: tuple[BagProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


FileCallback = Callable[[FileCheck], None]


@dataclass(frozen=True)
class _Line:
    no: int
    text: str
    terminated: bool


@dataclass
class _Manifest:
    name: str
    algorithm: str
    supported: bool
    entries: dict[str, str] = field(default_factory=dict)  # path → checksum (lowercase)


def _lines(text: str) -> list[_Line]:
    """Split on LF, CR or CRLF (each is a line ending in BagIt), keeping whether each ended."""
    out: list[_Line] = []
    pos = 0
    no = 0
    for m in _EOL_RE.finditer(text):
        no += 1
        out.append(_Line(no, text[pos : m.start()], True))
        pos = m.end()
    if pos < len(text):
        out.append(_Line(no + 1, text[pos:], False))
    return out


def _too_long(text: str, limit: int) -> bool:
    """Whether ``text`` is more than ``limit`` bytes in UTF-8 (cheap for short text)."""
    return len(text) > limit // 4 and len(text.encode("utf-8", "surrogatepass")) > limit


def _counts(present: Collection[str]) -> tuple[int, int]:
    """(payload files, tag files) of a bag's listing."""
    payload = sum(1 for p in present if p.startswith("data/"))
    return payload, len(present) - payload


def _line_ends(buf: str, *, final: bool) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each line ending (LF, CR or CRLF) in ``buf``, found with
    ``str.find`` (memchr speed; a regex alternation crawls through long lines). Unless
    ``final``, a CR that ends ``buf`` is left for the next chunk: it may be half a CRLF."""
    n = len(buf)
    pos = 0
    lf, cr = buf.find("\n"), buf.find("\r")
    while True:
        if 0 <= lf < pos:
            lf = buf.find("\n", pos)
        if 0 <= cr < pos:
            cr = buf.find("\r", pos)
        if lf < 0 and cr < 0:
            return
        if cr < 0 or 0 <= lf < cr:
            yield lf, lf + 1
            pos = lf + 1
            continue
        if cr + 1 == n and not final:
            return
        end = cr + 2 if cr + 1 < n and buf[cr + 1] == "\n" else cr + 1
        yield cr, end
        pos = end


def _decode_path(raw: str, rules: VersionRules) -> str | None:
    """The filepath a manifest or fetch line names, by the version's rules: ``\\`` as separator
    (0.93–0.95), percent-codes of CR and LF (0.97) and of ``%`` (1.0, RFC 8493 section 2.1.3)
    undone. ``None`` if a ``%`` stands alone in a 1.0 bag (every ``%`` MUST be ``%25`` there)."""
    if rules.backslash_separator:
        raw = raw.replace("\\", "/")
    if not rules.percent_codes:
        return raw
    if not rules.bare_percent_refused:
        return _PERCENT_097_RE.sub(lambda m: {"0a": "\n", "0d": "\r"}[m.group(1).lower()], raw)
    bad = False

    def repl(m: re.Match[str]) -> str:
        nonlocal bad
        code = m.group(1)
        if code is None:
            bad = True
            return "%"
        return {"0a": "\n", "0d": "\r", "25": "%"}[code.lower()]

    decoded = _PERCENT_RE.sub(repl, raw)
    return None if bad else decoded


def _path_problem(path: str) -> str | None:
    """Why ``path`` (decoded, relative to the base directory) is unsafe, or ``None``."""
    if path.startswith("/") or re.match(r"^[A-Za-z]:[/\\]", path):
        return "absolute paths are not allowed; paths are relative to the base directory"
    if "\x00" in path:
        return "NUL character in path"
    for part in path.split("/"):
        if part == "..":
            return "'..' would leave the directory it names"
        if part in ("", "."):
            return "empty or '.' path segment"
    return None


def _strip_dot_slash(path: str) -> str:
    return path[2:] if path.startswith("./") else path


class _Validator:
    def __init__(
        self,
        source: BagSource,
        workers: int | None,
        *,
        skip: Collection[str] = (),
        on_file: FileCallback | None = None,
    ) -> None:
        self.src = source
        self.workers = workers or os.cpu_count() or 1
        self.skip = frozenset(skip)
        self.on_file = on_file
        self.out: list[BagProblem] = []
        self.encoding = "utf-8"
        self.rules = SUPPORTED_VERSIONS[(1, 0)]
        self._sizes: dict[str, int] = {}

    # -- reading tag files -------------------------------------------------------------------

    def _tag_lines(
        self, path: str, *, max_bytes: int | None = None, max_lines: int | None = None,
        files: int = 0,
    ) -> Iterator[_Line]:
        """The tag file's lines, streamed: read in chunks, decoded incrementally, one line at a
        time, and never more than one line held. Refused by name (a problem appended, no more
        lines) as soon as a line passes :data:`MAX_TAG_LINE` bytes
        (:class:`OversizedTagFile`), the file ``max_bytes`` (refused unread when the listing
        already says so), the file has more than ``max_lines`` lines (:class:`TooManyLines`;
        ``files`` is what the limit was made from) or this file has given
        :data:`MAX_TAG_FILE_PROBLEMS` problems (:class:`TooManyProblems`): memory and time
        stay bounded whatever a bag holds. A byte not in the declared encoding stops the file
        there (:class:`BadEncoding`); the lines before it count."""
        if max_bytes is not None and self._sizes.get(path, 0) > max_bytes:
            self.out.append(OversizedTagFile(path, 0, max_bytes))
            return
        first_problem = len(self.out)
        decoder = codecs.getincrementaldecoder(self.encoding)("strict")
        no = 0
        carry = ""
        total = 0

        def refused(line_no: int) -> bool:
            """Whether line ``line_no`` is past a limit (the refusal appended if so)."""
            if len(self.out) - first_problem >= MAX_TAG_FILE_PROBLEMS:
                self.out.append(TooManyProblems(path, line_no, MAX_TAG_FILE_PROBLEMS))
                return True
            if max_lines is not None and line_no > max_lines:
                self.out.append(TooManyLines(path, line_no, max_lines, files))
                return True
            return False

        def too_long(text: str) -> bool:
            # Characters first (cheap): a line of at most MAX_TAG_LINE / 4 characters cannot
            # pass the limit in any encoding Python knows; only longer ones are encoded.
            return (len(text) > MAX_TAG_LINE // 4
                    and len(text.encode(self.encoding, "replace")) > MAX_TAG_LINE)

        try:
            with self.src.open(path) as f:
                while True:
                    chunk = f.read(TAG_CHUNK)
                    final = not chunk
                    total += len(chunk)
                    if max_bytes is not None and total > max_bytes:
                        self.out.append(OversizedTagFile(path, 0, max_bytes))
                        return
                    pending = len(decoder.getstate()[0])
                    try:
                        text = decoder.decode(chunk, final)
                    except UnicodeDecodeError as e:
                        at = total - len(chunk) - pending + e.start
                        self.out.append(BadEncoding(
                            path, f"not valid {self.encoding} as Tag-File-Character-Encoding "
                            f"declares (byte {at})"))
                        return
                    except UnicodeError as e:  # e.g. UTF-16 without its byte-order mark
                        self.out.append(BadEncoding(
                            path, f"not valid {self.encoding} as Tag-File-Character-Encoding "
                            f"declares ({e})"))
                        return
                    buf = carry + text if carry else text
                    pos = 0
                    for start, end in _line_ends(buf, final=final):
                        line = buf[pos:start]
                        no += 1
                        if too_long(line):
                            self.out.append(OversizedTagFile(path, no, MAX_TAG_LINE))
                            return
                        if refused(no):
                            return
                        yield _Line(no, line, True)
                        pos = end
                    carry = buf[pos:]
                    if too_long(carry.rstrip("\r")):
                        self.out.append(OversizedTagFile(path, no + 1, MAX_TAG_LINE))
                        return
                    if final:
                        break
        except OSError as e:
            self.out.append(UnreadableFile(path, str(e)))
            return
        if carry:
            if refused(no + 1):
                return
            yield _Line(no + 1, carry, False)

    def _declaration(self, present: Mapping[str, BagEntry]) -> bool:
        if "bagit.txt" not in present:
            self.out.append(
                MissingElement("bagit.txt", "the base directory MUST contain a bag declaration")
            )
            return False
        try:
            with self.src.open("bagit.txt") as f:
                raw = f.read(MAX_TAG_LINE * 2 + 1)
        except OSError as e:
            self.out.append(UnreadableFile("bagit.txt", str(e)))
            return False
        if len(raw) > MAX_TAG_LINE * 2:  # two short lines, by definition
            self.out.append(OversizedTagFile("bagit.txt", 0, MAX_TAG_LINE * 2))
            return False
        bom = raw.startswith(codecs.BOM_UTF8)
        if bom:
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.out.append(
                BadEncoding("bagit.txt", "the bag declaration MUST be encoded in UTF-8")
            )
            return True
        lines = _lines(text)
        if len(lines) != 2:
            self.out.append(
                BadDeclaration(
                    f"the bag declaration MUST consist of exactly two lines (found {len(lines)})"
                )
            )
        if lines:
            m = _VERSION_RE.match(lines[0].text)
            if not m:
                self.out.append(
                    MalformedLine("bagit.txt", 1, "first line MUST be 'BagIt-Version: M.N'")
                )
            else:
                version = (int(m.group(1)), int(m.group(2)))
                if version not in SUPPORTED_VERSIONS:
                    known = ", ".join(r.label for r in SUPPORTED_VERSIONS.values())
                    self.out.append(
                        BadDeclaration(f"BagIt-Version {m.group(1)}.{m.group(2)} is not a "
                                       f"version Qor reads ({known} are)")
                    )
                else:
                    self.rules = SUPPORTED_VERSIONS[version]
        if bom and self.rules.bom_refused:
            self.out.append(
                BadEncoding("bagit.txt", "the bag declaration MUST NOT contain a byte-order mark")
            )
        if len(lines) >= 2:
            m = _ENCODING_RE.match(lines[1].text)
            if not m:
                self.out.append(
                    MalformedLine(
                        "bagit.txt",
                        2,
                        "second line MUST be 'Tag-File-Character-Encoding: ENCODING'",
                    )
                )
            else:
                try:
                    encoding = codecs.lookup(m.group(1)).name
                    "".encode(encoding)  # LookupError for codecs that are no text encoding
                    self.encoding = encoding
                except LookupError:
                    self.out.append(
                        BadDeclaration(f"Tag-File-Character-Encoding {m.group(1)!r} is not a known "
                                       "character encoding")
                    )
        return True

    def _manifests(self, top: Sequence[str], pattern: re.Pattern[str]) -> list[str]:
        """The (tag) manifests to read: the first :data:`MAX_MANIFESTS` by name; the rest are
        refused unread (:class:`TooManyManifests`)."""
        names = [p for p in top if pattern.match(p)]
        self.out.extend(TooManyManifests(p, MAX_MANIFESTS) for p in names[MAX_MANIFESTS:])
        return names[:MAX_MANIFESTS]

    def _manifest(self, name: str, algorithm: str, *, payload: bool, files: int) -> _Manifest:
        """Read one (tag) manifest; ``files`` is how many files of its kind (payload files for
        a payload manifest, tag files for a tag manifest) the bag holds: more lines than that
        plus :data:`MAX_MANIFEST_SURPLUS` are refused unread (:class:`TooManyLines`)."""
        man = _Manifest(name, algorithm, algorithm in SUPPORTED)
        if not man.supported:
            self.out.append(UnsupportedAlgorithm(name, algorithm))
        width = 2 * digest_size(algorithm) if man.supported else None
        seen: dict[str, list[int]] = {}
        for line in self._tag_lines(name, max_lines=files + MAX_MANIFEST_SURPLUS, files=files):
            m = _MANIFEST_LINE_RE.match(line.text)
            if not m:
                self.out.append(
                    MalformedLine(name, line.no, "each line MUST be 'checksum filepath', separated "
                                  "by one or more linear whitespace characters")
                )
                continue
            checksum, raw_path = m.group(1), m.group(2)
            if self.rules.binary_marker and raw_path.startswith("*"):
                raw_path = raw_path[1:]  # 0.96/0.97: md5sum's binary-mode marker
            if not _HEX_RE.match(checksum) or (width is not None and len(checksum) != width):
                self.out.append(
                    MalformedLine(name, line.no, f"checksum {checksum[:160]!r} is not a "
                                  f"hexadecimal {algorithm} digest")
                )
                continue
            # Decoding turns at most 3 bytes (%25) into 1, so a raw path over 3 x MAX_PATH
            # bytes names a path over MAX_PATH: refused without decoding a long hostile line.
            if _too_long(raw_path, 3 * MAX_PATH):
                self.out.append(MalformedLine(name, line.no, _LONG_PATH))
                continue
            decoded = _decode_path(raw_path, self.rules)
            if decoded is None:
                self.out.append(
                    MalformedLine(name, line.no, "a '%' in a filepath MUST be percent-encoded "
                                  "as %25 (BagIt 1.0)")
                )
                continue
            if _too_long(decoded, MAX_PATH):
                self.out.append(MalformedLine(name, line.no, _LONG_PATH))
                continue
            path = _strip_dot_slash(decoded)
            why = _path_problem(path)
            if why:
                self.out.append(UnsafePath(name, path, why))
                continue
            if payload and not path.startswith("data/"):
                self.out.append(
                    UnsafePath(name, path, "a payload manifest MUST NOT reference files outside "
                               "the payload directory")
                )
                continue
            seen.setdefault(path, []).append(line.no)
            man.entries.setdefault(path, checksum.lower())
        for path, nos in seen.items():
            if len(nos) > 1:
                self.out.append(DuplicateEntry(name, path, tuple(nos)))
        return man

    def _bag_info(self, present: Mapping[str, BagEntry]) -> tuple[int, int] | None:
        name = self.rules.info_file
        if name not in present:
            return None
        strict = self.rules.strict_elements
        oxum: list[tuple[int, str]] = []
        have_element = False
        for line in self._tag_lines(name, max_bytes=MAX_BAG_INFO):
            if strict and not line.terminated:
                self.out.append(
                    MalformedLine(name, line.no, "a metadata element MUST be "
                                  "terminated with an LF, a CR, or a CRLF")
                )
            if not strict and not line.text.strip():
                continue  # before 1.0 a blank line is no element and breaks none
            if line.text[:1] in (" ", "\t"):
                if not have_element:
                    self.out.append(
                        MalformedLine(name, line.no, "continuation line with no "
                                      "metadata element before it")
                    )
                continue
            label, sep, value = line.text.partition(":")
            if strict:
                if not sep or value[:1] not in (" ", "\t") or not label:
                    self.out.append(
                        MalformedLine(name, line.no, "a metadata element MUST consist of a "
                                      "label, a colon, a single linear whitespace character, and "
                                      "a value")
                    )
                    continue
                if label != label.strip():
                    self.out.append(
                        MalformedLine(name, line.no, "a label MUST NOT start or end with "
                                      "whitespace")
                    )
                    continue
                value = value[1:]
            else:
                # Before 1.0: "a label, a colon, and a value, each separated by optional
                # whitespace" — 'Label:value' and 'Label : value' are both elements.
                label, value = label.strip(), value.strip()
                if not sep or not label:
                    self.out.append(
                        MalformedLine(name, line.no, "a metadata element MUST consist of a "
                                      "label, a colon and a value")
                    )
                    continue
            have_element = True
            if label == "Payload-Oxum" and len(oxum) < MAX_TAG_FILE_PROBLEMS:
                # A repeat is one problem naming the lines; a value is digits, a dot, digits.
                oxum.append((line.no, value[:100]))
        if len(oxum) > 1 and (self.rules.repeated_oxum_refused
                              or len({v.strip() for _, v in oxum}) > 1):
            self.out.append(DuplicateEntry(name, "Payload-Oxum", tuple(n for n, _ in oxum)))
        if not oxum:
            return None
        no, value = oxum[0]
        m = _OXUM_RE.match(value.strip())
        if not m:
            self.out.append(
                MalformedLine(name, no, "Payload-Oxum MUST be OctetCount.StreamCount")
            )
            return None
        return int(m.group(1)), int(m.group(2))

    def _fetch(self, present: Mapping[str, BagEntry],
               payload_manifests: Sequence[_Manifest], payload_files: int) -> set[str]:
        """Check fetch.txt; return the paths it lists that are not present (reported once).
        Every line names a file of every payload manifest, so it has at most as many lines
        as they may have (:class:`TooManyLines` past that)."""
        if "fetch.txt" not in present:
            return set()
        pending: set[str] = set()
        seen: dict[str, list[int]] = {}
        limit = payload_files + MAX_MANIFEST_SURPLUS
        for line in self._tag_lines("fetch.txt", max_lines=limit, files=payload_files):
            m = _FETCH_LINE_RE.match(line.text)
            length: int | None = None
            if m and m.group(2) != "-":
                length = int(m.group(2)) if m.group(2).isdigit() else -1
            if not m or (length is not None and length < 0):
                self.out.append(
                    MalformedLine("fetch.txt", line.no, "each line MUST be 'url length filepath' "
                                  "with length a number of octets or '-'")
                )
                continue
            url, raw_path = m.group(1), m.group(3)
            decoded = _decode_path(raw_path, self.rules)
            if decoded is None:
                self.out.append(MalformedLine("fetch.txt", line.no, "a '%' in a filepath MUST be "
                                              "percent-encoded as %25 (BagIt 1.0)"))
                continue
            if _too_long(decoded, MAX_PATH) or _too_long(url, MAX_URL):
                self.out.append(MalformedLine("fetch.txt", line.no, _LONG_PATH if
                                              _too_long(decoded, MAX_PATH) else _LONG_URL))
                continue
            path = _strip_dot_slash(decoded)
            why = _path_problem(path)
            if why:
                self.out.append(UnsafePath("fetch.txt", path, why))
                continue
            if not path.startswith("data/"):
                self.out.append(ForbiddenEntry("fetch.txt", path,
                                               "fetch.txt MUST NOT list any tag files"))
                continue
            seen.setdefault(path, []).append(line.no)
            for man in payload_manifests:
                if path not in man.entries:
                    self.out.append(
                        ForbiddenEntry("fetch.txt", path, "every file listed in fetch.txt MUST be "
                                       f"listed in every payload manifest (not in {man.name})")
                    )
            if path not in present:
                pending.add(path)
                self.out.append(FetchPending(path, url, length))
        for path, nos in seen.items():
            if len(nos) > 1:
                self.out.append(DuplicateEntry("fetch.txt", path, tuple(nos)))
        return pending

    # -- hashing -----------------------------------------------------------------------------

    def _hash(
        self, jobs: Mapping[str, Sequence[str]], expected: Mapping[str, Sequence[tuple[str, str]]]
    ) -> dict[str, dict[str, str]]:
        def one(path: str, algorithms: Sequence[str]) -> tuple[str, int, dict[str, str] | str]:
            hasher = MultiHasher(algorithms)
            try:
                with self.src.open(path) as f:
                    while chunk := f.read(CHUNK_SIZE):
                        hasher.update(chunk)
            except OSError as e:
                return path, hasher.size, str(e)
            return path, hasher.size, hasher.hexdigests()

        digests: dict[str, dict[str, str]] = {}
        unreadable: dict[str, str] = {}
        # Largest first, so one big file started last does not leave the other threads idle.
        order = sorted((p for p in jobs if p not in self.skip),
                       key=lambda p: -self._sizes.get(p, 0))
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="bag-hash") as pool:
            futures = [pool.submit(one, p, jobs[p]) for p in order]
            try:
                for fut in as_completed(futures):
                    path, size, result = fut.result()
                    if isinstance(result, str):
                        unreadable[path] = result
                        found: tuple[BagProblem, ...] = (UnreadableFile(path, result),)
                    else:
                        digests[path] = result
                        found = tuple(
                            ChecksumMismatch(path, alg, want, result[alg])
                            for alg, want in expected.get(path, ())
                            if result.get(alg) not in (None, want)
                        )
                    if self.on_file is not None:
                        self.on_file(FileCheck(path, size, found))
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
        # Reported in a stable order (largest file first), whatever order the threads finished.
        self.out.extend(UnreadableFile(p, unreadable[p]) for p in order if p in unreadable)
        return digests

    # -- the whole check ---------------------------------------------------------------------

    def run(self) -> list[BagProblem]:
        self.out.extend(self.src.source_problems())
        entries = self.src.files()
        present = {e.path: e for e in entries}
        self._sizes = {e.path: e.size for e in entries}
        if not self._declaration(present):
            return self.out
        if not self.src.is_dir("data"):
            self.out.append(
                MissingElement("data/", "the base directory MUST contain a payload directory "
                               "named 'data'")
            )

        # The listing first: a manifest cannot meaningfully list more files than there are.
        n_payload, n_tag = _counts(present)
        top = sorted(p for p in present if "/" not in p)
        payload_mans = [
            self._manifest(p, m.group(1), payload=True, files=n_payload)
            for p in self._manifests(top, _MANIFEST_RE) if (m := _MANIFEST_RE.match(p))
        ]
        tag_mans = [
            self._manifest(p, m.group(1), payload=False, files=n_tag)
            for p in self._manifests(top, _TAGMANIFEST_RE) if (m := _TAGMANIFEST_RE.match(p))
        ]
        if not payload_mans:
            self.out.append(
                MissingElement("manifest-<algorithm>.txt",
                               "a bag MUST contain at least one payload manifest file")
            )

        oxum = self._bag_info(present)
        pending = self._fetch(present, payload_mans, n_payload)

        payload_files = sorted(p for p in present if p.startswith("data/"))
        # Completeness: every file listed in every payload manifest MUST be present ...
        for man in payload_mans:
            for path in man.entries:
                if path not in present and path not in pending:
                    self.out.append(MissingFile(path, man.name))
        # ... and every payload file MUST be listed in every payload manifest (1.0), or in at
        # least one of them (0.93-0.97).
        if payload_mans:
            for path in payload_files:
                missing_from = [m.name for m in payload_mans if path not in m.entries]
                if self.rules.every_manifest:
                    self.out.extend(UnexpectedFile(path, name) for name in missing_from)
                elif len(missing_from) == len(payload_mans):
                    self.out.append(UnexpectedFile(path, missing_from[0]))

        tag_manifest_names = {m.name for m in tag_mans}
        for man in tag_mans:
            for path in list(man.entries):
                if path.startswith("data/"):
                    self.out.append(ForbiddenEntry(man.name, path, "a tag manifest MUST NOT list "
                                                   "payload files"))
                    del man.entries[path]
                elif path in tag_manifest_names and self.rules.tag_manifests_listed_refused:
                    self.out.append(ForbiddenEntry(man.name, path, "a tag manifest MUST NOT list "
                                                   "tag manifests"))
                    del man.entries[path]
                elif path not in present:
                    self.out.append(MissingFile(path, man.name))

        if oxum is not None:
            found = (sum(present[p].size for p in payload_files), len(payload_files))
            if found != oxum:
                self.out.append(OxumMismatch(oxum[0], oxum[1], found[0], found[1]))

        # One read per file for every algorithm that covers it.
        jobs: dict[str, list[str]] = {}
        for man in [*payload_mans, *tag_mans]:
            if not man.supported:
                continue
            for path in man.entries:
                if path in present:
                    algs = jobs.setdefault(path, [])
                    if man.algorithm not in algs:
                        algs.append(man.algorithm)
        wanted: dict[str, list[tuple[str, str]]] = {}
        for man in [*payload_mans, *tag_mans]:
            if man.supported:
                for path, want in man.entries.items():
                    wanted.setdefault(path, []).append((man.algorithm, want))
        digests = self._hash(jobs, wanted)
        for man in [*payload_mans, *tag_mans]:
            if not man.supported:
                continue
            for path, expected in man.entries.items():
                found_digest = digests.get(path, {}).get(man.algorithm)
                if found_digest is not None and found_digest != expected:
                    self.out.append(ChecksumMismatch(path, man.algorithm, expected, found_digest))
        logger.debug("validated bag %s: %d file(s) hashed, %d problem(s)",
                     self.src.name, len(jobs), len(self.out))
        return self.out


def _as_source(bag: BagRef) -> BagSource:
    if isinstance(bag, (str, Path)):
        return FileSystemBagSource(Path(bag))
    return bag


def problems(
    bag: BagRef,
    *,
    workers: int | None = None,
    skip: Collection[str] = (),
    on_file: FileCallback | None = None,
) -> list[BagProblem]:
    """Every way ``bag`` fails RFC 8493, in a stable order; an empty list means valid.

    ``workers`` is how many files are hashed at once (default: the number of cores).
    Raises :class:`~integrity.errors.BagUnreadableError` only when the bag cannot be opened at all.
    This is what ``qor bag validate PATH`` prints.

    For fixity audits that resume: files in ``skip`` (paths in the bag) are not read again —
    every structural rule is still checked, but no checksum finding is made for them; and
    ``on_file`` is called (in the caller's thread) with a :class:`FileCheck` as each file is
    hashed. An exception raised by ``on_file`` stops the validation and propagates.
    """
    return _Validator(_as_source(bag), workers, skip=skip, on_file=on_file).run()


def manifest_digests(bag: BagRef) -> dict[str, dict[str, str]]:
    """What the bag's manifests and tag manifests promise: path → {algorithm: digest}.

    Only supported algorithms and well-formed, safe entries are included (the problems with the
    rest are what :func:`problems` reports). Used to check a replica's copy of one file.
    """
    v = _Validator(_as_source(bag), 1)
    entries = {e.path: e for e in v.src.files()}
    present = set(entries)
    v._sizes = {e.path: e.size for e in entries.values()}
    v._declaration(entries)  # the bag's version decides how its filepaths are read
    n_payload, n_tag = _counts(entries)
    out: dict[str, dict[str, str]] = {}
    top = sorted(p for p in present if "/" not in p)
    for name in v._manifests(top, _MANIFEST_RE) + v._manifests(top, _TAGMANIFEST_RE):
        m = _MANIFEST_RE.match(name) or _TAGMANIFEST_RE.match(name)
        if m is None:
            continue
        payload = name.startswith("manifest-")
        man = v._manifest(name, m.group(1), payload=payload,
                          files=n_payload if payload else n_tag)
        if man.supported:
            for path, digest in man.entries.items():
                out.setdefault(path, {})[man.algorithm] = digest
    return out


def validate(bag: BagRef, *, workers: int | None = None) -> None:
    """Raise :class:`~integrity.errors.BagInvalid` with every problem unless ``bag`` is valid."""
    source = _as_source(bag)
    found = _Validator(source, workers).run()
    if found:
        raise BagInvalid(source.name, found)


def is_valid(bag: BagRef, *, workers: int | None = None) -> bool:
    """Whether ``bag`` is a valid bag (complete, and every checksum verified)."""
    return not problems(bag, workers=workers)
