"""Issue 15 item 9: hostile MARC and malformed register input, through the CLI as an operator
meets it (``qor`` run as a subprocess).

Hostile MARC — a truncated ISO 2709 file, MARCXML with external entities or with entity
expansion ("billion laughs") — is refused with a named reason, within a time limit (the
subprocess's timeout) and an address-space limit (RLIMIT_AS, set in the child), never by a
traceback; nothing of a file named by an external entity is read into the register.
Malformed dates and inventory numbers in register commands are one-line refusals.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pymarc
import pytest

ADDRESS_SPACE = 3 * 1024**3
"""The child's address-space limit: Qor's import runs well inside it; an expanded entity bomb
(gigabytes) cannot."""
TIME_LIMIT_S = 90


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def qor(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qor", *args], env=env, capture_output=True,
                          text=True, timeout=TIME_LIMIT_S, check=False,
                          stdin=subprocess.DEVNULL, preexec_fn=_limited)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items()
           if not k.startswith(("QOR_", "PREFECT_")) or k.startswith("QOR_TEST_")}
    out["QOR_DATA_DIR"] = str(tmp_path / "qor")
    return out


def _lines(run: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in run.stderr, run.stderr
    return [ln for ln in run.stderr.splitlines() if ln.strip()]


def _record(control: str, title: str) -> pymarc.Record:
    rec = pymarc.Record(force_utf8=True)
    rec.add_field(pymarc.Field(tag="001", data=control))  # type: ignore[no-untyped-call]
    rec.add_field(pymarc.Field(  # type: ignore[no-untyped-call]
        tag="245", indicators=pymarc.Indicators("0", "0"), subfields=[pymarc.Subfield("a", title)]))
    return rec


def _marcxml(body: str, *, doctype: str = "") -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n{doctype}'
            '<collection xmlns="http://www.loc.gov/MARC21/slim">'
            f'<record><leader>00000nam a2200000 a 4500</leader>{body}</record></collection>')


def test_truncated_iso2709_is_refused_by_name_after_the_whole_records(
    env: dict[str, str], tmp_path: Path,
) -> None:
    whole = _record("GOOD-1", "Абай жолы").as_marc()
    cut = _record("CUT-2", "Қан мен тер" * 50).as_marc()
    path = tmp_path / "truncated.mrc"
    path.write_bytes(whole + cut[: len(cut) // 2])
    run = qor("marc", "import", str(path), "--json", env=env)
    assert run.returncode == 1, run.stderr
    _lines(run)
    report = json.loads(run.stdout)
    assert report["added"] == 1
    problem = report["problems"][0]
    assert problem["position"] == 2 and "not a readable MARC record" in problem["reason"]


def test_marcxml_with_an_external_entity_is_refused_and_reads_nothing(
    env: dict[str, str], tmp_path: Path,
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    path = tmp_path / "xxe.xml"
    path.write_text(_marcxml(
        '<controlfield tag="001">XXE-1</controlfield>'
        '<datafield tag="245" ind1="0" ind2="0"><subfield code="a">&xxe;</subfield></datafield>',
        doctype=f'<!DOCTYPE collection [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>\n'))
    run = qor("marc", "import", str(path), env=env)
    assert run.returncode != 0
    (line,) = _lines(run)
    assert "xxe.xml" in line and "DOCTYPE" in line
    assert "TOP-SECRET" not in run.stdout + run.stderr


def test_marcxml_entity_expansion_is_refused_in_bounded_time_and_memory(
    env: dict[str, str], tmp_path: Path,
) -> None:
    levels = ['<!ENTITY l0 "laughlaughlaughlaughlaughlaughlaughlaughlaughlaugh">']
    levels += [f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10)]
    path = tmp_path / "laughs.xml"
    path.write_text(_marcxml(
        '<controlfield tag="001">BOMB-1</controlfield>'
        '<datafield tag="245" ind1="0" ind2="0"><subfield code="a">&l9;</subfield></datafield>',
        doctype=f"<!DOCTYPE collection [{''.join(levels)}]>\n"))
    run = qor("marc", "import", str(path), env=env)  # the timeout and RLIMIT_AS bound it
    assert run.returncode != 0
    (line,) = _lines(run)
    assert "laughs.xml" in line and "DOCTYPE" in line


def test_marcxml_without_a_doctype_still_imports(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "plain.xml"
    path.write_text(_marcxml(
        '<controlfield tag="001">PLAIN-1</controlfield>'
        '<datafield tag="245" ind1="0" ind2="0"><subfield code="a">Көшпенділер</subfield>'
        '</datafield>'))
    run = qor("marc", "import", str(path), "--json", env=env)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["added"] == 1


@pytest.mark.parametrize(("args", "named"), [
    (["loans", "in", "KZ-1", "--returned-on", "2026-02-30"], "'2026-02-30'"),
    (["debts", "run", "--today", "31.12.2026"], "'31.12.2026'"),
    (["deposit", "receive", "1", "--received-on", "yesterday"], "'yesterday'"),
    (["items", "add", "KZ-\x01-1", "--title", "Control"], "inventory number"),
    (["items", "add", " KZ-1", "--title", "Leading space"], "inventory number"),
    (["items", "add", "К" * 300, "--title", "Long"], "inventory number"),
    (["loans", "in", "К" * 300], "inventory number"),
])
def test_malformed_dates_and_inventory_numbers_are_one_line_refusals(
    env: dict[str, str], args: list[str], named: str,
) -> None:
    run = qor(*args, env=env)
    assert run.returncode not in (0, None), run.stdout
    (line,) = _lines(run)
    assert line.startswith("error: ") and named in line, line
