"""What a bag validation can find wrong: one frozen dataclass per kind of problem.

Callers (the CLI, fixity reports, the register) act on the fields, never on the wording. Each
``message`` quotes the rule of RFC 8493 (*The BagIt File Packaging Format V1.0*) that is broken,
so a preservation officer (сақтау жөніндегі маман / хранитель) can look it up.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BagProblem:
    """Base of every validation finding."""

    @property
    def message(self) -> str:  # pragma: no cover - every subclass overrides
        return type(self).__name__

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class MissingElement(BagProblem):
    """A required element of the bag is absent (``bagit.txt``, ``data/``, a payload manifest)."""

    path: str
    rule: str

    @property
    def message(self) -> str:
        return f"{self.path}: missing; {self.rule}"


@dataclass(frozen=True)
class BadDeclaration(BagProblem):
    """``bagit.txt`` (the bag declaration) does not have the required form."""

    reason: str

    @property
    def message(self) -> str:
        return f"bagit.txt: {self.reason}"


@dataclass(frozen=True)
class BadEncoding(BagProblem):
    """A tag file is not in the declared character encoding, or carries a byte-order mark."""

    file: str
    reason: str

    @property
    def message(self) -> str:
        return f"{self.file}: {self.reason}"


@dataclass(frozen=True)
class MalformedLine(BagProblem):
    """A line of a tag file does not have the form the specification requires."""

    file: str
    line_no: int
    reason: str

    @property
    def message(self) -> str:
        return f"{self.file} line {self.line_no}: {self.reason}"


@dataclass(frozen=True)
class OversizedTagFile(BagProblem):
    """A tag file, or one of its lines, is beyond what the validator reads: it is refused unread
    past that point, so a hostile bag cannot make validation hang or exhaust memory."""

    file: str
    line_no: int
    """The line that is too long, or 0 when the whole file is too large."""
    limit: int
    """The limit in bytes (of one line, or of the file)."""

    @property
    def message(self) -> str:
        if self.line_no:
            return (f"{self.file} line {self.line_no}: longer than {self.limit:,} bytes (a line "
                    "holds a checksum or a label and a file path or value); refused unread")
        return f"{self.file}: larger than {self.limit:,} bytes; refused unread"


@dataclass(frozen=True)
class TooManyLines(BagProblem):
    """A manifest or ``fetch.txt`` has more lines than the bag has files it could name, plus a
    margin: past that point every further line can only be an error (a missing file, a
    duplicate, a malformed line), so the file is refused unread from there on and memory stays
    bounded by the bag's own listing. The lines before it are checked as usual."""

    file: str
    line_no: int
    """The first line not read."""
    limit: int
    """The most lines the file may have (the files it could name plus the margin)."""
    files: int
    """How many files of the kind it lists the bag holds (payload files, or tag files)."""

    @property
    def message(self) -> str:
        return (f"{self.file} line {self.line_no:,}: more than {self.limit:,} lines, though the "
                f"bag holds {self.files:,} file(s) it could list; refused unread past this line")


@dataclass(frozen=True)
class TooManyProblems(BagProblem):
    """One tag file has so many faulty lines that the rest is not read: the problems found so
    far are reported, and memory stays bounded whatever the file holds."""

    file: str
    line_no: int
    """The first line not read."""
    limit: int
    """How many problems one tag file may give before it is refused."""

    @property
    def message(self) -> str:
        return (f"{self.file} line {self.line_no:,}: {self.limit:,} problems in this file already; "
                "refused unread past this line")


@dataclass(frozen=True)
class TooManyManifests(BagProblem):
    """More payload (or tag) manifests than the validator reads: this one is refused unread.
    Each manifest costs a check of every payload file (a bag of many files and many empty
    manifests would otherwise be that many problems), and no bag needs more algorithms."""

    file: str
    limit: int

    @property
    def message(self) -> str:
        return (f"{self.file}: more than {self.limit} manifests of this kind; refused unread "
                "(a bag needs one per checksum algorithm)")


@dataclass(frozen=True)
class UnsupportedAlgorithm(BagProblem):
    """A (tag) manifest uses an algorithm this validator cannot compute: it cannot be verified."""

    manifest: str
    algorithm: str

    @property
    def message(self) -> str:
        return (
            f"{self.manifest}: checksum algorithm {self.algorithm!r} is not supported, so the "
            "checksums in it cannot be verified"
        )


@dataclass(frozen=True)
class UnsafePath(BagProblem):
    """A path leaves the bag (``..``, absolute), leaves the payload directory, or a link escapes."""

    file: str
    path: str
    reason: str

    @property
    def message(self) -> str:
        return f"{self.file}: unsafe path {self.path!r}: {self.reason}"


@dataclass(frozen=True)
class DuplicateEntry(BagProblem):
    """The same path (or the same reserved bag-info label) is listed more than once."""

    file: str
    path: str
    line_nos: tuple[int, ...]

    @property
    def message(self) -> str:
        lines = ", ".join(str(n) for n in self.line_nos)
        return f"{self.file}: {self.path!r} is listed more than once (lines {lines})"


@dataclass(frozen=True)
class ForbiddenEntry(BagProblem):
    """A manifest lists something it must not (a tag manifest listing payload or tag manifests)."""

    manifest: str
    path: str
    rule: str

    @property
    def message(self) -> str:
        return f"{self.manifest}: {self.path}: {self.rule}"


@dataclass(frozen=True)
class MissingFile(BagProblem):
    """A file listed in a (tag) manifest is not present in the bag."""

    path: str
    manifest: str

    @property
    def message(self) -> str:
        return (
            f"{self.path}: listed in {self.manifest} but not present; every file listed in "
            "every manifest MUST be present"
        )


@dataclass(frozen=True)
class UnexpectedFile(BagProblem):
    """A payload file is present but not listed in a payload manifest."""

    path: str
    manifest: str

    @property
    def message(self) -> str:
        return (
            f"{self.path}: present but not listed in {self.manifest}; every payload file MUST "
            "be listed in every payload manifest"
        )


@dataclass(frozen=True)
class ChecksumMismatch(BagProblem):
    """The file's bytes do not hash to the checksum the manifest records."""

    path: str
    algorithm: str
    expected: str
    found: str

    @property
    def message(self) -> str:
        return (
            f"{self.path}: {self.algorithm} checksum {self.found} does not match "
            f"{self.expected} in the manifest; every checksum in every payload manifest and "
            "tag manifest MUST be successfully verified against the contents of the file"
        )


@dataclass(frozen=True)
class OxumMismatch(BagProblem):
    """``Payload-Oxum`` in ``bag-info.txt`` disagrees with the payload actually present."""

    expected_octets: int
    expected_streams: int
    found_octets: int
    found_streams: int

    @property
    def message(self) -> str:
        return (
            f"bag-info.txt: Payload-Oxum {self.expected_octets}.{self.expected_streams} does not "
            f"match the payload present ({self.found_octets} octets in {self.found_streams} "
            "files)"
        )


@dataclass(frozen=True)
class FetchPending(BagProblem):
    """``fetch.txt`` lists a file that is not present; the bag is not complete until fetched.

    Qor never fetches: it reports the URL so an operator can decide.
    """

    path: str
    url: str
    length: int | None

    @property
    def message(self) -> str:
        return (
            f"{self.path}: listed in fetch.txt ({self.url}) but not present; a bag is complete "
            "only when every file in fetch.txt has been fetched (Qor never fetches)"
        )


@dataclass(frozen=True)
class UnreadableFile(BagProblem):
    """A file in the bag could not be read while hashing it."""

    path: str
    reason: str

    @property
    def message(self) -> str:
        return f"{self.path}: cannot be read: {self.reason}"
