"""Property test of the bag parser and validator (issue 15): random bytes in any tag file, and
valid bags mutated (bits flipped, bytes cut or inserted, lines repeated, in any tag or payload
file), never raise anything but the validator's documented outcome — a list of
:class:`~integrity.problems.BagProblem` from ``problems``, :class:`BagInvalid` carrying them
from ``validate`` — each example within a time bound (the deadline) and a memory bound (peak
RSS growth). A mutated bag that is still reported valid has the very bytes a valid bag has."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from integrity.errors import BagInvalid
from integrity.problems import BagProblem
from integrity.validate import problems, validate
from tests.bounds import MiB, peak_growth_below

DEADLINE = timedelta(seconds=3)
MEMORY = 32 * MiB
FUZZ = settings(max_examples=120, deadline=DEADLINE, derandomize=True)

PAYLOAD = {"data/a.txt": b"alpha", "data/pages/p 1.tif": b"\x00\x01" * 300,
           "data/№ 5.txt": "Қазақ".encode()}
TAG_FILES = ["bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-md5.txt",
             "tagmanifest-sha256.txt", "fetch.txt"]

TOKENS = [b"\n", b"\r", b"\r\n", b" ", b"\t", b":", b"%", b"%25", b"%0A", b"data/", b"../", b"/",
          b"*", b"a" * 64, b"Payload-Oxum: ", b"1.2", b"\xef\xbb\xbf", b"\x00", b"\xff",
          "ә".encode()]
"""Pieces of tag-file syntax, so random files reach deep into the parser."""


def _manifest(files: dict[str, bytes], algorithm: str) -> bytes:
    return b"".join(f"{hashlib.new(algorithm, body).hexdigest()}  {path}\n".encode()
                    for path, body in sorted(files.items()))


def write_valid_bag(root: Path) -> Path:
    """A valid 1.0 bag: three payload files, two payload manifests, bag-info with
    Payload-Oxum, a tag manifest."""
    for path, body in PAYLOAD.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(body)
    (root / "bagit.txt").write_bytes(b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    octets = sum(len(b) for b in PAYLOAD.values())
    (root / "bag-info.txt").write_bytes(
        f"Source-Organization: State Library\nPayload-Oxum: {octets}.{len(PAYLOAD)}\n".encode())
    (root / "manifest-sha256.txt").write_bytes(_manifest(PAYLOAD, "sha256"))
    (root / "manifest-md5.txt").write_bytes(_manifest(PAYLOAD, "md5"))
    tags = {p: (root / p).read_bytes() for p in
            ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-md5.txt")}
    (root / "tagmanifest-sha256.txt").write_bytes(_manifest(tags, "sha256"))
    return root


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bag = write_valid_bag(tmp_path_factory.mktemp("pristine") / "bag")
    assert problems(bag) == []
    return bag


@contextmanager
def copy_of(bag: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="qor-bag-fuzz-") as tmp:
        yield Path(shutil.copytree(bag, Path(tmp) / "bag"))


def check_outcome(bag: Path) -> list[BagProblem]:
    """Run the validator as ``qor bag validate`` does; only documented outcomes pass."""
    with peak_growth_below(MEMORY, "validating a hostile bag"):
        found = problems(bag, workers=1)
        assert all(isinstance(p, BagProblem) for p in found)
        for p in found:
            assert isinstance(p.message, str) and p.message
        try:
            validate(bag, workers=1)
        except BagInvalid as e:
            assert list(e.problems) == found
            assert e.problem_lines()
        else:
            assert found == []
    return found


@FUZZ
@given(name=st.sampled_from(TAG_FILES),
       body=st.one_of(st.binary(max_size=3000),
                      st.text(max_size=1500).map(lambda t: t.encode("utf-8", "surrogatepass")),
                      st.lists(st.sampled_from(TOKENS), max_size=300).map(b"".join)))
@example(name="bagit.txt", body=b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-16\n")
@example(name="bagit.txt", body=b"BagIt-Version: 0.97\nTag-File-Character-Encoding: rot13\n")
@example(name="manifest-sha256.txt", body=b"\r" * 2000)
def test_random_bytes_in_any_tag_file_give_only_bag_problems(
    pristine: Path, name: str, body: bytes,
) -> None:
    with copy_of(pristine) as bag:
        (bag / name).write_bytes(body)
        check_outcome(bag)


@st.composite
def mutation(draw: st.DrawFn) -> tuple[str, str, int, bytes]:
    target = draw(st.sampled_from([*TAG_FILES[:5], *PAYLOAD]), label="file")
    kind = draw(st.sampled_from(["flip", "cut", "insert", "repeat-line", "delete"]), label="kind")
    at = draw(st.integers(0, 10_000), label="at")
    extra = draw(st.binary(min_size=1, max_size=64), label="bytes") if kind == "insert" else b""
    return target, kind, at, extra


def apply(bag: Path, target: str, kind: str, at: int, extra: bytes) -> bool:
    """Apply the mutation; whether the bag's bytes changed."""
    path = bag / target
    body = path.read_bytes()
    i = at % (len(body) + 1)
    if kind == "delete":
        path.unlink()
        return True
    if kind == "flip" and body:
        new = bytearray(body)
        new[i % len(body)] ^= 1 << (at % 8)
        out = bytes(new)
    elif kind == "cut":
        out = body[:i]
    elif kind == "insert":
        out = body[:i] + extra + body[i:]
    else:  # repeat the line holding position i
        lines = body.splitlines(keepends=True) or [b""]
        k = min(i * len(lines) // (len(body) + 1), len(lines) - 1)
        out = b"".join(lines[: k + 1] + lines[k:])
    path.write_bytes(out)
    return out != body


@FUZZ
@given(changes=st.lists(mutation(), min_size=1, max_size=3))
@example(changes=[("manifest-sha256.txt", "repeat-line", 0, b"")])
@example(changes=[("bag-info.txt", "cut", 40, b"")])
def test_a_mutated_valid_bag_gives_only_bag_problems(
    pristine: Path, changes: list[tuple[str, str, int, bytes]],
) -> None:
    with copy_of(pristine) as bag:
        for target, kind, at, extra in changes:
            if (bag / target).exists():
                apply(bag, target, kind, at, extra)
        found = check_outcome(bag)
        if not found:
            # Reported valid: then every file the manifests cover still has its bytes (a case
            # flip in a hex digest, or a line ending changed in bag-info, may leave a bag valid).
            for path, body in PAYLOAD.items():
                assert (bag / path).read_bytes() == body


def test_regressions_found_by_the_property_test(pristine: Path) -> None:
    """A bytes-to-bytes codec named as the tag-file encoding (``rot13``, ``base64``) crashed
    the validator (LookupError, TypeError); a UTF-16 manifest without its byte-order mark
    raised UnicodeError. Now: a BadDeclaration, and a BadEncoding naming the file."""
    from integrity.problems import BadDeclaration, BadEncoding

    for codec in ("rot13", "base64"):
        with copy_of(pristine) as bag:
            (bag / "bagit.txt").write_bytes(
                f"BagIt-Version: 0.97\nTag-File-Character-Encoding: {codec}\n".encode())
            found = check_outcome(bag)
            assert any(isinstance(p, BadDeclaration) and codec in p.reason for p in found)
    with copy_of(pristine) as bag:
        (bag / "bagit.txt").write_bytes(
            b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-16\n")
        (bag / "manifest-sha256.txt").write_bytes(
            _manifest(PAYLOAD, "sha256").decode().encode("utf-16-le"))
        found = check_outcome(bag)
        assert any(isinstance(p, BadEncoding) and p.file == "manifest-sha256.txt"
                   for p in found)
